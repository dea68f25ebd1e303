//! Durability and snapshots as seen through `Database`: reopen recovers every commit,
//! automatic snapshots fire on the policy and hold exactly the state at their LSN, snapshot
//! names never collide, the log stays bounded, the directory lock keeps a second opener out.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use phantom_core::{
    Column, ColumnType, Database, Error, Filter, Literal, Row, SyncMode, Value, WalFactory,
};
use phantom_snapshot::SnapshotStore;
use phantom_storage::{BinaryFormat, StdFs};

fn table(db: &Database, name: &str) {
    db.ensure_database(name).unwrap();
    db.create_table(
        name,
        "t",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("v", ColumnType::String),
        ],
    )
    .unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn database_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Database>();
}

#[test]
fn reopening_recovers_every_committed_change() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let db = Database::open(dir.path()).unwrap();
        table(&db, "d");
        for i in 0..50 {
            db.insert(
                "d",
                "t",
                [
                    ("id", Literal::from(i)),
                    ("v", format!("row {i}, \"quoted\"\n").into()),
                ],
            )
            .unwrap();
        }
        db.update(
            "d",
            "t",
            &Filter::parse("id < 10").unwrap(),
            [("v", Literal::Null)],
        )
        .unwrap();
        db.delete("d", "t", &Filter::parse("id >= 40").unwrap())
            .unwrap();
        db.transaction("d", |tx| {
            tx.create_table("u", vec![Column::new("x", ColumnType::Float)])?;
            tx.insert("u", [("x", 1.5)])?;
            tx.drop_table("t")?;
            tx.create_table("t", vec![Column::new("id", ColumnType::Int)])?;
            tx.insert("t", [("id", 7)])?;
            Ok(())
        })
        .unwrap();
        (
            db.select_all("d", "t").unwrap(),
            db.select_all("d", "u").unwrap(),
        )
    };
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(
        (
            db.select_all("d", "t").unwrap(),
            db.select_all("d", "u").unwrap()
        ),
        expected
    );
    let report = db.recovery_report("d").unwrap();
    assert_eq!(report.recovery_point, None);
    assert_eq!(report.replay.records, report.final_lsn);
}

#[test]
fn a_failed_transaction_applies_nothing_and_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    table(&db, "d");
    let lsn_before = db.stats().unwrap().databases[0].last_lsn;
    let err = db
        .transaction("d", |tx| {
            tx.insert("t", [("id", 1)])?;
            tx.insert("t", [("id", 1)])?; // duplicate key
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage(phantom_storage::Error::DuplicateKey { .. })
        ),
        "{err}"
    );
    assert!(db.select_all("d", "t").unwrap().is_empty());
    assert_eq!(db.stats().unwrap().databases[0].last_lsn, lsn_before);
}

#[test]
fn interval_five_and_twelve_operations_give_exactly_two_snapshots_holding_the_state_at_their_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder().data_dir(dir.path()).open().unwrap();
    db.set_snapshot_interval(5);
    table(&db, "d"); // operations 1 (create database) and 2 (create table)
    for i in 0..10 {
        db.insert("d", "t", [("id", Literal::from(i)), ("v", "x".into())])
            .unwrap(); // operations 3..=12
    }
    db.wait_for_snapshots("d").unwrap();
    let store = SnapshotStore::new(Arc::new(StdFs), dir.path(), "d").unwrap();
    let snaps: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.info().cloned().unwrap())
        .collect();
    assert_eq!(snaps.iter().map(|s| s.lsn).collect::<Vec<_>>(), vec![5, 10]);
    for s in &snaps {
        let (meta, catalog) = store.load(&s.path).unwrap();
        assert_eq!(meta.lsn, s.lsn);
        // LSN 1 created the database, 2 the table, every later LSN inserted one row.
        assert_eq!(catalog.table("t").unwrap().len() as u64, s.lsn - 2);
    }
}

#[test]
fn fifty_manual_snapshots_taken_as_fast_as_possible_are_fifty_distinct_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .data_dir(dir.path())
        .retain_snapshots(100)
        .snapshots_enabled(false)
        .open()
        .unwrap();
    table(&db, "d");
    let mut taken = Vec::new();
    for i in 0..50 {
        db.insert("d", "t", [("id", i)]).unwrap();
        taken.push(db.create_snapshot("d").unwrap());
    }
    let listed = db.list_snapshots("d").unwrap();
    assert_eq!(listed.len(), 50);
    let names: Vec<&str> = listed.iter().map(|s| s.file_name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "names are unique and sort in creation order");
    assert_eq!(
        listed.iter().map(|s| s.lsn).collect::<Vec<_>>(),
        taken.iter().map(|s| s.lsn).collect::<Vec<_>>()
    );
    assert!(names.iter().all(|n| n.starts_with("d_snapshot_")));
}

