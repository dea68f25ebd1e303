//! `phantom-wal`: the [`LogSink`] trait and [`Wal`], a checksummed, segmented binary
//! write-ahead log with group commit.
//!
//! - [`LogSink`] is what the engine writes through: `append` assigns LSNs in call order,
//!   `sync(lsn)` makes everything up to `lsn` durable, `commit` is what a committer calls before
//!   acknowledging, and a failed write or sync poisons the sink until it is reopened.
//! - [`Wal`] stores records in segments `<name>.log`, `<name>.log.000002`, … each record with a
//!   CRC-32C and the segment's salt (`docs/formats/wal.md`); concurrent committers share fsyncs
//!   (`docs/durability.md`); on open it cuts a torn tail and reports corruption with file and
//!   byte offset. [`WalReader`] reads a log without modifying it.
//! - [`backends`] holds the other implementations: [`MemorySink`], [`NullSink`] and
//!   [`TextAuditSink`] (the spec's `[time] OPERATION {key: value}` lines, parsed back by
//!   [`parse_audit_line`]).
//!
//! ```
//! use std::sync::Arc;
//! use phantom_storage::StdFs;
//! use phantom_wal::{LogEntry, LogSink, Wal, WalOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let (wal, report) = Wal::open(Arc::new(StdFs), dir.path(), "demo", WalOptions::default())?;
//! assert_eq!(report.last_lsn, 0);
//! let lsn = wal.append(&LogEntry::CreateDatabase)?;
//! wal.commit(lsn)?; // durable once this returns (SyncMode::Always)
//! drop(wal);
//!
//! let (wal, report) = Wal::open(Arc::new(StdFs), dir.path(), "demo", WalOptions::default())?;
//! assert_eq!(report.records, 1);
//! let records: Vec<_> = wal.read_from(1)?.collect::<Result<_, _>>()?;
//! assert_eq!(records[0].entry, LogEntry::CreateDatabase);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audit;
mod entry;
mod error;
mod layout;
mod reader;
mod sink;
mod wal;

pub mod backends;

pub use audit::{AuditLine, parse_audit_line};
pub use backends::{MemorySink, NullSink, TextAuditSink};
pub use entry::{LogEntry, Lsn, Record, format_record_text, record_text_lines};
pub use error::{Error, Result};
pub use layout::{
    FormatVersion, MAGIC, MAX_PAYLOAD_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
    ZERO_CHECK_WINDOW, segment_file_for_error, segment_file_name, segment_files,
};
pub use reader::{ReadStatus, TornTail, WalReader};
pub use sink::{LogSink, LogStats, SyncMode};
pub use wal::{DEFAULT_SEGMENT_SIZE, MIN_SEGMENT_SIZE, OpenReport, SegmentInfo, Wal, WalOptions};
