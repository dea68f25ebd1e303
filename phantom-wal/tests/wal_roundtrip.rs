//! Records round-trip; segments roll over; a reader from any LSN yields exactly the records
//! from it; old segments are removed only when wholly before the LSN asked for.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::sync::Arc;

use common::{create_table, insert, open, tiny_segments};
use phantom_storage::StdFs;
use phantom_wal::{LogEntry, LogSink, Record, SyncMode, Wal, WalOptions, WalReader};

fn lsns(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.lsn).collect()
}

fn read_all(wal: &Wal, from: u64) -> Vec<Record> {
    wal.read_from(from)
        .expect("read")
        .collect::<Result<Vec<_>, _>>()
        .expect("records")
}

#[test]
fn a_record_round_trips_through_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let custom = LogEntry::Custom {
        operation: "MAINTENANCE".into(),
        fields: vec![
            ("user".into(), "admin".into()),
            ("note".into(), "a, b".into()),
        ],
    };
    let entries = vec![
        LogEntry::CreateDatabase,
        create_table(),
        insert(1),
        custom,
        LogEntry::Batch(vec![]),
        LogEntry::DropDatabase,
    ];
    let (wal, report) = open(dir.path(), WalOptions::default());
    assert_eq!((report.records, report.last_lsn), (0, 0));
    for (i, e) in entries.iter().enumerate() {
        let lsn = wal.append(e).unwrap();
        assert_eq!(lsn, i as u64 + 1);
        wal.commit(lsn).unwrap();
    }
    assert_eq!(wal.durable_lsn(), 6);
    let before = read_all(&wal, 1);
    drop(wal);

    let (wal, report) = open(dir.path(), WalOptions::default());
    assert_eq!(
        (report.records, report.last_lsn, report.segments),
        (6, 6, 1)
    );
    assert!(report.torn_tail.is_none());
    let after = read_all(&wal, 1);
    assert_eq!(after, before);
    let got: Vec<LogEntry> = after.into_iter().map(|r| r.entry).collect();
    assert_eq!(got, entries);
    // Appending continues the numbering.
    assert_eq!(wal.append(&insert(7)).unwrap(), 7);
}

#[test]
fn timestamps_are_kept_to_the_microsecond() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    let lsn = wal.append(&insert(1)).unwrap();
    wal.commit(lsn).unwrap();
    let first = read_all(&wal, 1);
    drop(wal);
    let (wal, _) = open(dir.path(), WalOptions::default());
    let again = read_all(&wal, 1);
    assert_eq!(first[0].timestamp, again[0].timestamp);
    assert_eq!(again[0].timestamp.timestamp_subsec_nanos() % 1000, 0);
}

#[test]
fn segments_roll_over_and_a_reader_from_any_lsn_yields_exactly_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), tiny_segments());
    for i in 1..=40 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
    }
    let segs = wal.segments();
    assert!(segs.len() > 5, "expected several segments, got {segs:?}");
    assert_eq!(segs[0].path, dir.path().join("db.log"));
    assert_eq!(segs[1].path, dir.path().join("db.log.000002"));
    for pair in segs.windows(2) {
        assert_eq!(pair[1].first_lsn, pair[0].last_lsn + 1);
        assert!(pair[0].bytes <= 256, "segment over size: {:?}", pair[0]);
    }
    for from in 0..=42 {
        let expected: Vec<u64> = (from.max(1)..=40).collect();
        assert_eq!(lsns(&read_all(&wal, from)), expected, "from {from}");
        let reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", from).unwrap();
        let got: Vec<u64> = reader.map(|r| r.unwrap().lsn).collect();
        assert_eq!(got, expected, "read-only reader from {from}");
    }
    drop(wal);
    let (wal, report) = open(dir.path(), tiny_segments());
    assert_eq!(report.records, 40);
    assert_eq!(report.segments, wal.segments().len());
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), tiny_segments());
    let big = LogEntry::Custom {
        operation: "BIG".into(),
        fields: vec![("blob".into(), "x".repeat(2000))],
    };
    wal.append(&insert(1)).unwrap();
    wal.append(&big).unwrap();
    let lsn = wal.append(&insert(3)).unwrap();
    wal.commit(lsn).unwrap();
    assert_eq!(wal.segments().len(), 3);
    drop(wal);
    let (wal, report) = open(dir.path(), tiny_segments());
    assert_eq!(report.records, 3);
    assert_eq!(read_all(&wal, 2)[0].entry, big);
}

