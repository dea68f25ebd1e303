//! Column types: the original's type names and aliases (case-insensitive in), canonical names out.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The type of a column.
///
/// | canonical | aliases accepted on input (any case) |
/// |---|---|
/// | `int` | integer, bigint, smallint, tinyint |
/// | `float` | double, real, decimal, numeric |
/// | `string` | text, varchar, char, nvarchar |
/// | `bool` | boolean |
/// | `date` | |
/// | `time` | |
/// | `timestamp` | datetime |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ColumnType {
    /// 64-bit signed integer.
    Int,
    /// 64-bit IEEE float.
    Float,
    /// UTF-8 text.
    String,
    /// Boolean.
    Bool,
    /// Calendar date `YYYY-MM-DD`.
    Date,
    /// Time of day `HH:MM:SS`.
    Time,
    /// Date and time `YYYY-MM-DD HH:MM:SS` (UTC, no zone).
    Timestamp,
}

impl ColumnType {
    /// All types, in canonical order.
    pub const ALL: [ColumnType; 7] = [
        ColumnType::Int,
        ColumnType::Float,
        ColumnType::String,
        ColumnType::Bool,
        ColumnType::Date,
        ColumnType::Time,
        ColumnType::Timestamp,
    ];

    /// The canonical (output) name.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::String => "string",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Time => "time",
            ColumnType::Timestamp => "timestamp",
        }
    }

    /// Parses a type name or alias, case-insensitively.
    pub fn parse(name: &str) -> Result<ColumnType, Error> {
        let lower = name.trim().to_ascii_lowercase();
        let ty = match lower.as_str() {
            "int" | "integer" | "bigint" | "smallint" | "tinyint" => ColumnType::Int,
            "float" | "double" | "real" | "decimal" | "numeric" => ColumnType::Float,
            "string" | "text" | "varchar" | "char" | "nvarchar" => ColumnType::String,
            "bool" | "boolean" => ColumnType::Bool,
            "date" => ColumnType::Date,
            "time" => ColumnType::Time,
            "timestamp" | "datetime" => ColumnType::Timestamp,
            _ => {
                return Err(Error::UnknownType {
                    name: name.to_owned(),
                });
            }
        };
        Ok(ty)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColumnType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ColumnType::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_canonical_names_in_any_case() {
        let cases = [
            ("INTEGER", "int"),
            ("BigInt", "int"),
            ("tinyint", "int"),
            ("Double", "float"),
            ("NUMERIC", "float"),
            ("VarChar", "string"),
            ("nvarchar", "string"),
            ("TEXT", "string"),
            ("Boolean", "bool"),
            ("DATE", "date"),
            ("Time", "time"),
            ("DateTime", "timestamp"),
        ];
        for (input, canonical) in cases {
            assert_eq!(
                ColumnType::parse(input).map(ColumnType::name).ok(),
                Some(canonical),
                "{input}"
            );
        }
    }

    #[test]
    fn canonical_names_round_trip() {
        for ty in ColumnType::ALL {
            assert_eq!(ColumnType::parse(ty.name()).ok(), Some(ty));
        }
    }

    #[test]
    fn unknown_type_is_a_typed_error() {
        assert!(
            matches!(ColumnType::parse("blob"), Err(Error::UnknownType { name }) if name == "blob")
        );
    }
}
