//! The cells of a `ROW:` line: RFC 4180 quoting on the way out, field splitting on the way in.
//!
//! Rules (both directions):
//! - fields are separated by `,`; a record ends at a line feed outside quotes;
//! - a field that is empty, or holds `,` `"` CR or LF, is written in double quotes with every
//!   `"` doubled; every other field is written as is (no trimming: spaces are data);
//! - an unquoted empty field is NULL; `""` is the empty string;
//! - inside quotes every byte is data, line breaks included;
//! - a `"` inside an unquoted field, or anything but `,` or the end after a closing quote, is
//!   malformed.
//!
//! The `csv` crate cannot be used for this: its reader does not report whether a field was
//! quoted (so `""` and NULL would read the same), and its writer quotes a record made of one
//! empty field (so a NULL in a one-column table would be written as `""`). The tests check
//! this module against the `csv` crate for every non-NULL value instead.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::{Column, ColumnType, Error, Value};

const DATE_FMT: &str = "%Y-%m-%d";
const TIME_FMT: &str = "%H:%M:%S";
const TIMESTAMP_FMT: &str = "%Y-%m-%d %H:%M:%S";

/// Appends the CSV field for `value`: its text form (`Value::to_text`), quoted when needed;
/// nothing for NULL.
pub(super) fn write_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => {}
        Value::Int(i) => write_int(buf, *i),
        Value::Float(f) => write_float(buf, *f),
        Value::String(s) => write_text(buf, s),
        Value::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Date(d) => write_date(buf, d),
        Value::Time(t) => write_time(buf, t),
        Value::Timestamp(ts) => write_timestamp(buf, ts),
    }
}

/// Appends a text field, quoted when it is empty or holds `,` `"` CR or LF.
pub(super) fn write_text(buf: &mut Vec<u8>, s: &str) {
    if !s.is_empty() && !s.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        buf.extend_from_slice(s.as_bytes());
        return;
    }
    buf.push(b'"');
    let mut parts = s.split('"');
    if let Some(first) = parts.next() {
        buf.extend_from_slice(first.as_bytes());
    }
    for part in parts {
        buf.extend_from_slice(b"\"\"");
        buf.extend_from_slice(part.as_bytes());
    }
    buf.push(b'"');
}

/// Appends the decimal digits of `i` (no allocation, no formatting machinery).
pub(super) fn write_int(buf: &mut Vec<u8>, i: i64) {
    if i < 0 {
        buf.push(b'-');
    }
    write_u64(buf, i.unsigned_abs());
}

/// Appends the decimal digits of `n`.
pub(super) fn write_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            // `n % 10` is below 10, so the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    if let Some(d) = digits.get(start..) {
        buf.extend_from_slice(d);
    }
}

/// Appends a float exactly as `Value::to_text` renders it.
fn write_float(buf: &mut Vec<u8>, f: f64) {
    use std::io::Write as _;
    if f.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        buf.extend_from_slice(if f > 0.0 { b"inf" } else { b"-inf" });
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "{f:?}");
    }
}

fn write_date(buf: &mut Vec<u8>, d: &NaiveDate) {
    use std::io::Write as _;
    let _ = write!(buf, "{}", d.format(DATE_FMT));
}

fn write_time(buf: &mut Vec<u8>, t: &NaiveTime) {
    use std::io::Write as _;
    let _ = write!(buf, "{}", t.format(TIME_FMT));
}

fn write_timestamp(buf: &mut Vec<u8>, ts: &NaiveDateTime) {
    use std::io::Write as _;
    let _ = write!(buf, "{}", ts.format(TIMESTAMP_FMT));
}

/// Tracks whether the bytes of a record seen so far end inside a quoted field, so the reader
/// knows whether a line feed ends the record or belongs to a value.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct QuoteScan {
    state: ScanState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ScanState {
    /// At the start of a field.
    #[default]
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a `"` inside a quoted field: a closing quote, or the first of a pair.
    QuoteInQuoted,
}