#[test]
fn a_new_log_starts_at_the_first_lsn_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        first_lsn: 101,
        ..WalOptions::default()
    };
    let (wal, report) = open(dir.path(), options.clone());
    assert_eq!(report.last_lsn, 100);
    assert_eq!(wal.last_lsn(), 100);
    assert_eq!(wal.append(&insert(1)).unwrap(), 101);
    wal.commit(101).unwrap();
    drop(wal);
    // Ignored once the log exists.
    let (wal, report) = open(
        dir.path(),
        WalOptions {
            first_lsn: 5,
            ..options
        },
    );
    assert_eq!(report.last_lsn, 101);
    assert_eq!(lsns(&read_all(&wal, 0)), vec![101]);
}

#[test]
fn preallocated_segments_read_back_and_zeros_are_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_size: 4096,
        preallocate: true,
        ..WalOptions::default()
    };
    let (wal, _) = open(dir.path(), options.clone());
    for i in 1..=100 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
    }
    let segs = wal.segments();
    assert!(segs.len() >= 2);
    drop(wal);
    // The active segment keeps its preallocated length; sealed ones were trimmed.
    let active = segs.last().unwrap();
    assert_eq!(std::fs::metadata(&active.path).unwrap().len(), 4096);
    assert_eq!(
        std::fs::metadata(&segs[0].path).unwrap().len(),
        segs[0].bytes
    );
    let (wal, report) = open(dir.path(), options);
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert_eq!(report.records, 100);
    assert_eq!(lsns(&read_all(&wal, 1)), (1..=100).collect::<Vec<_>>());
}

/// Bytes of disk the file occupies (`st_blocks` is in 512-byte units).
#[cfg(unix)]
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[cfg(unix)]
#[test]
fn the_writer_keeps_the_blocks_ahead_of_it_written_in_a_preallocated_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    let path = wal.segments()[0].path.clone();
    let mb = 1u64 << 20;
    // Freshly created: the 64 MiB segment is a hole apart from its header.
    assert!(allocated(&path) < mb, "{}", allocated(&path));
    let lsn = wal.append(&insert(1)).unwrap();
    wal.commit(lsn).unwrap();
    // One small record: the next MiB is written (zeros), so the commits that fill it allocate
    // no blocks (and their fdatasyncs write no block map).
    assert!(allocated(&path) >= mb, "{}", allocated(&path));
    assert!(allocated(&path) < 2 * mb, "{}", allocated(&path));
    // ~3 MiB of 16 KiB records: the written part stays ahead of them, and grows a MiB at a
    // time (4 steps), not a block or a record at a time (199).
    let mut last = lsn;
    let mut steps = std::collections::BTreeSet::new();
    for i in 2..=200 {
        last = wal
            .append(&LogEntry::Custom {
                operation: "BLOB".into(),
                fields: vec![("i".into(), format!("{i:016}").repeat(1000))],
            })
            .unwrap();
        wal.commit(last).unwrap();
        let used = wal.segments()[0].bytes;
        assert!(allocated(&path) >= used, "{} for {used}", allocated(&path));
        steps.insert(allocated(&path));
    }
    assert!(wal.segments()[0].bytes > 3 * mb);
    assert!(steps.len() <= 4, "{steps:?}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        64 * mb,
        "length unchanged"
    );
    drop(wal);
    // The zeros ahead are free space to a reader.
    let (wal, report) = open(dir.path(), WalOptions::default());
    assert_eq!((report.records, report.torn_tail), (200, None));
    assert_eq!(read_all(&wal, 1).last().unwrap().lsn, last);
}

#[test]
fn remove_before_never_removes_the_active_segment_or_one_holding_a_later_record() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), tiny_segments());
    for i in 1..=40 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
    }
    // Cuts that leave record 40 in the log (cuts above it: the next test).
    for cut in [0, 1, 5, 13, 27, 40] {
        let before = wal.segments();
        let freed = wal.remove_before(cut).unwrap();
        let after = wal.segments();
        assert!(!after.is_empty());
        assert_eq!(after.last(), before.last(), "active segment kept");
        let removed: Vec<_> = before.iter().filter(|s| !after.contains(s)).collect();
        assert_eq!(freed, removed.iter().map(|s| s.bytes).sum::<u64>());
        for s in &removed {
            assert!(s.last_lsn < cut, "removed {s:?} for cut {cut}");
            assert!(!s.path.exists());
        }
        for s in &after {
            assert!(s.path.exists());
        }
        // Every record >= cut is still readable.
        let first = after[0].first_lsn;
        assert!(first <= cut.max(1) || after.len() == 1);
        let got = lsns(&read_all(&wal, cut));
        assert_eq!(got, (cut.max(first)..=40).collect::<Vec<_>>());
    }
    assert_eq!(wal.segments().len(), 1);
    drop(wal);
    let (wal, report) = open(dir.path(), tiny_segments());
    assert_eq!(report.last_lsn, 40);
    assert_eq!(wal.append(&insert(41)).unwrap(), 41);
}

