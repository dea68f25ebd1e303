//! The store with the shipped formats (`CsvFormat`, `BinaryFormat`): one scenario, every
//! format. Files are recognised by their first bytes without registering anything.

mod common;

use std::sync::Arc;

use common::{sample_catalog, t};
use phantom_snapshot::{Error, SnapshotEntry, SnapshotStore};
use phantom_storage::{BinaryFormat, CsvFormat, ImageKind, StdFs, StorageFormat};
use rstest::rstest;

fn plain_store(dir: &std::path::Path) -> SnapshotStore {
    SnapshotStore::new(Arc::new(StdFs), dir, "shop").expect("store")
}

#[rstest]
#[case::csv(&CsvFormat, "csv")]
#[case::binary(&BinaryFormat, "binary")]
fn a_snapshot_round_trips_and_lists_with_its_header(
    #[case] format: &dyn StorageFormat,
    #[case] name: &str,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = plain_store(dir.path());
    let catalog = sample_catalog(50);
    let info = s.write(format, 1234, &catalog, t(0, 0)).expect("write");
    assert_eq!(info.format, name);
    assert_eq!(
        info.size,
        std::fs::metadata(&info.path).expect("stat").len()
    );

    let entries = s.list().expect("list");
    let [SnapshotEntry::Readable(listed)] = entries.as_slice() else {
        panic!("expected one readable snapshot: {entries:?}");
    };
    assert_eq!(listed.lsn, 1234);
    assert_eq!(listed.format, name);
    assert_eq!(listed.size, info.size);
    assert_eq!(listed.created, Some(t(0, 0)));

    let (meta, back) = s.load(listed).expect("load");
    assert_eq!(back, catalog);
    assert_eq!(meta.lsn, 1234);
    assert_eq!(meta.database, "shop");
    assert_eq!(meta.kind, ImageKind::Snapshot);
}

#[rstest]
#[case::csv(&CsvFormat)]
#[case::binary(&BinaryFormat)]
fn a_damaged_or_truncated_snapshot_fails_to_load(#[case] format: &dyn StorageFormat) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = plain_store(dir.path());
    let info = s
        .write(format, 7, &sample_catalog(50), t(0, 0))
        .expect("write");
    let bytes = std::fs::read(&info.path).expect("read");

    let mut flipped = bytes.clone();
    let mid = flipped.len() * 2 / 3;
    flipped[mid] ^= 0x01;
    std::fs::write(&info.path, &flipped).expect("damage");
    let err = s.load(&info).expect_err("flipped bit");
    assert!(matches!(err, Error::Storage(_)), "{err}");

    std::fs::write(&info.path, &bytes[..bytes.len() - 1]).expect("truncate");
    let err = s.load(&info).expect_err("truncated");
    assert!(matches!(err, Error::Storage(_)), "{err}");
}

#[test]
fn one_directory_may_hold_snapshots_in_both_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = plain_store(dir.path());
    let catalog = sample_catalog(5);
    s.write(&CsvFormat, 1, &catalog, t(0, 0)).expect("csv");
    s.write(&BinaryFormat, 2, &catalog, t(0, 0))
        .expect("binary");
    let formats: Vec<(&str, u64)> = s
        .list()
        .expect("list")
        .iter()
        .map(|e| {
            let i = e.info().expect("readable");
            (i.format, i.lsn)
        })
        .collect();
    assert_eq!(formats, vec![("csv", 1), ("binary", 2)]);
    for entry in s.list().expect("list") {
        assert_eq!(s.load(&entry).expect("load").1, catalog);
    }
}
