//! The [`LogSink`] trait every log implementation offers the engine, its durability modes and
//! its counters.

use std::fmt;
use std::time::Duration;

use crate::entry::{LogEntry, Lsn, Record};
use crate::error::Result;

/// When appended records are forced to stable storage. See `docs/durability.md`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// `commit` returns only after the record is fsynced; concurrent committers share one
    /// fsync (group commit). Nothing acknowledged is lost on power failure.
    #[default]
    Always,
    /// `commit` hands the record to the OS; a background thread fsyncs every interval. A power
    /// failure loses at most about one interval of acknowledged commits; a process crash loses
    /// nothing.
    Interval(Duration),
    /// `commit` hands the record to the OS; the log is fsynced only on roll-over and close. The
    /// OS decides when data reaches the disk.
    Never,
}

/// Counters of a sink, for monitoring and for tests (`syncs < commits` shows group commit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended since the sink was opened.
    pub appended: u64,
    /// fsync/fdatasync calls made since the sink was opened.
    pub syncs: u64,
    /// Bytes appended since the sink was opened (record headers and payloads).
    pub bytes: u64,
    /// LSN of the last record appended (0 if none ever).
    pub last_lsn: Lsn,
    /// Every record with an LSN up to this one is durable (0 if none).
    pub durable_lsn: Lsn,
}

/// A destination for log records. Object safe; implementations are [`crate::Wal`] (the real,
/// segmented binary log) and those in [`crate::backends`].
///
/// # Contract
///
/// - **LSNs are assigned by [`append`](LogSink::append), in call order**: 1, 2, 3 … (or from the
///   sink's configured first LSN), strictly increasing, without gaps. Append also stamps the
///   record with the current time. It makes no durability promise.
/// - **After [`sync(lsn)`](LogSink::sync) returns `Ok`, every record with an LSN ≤ `lsn` is
///   durable** (survives a power failure). Concurrent callers may share one fsync.
/// - [`commit(lsn)`](LogSink::commit) is what a committer calls before acknowledging: in
///   [`SyncMode::Always`] it is `sync(lsn)`; in the other modes it only hands buffered records
///   to the OS and reports poisoning.
/// - **Poisoning**: after any failed write or sync, the sink is poisoned: every later `append`,
///   `sync` and `commit` returns [`Error::Poisoned`](crate::Error::Poisoned) until the sink is
///   reopened. A failed fsync is never retried (after a failure the kernel may have dropped the
///   dirty pages, and a retry can report success without writing them).
/// - [`read_from(lsn)`](LogSink::read_from) yields the records with LSN ≥ `lsn`, in order.
pub trait LogSink: Send + Sync + fmt::Debug {
    /// Assigns the next LSN and a timestamp to `entry` and writes it (to a buffer or the OS).
    /// No durability promise.
    fn append(&self, entry: &LogEntry) -> Result<Lsn>;

    /// Makes every record with an LSN ≤ `upto` durable. Concurrent callers share one fsync.
    fn sync(&self, upto: Lsn) -> Result<()>;

    /// What a committer calls before acknowledging the commit of `lsn`: `sync(lsn)` in
    /// [`SyncMode::Always`]; otherwise check poisoning and return.
    fn commit(&self, lsn: Lsn) -> Result<()>;

    /// LSN of the last record appended (0 if none).
    fn last_lsn(&self) -> Lsn;

    /// Every record with an LSN up to this one is durable.
    fn durable_lsn(&self) -> Lsn;

    /// Counters.
    fn stats(&self) -> LogStats;

    /// The records with LSN ≥ `from`, in LSN order.
    fn read_from(&self, from: Lsn) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send + '_>>;

    /// Drops whole segments whose records all have LSN < `lsn` and returns the bytes freed; a
    /// log that holds no record at or above `lsn` may be left as one empty segment starting at
    /// its next LSN (the segmented WAL rolls over first, when its active segment is large
    /// enough to be worth it, so the old segment can go). The default does nothing and frees
    /// 0 bytes.
    fn remove_before(&self, lsn: Lsn) -> Result<u64> {
        let _ = lsn;
        Ok(0)
    }
}
