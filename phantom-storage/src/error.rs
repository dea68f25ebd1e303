//! The one error type of `phantom-storage`: every way a name, a value, a row or a file can be
//! wrong, with enough structure (line, byte offset, column, table) for a user to act on it.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::RowId;
use crate::types::ColumnType;

/// Where in a file something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line number (text formats).
    Line(u64),
    /// A 0-based byte offset (binary formats).
    Offset(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Offset(n) => write!(f, "byte offset {n}"),
        }
    }
}

/// Errors of the data model, of name validation and of the image formats.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- names -----
    /// A database, table or column name does not match `[A-Za-z_][A-Za-z0-9_]{0,63}`.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name, as given.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    // ----- types and values -----
    /// A column type name that is not one of the known types or aliases.
    #[error(
        "unknown column type {name:?} (known: int, float, string, bool, date, time, timestamp and their aliases)"
    )]
    UnknownType {
        /// The type name as given.
        name: String,
    },
    /// A text could not be parsed as a value of the column's type.
    #[error("invalid {ty} value {text:?}: {reason}")]
    InvalidValue {
        /// The type the text was parsed as.
        ty: ColumnType,
        /// The text as given.
        text: String,
        /// Why it is not a value of that type.
        reason: &'static str,
    },
    /// A typed value does not belong in a column of another type.
    #[error("column {table}.{column} has type {expected}, got {found}")]
    TypeMismatch {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
        /// The column's type.
        expected: ColumnType,
        /// A short description of the offered value (e.g. `string 'abc'`).
        found: String,
    },
    /// NULL offered for a NOT NULL (or PRIMARY KEY) column.
    #[error("column {table}.{column} is NOT NULL")]
    NullViolation {
        /// Table name.
        table: String,
        /// Column name.
        column: String,
    },
    /// A second row with the same primary key.
    #[error("duplicate primary key {value} in {table}.{column}")]
    DuplicateKey {
        /// Table name.
        table: String,
        /// Primary key column name.
        column: String,
        /// The duplicated key, rendered as text.
        value: String,
    },
    /// A row has a different number of values than its table has columns.
    #[error("table {table} has {expected} columns, row has {found} values")]
    Arity {
        /// Table name.
        table: String,
        /// Number of columns.
        expected: usize,
        /// Number of values offered.
        found: usize,
    },

    // ----- schema and catalog -----
    /// No table of that name.
    #[error("unknown table {name:?}")]
    UnknownTable {
        /// The name asked for.
        name: String,
    },
    /// A table of that name already exists.
    #[error("table {name:?} already exists")]
    TableExists {
        /// The name asked for.
        name: String,
    },
    /// No column of that name in the table.
    #[error("unknown column {column:?} in table {table:?}")]
    UnknownColumn {
        /// Table name.
        table: String,
        /// Column name asked for.
        column: String,
    },
    /// A schema is not acceptable (no columns, duplicate column, two primary keys, …).
    #[error("invalid schema for table {table:?}: {reason}")]
    InvalidSchema {
        /// Table name.
        table: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A row id that is not in the table.
    #[error("row {row_id} not found in table {table:?}")]
    RowNotFound {
        /// Table name.
        table: String,
        /// The missing row id.
        row_id: RowId,
    },
    /// A row id that is already used in the table.
    #[error("row id {row_id} already used in table {table:?}")]
    RowIdInUse {
        /// Table name.
        table: String,
        /// The row id.
        row_id: RowId,
    },

    // ----- files -----
    /// An I/O error from the file system.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An error while reading or writing a particular file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What went wrong in it.
        #[source]
        source: Box<Error>,
    },
    /// The file does not start with the magic bytes of the expected format.
    #[error("not a {format} file: bad magic at byte offset 0")]
    BadMagic {
        /// The format that was expected.
        format: &'static str,
    },
    /// The file declares a format version this build cannot read.
    #[error("unsupported {format} format version {found}")]
    UnsupportedVersion {
        /// The format.
        format: &'static str,
        /// The version found in the file.
        found: u32,
    },
    /// A checksum does not match the bytes it covers.
    #[error("checksum mismatch at {location}: expected {expected:#010x}, computed {found:#010x}")]
    ChecksumMismatch {
        /// Where the checksum (or the block it covers) is.
        location: Location,
        /// The checksum stored in the file.
        expected: u32,
        /// The checksum computed over the bytes read.
        found: u32,
    },
    /// A file that declares a checksum (format version ≥ 1) ends without its checksum line.
    #[error(
        "missing checksum line: the file declares format version {version} but ends at line {line} without `# Checksum:`"
    )]
    MissingChecksum {
        /// The last line read.
        line: u64,
        /// The declared format version.
        version: u32,
    },
    /// The file ends before its structure is complete.
    #[error("truncated file at {location}: {reason}")]
    Truncated {
        /// Where the data ended.
        location: Location,
        /// What was expected there.
        reason: String,
    },
    /// The file's structure is malformed at a place (bad line, bad block, wrong cell count).
    #[error("malformed file at {location}: {reason}")]
    Malformed {
        /// Where.
        location: Location,
        /// What is wrong.
        reason: String,
    },
    /// A value or row read from a file is invalid for its table.
    #[error("at {location}: {source}")]
    BadRow {
        /// Where the row is.
        location: Location,
        /// Why it is invalid.
        #[source]
        source: Box<Error>,
    },
    /// A table or column definition read from a file is invalid: a bad table, column or
    /// database name, an unknown type name, an invalid schema or a duplicate table.
    #[error("at {location}: {source}")]
    BadDefinition {
        /// Where the definition is.
        location: Location,
        /// Why it is invalid (`InvalidName`, `UnknownType`, `InvalidSchema`, `TableExists`, …).
        #[source]
        source: Box<Error>,
    },
    /// A row whose encoding is larger than a format can hold in one unit (the binary format's
    /// block limit); the image cannot be written.
    #[error(
        "row {row_id} of table {table:?} encodes to {size} bytes, over the {format} format's limit of {max} bytes"
    )]
    RowTooLarge {
        /// The format.
        format: &'static str,
        /// Table name.
        table: String,
        /// The row's id.
        row_id: RowId,
        /// Size of the row's encoding in bytes.
        size: u64,
        /// The format's limit in bytes.
        max: u64,
    },
}

impl Error {
    /// Wraps this error with the file it happened in.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Error {
        Error::InFile {
            path: path.into(),
            source: Box::new(self),
        }
    }

    /// Wraps this error with the place in a file where the offending row is.
    pub fn at(self, location: Location) -> Error {
        Error::BadRow {
            location,
            source: Box::new(self),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
