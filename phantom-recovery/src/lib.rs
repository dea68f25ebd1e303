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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use phantom_snapshot::SnapshotStore;
use std::sync::Arc;

use phantom_storage::{Catalog, FileSystem, ImageMeta, StorageFormat, backends};
use phantom_wal::{LogEntry, Lsn, Record};

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
    #[error("log gap: records {expected}..{} are missing (the recovery point ends at LSN {image_lsn})", found - 1)]
    LogGap {
        /// The LSN of the recovery point.
        image_lsn: Lsn,
        /// The first LSN that was needed.
        expected: Lsn,
        /// The LSN found instead.
        found: Lsn,
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
    /// How long recovery took.
    pub duration: Duration,
}

fn main_file(dir: &Path, db: &str) -> PathBuf {
    dir.join(format!("{db}.db"))
}

/// Reads a whole image file, detecting its format from its first bytes: `extra` formats are
/// tried first, then the shipped ones (CSV, binary).
pub fn read_image(
    fs: &dyn FileSystem,
    path: &Path,
    extra: &[Arc<dyn StorageFormat>],
) -> phantom_storage::Result<(ImageMeta, Catalog)> {
    let inner = || -> phantom_storage::Result<_> {
        let (format, mut input) = open_detected(fs, path, extra)?;
        format.read(&mut input)
    };
    inner().map_err(|e| e.in_file(path))
}

/// Reads only the header of an image file.
pub fn read_image_meta(
    fs: &dyn FileSystem,
    path: &Path,
    extra: &[Arc<dyn StorageFormat>],
) -> phantom_storage::Result<ImageMeta> {
    let inner = || -> phantom_storage::Result<_> {
        let (format, mut input) = open_detected(fs, path, extra)?;
        format.read_meta(&mut input)
    };
    inner().map_err(|e| e.in_file(path))
}

fn open_detected(
    fs: &dyn FileSystem,
    path: &Path,
    extra: &[Arc<dyn StorageFormat>],
) -> phantom_storage::Result<(Arc<dyn StorageFormat>, impl Read)> {
    let mut file = fs.open_read(path)?;
    let mut head = Vec::with_capacity(64);
    (&mut file).take(64).read_to_end(&mut head)?;
    let format = extra
        .iter()
        .find(|f| f.detect(&head))
        .cloned()
        .or_else(|| backends::detect(&head).map(Arc::from))
        .ok_or_else(|| phantom_storage::Error::Malformed {
            location: phantom_storage::Location::Offset(0),
            reason: "not a PhantomDB image (no known format recognises its first bytes)".into(),
        })?;
    Ok((format, std::io::Cursor::new(head).chain(file)))
}

enum Candidate {
    Main(PathBuf),
    Snapshot(PathBuf),
}

/// Picks the newest recovery point that verifies: the main file `<db>.db` (read with `extra`
/// formats or the shipped ones) or a snapshot of `store`. Corrupt candidates are moved aside
/// as `<file>.broken` and reported; an I/O error (not a verification failure) aborts instead,
/// since a transient error must not make recovery silently pick an older state.
pub fn load_newest_image(
    fs: &dyn FileSystem,
    dir: &Path,
    db: &str,
    store: &SnapshotStore,
    extra: &[Arc<dyn StorageFormat>],
) -> Result<LoadedImage> {
    let mut candidates: Vec<(Lsn, Candidate)> = Vec::new();
    let main = main_file(dir, db);
    if fs
        .file_len(&main)
        .map_err(phantom_storage::Error::from)?
        .is_some()
    {
        // An unreadable header sorts first so it is tried, fails verification and is reported.
        let lsn = read_image_meta(fs, &main, extra).map_or(u64::MAX, |m| m.lsn);
        candidates.push((lsn, Candidate::Main(main)));
    }
    for entry in store.list()? {
        let lsn = entry.info().map_or(u64::MAX, |i| i.lsn);
        candidates.push((lsn, Candidate::Snapshot(entry.path().to_path_buf())));
    }
    // Newest first. Two candidates with one LSN hold the same state; either will do.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut rejected = Vec::new();
    for (_, candidate) in candidates {
        let (path, loaded) = match candidate {
            Candidate::Main(path) => {
                let r = read_image(fs, &path, extra).map_err(|e| (is_io(&e), Error::from(e)));
                (path, r)
            }
            Candidate::Snapshot(path) => {
                let r = store
                    .load(&path)
                    .map_err(|e| (is_snapshot_io(&e), Error::from(e)));
                (path, r)
            }
        };
        match loaded {
            Ok((meta, catalog)) => {
                return Ok(LoadedImage {
                    source: Some(path),
                    catalog,
                    lsn: meta.lsn,
                    rejected,
                });
            }
            Err((true, e)) => return Err(e),
            Err((false, e)) => {
                let broken = PathBuf::from(format!("{}.broken", path.display()));
                let moved_to = match fs.rename(&path, &broken) {
                    Ok(()) => Some(broken),
                    Err(io) => {
                        tracing::warn!(file = %path.display(), error = %io, "could not move a corrupt recovery point aside");
                        None
                    }
                };
                tracing::warn!(file = %path.display(), error = %e, "recovery point rejected");
                rejected.push(Rejected {
                    path,
                    reason: e.to_string(),
                    moved_to,
                });
            }
        }
    }
    Ok(LoadedImage {
        source: None,
        catalog: Catalog::new(),
        lsn: 0,
        rejected,
    })
}

fn is_snapshot_io(e: &phantom_snapshot::Error) -> bool {
    match e {
        phantom_snapshot::Error::Io { .. } => true,
        phantom_snapshot::Error::Storage(inner) => is_io(inner),
        _ => false,
    }
}

fn is_io(e: &phantom_storage::Error) -> bool {
    match e {
        phantom_storage::Error::Io(_) => true,
        phantom_storage::Error::InFile { source, .. } => is_io(source),
        _ => false,
    }
}

/// Replays log records on top of an image at `image_lsn`, streaming: records at or below
/// `image_lsn` are skipped, the next must be `image_lsn + 1`, and every later one must follow
/// without a gap. A batch applies entirely or not at all.
pub fn replay(
    catalog: &mut Catalog,
    image_lsn: Lsn,
    records: impl Iterator<Item = phantom_wal::Result<Record>>,
) -> Result<ReplayStats> {
    let mut stats = ReplayStats {
        last_lsn: image_lsn,
        ..ReplayStats::default()
    };
    for record in records {
        let record = record?;
        if record.lsn <= stats.last_lsn {
            stats.skipped += 1;
            continue;
        }
        if record.lsn != stats.last_lsn + 1 {
            return Err(Error::LogGap {
                image_lsn,
                expected: stats.last_lsn + 1,
                found: record.lsn,
            });
        }
        stats.dropped = false;
        match &record.entry {
            LogEntry::Batch(mutations) => {
                catalog
                    .apply_all(mutations)
                    .map_err(|source| Error::BadRecord {
                        lsn: record.lsn,
                        source,
                    })?
            }
            LogEntry::DropDatabase => stats.dropped = true,
            LogEntry::CreateDatabase => *catalog = Catalog::new(),
            _ => {}
        }
        stats.records += 1;
        stats.last_lsn = record.lsn;
    }
    Ok(stats)
}