impl QuoteScan {
    /// Advances over `bytes`.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        let mut state = self.state;
        for &b in bytes {
            state = match (state, b) {
                (ScanState::FieldStart, b'"') => ScanState::Quoted,
                (ScanState::FieldStart | ScanState::Unquoted, b',') => ScanState::FieldStart,
                (ScanState::FieldStart | ScanState::Unquoted, _) => ScanState::Unquoted,
                (ScanState::Quoted, b'"') => ScanState::QuoteInQuoted,
                (ScanState::Quoted, _) => ScanState::Quoted,
                (ScanState::QuoteInQuoted, b'"') => ScanState::Quoted,
                (ScanState::QuoteInQuoted, b',') => ScanState::FieldStart,
                // Malformed (text after a closing quote); `parse_row` reports it.
                (ScanState::QuoteInQuoted, _) => ScanState::Unquoted,
            };
        }
        self.state = state;
    }

    /// `true` when the bytes so far end inside a quoted field.
    pub(super) fn in_quotes(&self) -> bool {
        self.state == ScanState::Quoted
    }
}

/// Why a record could not be turned into a row.
#[derive(Debug)]
pub(super) enum RowError {
    /// Bad quoting.
    Syntax(&'static str),
    /// Not one field per column: the number of fields found.
    Arity(usize),
    /// A field is not a value of its column's type.
    Value(Error),
}

/// Splits `record` (the text after `ROW:`, line end removed) into one value per column,
/// appended to `values`. `scratch` is reused for unescaping quoted fields.
pub(super) fn parse_row(
    record: &str,
    columns: &[Column],
    scratch: &mut String,
    values: &mut Vec<Value>,
) -> Result<(), RowError> {
    let mut rest = record;
    let mut count = 0usize;
    loop {
        let (field, quoted, after) = if let Some(inner) = rest.strip_prefix('"') {
            scratch.clear();
            let mut tail = inner;
            let after = loop {
                let Some(q) = tail.find('"') else {
                    return Err(RowError::Syntax("a quoted field has no closing quote"));
                };
                let (segment, from_quote) = tail.split_at(q);
                scratch.push_str(segment);
                let past_quote = from_quote.get(1..).unwrap_or("");
                if let Some(next) = past_quote.strip_prefix('"') {
                    scratch.push('"');
                    tail = next;
                } else {
                    break past_quote;
                }
            };
            (scratch.as_str(), true, after)
        } else {
            let end = rest
                .bytes()
                .position(|b| b == b',' || b == b'"')
                .unwrap_or(rest.len());
            let (field, after) = rest.split_at(end);
            if after.starts_with('"') {
                return Err(RowError::Syntax(
                    "a double quote inside an unquoted field (quote the field and double the quote)",
                ));
            }
            (field, false, after)
        };
        if let Some(column) = columns.get(count) {
            values.push(to_value(column.ty, field, quoted).map_err(RowError::Value)?);
        }
        count += 1;
        if after.is_empty() {
            break;
        }
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None => {
                return Err(RowError::Syntax(
                    "a closing quote must be followed by a comma or the end of the row",
                ));
            }
        }
    }
    if count == columns.len() {
        Ok(())
    } else {
        Err(RowError::Arity(count))
    }
}

