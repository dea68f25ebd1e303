//! What the log holds: [`LogEntry`] (what a caller appends) and [`Record`] (an entry with the
//! LSN and timestamp the sink gave it), plus the record's human-readable text form.

use chrono::{DateTime, Utc};
use phantom_storage::Mutation;
use serde::{Deserialize, Serialize};

use crate::audit::AuditLine;
use crate::error::{Error, Result};

/// A log sequence number: 1, 2, 3 … strictly increasing with no gaps; 0 means "nothing".
pub type Lsn = u64;

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LogEntry {
    /// One atomic commit: replay applies all of these mutations or none.
    Batch(Vec<Mutation>),
    /// A custom entry (`append_transaction_log`): an operation name and its fields, in order.
    Custom {
        /// Operation name, e.g. `MAINTENANCE`.
        operation: String,
        /// Key/value pairs, in the caller's order (keys may repeat).
        fields: Vec<(String, String)>,
    },
    /// The database was created.
    CreateDatabase,
    /// The database was dropped.
    DropDatabase,
}

/// The kind byte of a record header; it selects how the payload is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EntryKind {
    Batch = 1,
    Custom = 2,
    CreateDatabase = 3,
    DropDatabase = 4,
}

impl TryFrom<u8> for EntryKind {
    type Error = u8;
    fn try_from(b: u8) -> std::result::Result<EntryKind, u8> {
        Ok(match b {
            1 => EntryKind::Batch,
            2 => EntryKind::Custom,
            3 => EntryKind::CreateDatabase,
            4 => EntryKind::DropDatabase,
            other => return Err(other),
        })
    }
}

impl LogEntry {
    /// The kind byte of this entry, and its postcard payload (see `docs/formats/wal.md`)
    /// appended to `buf`, which is returned.
    pub(crate) fn encode_into(&self, buf: Vec<u8>) -> Result<(EntryKind, Vec<u8>)> {
        Ok(match self {
            LogEntry::Batch(m) => (
                EntryKind::Batch,
                postcard::to_extend(m, buf).map_err(Error::Encode)?,
            ),
            LogEntry::Custom { operation, fields } => (
                EntryKind::Custom,
                postcard::to_extend(&(operation, fields), buf).map_err(Error::Encode)?,
            ),
            LogEntry::CreateDatabase => (EntryKind::CreateDatabase, buf),
            LogEntry::DropDatabase => (EntryKind::DropDatabase, buf),
        })
    }

    /// Decodes a payload of the given kind.
    pub(crate) fn decode(
        kind: EntryKind,
        payload: &[u8],
    ) -> std::result::Result<LogEntry, postcard::Error> {
        Ok(match kind {
            // Postcard's format, decoded by hand (`phantom_storage::decode_mutations`).
            EntryKind::Batch => LogEntry::Batch(phantom_storage::decode_mutations(payload)?),
            EntryKind::Custom => {
                let (operation, fields): (String, Vec<(String, String)>) =
                    postcard::from_bytes(payload)?;
                LogEntry::Custom { operation, fields }
            }
            EntryKind::CreateDatabase => LogEntry::CreateDatabase,
            EntryKind::DropDatabase => LogEntry::DropDatabase,
        })
    }
}

/// An entry as stored: with its LSN and the time it was appended (microsecond precision).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Its log sequence number.
    pub lsn: Lsn,
    /// When it was appended, UTC, truncated to microseconds.
    pub timestamp: DateTime<Utc>,
    /// The entry.
    pub entry: LogEntry,
}

/// The current time truncated to microseconds (what a record can hold).
pub(crate) fn now_micros() -> (i64, DateTime<Utc>) {
    let micros = Utc::now().timestamp_micros();
    let ts = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    (micros, ts)
}

/// The spec's text form of a record, one line per mutation (an INSERT or UPDATE of several rows
/// gives one line per row), lines joined with `\n`, nothing before the `[`:
/// `[2023-12-01 12:00:00 UTC] INSERT {table: users, row_id: 1, col0: 1, col1: John}`.
///
/// Keys and values are escaped as in [`crate::parse_audit_line`], so every line parses back.
pub fn format_record_text(record: &Record) -> String {
    record_text_lines(record).join("\n")
}

/// The lines of [`format_record_text`], for callers that prefix each line (e.g. with the LSN).
pub fn record_text_lines(record: &Record) -> Vec<String> {
    AuditLine::from_record(record)
        .iter()
        .map(AuditLine::to_string)
        .collect()
}
