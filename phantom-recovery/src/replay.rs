//! Streaming log replay on top of a recovery point.

use phantom_storage::Catalog;
use phantom_wal::{LogEntry, Lsn, Record};

use crate::{Error, ReplayStats, Result};

/// Replays log records on top of an image at `image_lsn`, streaming: records at or below
/// `image_lsn` are skipped, the next must be `image_lsn + 1`, and every later one must follow
/// without a gap.
///
/// Mutations are applied in place and by value (`Catalog::apply_owned`: no copy of the rows,
/// no copy-on-write), which is what makes replay fast. So on error — a record that does not
/// apply, a gap, a read error — `catalog` is left partly changed and must be discarded, as
/// every caller does (the error fails recovery). On success every batch was applied whole.
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
                log: std::path::PathBuf::new(),
                image_lsn,
                expected: stats.last_lsn + 1,
                found: record.lsn,
            });
        }
        stats.dropped = false;
        let lsn = record.lsn;
        match record.entry {
            LogEntry::Batch(mutations) => {
                for m in mutations {
                    catalog
                        .apply_owned(m)
                        .map_err(|source| Error::BadRecord { lsn, source })?;
                }
            }
            LogEntry::DropDatabase => stats.dropped = true,
            LogEntry::CreateDatabase => *catalog = Catalog::new(),
            _ => {}
        }
        stats.records += 1;
        stats.last_lsn = lsn;
    }
    Ok(stats)
}