#[test]
fn recovery_starts_from_the_newest_snapshot_and_replays_only_the_log_after_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::builder()
            .data_dir(dir.path())
            .snapshot_format(Arc::new(BinaryFormat))
            .snapshots_enabled(false)
            .open()
            .unwrap();
        table(&db, "d");
        for i in 0..20 {
            db.insert("d", "t", [("id", i)]).unwrap();
        }
        let snap = db.create_snapshot("d").unwrap();
        assert_eq!(snap.lsn, 22);
        assert_eq!(snap.format, "binary");
        for i in 20..25 {
            db.insert("d", "t", [("id", i)]).unwrap();
        }
    }
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.select_all("d", "t").unwrap().len(), 25);
    let report = db.recovery_report("d").unwrap();
    assert!(
        report
            .recovery_point
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("d_snapshot_")
    );
    assert_eq!(report.recovery_lsn, 22);
    assert_eq!(report.replay.records, 5);
    assert_eq!(report.final_lsn, 27);
}

#[test]
fn the_log_stays_bounded_under_a_steady_write_load_and_every_snapshot_rolls_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = WalFactory::new(SyncMode::Never);
    wal.options.segment_size = 256 << 10;
    let db = Database::builder()
        .data_dir(dir.path())
        .log_factory(Arc::new(wal))
        .snapshot_format(Arc::new(BinaryFormat))
        .open()
        .unwrap();
    db.set_snapshot_interval(1000);
    table(&db, "d");
    let log_bytes = |dir: &Path| -> u64 {
        files(dir)
            .iter()
            .filter(|f| f.starts_with("d.log"))
            .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
            .sum()
    };
    let mut max_log = 0;
    for i in 0..100_000i64 {
        if i % 3 == 2 {
            db.delete("d", "t", &Filter::eq("id", i - 1)).unwrap();
        } else {
            db.insert(
                "d",
                "t",
                [("id", Literal::from(i)), ("v", "some payload".into())],
            )
            .unwrap();
        }
        if i % 5000 == 0 {
            db.wait_for_snapshots("d").unwrap();
            max_log = max_log.max(log_bytes(dir.path()));
        }
    }
    db.wait_for_snapshots("d").unwrap();
    db.sync("d").unwrap();
    let final_rows = db.select_all("d", "t").unwrap();
    // 100,000 operations write several MiB of log; retention of 5 snapshots every 1,000
    // operations keeps only the last few thousand records' worth of segments.
    assert!(max_log < 2 << 20, "log grew to {max_log} bytes");
    drop(db);
    // Every retained snapshot rolls forward to the same final state.
    let store = SnapshotStore::new(Arc::new(StdFs), dir.path(), "d").unwrap();
    let snaps = store.list().unwrap();
    assert_eq!(snaps.len(), 5);
    for s in &snaps {
        let keep = s.path().to_path_buf();
        for other in &snaps {
            if other.path() != keep {
                std::fs::rename(other.path(), other.path().with_extension("hidden")).unwrap();
            }
        }
        let db = Database::open(dir.path()).unwrap();
        assert_eq!(
            db.select_all("d", "t").unwrap(),
            final_rows,
            "from {}",
            keep.display()
        );
        assert_eq!(
            db.recovery_report("d").unwrap().recovery_point.as_deref(),
            Some(keep.as_path())
        );
        drop(db);
        for other in &snaps {
            if other.path() != keep {
                std::fs::rename(other.path().with_extension("hidden"), other.path()).unwrap();
            }
        }
    }
}

#[test]
fn a_second_open_of_the_directory_fails_with_locked_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = Database::open(dir.path()).unwrap();
    let err = Database::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, Error::Locked { pid: Some(p), .. } if p == std::process::id()),
        "{err}"
    );
    drop(first);
    Database::open(dir.path()).unwrap();
    assert!(
        dir.path().join("LOCK").exists(),
        "the lock file is never deleted"
    );
}

#[test]
fn drop_database_removes_all_its_files_and_only_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    table(&db, "a");
    table(&db, "ab");
    db.save_to_disk("a").unwrap();
    db.create_snapshot("a").unwrap();
    db.save_to_disk("ab").unwrap();
    db.drop_database("a").unwrap();
    assert_eq!(files(dir.path()), vec!["LOCK", "ab.db", "ab.log"]);
    assert!(matches!(
        db.select_all("a", "t"),
        Err(Error::UnknownDatabase { .. })
    ));
    assert_eq!(db.list_databases().unwrap(), vec!["ab"]);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.list_databases().unwrap(), vec!["ab"]);
}

