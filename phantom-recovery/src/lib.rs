//! `phantom-recovery`: rebuilds a database's state after a restart or a crash by composing
//! snapshot loading with write-ahead-log replay.
//!
//! The algorithm (see `docs/recovery.md`):
//! 1. candidates are the main file `<db>.db` and every snapshot `<db>_snapshot_…`; they are
//!    tried newest LSN first, and the first that reads back with a valid checksum wins. A
//!    candidate that fails verification is reported and moved aside as `<file>.broken`
//!    (never deleted), and the next older one is tried;
//! 2. the log is replayed from the winner's LSN + 1, streaming record by record; records at or
//!    below the image's LSN are skipped, and a gap in LSNs is an error naming the missing range
//!    (a state with a hole is never served).
//!
//! ```no_run
//! # fn demo(fs: std::sync::Arc<dyn phantom_storage::FileSystem>, store: &phantom_snapshot::SnapshotStore, log: &dyn phantom_wal::LogSink) -> Result<(), phantom_recovery::Error> {
//! use std::path::Path;
//! let image = phantom_recovery::load_newest_image(&*fs, Path::new("data"), "app", store, &[])?;
//! let mut catalog = image.catalog.clone();
//! let replay = phantom_recovery::replay(&mut catalog, image.lsn, log.read_from(image.lsn + 1)?)?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use phantom_storage::Catalog;
use phantom_wal::Lsn;

mod image;
mod modes;
mod pitr;
mod replay;
mod verify;

pub use image::{load_newest_image, read_image, read_image_meta};
pub use modes::{Prepared, RecoveryMode, Salvaged, prepare_wal};
pub use pitr::{Restored, Target, restore};
pub use replay::{replay, replay_pipelined};
pub use verify::{Problem, VerifyReport, verify};

/// Errors of recovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image-format or file-system error.
    #[error(transparent)]
    Storage(#[from] phantom_storage::Error),
    /// A log error (corruption, I/O).
    #[error(transparent)]
    Wal(#[from] phantom_wal::Error),
    /// A snapshot-store error.
    #[error(transparent)]
    Snapshot(#[from] phantom_snapshot::Error),
    /// The log does not continue where the recovery point ends: records are missing.
    #[error("log gap in {}: records {expected}..{} are missing (the recovery point ends at LSN {image_lsn}); `phantom recover --mode salvage` keeps what comes before the gap", if log.as_os_str().is_empty() { "the log".to_owned() } else { log.display().to_string() }, found - 1)]
    LogGap {
        /// The log's first segment (empty when the caller did not say).
        log: PathBuf,
        /// The LSN of the recovery point.
        image_lsn: Lsn,
        /// The first LSN that was needed.
        expected: Lsn,
        /// The LSN found instead.
        found: Lsn,
    },
    /// Strict mode refuses a torn log tail.
    #[error("strict recovery: log segment {} ends in a torn tail at byte offset {offset} ({bytes} bytes); recover with mode tolerate to cut it", file.display())]
    TornTailRefused {
        /// The segment.
        file: PathBuf,
        /// Where valid data ends.
        offset: u64,
        /// Bytes after it.
        bytes: u64,
    },
    /// The log ends before the recovery point: it lost records it once made durable (images
    /// are written only after the log is durable up to their LSN), and any commit after the
    /// image may be lost with them.
    #[error("log {} ends at LSN {log_lsn}, before the recovery point {} (LSN {image_lsn}): log records were lost; recover with mode salvage to continue from the recovery point", log.display(), image.display())]
    LogBehindImage {
        /// The log's first segment.
        log: PathBuf,
        /// The last LSN the log holds.
        log_lsn: Lsn,
        /// The recovery point.
        image: PathBuf,
        /// Its LSN.
        image_lsn: Lsn,
    },
    /// Point-in-time recovery could not reach the target LSN: the log ends before it.
    #[error("cannot recover to LSN {target}: the log ends at LSN {last}")]
    TargetNotReached {
        /// The LSN asked for.
        target: Lsn,
        /// The last LSN available.
        last: Lsn,
    },
    /// A log record does not apply to the state rebuilt so far.
    #[error("log record {lsn} does not apply: {source}")]
    BadRecord {
        /// The record's LSN.
        lsn: Lsn,
        /// Why.
        #[source]
        source: phantom_storage::Error,
    },
}

impl Error {
    /// Names the log in a [`Error::LogGap`] that does not name one yet (replay reads records,
    /// not files, so its caller adds the path).
    pub fn with_log(self, log: impl Into<PathBuf>) -> Error {
        match self {
            Error::LogGap {
                log: old,
                image_lsn,
                expected,
                found,
            } if old.as_os_str().is_empty() => Error::LogGap {
                log: log.into(),
                image_lsn,
                expected,
                found,
            },
            other => other,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A recovery point that was tried and rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Why it was rejected.
    pub reason: String,
    /// Where it was moved aside to (`<file>.broken`), if it was.
    pub moved_to: Option<PathBuf>,
}

/// The recovery point chosen.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    /// The file loaded (`None`: no image existed, recovery starts from an empty catalog).
    pub source: Option<PathBuf>,
    /// The catalog the image holds.
    pub catalog: Catalog,
    /// The LSN it covers (0 without an image).
    pub lsn: Lsn,
    /// Candidates rejected on the way, newest first.
    pub rejected: Vec<Rejected>,
}

/// What replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Records applied.
    pub records: u64,
    /// Records skipped because the image already held them.
    pub skipped: u64,
    /// The last LSN applied or skipped (the image's LSN when none).
    pub last_lsn: Lsn,
    /// The log ends with a `DropDatabase` record: the database was being dropped.
    pub dropped: bool,
}

/// What a whole recovery did; logged with `tracing` and returned to the caller.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Database name.
    pub database: String,
    /// The recovery point used.
    pub recovery_point: Option<PathBuf>,
    /// Its LSN.
    pub recovery_lsn: Lsn,
    /// Candidates rejected, newest first.
    pub rejected: Vec<Rejected>,
    /// Replay figures.
    pub replay: ReplayStats,
    /// The final LSN of the recovered state.
    pub final_lsn: Lsn,
    /// Bytes cut from a torn log tail.
    pub torn_bytes_cut: u64,
    /// The mode recovery ran in.
    pub mode: RecoveryMode,
    /// What salvage dropped, when it ran and found something to drop.
    pub salvaged: Option<Salvaged>,
    /// Anything else irregular recovery found and worked around (each says what and where).
    pub warnings: Vec<String>,
    /// How long recovery took.
    pub duration: Duration,
}
