//! Point-in-time recovery: the state as of an LSN, or as of the last commit at or before a
//! time, rebuilt from the newest image at or before the target plus the log up to it. The
//! source files are only read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use phantom_snapshot::SnapshotStore;
use phantom_storage::{Catalog, FileSystem, ImageMeta, StorageFormat};
use phantom_wal::{Lsn, WalReader};

use crate::image::load_image;
use crate::replay::replay_pipelined;
use crate::{Error, Rejected, Result};

/// What to recover to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every record up to and including this LSN, none after.
    Lsn(Lsn),
    /// Every record appended at or before this time, none after.
    Time(DateTime<Utc>),
    /// Every record in the log (what a normal open recovers, computed read-only).
    End,
}

/// The state a point-in-time recovery rebuilt.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The catalog as of the target.
    pub catalog: Catalog,
    /// The last LSN applied.
    pub lsn: Lsn,
    /// The image it started from.
    pub source: Option<PathBuf>,
    /// That image's LSN.
    pub source_lsn: Lsn,
    /// Log records replayed on top of it.
    pub replayed: u64,
    /// Images at or before the target that failed verification (left in place).
    pub rejected: Vec<Rejected>,
}

/// Rebuilds database `db` of `dir` as of `target`, reading only.
pub fn restore(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    db: &str,
    store: &SnapshotStore,
    extra: &[Arc<dyn StorageFormat>],
    target: Target,
) -> Result<Restored> {
    // A time target becomes an LSN target: the last record appended at or before that time
    // (appends take their timestamps in LSN order). Image creation times are not used: they
    // are stored in whole seconds and say nothing exact about the records inside.
    let target = match target {
        Target::Time(t) => Target::Lsn(last_lsn_at(fs, dir, db, t)?),
        other => other,
    };
    let accept = |m: &ImageMeta| match target {
        Target::Lsn(lsn) => m.lsn <= lsn,
        Target::Time(_) | Target::End => true,
    };
    let image = load_image(&**fs, dir, db, store, extra, &accept, false)?;
    let mut catalog = image.catalog;
    // Errors name the oldest segment present (listed only when there is an error to report).
    let log_file = || phantom_wal::segment_file_for_error(&**fs, dir, db, false);
    let mut reader = WalReader::open(Arc::clone(fs), dir, db, image.lsn + 1)?.peekable();
    // The log must continue right after the image, whatever the target.
    if let Some(Ok(first)) = reader.peek()
        && first.lsn > image.lsn + 1
    {
        return Err(Error::LogGap {
            log: log_file(),
            image_lsn: image.lsn,
            expected: image.lsn + 1,
            found: first.lsn,
        });
    }
    let records = reader.take_while(|r| match (r, target) {
        (Ok(r), Target::Lsn(lsn)) => r.lsn <= lsn,
        (Ok(r), Target::Time(t)) => r.timestamp <= t,
        (Ok(_), Target::End) | (Err(_), _) => true,
    });
    let stats =
        replay_pipelined(&mut catalog, image.lsn, records).map_err(|e| e.with_log(log_file()))?;
    if let Target::Lsn(lsn) = target
        && stats.last_lsn < lsn
    {
        return Err(Error::TargetNotReached {
            target: lsn,
            last: stats.last_lsn,
        });
    }
    Ok(Restored {
        catalog,
        lsn: stats.last_lsn,
        source: image.source,
        source_lsn: image.lsn,
        replayed: stats.records,
        rejected: image.rejected,
    })
}

/// The LSN of the last record appended at or before `t`; when every record is later, the LSN
/// just before the first one (a state only an image at exactly that LSN can give).
fn last_lsn_at(fs: &Arc<dyn FileSystem>, dir: &Path, db: &str, t: DateTime<Utc>) -> Result<Lsn> {
    let mut last = None;
    for record in WalReader::open(Arc::clone(fs), dir, db, 0)? {
        let record = record?;
        if record.timestamp > t {
            return Ok(last.unwrap_or(record.lsn.saturating_sub(1)));
        }
        last = Some(record.lsn);
    }
    Ok(last.unwrap_or(0))
}