/// A cut above every record (a snapshot of the latest state) rolls a log whose active segment
/// holds at least 1/16 of a segment over to an empty segment starting at the next LSN, so no
/// segment of old records is left to read on open; the log still says where it is, and goes on
/// from there.
#[test]
fn remove_before_above_every_record_leaves_one_empty_segment_at_the_next_lsn() {
    let sixteenth = WalOptions {
        segment_size: 16 * 1024,
        ..WalOptions::default()
    };
    for (options, appended) in [(sixteenth, 60), (tiny_segments(), 40)] {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), options.clone());
        for i in 1..=appended {
            let lsn = wal.append(&insert(i)).unwrap();
            wal.commit(lsn).unwrap();
        }
        let before = wal.segments();
        let freed = wal.remove_before(appended + 1).unwrap();
        assert_eq!(freed, before.iter().map(|s| s.bytes).sum::<u64>());
        let after = wal.segments();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].first_lsn, appended + 1);
        assert_eq!(after[0].number, before.last().unwrap().number + 1);
        assert!(before.iter().all(|s| !s.path.exists()));
        assert!(read_all(&wal, 1).is_empty());
        // Nothing to roll the second time: an empty segment stays.
        assert_eq!(wal.remove_before(1000).unwrap(), 0);
        assert_eq!(wal.segments(), after);
        drop(wal);

        let (wal, report) = open(dir.path(), options);
        assert_eq!(report.last_lsn, appended);
        let lsn = wal.append(&insert(appended + 1)).unwrap();
        assert_eq!(lsn, appended + 1);
        wal.commit(lsn).unwrap();
        assert_eq!(lsns(&read_all(&wal, 1)), vec![appended + 1]);
    }
}

#[test]
fn destroy_removes_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), tiny_segments());
    for i in 1..=20 {
        wal.append(&insert(i)).unwrap();
    }
    wal.close().unwrap();
    std::fs::write(dir.path().join("other.log"), b"not ours").unwrap();
    let freed = Wal::destroy(Arc::new(StdFs), dir.path(), "db").unwrap();
    assert!(freed > 0);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["other.log".to_owned()]);
}

#[test]
fn every_sync_mode_keeps_committed_records_across_a_clean_close() {
    for mode in [
        SyncMode::Always,
        SyncMode::Interval(std::time::Duration::from_millis(5)),
        SyncMode::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions {
            sync_mode: mode,
            ..tiny_segments()
        };
        let (wal, _) = open(dir.path(), options.clone());
        for i in 1..=30 {
            let lsn = wal.append(&insert(i)).unwrap();
            wal.commit(lsn).unwrap();
        }
        if let SyncMode::Interval(_) = mode {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while wal.durable_lsn() < 30 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            assert_eq!(wal.durable_lsn(), 30, "background sync caught up");
        }
        wal.close().unwrap();
        let (wal, report) = open(dir.path(), options);
        assert_eq!(report.records, 30, "{mode:?}");
        assert_eq!(wal.durable_lsn(), 30);
    }
}

#[test]
fn invalid_options_and_names_are_rejected_before_touching_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |o: WalOptions| Wal::open(Arc::new(StdFs), dir.path(), "db", o).unwrap_err();
    assert!(matches!(
        bad(WalOptions {
            first_lsn: 0,
            ..WalOptions::default()
        }),
        phantom_wal::Error::InvalidOptions { .. }
    ));
    assert!(matches!(
        bad(WalOptions {
            segment_size: 10,
            ..WalOptions::default()
        }),
        phantom_wal::Error::InvalidOptions { .. }
    ));
    let err = Wal::open(Arc::new(StdFs), dir.path(), "../x", WalOptions::default()).unwrap_err();
    assert!(matches!(err, phantom_wal::Error::Storage(_)), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A small log (under 1/16 of a segment) is not rolled for a cut above every record: two
/// fsyncs would cost more than reading it, and `<db>.log` keeps its name.
#[test]
fn remove_before_leaves_a_small_active_segment_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    for i in 1..=40 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
    }
    let before = wal.segments();
    assert_eq!(wal.remove_before(41).unwrap(), 0);
    assert_eq!(wal.segments(), before);
    assert!(dir.path().join("db.log").exists());
}
