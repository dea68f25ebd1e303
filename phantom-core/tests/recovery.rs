//! Recovery as users see it through `Database`: fallback past a corrupt snapshot, refusal (and
//! salvage) of a corrupt log, recovery modes, point-in-time recovery and `verify`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_core::{
    Column, ColumnType, Database, Error, Literal, RecoveryMode, SyncMode, Target, Value, WalFactory,
};
use phantom_storage::BinaryFormat;

fn small_segments() -> Arc<WalFactory> {
    let mut wal = WalFactory::new(SyncMode::Always);
    wal.options.segment_size = 2048;
    Arc::new(wal)
}

fn open(dir: &Path, mode: RecoveryMode) -> phantom_core::Result<Database> {
    Database::builder()
        .data_dir(dir)
        .log_factory(small_segments())
        .snapshots_enabled(false)
        .retain_snapshots(10)
        .recovery_mode(mode)
        .open()
}

/// Creates `d.t(id int pk, v string)` and inserts ids `0..n` one commit each (LSNs 3..n+2).
fn fill(db: &Database, range: std::ops::Range<i64>) {
    db.ensure_database("d").unwrap();
    if db.list_tables("d").unwrap().is_empty() {
        db.create_table(
            "d",
            "t",
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("v", ColumnType::String),
            ],
        )
        .unwrap();
    }
    for i in range {
        db.insert(
            "d",
            "t",
            [("id", Literal::from(i)), ("v", format!("value {i}").into())],
        )
        .unwrap();
    }
}

fn ids(db: &Database) -> Vec<i64> {
    db.select_all("d", "t")
        .unwrap()
        .rows
        .iter()
        .map(|r| match r[0] {
            Value::Int(i) => i,
            _ => unreachable!(),
        })
        .collect()
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn log_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n == "d.log" || (n.starts_with("d.log.") && n[6..].bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    segs.sort();
    segs
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_previous_one_and_reaches_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let newest = {
        let db = open(dir.path(), RecoveryMode::default()).unwrap();
        db.set_snapshot_format(Arc::new(BinaryFormat));
        fill(&db, 0..10);
        db.create_snapshot("d").unwrap();
        fill(&db, 10..20);
        let newest = db.create_snapshot("d").unwrap();
        fill(&db, 20..25);
        newest
    };
    let len = std::fs::metadata(&newest.path).unwrap().len();
    flip(&newest.path, len / 2);
    let db = open(dir.path(), RecoveryMode::default()).unwrap();
    assert_eq!(ids(&db), (0..25).collect::<Vec<_>>());
    let report = db.recovery_report("d").unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert_eq!(report.rejected[0].path, newest.path);
    let moved = report.rejected[0].moved_to.clone().unwrap();
    assert!(
        moved.exists() && moved.to_str().unwrap().ends_with(".broken"),
        "moved aside, never deleted"
    );
    assert_eq!(report.recovery_lsn, 12, "the older snapshot");
    assert_eq!(report.replay.records, 15);
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_fails_open_naming_file_and_offset_and_salvage_keeps_the_prefix()
 {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path(), RecoveryMode::default()).unwrap();
        fill(&db, 0..200);
    }
    let segs = log_segments(dir.path());
    assert!(segs.len() >= 4, "small segments roll over: {segs:?}");
    let sealed = &segs[1];
    let len = std::fs::metadata(sealed).unwrap().len();
    flip(sealed, len / 2);

    let err = open(dir.path(), RecoveryMode::default())
        .and_then(|db| db.select_all("d", "t"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(sealed.file_name().unwrap().to_str().unwrap()) && text.contains("offset"),
        "{text}"
    );

    let db = open(dir.path(), RecoveryMode::Salvage).unwrap();
    let kept = ids(&db);
    assert!(!kept.is_empty() && kept.len() < 200);
    assert_eq!(
        kept,
        (0..kept.len() as i64).collect::<Vec<_>>(),
        "a prefix, no hole"
    );
    let report = db.recovery_report("d").unwrap();
    let salvaged = report.salvaged.expect("salvage reports what it dropped");
    assert_eq!(&salvaged.file, sealed);
    assert_eq!(salvaged.last_kept_lsn, kept.len() as u64 + 2);
    assert!(salvaged.last_dropped_lsn.unwrap() > salvaged.last_kept_lsn);
    assert!(salvaged.moved.iter().all(|p| p.exists()));
    // After salvage the database works and reopens cleanly in the default mode.
    fill(&db, 1000..1001);
    drop(db);
    let db = open(dir.path(), RecoveryMode::default()).unwrap();
    assert_eq!(ids(&db).len(), kept.len() + 1);
}

#[test]
fn a_torn_tail_is_cut_by_default_and_refused_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path(), RecoveryMode::default()).unwrap();
        fill(&db, 0..5);
    }
    let last = log_segments(dir.path()).pop().unwrap();
    // Where the records end (the segment is preallocated: zeros follow them).
    let bytes = std::fs::read(&last).unwrap();
    let len = bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 3).unwrap(); // tear the last record
    drop(f);

    let err = open(dir.path(), RecoveryMode::Strict)
        .and_then(|db| db.select_all("d", "t"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Recovery(phantom_recovery::Error::TornTailRefused { .. })
        ),
        "{err}"
    );

    let db = open(dir.path(), RecoveryMode::default()).unwrap();
    assert_eq!(
        ids(&db),
        vec![0, 1, 2, 3],
        "the torn last insert is gone, the rest is there"
    );
    assert!(db.recovery_report("d").unwrap().torn_bytes_cut > 0);
}

