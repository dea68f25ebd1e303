//! How the engine gets a log for each database: the [`LogFactory`] trait, and
//! [`WalFactory`], the default, which opens phantom-wal's segmented binary log.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_recovery::{Prepared, RecoveryMode, prepare_wal};
use phantom_storage::FileSystem;
use phantom_wal::{LogSink, Lsn, SyncMode, Wal, WalOptions, segment_file_name};

use crate::error::Result;

/// A log opened for a database.
#[derive(Debug)]
pub struct OpenedLog {
    /// The sink every commit of the database goes through.
    pub sink: Arc<dyn LogSink>,
    /// Bytes cut from a torn tail while opening (0 when the log was clean).
    pub torn_bytes_cut: u64,
}

/// Opens, recognises and removes the log of each database. Implement it to plug your own
/// [`LogSink`] into [`Database`](crate::Database) through its builder.
pub trait LogFactory: Send + Sync + fmt::Debug {
    /// Opens the log of `database` in `dir`, creating it if missing. A newly created log
    /// assigns `first_lsn` to its first record.
    fn open(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
        first_lsn: Lsn,
    ) -> Result<OpenedLog>;
    /// `true` when a log of `database` exists in `dir`.
    fn exists(&self, fs: &Arc<dyn FileSystem>, dir: &Path, database: &str) -> Result<bool>;
    /// Removes the log of `database` (drop database). Missing files are not an error.
    fn destroy(&self, fs: &Arc<dyn FileSystem>, dir: &Path, database: &str) -> Result<()>;

    /// Moves the whole log of `database` out of the way (renaming, never deleting), so a new
    /// one can start; returns where it went. Used when the log ends before the recovery point.
    /// The default destroys the log: override it to keep the evidence.
    fn set_aside(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
    ) -> Result<Vec<PathBuf>> {
        self.destroy(fs, dir, database)?;
        Ok(Vec::new())
    }

    /// Applies a [`RecoveryMode`] to the log before it is opened (refuse a torn tail, salvage
    /// a prefix). The default accepts only the default mode's behaviour and does nothing.
    fn prepare(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
        mode: RecoveryMode,
    ) -> Result<Prepared> {
        let _ = (fs, dir, database, mode);
        Ok(Prepared::default())
    }
}

/// The default [`LogFactory`]: phantom-wal's segmented binary log at `<dir>/<db>.log`.
#[derive(Clone, Debug)]
pub struct WalFactory {
    /// Options for every log opened (the first LSN is set per open).
    pub options: WalOptions,
}

impl WalFactory {
    /// A factory with the given durability mode and default options otherwise.
    pub fn new(sync: SyncMode) -> WalFactory {
        WalFactory {
            options: WalOptions {
                sync_mode: sync,
                ..WalOptions::default()
            },
        }
    }
}

impl Default for WalFactory {
    fn default() -> Self {
        WalFactory::new(SyncMode::Always)
    }
}

impl LogFactory for WalFactory {
    fn open(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
        first_lsn: Lsn,
    ) -> Result<OpenedLog> {
        let options = WalOptions {
            first_lsn,
            ..self.options.clone()
        };
        let (wal, report) = Wal::open(fs.clone(), dir, database, options)?;
        Ok(OpenedLog {
            sink: Arc::new(wal),
            torn_bytes_cut: report.torn_tail.map_or(0, |t| t.bytes_cut),
        })
    }

    fn exists(&self, fs: &Arc<dyn FileSystem>, dir: &Path, database: &str) -> Result<bool> {
        // Any segment counts: after log truncation the first one may be gone.
        match fs.list_dir(dir) {
            Ok(files) => Ok(files.iter().any(|f| is_segment(database, f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(crate::Error::io(dir)(e)),
        }
    }

    fn prepare(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
        mode: RecoveryMode,
    ) -> Result<Prepared> {
        Ok(prepare_wal(fs, dir, database, mode)?)
    }

    fn set_aside(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
    ) -> Result<Vec<PathBuf>> {
        let mut moved = Vec::new();
        for file in fs.list_dir(dir).map_err(crate::Error::io(dir))? {
            if is_segment(database, &file) {
                let from = dir.join(&file);
                let to = dir.join(format!("{file}.superseded.broken"));
                fs.rename(&from, &to).map_err(crate::Error::io(&from))?;
                moved.push(to);
            }
        }
        fs.sync_dir(dir).map_err(crate::Error::io(dir))?;
        Ok(moved)
    }

    fn destroy(&self, fs: &Arc<dyn FileSystem>, dir: &Path, database: &str) -> Result<()> {
        Wal::destroy(fs.clone(), dir, database)?;
        Ok(())
    }
}

/// `true` when `file` is a segment of the log of `database` (`<db>.log`, `<db>.log.000002`, …).
pub(crate) fn is_segment(database: &str, file: &str) -> bool {
    file == segment_file_name(database, 1)
        || file
            .strip_prefix(&format!("{database}.log."))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| segment_file_name(database, n) == file)
}
