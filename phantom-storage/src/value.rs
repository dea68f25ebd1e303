//! Typed values, their text form (used by CSV, the CLI and filters) and their validation.
//!
//! Text form (the inverse of [`Value::parse`]):
//! - `int`: optional sign and digits, within the i64 range;
//! - `float`: decimal or scientific notation; `NaN`, `inf` and `-inf` are accepted and written
//!   as such (all NaNs are one value: NaN payloads are not preserved); `-0.0` keeps its sign;
//!   the written form is the shortest text that reads back to the same bits;
//! - `bool`: `true false 1 0 yes no on off` in any case in, `true`/`false` out;
//! - `date` `YYYY-MM-DD`, `time` `HH:MM:SS`, `timestamp` `YYYY-MM-DD HH:MM:SS`, all validated
//!   against the real calendar and clock (no 2023-02-29, no 24:00:00, no leap seconds);
//! - `string`: any Unicode text, stored as is.
//!
//! NULL has no text form: formats represent it out of band (CSV: an unquoted empty field).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::ColumnType;

const DATE_FMT: &str = "%Y-%m-%d";
const TIME_FMT: &str = "%H:%M:%S";
const TIMESTAMP_FMT: &str = "%Y-%m-%d %H:%M:%S";

/// A value stored in a table cell.
///
/// Equality and ordering are total: all NaNs are equal to each other, `-0.0` and `0.0` are
/// different values, and values of different types order by type (`Null` first). This makes
/// `Value` usable as an index key and gives `ORDER BY` a stable meaning.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Value {
    /// The absence of a value.
    Null,
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text (may be empty: the empty string is not NULL). Up to 24 bytes are held inline
    /// (no allocation); build one with `Value::from("text")` or `Value::String("text".into())`.
    String(CompactString),
    /// A boolean.
    Bool(bool),
    /// A calendar date (serialized as days since 0001-01-01, CE).
    Date(#[serde(with = "date_days")] NaiveDate),
    /// A time of day, whole seconds (serialized as seconds since midnight).
    Time(#[serde(with = "time_secs")] NaiveTime),
    /// A date and time, whole seconds, UTC (serialized as seconds since the Unix epoch).
    Timestamp(#[serde(with = "timestamp_secs")] NaiveDateTime),
}

impl Value {
    /// The type of a non-NULL value.
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Int(_) => ColumnType::Int,
            Value::Float(_) => ColumnType::Float,
            Value::String(_) => ColumnType::String,
            Value::Bool(_) => ColumnType::Bool,
            Value::Date(_) => ColumnType::Date,
            Value::Time(_) => ColumnType::Time,
            Value::Timestamp(_) => ColumnType::Timestamp,
        })
    }

    /// `true` for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `true` when this value may be stored in a column of type `ty` (NULL fits every type;
    /// NOT NULL is checked by the schema).
    pub fn fits(&self, ty: ColumnType) -> bool {
        self.column_type().is_none_or(|t| t == ty)
    }

    /// Parses the text form of a value of type `ty`. Never returns `Null`.
    ///
    /// ```
    /// use phantom_storage::{ColumnType, Value};
    /// assert_eq!(Value::parse(ColumnType::Int, "-42").unwrap(), Value::Int(-42));
    /// assert!(Value::parse(ColumnType::Date, "2023-02-29").is_err());
    /// ```
    pub fn parse(ty: ColumnType, text: &str) -> Result<Value> {
        let invalid = |reason: &'static str| Error::InvalidValue {
            ty,
            text: text.to_owned(),
            reason,
        };
        Ok(match ty {
            ColumnType::String => Value::String(text.into()),
            ColumnType::Int => {
                let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("expected an optional sign and digits"));
                }
                Value::Int(
                    text.parse::<i64>()
                        .map_err(|_| invalid("out of the i64 range"))?,
                )
            }
            ColumnType::Float => {
                let f = text.parse::<f64>().map_err(|_| {
                    invalid("expected a decimal or scientific number, NaN, inf or -inf")
                })?;
                Value::Float(if f.is_nan() { f64::NAN } else { f })
            }
            ColumnType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Value::Bool(true),
                "false" | "0" | "no" | "off" => Value::Bool(false),
                _ => return Err(invalid("expected true, false, 1, 0, yes, no, on or off")),
            },
            ColumnType::Date => {
                let d = NaiveDate::parse_from_str(text, DATE_FMT)
                    .map_err(|_| invalid("expected a real calendar date YYYY-MM-DD"))?;
                if d.format(DATE_FMT).to_string() != text {
                    return Err(invalid("expected exactly YYYY-MM-DD"));
                }
                Value::Date(d)
            }
            ColumnType::Time => {
                let t = NaiveTime::parse_from_str(text, TIME_FMT)
                    .map_err(|_| invalid("expected a real time of day HH:MM:SS"))?;
                if t.nanosecond() != 0 || t.format(TIME_FMT).to_string() != text {
                    return Err(invalid("expected exactly HH:MM:SS, 00:00:00 to 23:59:59"));
                }
                Value::Time(t)
            }
            ColumnType::Timestamp => {
                let ts = NaiveDateTime::parse_from_str(text, TIMESTAMP_FMT)
                    .map_err(|_| invalid("expected a real date and time YYYY-MM-DD HH:MM:SS"))?;
                if ts.nanosecond() != 0 || ts.format(TIMESTAMP_FMT).to_string() != text {
                    return Err(invalid("expected exactly YYYY-MM-DD HH:MM:SS"));
                }
                Value::Timestamp(ts)
            }
        })
    }

    /// The text form of a non-NULL value (`None` for NULL). `Value::parse(ty, &text)` gives the
    /// same value back.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_text(*f),
            Value::String(s) => s.as_str().to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => d.format(DATE_FMT).to_string(),
            Value::Time(t) => t.format(TIME_FMT).to_string(),
            Value::Timestamp(ts) => ts.format(TIMESTAMP_FMT).to_string(),
        })
    }

    /// A short description for error messages, e.g. `string 'abc'` or `NULL`.
    pub fn describe(&self) -> String {
        match (self.column_type(), self.to_text()) {
            (Some(ty), Some(text)) => format!("{ty} '{text}'"),
            _ => "NULL".to_owned(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) => 2,
            Value::Float(_) => 3,
            Value::String(_) => 4,
            Value::Date(_) => 5,
            Value::Time(_) => 6,
            Value::Timestamp(_) => 7,
        }
    }
}

