//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the targets, so every
//! input the fuzzer ever kept — seeds and finds — stays a regression test in the normal test
//! run. Inputs that still crash an engine crate wait in `fuzz/regressions/<target>/`, replayed
//! by an ignored test until the bug is fixed (then move them into the corpus).

use std::path::{Path, PathBuf};

use phantom_fuzz::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs every file under `root/<target>/` through its target; returns how many ran.
fn replay(root: &Path, target: &str) -> usize {
    let inputs = files(&root.join(target));
    for input in &inputs {
        let data = std::fs::read(input).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| phantom_fuzz::run_target(target, &data));
        match outcome {
            Ok(known) => assert!(known, "no target named {target}"),
            Err(_) => panic!("{target} panicked on {}", input.display()),
        }
    }
    inputs.len()
}

macro_rules! replay_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            let n = replay(&fuzz_dir().join("corpus"), stringify!($name));
            assert!(n >= 5, "the {} corpus has only {n} files", stringify!($name));
        }
    )*};
}

replay_tests!(
    csv_reader,
    binary_reader,
    wal_segment,
    filter_parse,
    recovery_image
);

#[test]
fn every_target_has_a_replay_test_and_a_fuzz_target() {
    assert_eq!(
        TARGETS,
        [
            "csv_reader",
            "binary_reader",
            "wal_segment",
            "filter_parse",
            "recovery_image"
        ]
    );
    for target in TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        let text = std::fs::read_to_string(&source).expect("fuzz target source");
        assert!(
            text.contains(&format!("phantom_fuzz::{target}(")),
            "{} does not call phantom_fuzz::{target}",
            source.display()
        );
    }
    assert!(!phantom_fuzz::run_target("no_such_target", b""));
}

#[test]
fn the_committed_seeds_are_what_the_generator_writes() {
    // WAL-bearing seeds carry a random salt and record times, so only their presence is
    // checked; the other seeds must be byte-identical to a fresh generation.
    for seed in phantom_fuzz::seeds::all() {
        let path = fuzz_dir().join("corpus").join(seed.target).join(&seed.name);
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{} missing ({e}); run phantom-fuzz-seed", path.display()));
        if !matches!(seed.target, "wal_segment" | "recovery_image") {
            assert!(
                committed == seed.bytes,
                "{} differs from the generator; rerun phantom-fuzz-seed",
                path.display()
            );
        }
    }
}

/// Inputs that still crash because of an open engine bug (`fuzz/regressions/<target>/`).
/// File the bug, name the files after it and say so in the `ignore` reason; when it is fixed,
/// move the files into `fuzz/corpus/<target>/`, where the tests above replay them by default.
///
/// Fixed so far (inputs now in the corpus, replayed by default):
/// - `regression_wal_exists_ignores_later_segments_*` (recovery_image): a database whose log
///   had `d.log.000002` but no `d.log` opened, took commits, and was unknown on the next open
///   (`WalFactory::exists` looked only for the first segment);
/// - `regression_log_starts_after_recovery_point_*` (recovery_image): a log whose only segment
///   starts at LSN 4 with no records and no recovery point opened as empty and took commits at
///   LSN 4, 5 …, which the next open refused as a gap; the first open now refuses the gap too.
///
/// No engine bug is open: this test runs (and passes) with an empty folder.
#[test]
fn open_regressions() {
    let root = fuzz_dir().join("regressions");
    for target in TARGETS {
        replay(&root, target);
    }
}

/// The valid seeds really reach the deep end of their targets (the invariant checks after a
/// successful read or open), instead of being refused at the first byte.
#[test]
fn the_valid_seeds_are_accepted_by_the_engine() {
    use std::sync::Arc;

    use phantom_storage::{BinaryFormat, CsvFormat, StorageFormat, Value};
    use phantom_wal::{Wal, WalOptions};

    let corpus = fuzz_dir().join("corpus");
    let read = |target: &str, name: &str| {
        std::fs::read(corpus.join(target).join(name)).expect("seed file")
    };
    for (target, format) in [
        ("csv_reader", &CsvFormat as &dyn StorageFormat),
        ("binary_reader", &BinaryFormat),
    ] {
        for name in ["users", "all_types", "empty"] {
            let bytes = read(target, name);
            let read = format.read(&mut bytes.as_slice());
            assert!(read.is_ok(), "{target}/{name}: {:?}", read.err());
        }
    }
    let original = read("csv_reader", "cpp_original");
    let (_, catalog) = CsvFormat
        .read(&mut original.as_slice())
        .expect("the C++ original's layout reads");
    assert_eq!(catalog.len(), 3);

    let fs = phantom_fuzz::MemFs::new();
    let dir = Path::new("/replay");
    fs.insert(dir.join("d.log"), read("wal_segment", "five_records"));
    let (_, report) = Wal::open(Arc::new(fs), dir, "d", WalOptions::default()).expect("log");
    assert_eq!((report.records, report.last_lsn), (5, 5));

    // The full image recovers the seed database: rows 2, 3 and 4 (1 was deleted).
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = phantom_fuzz::MemFs::new();
    for (name, bytes) in phantom_fuzz::decode_image(&read("recovery_image", "main_snapshot_log")) {
        fs.insert(tmp.path().join(name), bytes.to_vec());
    }
    let db = phantom_core::Database::builder()
        .file_system(Arc::new(fs))
        .data_dir(tmp.path())
        .open()
        .expect("open");
    let rows = db.select_all("d", "users").expect("recovered table");
    assert_eq!(
        rows.rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        vec![Value::Int(2), Value::Int(3), Value::Int(4)]
    );
}