/// The value of one field of a column of type `ty`.
fn to_value(ty: ColumnType, text: &str, quoted: bool) -> Result<Value, Error> {
    if text.is_empty() && !quoted {
        return Ok(Value::Null);
    }
    match (ty, text) {
        (ColumnType::String, _) => Ok(Value::String(text.into())),
        (ColumnType::Bool, "true") => Ok(Value::Bool(true)),
        (ColumnType::Bool, "false") => Ok(Value::Bool(false)),
        _ => Value::parse(ty, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str) -> String {
        let mut buf = Vec::new();
        write_text(&mut buf, text);
        String::from_utf8(buf).expect("utf-8")
    }

    fn cols(n: usize) -> Vec<Column> {
        (0..n)
            .map(|i| Column::new(format!("c{i}"), ColumnType::String))
            .collect()
    }

    fn parse(record: &str, n: usize) -> Result<Vec<Value>, RowError> {
        let mut values = Vec::new();
        parse_row(record, &cols(n), &mut String::new(), &mut values).map(|()| values)
    }

    #[test]
    fn quoting_is_minimal_and_rfc_4180() {
        assert_eq!(field("plain text"), "plain text");
        assert_eq!(field(" spaces "), " spaces ");
        assert_eq!(field(""), "\"\"");
        assert_eq!(field("Doe, John"), "\"Doe, John\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("a\nb"), "\"a\nb\"");
        assert_eq!(field("a\rb"), "\"a\rb\"");
        assert_eq!(field("\""), "\"\"\"\"");
    }

    #[test]
    fn null_is_an_unquoted_empty_field_and_empty_string_is_quoted() {
        let values = parse(",\"\",", 3).expect("row");
        assert_eq!(
            values,
            vec![Value::Null, Value::String("".into()), Value::Null]
        );
        assert_eq!(parse("", 1).expect("row"), vec![Value::Null]);
    }

    #[test]
    fn quoted_fields_unescape_doubled_quotes() {
        let values = parse("\"a,b\",\"x\"\"y\",\"l1\nl2\"", 3).expect("row");
        assert_eq!(
            values,
            vec!["a,b".into(), "x\"y".into(), Value::from("l1\nl2")]
        );
    }

    #[test]
    fn arity_and_syntax_errors_are_reported() {
        assert!(matches!(parse("a,b,c", 2), Err(RowError::Arity(3))));
        assert!(matches!(parse("a", 2), Err(RowError::Arity(1))));
        assert!(matches!(parse("a\"b", 1), Err(RowError::Syntax(_))));
        assert!(matches!(parse("\"a\"b", 1), Err(RowError::Syntax(_))));
        assert!(matches!(parse("\"abc", 1), Err(RowError::Syntax(_))));
    }

    #[test]
    fn the_scanner_knows_when_a_line_feed_is_data() {
        let mut scan = QuoteScan::default();
        scan.feed(b"1,\"first line");
        assert!(scan.in_quotes());
        scan.feed(b"second \"\" line\",3");
        assert!(!scan.in_quotes());
        let mut scan = QuoteScan::default();
        scan.feed(b"a\"b,\"\"");
        assert!(!scan.in_quotes());
    }

    #[test]
    fn integers_are_written_like_to_string() {
        for i in [0, 1, -1, 9, 10, -10, 1234567890, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            write_int(&mut buf, i);
            assert_eq!(String::from_utf8(buf).expect("utf-8"), i.to_string());
        }
    }

    #[test]
    fn every_type_is_written_exactly_as_to_text() {
        let values = [
            Value::Int(-5),
            Value::Float(1.5e300),
            Value::Float(-0.0),
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NEG_INFINITY),
            Value::Float(0.1),
            Value::Bool(true),
            Value::Bool(false),
            Value::parse(ColumnType::Date, "2024-02-29").expect("date"),
            Value::parse(ColumnType::Time, "23:59:59").expect("time"),
            Value::parse(ColumnType::Timestamp, "1999-12-31 23:59:59").expect("ts"),
            Value::from("plain"),
        ];
        for v in values {
            let mut buf = Vec::new();
            write_value(&mut buf, &v);
            assert_eq!(String::from_utf8(buf).ok(), v.to_text(), "{}", v.describe());
        }
    }

    #[test]
    fn agrees_with_the_csv_crate_on_non_null_values() {
        let texts = [
            "", "a", " a ", "a,b", "\"", "a\"b", "\n", "\r\n", "x\ry", "é,ü", "#", "ROW:",
        ];
        let mut line = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            write_text(&mut line, t);
        }
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_slice());
        let record = reader
            .records()
            .next()
            .expect("one record")
            .expect("valid csv");
        let theirs: Vec<&str> = record.iter().collect();
        assert_eq!(theirs, texts);

        let ours = parse(std::str::from_utf8(&line).expect("utf-8"), texts.len()).expect("row");
        let expected: Vec<Value> = texts.iter().map(|t| Value::from(*t)).collect();
        assert_eq!(ours, expected);
    }
}