#[test]
fn point_in_time_recovery_to_an_lsn_or_a_time_equals_the_history_at_that_point() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), RecoveryMode::default()).unwrap();
    db.set_snapshot_format(Arc::new(BinaryFormat));
    fill(&db, 0..0);
    let mut times = Vec::new(); // (lsn, time just after the commit)
    for i in 0..1000i64 {
        db.insert("d", "t", [("id", Literal::from(i)), ("v", "x".into())])
            .unwrap();
        if i % 250 == 249 {
            db.create_snapshot("d").unwrap();
        }
        if i % 97 == 0 {
            times.push((i as u64 + 3, chrono::Utc::now()));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    // Four snapshots (LSNs 252, 502, 752, 1002) are retained; the log is kept from the oldest
    // one on, so that is how far back point-in-time recovery reaches.
    let err = db
        .restore(
            "d",
            Target::Lsn(150),
            Some(tempfile::tempdir().unwrap().path()),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Recovery(phantom_recovery::Error::LogGap { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("d.log"),
        "the error names the log: {err}"
    );
    for k in [252u64, 253, 600, 1001, 1002] {
        let out = tempfile::tempdir().unwrap();
        let restored = db.restore("d", Target::Lsn(k), Some(out.path())).unwrap();
        assert_eq!(restored.lsn, k);
        let copy = Database::open(out.path()).unwrap();
        let rows = copy.select_all("d", "t").unwrap();
        assert_eq!(rows.len() as u64, k - 2, "state after commit {k}");
    }
    for (lsn, t) in times.iter().filter(|(lsn, _)| *lsn >= 253) {
        let restored = db
            .restore(
                "d",
                Target::Time(*t),
                Some(tempfile::tempdir().unwrap().path()),
            )
            .unwrap();
        assert_eq!(restored.lsn, *lsn, "the last commit at or before {t}");
    }
    assert!(matches!(
        db.restore(
            "d",
            Target::Lsn(5000),
            Some(tempfile::tempdir().unwrap().path())
        ),
        Err(Error::Recovery(
            phantom_recovery::Error::TargetNotReached { .. }
        ))
    ));
    // In place: the live database rewinds; newer files are moved aside, not deleted.
    db.restore("d", Target::Lsn(500), None).unwrap();
    assert_eq!(ids(&db), (0..498).collect::<Vec<_>>());
    assert!(std::fs::read_dir(dir.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .ends_with(".pre-restore")
    }));
    db.insert("d", "t", [("id", 5000)]).unwrap();
    drop(db);
    let db = open(dir.path(), RecoveryMode::default()).unwrap();
    assert_eq!(ids(&db).len(), 499);
}

#[test]
fn verify_is_clean_on_clean_data_and_names_file_and_offset_of_each_planted_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let snap = {
        let db = open(dir.path(), RecoveryMode::default()).unwrap();
        fill(&db, 0..100);
        db.save_to_disk("d").unwrap();
        // The snapshot covers every record, so the log rolls over and its old segments go;
        // enough commits after it make sealed segments again.
        let snap = db.create_snapshot("d").unwrap();
        fill(&db, 100..160);
        let report = db.verify("d").unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(report.files.len() >= 4);
        snap
    };
    let seg = log_segments(dir.path())[1].clone();
    flip(&seg, 100);
    flip(&snap.path, 200);
    let db = Database::open(dir.path()).unwrap();
    let report = db.verify("d").unwrap();
    let lines: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(report.problems.len(), 2, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(seg.file_name().unwrap().to_str().unwrap())
                && l.contains("byte offset")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&snap.file_name) && l.contains("line")),
        "{lines:#?}"
    );
    // verify modified nothing: the snapshot is still there under its name.
    assert!(snap.path.exists());
}

#[test]
fn verify_reports_a_log_that_no_longer_reaches_back_to_the_newest_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path(), RecoveryMode::default()).unwrap();
        fill(&db, 0..10);
        db.create_snapshot("d").unwrap();
        fill(&db, 10..200);
    }
    // Lose the segments right after the snapshot (as a careless cleanup would).
    let segs = log_segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    std::fs::remove_file(&segs[0]).unwrap();
    std::fs::remove_file(&segs[1]).unwrap();
    let db = Database::open(dir.path()).unwrap();
    let report = db.verify("d").unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("log gap")),
        "{:?}",
        report.problems
    );
    // And opening refuses the hole, naming the log.
    let err = db.select_all("d", "t").unwrap_err();
    assert!(err.to_string().contains("log gap"), "{err}");
}