/// Shortest text that parses back to the same float; `NaN`, `inf`, `-inf` for the specials.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        }
    } else {
        // `{:?}` is Rust's shortest round-trip representation, switching to exponent form for
        // very large and very small magnitudes (`1e300`, not 301 digits).
        format!("{f:?}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Some(text) => f.write_str(&text),
            None => f.write_str("NULL"),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => {
                if a.is_nan() && b.is_nan() {
                    Ordering::Equal
                } else {
                    a.total_cmp(b)
                }
            }
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::Time(a), Value::Time(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Value::Null => {}
            Value::Int(i) => i.hash(state),
            Value::Float(f) => if f.is_nan() {
                f64::NAN.to_bits()
            } else {
                f.to_bits()
            }
            .hash(state),
            Value::String(s) => s.hash(state),
            Value::Bool(b) => b.hash(state),
            Value::Date(d) => d.hash(state),
            Value::Time(t) => t.hash(state),
            Value::Timestamp(ts) => ts.hash(state),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.into())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v.into())
    }
}
impl From<CompactString> for Value {
    fn from(v: CompactString) -> Self {
        Value::String(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

// Compact serde representations for the binary formats (postcard): integers, not strings.

mod date_days {
    use chrono::{Datelike, NaiveDate};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(d.num_days_from_ce())
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let days = i32::deserialize(d)?;
        NaiveDate::from_num_days_from_ce_opt(days)
            .ok_or_else(|| D::Error::custom("date out of range"))
    }
}

mod time_secs {
    use chrono::{NaiveTime, Timelike};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(t.num_seconds_from_midnight())
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let secs = u32::deserialize(d)?;
        NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)
            .ok_or_else(|| D::Error::custom("time out of range"))
    }
}

mod timestamp_secs {
    use chrono::{DateTime, NaiveDateTime};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.and_utc().timestamp())
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let secs = i64::deserialize(d)?;
        DateTime::from_timestamp(secs, 0)
            .map(|dt| dt.naive_utc())
            .ok_or_else(|| D::Error::custom("timestamp out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(ColumnType::Int, "9223372036854775807")]
    #[case(ColumnType::Int, "-9223372036854775808")]
    #[case(ColumnType::Int, "+7")]
    #[case(ColumnType::Float, "1.5e300")]
    #[case(ColumnType::Float, "-0.0")]
    #[case(ColumnType::Float, "NaN")]
    #[case(ColumnType::Float, "-inf")]
    #[case(ColumnType::Bool, "Yes")]
    #[case(ColumnType::Date, "2024-02-29")]
    #[case(ColumnType::Time, "23:59:59")]
    #[case(ColumnType::Timestamp, "1999-12-31 23:59:59")]
    fn valid_text_parses_and_round_trips(#[case] ty: ColumnType, #[case] text: &str) {
        let v = Value::parse(ty, text).expect(text);
        let back = Value::parse(ty, &v.to_text().expect("not null")).expect("round trip");
        assert_eq!(v, back);
    }

    #[rstest]
    #[case(ColumnType::Int, "9223372036854775808")]
    #[case(ColumnType::Int, "12a")]
    #[case(ColumnType::Int, "")]
    #[case(ColumnType::Int, "1.0")]
    #[case(ColumnType::Float, "abc")]
    #[case(ColumnType::Bool, "maybe")]
    #[case(ColumnType::Date, "2023-02-29")]
    #[case(ColumnType::Date, "2023-2-1")]
    #[case(ColumnType::Time, "99:99:99")]
    #[case(ColumnType::Time, "24:00:00")]
    #[case(ColumnType::Time, "23:59:60")]
    #[case(ColumnType::Timestamp, "2023-01-01T00:00:00")]
    fn invalid_text_is_a_typed_error(#[case] ty: ColumnType, #[case] text: &str) {
        let err = Value::parse(ty, text).expect_err(text);
        assert!(
            matches!(err, Error::InvalidValue { ty: t, .. } if t == ty),
            "{err}"
        );
    }

    #[test]
    fn negative_zero_and_nan_keep_their_identity() {
        assert_ne!(Value::Float(0.0), Value::Float(-0.0));
        assert_eq!(Value::Float(f64::NAN), Value::Float(-f64::NAN));
        assert_eq!(Value::Float(-0.0).to_text().as_deref(), Some("-0.0"));
    }

    #[test]
    fn empty_string_is_not_null() {
        assert_ne!(Value::String(CompactString::default()), Value::Null);
        assert_eq!(
            Value::parse(ColumnType::String, "").ok(),
            Some(Value::String(CompactString::default()))
        );
    }
}
