//! A crash at every step of writing a snapshot (and the main file): while writing the temp
//! file, before its fsync, before the rename, before the directory fsync, after it. Each
//! case must recover every acknowledged commit, and never load a partial image.

use std::path::Path;
use std::sync::Arc;

use phantom_core::{Column, ColumnType, Database, Literal, SyncMode, WalFactory};
use phantom_sim::{FaultFs, FaultKind, FaultPlan};
use phantom_storage::{BinaryFormat, CsvFormat, FileSystem, StorageFormat};

fn open(
    fs: &FaultFs,
    dir: &Path,
    format: Arc<dyn StorageFormat>,
) -> phantom_core::Result<Database> {
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    // Preallocated like the default, but small: the in-memory file system holds every byte.
    let mut log = WalFactory::new(SyncMode::Always);
    log.options.segment_size = 64 << 10;
    Database::builder()
        .data_dir(dir)
        .file_system(fs)
        .log_factory(Arc::new(log))
        .snapshot_format(format)
        .snapshots_enabled(false)
        .open()
}

fn ids(db: &Database) -> Vec<i64> {
    db.select_all("d", "t")
        .expect("select")
        .rows
        .iter()
        .map(|r| match r[0] {
            phantom_core::Value::Int(i) => i,
            _ => unreachable!(),
        })
        .collect()
}

fn crash_at_every_step(format: Arc<dyn StorageFormat>, save_main: bool) {
    let mut step = 1;
    loop {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let fs = FaultFs::new(step);
        fs.create_dir_all(dir).expect("mkdir");
        {
            let db = open(&fs, dir, Arc::clone(&format)).expect("open");
            db.create_database("d").expect("create");
            db.create_table(
                "d",
                "t",
                vec![Column::new("id", ColumnType::Int).primary_key()],
            )
            .expect("table");
            for i in 0..200 {
                db.insert("d", "t", [("id", Literal::from(i))])
                    .expect("insert");
            }
            db.create_snapshot("d").expect("first snapshot");
            for i in 200..300 {
                db.insert("d", "t", [("id", Literal::from(i))])
                    .expect("insert");
            }
            // Power fails at the `step`-th mutating operation of the second image's write.
            fs.arm(FaultPlan {
                at_op: step,
                kind: FaultKind::PowerLoss,
                persistent: true,
                include_reads: false,
            });
            let written = if save_main {
                db.save_to_disk("d").map(drop)
            } else {
                db.create_snapshot("d").map(drop)
            };
            if written.is_ok() && !fs.fault_fired() {
                // The write finished before the fault: every step has been covered.
                assert!(
                    step > 3,
                    "the image write has at least a create, a write and syncs"
                );
                return;
            }
        }
        fs.disarm();
        fs.crash(step);
        let db = open(&fs, dir, Arc::clone(&format)).expect("reopen after the crash");
        assert_eq!(
            ids(&db),
            (0..300).collect::<Vec<_>>(),
            "step {step}: every acknowledged commit"
        );
        let report = db.recovery_report("d").expect("report");
        assert!(
            report.rejected.is_empty(),
            "step {step}: a partial image was never under a real name: {report:?}"
        );
        assert!(
            !fs.file_names(dir).iter().any(|n| n.ends_with(".tmp")),
            "step {step}: the temp file is cleaned on open"
        );
        step += 1;
        assert!(step < 10_000, "never finished");
    }
}

#[test]
fn a_crash_at_each_step_of_a_csv_snapshot_loses_nothing_and_loads_no_partial_file() {
    crash_at_every_step(Arc::new(CsvFormat), false);
}

#[test]
fn a_crash_at_each_step_of_a_binary_snapshot_loses_nothing_and_loads_no_partial_file() {
    crash_at_every_step(Arc::new(BinaryFormat), false);
}

#[test]
fn a_crash_at_each_step_of_save_to_disk_loses_nothing_and_loads_no_partial_file() {
    crash_at_every_step(Arc::new(CsvFormat), true);
}
