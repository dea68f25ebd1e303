//! Minimal reproductions of engine bugs the simulation and the corruption campaign found, kept
//! as regression tests once fixed.

use phantom_core::{Column, ColumnType, Database, Literal};

/// A damaged (truncated) last log segment whose remaining records end *before* the newest
/// recovery point: recovery cuts the torn tail, then restarts the log after the image ("log
/// ends before the recovery point"). It used to destroy the log, including the `.broken` copy
/// of the cut bytes, and report `torn_bytes_cut == 0`, so the loss of the commits after the
/// recovery point went unsaid. Now the cut is reported and the old log is kept aside.
#[test]
fn a_cut_log_tail_is_reported_even_when_the_log_restarts_after_the_image() {
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

    let db = Database::open(dir.path()).expect("open");
    let report = db.recovery_report("app").expect("recover");
    let rows = db.select_all("app", "t").expect("rows").len();
    assert_eq!(rows, 3, "the snapshot's rows are served");
    assert!(
        report.torn_bytes_cut > 0 || !report.rejected.is_empty(),
        "2 acknowledged commits were lost, but the report says nothing: {report:?}"
    );
}
