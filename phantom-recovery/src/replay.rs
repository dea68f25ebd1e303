//! Streaming log replay on top of a recovery point.

use phantom_storage::{Catalog, Mutation};
use phantom_wal::{LogEntry, Lsn, Record};

use crate::{Error, ReplayStats, Result};

/// Replays log records on top of an image at `image_lsn`, streaming: records at or below
/// `image_lsn` are skipped, the next must be `image_lsn + 1`, and every later one must follow
/// without a gap. [`replay_pipelined`] does the same with reading and decoding on a second
/// thread.
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
        apply_record(catalog, image_lsn, &mut stats, &mut record?)?;
    }
    Ok(stats)
}

/// A batch is handed from the reading thread to the applying thread once it holds this many
/// rows (records count as one row more than they carry, so a log of single-row commits hands
/// over 2,048 records at a time and a log of 1,000-row batches 4). Each hand-off may wake a
/// sleeping thread, which costs tens of µs on a VM, so batches are not small.
const PIPE_BATCH_ROWS: usize = 4096;
/// Batches in flight: bounds what is held between the threads (at most `PIPE_DEPTH` batches
/// of about `PIPE_BATCH_ROWS` rows, on top of the one being applied).
const PIPE_DEPTH: usize = 4;

/// How much of a batch a record fills: one, plus the rows it carries.
fn weight(record: &phantom_wal::Result<Record>) -> usize {
    match record {
        Ok(Record {
            entry: LogEntry::Batch(mutations),
            ..
        }) => {
            1 + mutations
                .iter()
                .map(|m| match m {
                    Mutation::Insert { rows, .. } | Mutation::Update { rows, .. } => rows.len(),
                    Mutation::Delete { row_ids, .. } => row_ids.len(),
                    Mutation::CreateTable { .. } | Mutation::DropTable { .. } => 0,
                })
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// [`replay`], with the iterator — reading segments, checking CRCs, decoding records — run
/// on a scoped second thread while this thread applies the records, in order; on two cores
/// the two overlap. Results are exactly those of [`replay`]: records are applied in LSN order,
/// and the first error in log order is the one returned (an error from the reader arrives in
/// the stream after every record before it). If the thread cannot be started, this is
/// [`replay`].
pub fn replay_pipelined<I>(catalog: &mut Catalog, image_lsn: Lsn, records: I) -> Result<ReplayStats>
where
    I: Iterator<Item = phantom_wal::Result<Record>> + Send,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(PIPE_DEPTH);
    // Applied records go back to the reading thread to be dropped there, in the vector of a
    // later batch (see `Batch`); a full queue just means they are dropped here.
    let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Batch>(PIPE_DEPTH + 2);
    std::thread::scope(|scope| {
        // The iterator moves to the reading thread only if that thread starts; otherwise it
        // comes back and is replayed here.
        let (give, take) = std::sync::mpsc::sync_channel::<I>(1);
        let spawned = std::thread::Builder::new()
            .name("phantom-log-read".into())
            .spawn_scoped(scope, move || {
                let Ok(records) = take.recv() else { return };
                // Applied records come back to be dropped here (see `Batch`), one for each
                // record read: each drop frees blocks of the sizes the next decode allocates,
                // and glibc's per-thread cache (a few blocks a size) hands them straight back.
                // Dropping a whole batch at once overflowed that cache into the arena's bins,
                // and the allocations after it missed the cache (`docs/performance.md`).
                let mut graveyard: Batch = Vec::new();
                let mut batch = Vec::new();
                let mut rows = 0;
                for record in records {
                    drop(graveyard.pop());
                    // An error ends the stream: it goes out with the records before it.
                    let stop = record.is_err();
                    rows += weight(&record);
                    batch.push(record);
                    if rows >= PIPE_BATCH_ROWS || stop {
                        // The next batch's vector: the emptied graveyard (refilled below), or
                        // a new one.
                        let next = if graveyard.is_empty() {
                            std::mem::take(&mut graveyard)
                        } else {
                            Vec::new()
                        };
                        // A failed send means the applier failed; its error is the one reported.
                        if tx.send(std::mem::replace(&mut batch, next)).is_err() || stop {
                            return;
                        }
                        rows = 0;
                    }
                    if graveyard.is_empty()
                        && let Ok(used) = back_rx.try_recv()
                    {
                        graveyard = used;
                    }
                }
                let _ = tx.send(batch);
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no log reading thread; replaying sequentially");
            return replay(catalog, image_lsn, records);
        }
        if let Err(back) = give.send(records) {
            // The thread ended before taking the iterator (it cannot, short of a panic):
            // nothing was read, so replay here.
            return replay(catalog, image_lsn, back.0);
        }
        let mut stats = ReplayStats {
            last_lsn: image_lsn,
            ..ReplayStats::default()
        };
        let mut applied: Batch = Vec::new();
        for mut batch in rx {
            for record in batch.drain(..) {
                let mut record = record?;
                apply_record(catalog, image_lsn, &mut stats, &mut record)?;
                applied.push(Ok(record));
            }
            // The drained vector collects the next batch's applied records.
            let full = std::mem::replace(&mut applied, batch);
            let _ = back_tx.try_send(full);
        }
        Ok(stats)
    })
}

/// What goes between the threads of [`replay_pipelined`], both ways: to the applier, records
/// read (an error only last); back to the reader, records applied, their rows moved into the
/// catalog but their other allocations (the mutation list, table names, emptied row vectors)
/// still held. Those were allocated by the reading thread, and glibc frees a block fastest
/// on the thread that allocated it (into that thread's cache, which its next allocations
/// take from); freed on the applying thread instead, they went to the reader's arena under
/// its lock, and the reader's own allocations missed the cache (`docs/performance.md`).
type Batch = Vec<phantom_wal::Result<Record>>;

/// Applies one record (or skips it, at or below the image): the body of both replays.
fn apply_record(
    catalog: &mut Catalog,
    image_lsn: Lsn,
    stats: &mut ReplayStats,
    record: &mut Record,
) -> Result<()> {
    if record.lsn <= stats.last_lsn {
        stats.skipped += 1;
        return Ok(());
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
    match &mut record.entry {
        LogEntry::Batch(mutations) => {
            for m in mutations {
                catalog
                    .apply_taking(m)
                    .map_err(|source| Error::BadRecord { lsn, source })?;
            }
        }
        LogEntry::DropDatabase => stats.dropped = true,
        LogEntry::CreateDatabase => *catalog = Catalog::new(),
        _ => {}
    }
    stats.records += 1;
    stats.last_lsn = lsn;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::Utc;
    use phantom_storage::{Column, ColumnType, Mutation, Schema, Value};

    use super::*;

    fn record(lsn: Lsn, entry: LogEntry) -> phantom_wal::Result<Record> {
        Ok(Record {
            lsn,
            timestamp: Utc::now(),
            entry,
        })
    }

    /// A log of `n` records: a CREATE TABLE, then single-row inserts with keys `1..n`.
    fn log(n: u64) -> Vec<phantom_wal::Result<Record>> {
        let schema = Schema::new("t", vec![Column::new("id", ColumnType::Int).primary_key()])
            .expect("schema");
        let mut out = vec![record(
            1,
            LogEntry::Batch(vec![Mutation::CreateTable {
                table: "t".into(),
                schema,
            }]),
        )];
        for lsn in 2..=n {
            out.push(record(
                lsn,
                LogEntry::Batch(vec![Mutation::Insert {
                    table: "t".into(),
                    rows: vec![(lsn, vec![Value::Int(lsn as i64)].into())],
                }]),
            ));
        }
        out
    }

    fn corrupt(offset: u64) -> phantom_wal::Result<Record> {
        Err(phantom_wal::Error::Corrupt {
            file: PathBuf::from("db.log"),
            offset,
            reason: "planted".into(),
        })
    }

    type Outcome = Result<(ReplayStats, Catalog)>;

    /// Both replays on the same input: the same catalog, the same stats, or the same error.
    fn both(
        image_lsn: Lsn,
        records: impl Fn() -> Vec<phantom_wal::Result<Record>>,
    ) -> (Outcome, Outcome) {
        let run = |pipelined: bool| {
            let mut catalog = Catalog::new();
            let stats = if pipelined {
                replay_pipelined(&mut catalog, image_lsn, records().into_iter())
            } else {
                replay(&mut catalog, image_lsn, records().into_iter())
            };
            stats.map(|s| (s, catalog))
        };
        (run(false), run(true))
    }

    #[test]
    fn pipelined_replay_applies_every_record_in_order() {
        let (seq, pipe) = both(0, || log(1_000));
        let (seq, pipe) = (seq.expect("sequential"), pipe.expect("pipelined"));
        assert_eq!(pipe.0, seq.0);
        assert!(pipe.1 == seq.1);
        assert_eq!(pipe.1.table("t").expect("table").len(), 999);
        assert_eq!(pipe.0.last_lsn, 1_000);
    }

    #[test]
    fn pipelined_replay_returns_the_first_error_in_log_order() {
        // A reader error after 500 good records.
        let (seq, pipe) = both(0, || {
            let mut l = log(500);
            l.push(corrupt(77));
            l.extend(log(600).into_iter().skip(500));
            l
        });
        for r in [seq, pipe] {
            assert!(
                matches!(
                    r,
                    Err(Error::Wal(phantom_wal::Error::Corrupt { offset: 77, .. }))
                ),
                "{r:?}"
            );
        }
        // A record that does not apply (a duplicate key at LSN 300) before a reader error.
        let (seq, pipe) = both(0, || {
            let mut l = log(400);
            l[299] = record(
                300,
                LogEntry::Batch(vec![Mutation::Insert {
                    table: "t".into(),
                    rows: vec![(300, vec![Value::Int(5)].into())],
                }]),
            );
            l.push(corrupt(9));
            l
        });
        for r in [seq, pipe] {
            assert!(matches!(r, Err(Error::BadRecord { lsn: 300, .. })), "{r:?}");
        }
        // A gap.
        let (seq, pipe) = both(0, || {
            let mut l = log(300);
            drop(l.remove(150));
            l
        });
        for r in [seq, pipe] {
            assert!(
                matches!(
                    r,
                    Err(Error::LogGap {
                        expected: 151,
                        found: 152,
                        ..
                    })
                ),
                "{r:?}"
            );
        }
    }

    #[test]
    fn records_at_or_below_the_image_are_skipped() {
        let (seq, pipe) = both(0, || log(10));
        let mut catalog = seq.expect("sequential").1;
        let stats = replay_pipelined(&mut catalog, 10, log(20).into_iter()).expect("replay");
        assert_eq!((stats.skipped, stats.records, stats.last_lsn), (10, 10, 20));
        assert_eq!(catalog.table("t").expect("table").len(), 19);
        drop(pipe);
    }
}