#[test]
fn custom_log_entries_take_an_lsn_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    table(&db, "d");
    let lsn = db
        .append_transaction_log(
            "d",
            "MAINTENANCE",
            [("user", "admin"), ("action", "maintenance")],
        )
        .unwrap();
    assert_eq!(lsn, 3);
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.recovery_report("d").unwrap().final_lsn, 3);
    assert_eq!(db.insert("d", "t", [("id", 1)]).unwrap(), 1);
    assert_eq!(db.stats().unwrap().databases[0].last_lsn, 4);
}

#[test]
fn names_are_validated_before_any_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = Database::builder().data_dir(&data).build().unwrap();
    for bad in ["../x", "a/b", "", "a\0b", "a:b", &"x".repeat(65)] {
        let err = db.create_database(bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Storage(phantom_storage::Error::InvalidName { .. })
            ),
            "{bad:?}: {err}"
        );
    }
    assert!(!data.exists(), "no directory was created");
    assert!(matches!(
        Database::builder().data_dir("").build(),
        Err(Error::InvalidDataDirectory { .. })
    ));
    assert!(matches!(
        db.set_data_directory(""),
        Err(Error::InvalidDataDirectory { .. })
    ));
}

#[test]
fn stats_and_health_report_real_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    table(&db, "d");
    db.insert("d", "t", [("id", 1)]).unwrap();
    db.insert("d", "t", [("id", 2)]).unwrap();
    let stats = db.stats().unwrap();
    assert_eq!((stats.tables, stats.rows), (1, 2));
    assert_eq!(stats.databases[0].last_lsn, 4);
    assert!(stats.bytes_on_disk > 0);
    assert!(stats.databases[0].last_snapshot.is_none());
    db.create_snapshot("d").unwrap();
    assert_eq!(
        db.stats().unwrap().databases[0]
            .last_snapshot
            .as_ref()
            .map(|s| s.lsn),
        Some(4)
    );
    assert!(db.health().healthy);
    assert_eq!(
        db.select("d", "t", &Filter::eq("id", 2)).unwrap().rows,
        vec![vec![Value::Int(2), Value::Null]]
    );
}

#[test]
fn eight_threads_committing_share_fsyncs_and_every_acknowledged_commit_survives_in_lsn_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::open(dir.path()).unwrap());
    table(&db, "d");
    let before = db.stats().unwrap().databases[0].log.syncs;
    let threads: Vec<_> = (0..8i64)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                (0..40i64)
                    .map(|i| {
                        let id = t * 1000 + i;
                        db.insert("d", "t", [("id", Literal::from(id)), ("v", "x".into())])
                            .unwrap();
                        id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acknowledged: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let syncs = db.stats().unwrap().databases[0].log.syncs - before;
    assert!(
        syncs < acknowledged.len() as u64,
        "{syncs} fsyncs for {} commits: no group commit",
        acknowledged.len()
    );
    drop(db);
    let db = Database::open(dir.path()).unwrap();
    let rows = db.select_all("d", "t").unwrap();
    assert_eq!(rows.len(), acknowledged.len());
    // Row ids are assigned in commit (LSN) order: each thread's rows appear in its own order.
    for t in 0..8i64 {
        let mine: Vec<i64> = rows
            .rows
            .iter()
            .filter_map(|r| match r[0] {
                Value::Int(id) if id / 1000 == t => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(mine, (t * 1000..t * 1000 + 40).collect::<Vec<_>>());
    }
}

#[test]
fn listing_databases_reads_no_database_so_one_corrupt_log_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        table(&db, "broken");
        table(&db, "fine");
        for i in 0..20 {
            db.insert("broken", "t", [("id", Literal::from(i)), ("v", "x".into())])
                .unwrap();
        }
    }
    let log = dir.path().join("broken.log");
    let mut bytes = std::fs::read(&log).unwrap();
    // A byte in the middle of the records (the segment is preallocated: zeros follow them).
    let used = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let mid = used / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&log, bytes).unwrap();

    let db = Database::open(dir.path()).unwrap();
    assert_eq!(db.list_databases().unwrap(), vec!["broken", "fine"]);
    let err = db.select_all("broken", "t").unwrap_err();
    assert!(err.to_string().contains("broken.log"), "{err}");
    assert!(db.select_all("fine", "t").unwrap().is_empty());
}

