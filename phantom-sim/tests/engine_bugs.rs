//! Minimal reproductions of engine bugs the simulation and the corruption campaign found, kept
//! as regression tests once fixed.

use phantom_core::{Column, ColumnType, Database, Literal};

/// A damaged (truncated) last log segment whose remaining records end *before* the newest
/// recovery point: recovery cuts the torn tail, then restarts the log after the image ("log
/// ends before the recovery point"). It used to destroy the log, including the `.broken` copy
/// of the cut bytes, and report `torn_bytes_cut == 0`, so the loss of the commits after the
/// recovery point went unsaid. Now it is an error naming the log (images are written only
/// after the log is durable up to their LSN, so this is lost log data), and salvage continues
/// from the image, reporting the cut and keeping the old log aside.
#[test]
fn a_log_that_ends_before_the_recovery_point_is_refused_and_salvage_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::open(dir.path()).expect("open");
        db.create_database("app").expect("create db");
        db.create_table(
            "app",
            "t",
            vec![Column::new("id", ColumnType::Int).primary_key()],
        )
        .expect("create table");
        for i in 0..3 {
            db.insert("app", "t", [("id", Literal::from(i))])
                .expect("insert");
        }
        db.create_snapshot("app").expect("snapshot");
        for i in 3..5 {
            db.insert("app", "t", [("id", Literal::from(i))])
                .expect("insert");
        }
    }
    // Damage: the log loses everything after its first record and a half.
    let log = dir.path().join("app.log");
    let bytes = std::fs::read(&log).expect("read log");
    std::fs::write(&log, &bytes[..100]).expect("truncate log");

    // Default mode: the log lost records the snapshot proves were durable, and the commits
    // after the snapshot with them: an error naming the log, not a silently older state.
    let err = Database::open(dir.path())
        .and_then(|db| db.select_all("app", "t"))
        .expect_err("must refuse");
    assert!(
        matches!(
            err,
            phantom_core::Error::Recovery(phantom_recovery::Error::LogBehindImage { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("app.log"), "{err}");

    // Salvage (only when asked): the snapshot's state, and the report says what happened.
    let db = Database::builder()
        .data_dir(dir.path())
        .recovery_mode(phantom_core::RecoveryMode::Salvage)
        .open()
        .expect("open");
    let rows = db.select_all("app", "t").expect("rows").len();
    assert_eq!(rows, 3, "the snapshot's rows are served");
    let report = db.recovery_report("app").expect("recover");
    // (The first, refused open already cut the torn tail and kept it in `app.log.broken`.)
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(dir.path().join("app.log.broken").exists());
    assert!(
        std::fs::read_dir(dir.path()).expect("list").any(|e| e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".superseded.broken")),
        "the old log is kept"
    );
}

/// A roll-over whose directory fsync failed (ENOSPC) left a new segment that existed but was
/// not durable in its directory; the reopened log appended acknowledged commits to it, and a
/// crash then removed the segment with them. `Wal::open` now fsyncs the directory. Found by
/// the simulation at 10,000 seeds; these are the seeds that showed it.
#[test]
fn seeds_that_lost_commits_in_a_segment_whose_directory_entry_was_not_durable() {
    for seed in [2998, 3945, 4314, 4684] {
        if let Err(v) = phantom_sim::simulate(seed, &phantom_sim::SimConfig::default()) {
            panic!("{v:?}");
        }
    }
}

/// A crash inside a roll-over persisted only part of the new segment's unsynced header (the
/// rest, and the preallocated space after it, zeros). The open took the header for damage
/// ("bad magic") and refused the log, though nothing in that segment was ever acknowledged.
/// Now a last segment whose header does not decode and which holds only zeros after it is an
/// interrupted roll-over, as one whose header is all zeros. Found by a 3,000-seed campaign.
#[test]
fn a_seed_whose_crash_tore_a_new_segments_header() {
    if let Err(v) = phantom_sim::simulate(2213, &phantom_sim::SimConfig::default()) {
        panic!("{v:?}");
    }
}