#[test]
fn positional_bulk_inserts_are_atomic_typed_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        table(&db, "d");
        let ids = db
            .insert_values(
                "d",
                "t",
                (1..=100).map(|i| vec![Value::Int(i), Value::from(format!("v{i}"))]),
            )
            .unwrap();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>());
        // One bad row refuses the whole batch: a duplicate key, a wrong type, a short row.
        for bad in [
            vec![Value::Int(5), Value::from("dup")],
            vec![Value::from("x"), Value::from("wrong type")],
            vec![Value::Int(500)],
        ] {
            let batch = vec![vec![Value::Int(200), Value::from("ok")], bad];
            assert!(db.insert_values("d", "t", batch).is_err());
        }
        assert_eq!(db.select_all("d", "t").unwrap().len(), 100);
    }
    let db = Database::open(dir.path()).unwrap();
    let rows = db.select_all("d", "t").unwrap();
    assert_eq!(rows.len(), 100);
    assert_eq!(rows.get(99, "v"), Some(&Value::from("v100")));
    assert!(
        db.select("d", "t", &Filter::eq("id", 200))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bulk_inserts_take_shared_rows_without_changing_the_callers_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    db.ensure_database("d").unwrap();
    db.create_table(
        "d",
        "t",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("score", ColumnType::Float),
        ],
    )
    .unwrap();
    // An int in the float column is widened in the table, and the row the caller still holds
    // keeps its int.
    let shared: Row = vec![Value::Int(1), Value::Int(7)].into();
    db.insert_values("d", "t", [shared.clone()]).unwrap();
    assert_eq!(&shared[..], &[Value::Int(1), Value::Int(7)]);
    let rows = db.select_all("d", "t").unwrap();
    assert_eq!(rows.get(0, "score"), Some(&Value::Float(7.0)));
    // A shared row that does not fit is refused like any other.
    let bad: Row = vec![Value::Int(2), Value::from("x")].into();
    let _keep = bad.clone();
    assert!(db.insert_values("d", "t", [bad]).is_err());
    assert_eq!(db.select_all("d", "t").unwrap().len(), 1);
}

/// Binary snapshots, noting the nice value of every thread that encodes one.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Debug, Default)]
struct NiceRecordingFormat {
    seen: std::sync::Mutex<Vec<i32>>,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl phantom_storage::StorageFormat for NiceRecordingFormat {
    fn name(&self) -> &'static str {
        BinaryFormat.name()
    }
    fn detect(&self, head: &[u8]) -> bool {
        BinaryFormat.detect(head)
    }
    fn write(
        &self,
        meta: &phantom_storage::ImageMeta,
        catalog: &phantom_storage::Catalog,
        out: &mut dyn std::io::Write,
    ) -> phantom_storage::Result<()> {
        let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        self.seen.lock().unwrap().push(nice);
        BinaryFormat.write(meta, catalog, out)
    }
    fn read(
        &self,
        input: &mut dyn std::io::Read,
    ) -> phantom_storage::Result<(phantom_storage::ImageMeta, phantom_storage::Catalog)> {
        BinaryFormat.read(input)
    }
    fn read_meta(
        &self,
        input: &mut dyn std::io::Read,
    ) -> phantom_storage::Result<phantom_storage::ImageMeta> {
        BinaryFormat.read_meta(input)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn snapshots_are_encoded_at_nice_19_and_the_caller_keeps_its_priority() {
    let nice_here =
        || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
    let before = nice_here();
    let format = Arc::new(NiceRecordingFormat::default());
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .data_dir(dir.path())
        .snapshot_format(format.clone())
        .open()
        .unwrap();
    table(&db, "d");
    db.insert("d", "t", [("id", Literal::from(1)), ("v", "x".into())])
        .unwrap();
    let manual = db.create_snapshot("d").unwrap();
    assert_eq!(nice_here(), before, "the caller's priority must not change");
    // An automatic snapshot, written by the background worker.
    db.set_snapshot_interval(1);
    db.insert("d", "t", [("id", Literal::from(2)), ("v", "y".into())])
        .unwrap();
    db.wait_for_snapshots("d").unwrap();
    let seen = format.seen.lock().unwrap().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.iter().all(|n| *n == 19), "{seen:?}");
    // Both snapshots are complete, durable images like any other.
    let store = SnapshotStore::new(Arc::new(StdFs), dir.path(), "d").unwrap();
    let (meta, catalog) = store.load(&manual.path).unwrap();
    assert_eq!(meta.lsn, manual.lsn);
    assert_eq!(catalog.table("t").unwrap().len(), 1);
    let newest = store.list().unwrap().pop().unwrap();
    let (_, catalog) = store.load(newest.path()).unwrap();
    assert_eq!(catalog.table("t").unwrap().len(), 2);
}
