//! The snapshot store: atomic writes, listing by header, verified loads, retention and
//! temp-file cleanup — tested with a tiny test-only format so the store's behaviour does not
//! depend on the shipped formats.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{FailingFormat, LineFormat, encode, files, sample_catalog, store, t};
use phantom_snapshot::{DEFAULT_RETAIN, Error, SnapshotEntry, SnapshotStore};
use phantom_storage::{ImageKind, StdFs};

#[test]
fn new_validates_the_database_name_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["../x", "a/b", "", "a.b", "1a"] {
        let err = SnapshotStore::new(Arc::new(StdFs), dir.path(), bad).expect_err(bad);
        assert!(
            matches!(
                err,
                Error::Storage(phantom_storage::Error::InvalidName { .. })
            ),
            "{err}"
        );
    }
    let sub = dir.path().join("snapshots");
    let s = SnapshotStore::new(Arc::new(StdFs), &sub, "shop").expect("store");
    assert!(!sub.exists());
    assert!(s.list().expect("list of a missing directory").is_empty());
    assert!(s.retain(DEFAULT_RETAIN).expect("retain").is_empty());
    assert!(s.remove_temp_files().expect("cleanup").is_empty());
    assert!(!sub.exists(), "reading operations create nothing");
}

#[test]
fn write_creates_the_directory_and_one_complete_file_without_temp_leftovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("data").join("snapshots");
    let s = store(&sub, "shop");
    let catalog = sample_catalog(10);
    let info = s
        .write(&LineFormat, 42, &catalog, t(0, 250))
        .expect("write");

    assert_eq!(files(&sub), vec!["shop_snapshot_20231201_120000"]);
    assert_eq!(info.path, sub.join("shop_snapshot_20231201_120000"));
    assert_eq!(info.file_name, "shop_snapshot_20231201_120000");
    assert_eq!(info.lsn, 42);
    assert_eq!(info.created, Some(t(0, 250)));
    assert_eq!(info.format, "lines");
    assert_eq!(info.seq, 0);
    assert_eq!(
        info.size,
        std::fs::metadata(&info.path).expect("stat").len()
    );

    let (meta, back) = s.load(&info).expect("load");
    assert_eq!(back, catalog);
    assert_eq!(meta.database, "shop");
    assert_eq!(meta.lsn, 42);
    assert_eq!(meta.kind, ImageKind::Snapshot);
    assert_eq!(meta.created, Some(t(0, 250)));
}

#[test]
fn list_reports_lsn_time_size_and_format_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let written: Vec<_> = [(7, 0), (3, 60), (9, 61)]
        .into_iter()
        .enumerate()
        .map(|(i, (lsn, secs))| {
            s.write(&LineFormat, lsn, &sample_catalog(i as i64 * 5), t(secs, 0))
                .expect("write")
        })
        .collect();
    let listed: Vec<_> = s
        .list()
        .expect("list")
        .into_iter()
        .map(|e| match e {
            SnapshotEntry::Readable(info) => info,
            SnapshotEntry::Unreadable(u) => panic!("unexpected unreadable {u:?}"),
        })
        .collect();
    assert_eq!(listed, written);
    assert_eq!(
        listed.iter().map(|i| i.lsn).collect::<Vec<_>>(),
        vec![7, 3, 9],
        "listed in name (time) order, whatever the LSNs"
    );
    assert!(listed.windows(2).all(|w| w[0].size < w[1].size));
    assert_eq!(s.latest().expect("latest"), listed.last().cloned());
}

#[test]
fn a_write_that_fails_half_way_leaves_no_file_under_a_snapshot_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let good = s
        .write(&LineFormat, 1, &sample_catalog(3), t(0, 0))
        .expect("write");
    let before = std::fs::read(&good.path).expect("read");

    let err = s
        .write(&FailingFormat, 2, &sample_catalog(100), t(0, 500))
        .expect_err("must fail");
    assert!(
        matches!(&err, Error::Storage(phantom_storage::Error::InFile { path, .. })
            if path.ends_with("shop_snapshot_20231201_120000_001")),
        "{err}"
    );
    assert_eq!(
        files(dir.path()),
        vec![good.file_name.clone()],
        "no partial file, no temp"
    );
    assert_eq!(std::fs::read(&good.path).expect("read"), before);
    assert_eq!(s.list().expect("list").len(), 1);

    // The failed attempt did not use up a name.
    let next = s
        .write(&LineFormat, 2, &sample_catalog(3), t(0, 600))
        .expect("write");
    assert_eq!(next.file_name, "shop_snapshot_20231201_120000_001");
}

#[test]
fn retention_keeps_the_newest_k_and_returns_what_it_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(2);
    let paths: Vec<PathBuf> = (0..8)
        .map(|i| {
            s.write(&LineFormat, i, &catalog, t(i as i64, 0))
                .expect("write")
                .path
        })
        .collect();

    let removed = s.retain(DEFAULT_RETAIN).expect("retain");
    assert_eq!(
        removed,
        paths[..3].to_vec(),
        "the three oldest, oldest first"
    );
    let kept: Vec<PathBuf> = s
        .list()
        .expect("list")
        .iter()
        .map(|e| e.path().to_path_buf())
        .collect();
    assert_eq!(kept, paths[3..].to_vec());

    assert!(
        s.retain(DEFAULT_RETAIN).expect("retain").is_empty(),
        "idempotent"
    );
    assert_eq!(s.retain(1).expect("retain"), paths[3..7].to_vec());
    assert_eq!(
        files(dir.path()),
        vec![paths[7].file_name().expect("name").to_string_lossy()]
    );
    assert_eq!(s.retain(0).expect("retain"), vec![paths[7].clone()]);
    assert!(files(dir.path()).is_empty());
}

#[test]
fn retention_never_trades_a_readable_snapshot_for_an_unreadable_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(2);
    let g0 = s.write(&LineFormat, 1, &catalog, t(0, 0)).expect("write");
    let g1 = s.write(&LineFormat, 2, &catalog, t(1, 0)).expect("write");
    // Two newer files whose headers cannot be read (e.g. damaged by the disk).
    let bad2 = dir.path().join("shop_snapshot_20231201_120002");
    let bad3 = dir.path().join("shop_snapshot_20231201_120003");
    std::fs::write(&bad2, b"\0\0garbage").expect("seed");
    std::fs::write(&bad3, b"").expect("seed");

    // keep = 2 counts readable snapshots only: both good ones stay, and so do the newer bad ones.
    assert!(s.retain(2).expect("retain").is_empty());
    assert_eq!(s.list().expect("list").len(), 4);

    // keep = 1: the newest readable one (g1) stays with the unreadable ones newer than it.
    assert_eq!(s.retain(1).expect("retain"), vec![g0.path.clone()]);
    assert!(g1.path.exists() && bad2.exists() && bad3.exists());

    // A newer readable snapshot makes the unreadable ones old enough to go.
    let g4 = s.write(&LineFormat, 3, &catalog, t(4, 0)).expect("write");
    assert_eq!(s.retain(1).expect("retain"), vec![g1.path, bad2, bad3]);
    assert_eq!(files(dir.path()), vec![g4.file_name]);
}

#[test]
fn unreadable_snapshots_are_listed_with_the_reason_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(2);
    s.write(&LineFormat, 1, &catalog, t(0, 0)).expect("write");
    let other_db = encode(&LineFormat, "elsewhere", 1, &catalog);
    let seeds: [(&str, &[u8]); 4] = [
        ("shop_snapshot_20231201_120001", b"GIF89a not an image"),
        ("shop_snapshot_20231201_120002", b""),
        ("shop_snapshot_20231201_120003", b"PHLINES 1\ndb shop\n"),
        ("shop_snapshot_20231201_120004", &other_db),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.path().join(name), bytes).expect("seed");
    }

    let entries = s.list().expect("list");
    assert_eq!(entries.len(), 5);
    assert!(entries[0].is_readable());
    assert!(
        matches!(entries[1].error(), Some(Error::UnknownFormat { head, .. }) if head.starts_with("\"GIF89a")),
        "{:?}",
        entries[1]
    );
    assert!(
        matches!(entries[2].error(), Some(Error::UnknownFormat { head, .. }) if head == "\"\""),
        "{:?}",
        entries[2]
    );
    assert!(
        matches!(
            entries[3].error(),
            Some(Error::Storage(phantom_storage::Error::InFile { source, .. }))
                if matches!(**source, phantom_storage::Error::Truncated { .. })
        ),
        "{:?}",
        entries[3]
    );
    assert!(
        matches!(entries[4].error(), Some(Error::WrongDatabase { found, expected, .. })
            if found == "elsewhere" && expected == "shop"),
        "{:?}",
        entries[4]
    );
    for entry in &entries[1..] {
        let SnapshotEntry::Unreadable(u) = entry else {
            panic!("expected unreadable: {entry:?}");
        };
        assert_eq!(
            u.size,
            Some(std::fs::metadata(&u.path).expect("stat").len())
        );
        assert!(s.load(entry).is_err(), "{}", u.file_name);
    }
    assert_eq!(
        s.latest().expect("latest").map(|i| i.lsn),
        Some(1),
        "latest skips unreadable files"
    );
}

#[test]
fn load_verifies_the_whole_file_even_when_the_header_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let info = s
        .write(&LineFormat, 5, &sample_catalog(20), t(0, 0))
        .expect("write");
    let bytes = std::fs::read(&info.path).expect("read");
    std::fs::write(&info.path, &bytes[..bytes.len() - 10]).expect("truncate");

    let entries = s.list().expect("list");
    assert!(entries[0].is_readable(), "listing reads only the header");
    let err = s.load(&entries[0]).expect_err("truncated body");
    assert!(
        matches!(&err, Error::Storage(phantom_storage::Error::InFile { path, source })
            if path == &info.path && matches!(**source, phantom_storage::Error::Truncated { .. })),
        "{err}"
    );
}

#[test]
fn load_accepts_an_info_an_entry_or_a_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(4);
    let info = s.write(&LineFormat, 9, &catalog, t(0, 0)).expect("write");
    let entry = s.list().expect("list").pop().expect("one");
    assert_eq!(s.load(&info).expect("info").1, catalog);
    assert_eq!(s.load(&entry).expect("entry").1, catalog);
    assert_eq!(s.load(&info.path).expect("path").1, catalog);
    let missing = s.load(dir.path().join("shop_snapshot_20991231_000000"));
    assert!(
        matches!(missing, Err(Error::Io { op: "opening", .. })),
        "{missing:?}"
    );
}

#[test]
fn a_store_without_the_format_registered_reports_the_file_as_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    store(dir.path(), "shop")
        .write(&LineFormat, 1, &sample_catalog(1), t(0, 0))
        .expect("write");
    let plain = SnapshotStore::new(Arc::new(StdFs), dir.path(), "shop").expect("store");
    let entries = plain.list().expect("list");
    assert!(
        matches!(entries[0].error(), Some(Error::UnknownFormat { .. })),
        "{entries:?}"
    );
}

#[test]
fn temp_cleanup_removes_only_this_databases_snapshot_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let good = s
        .write(&LineFormat, 1, &sample_catalog(1), t(0, 0))
        .expect("write");
    for name in [
        "shop_snapshot_20231201_120001.tmp",
        "shop_snapshot_20231201_120001_002.tmp",
        "shopping_snapshot_20231201_120001.tmp",
        "shop.db.tmp",
        "shop_snapshot_junk.tmp",
    ] {
        std::fs::write(dir.path().join(name), b"PHLINES 1\npartial").expect("seed");
    }
    assert_eq!(
        s.list().expect("list").len(),
        1,
        "temp files are never listed"
    );

    let removed = s.remove_temp_files().expect("cleanup");
    assert_eq!(
        removed,
        vec![
            "shop_snapshot_20231201_120001.tmp",
            "shop_snapshot_20231201_120001_002.tmp"
        ]
    );
    assert_eq!(
        files(dir.path()),
        vec![
            "shop.db.tmp",
            good.file_name.as_str(),
            "shop_snapshot_junk.tmp",
            "shopping_snapshot_20231201_120001.tmp",
        ]
    );
    assert!(s.remove_temp_files().expect("cleanup").is_empty());
}

#[test]
fn concurrent_writers_sharing_a_store_never_collide() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Arc::new(store(dir.path(), "shop"));
    let catalog = sample_catalog(3);
    let handles: Vec<_> = (0..3)
        .map(|w| {
            let s = Arc::clone(&s);
            let catalog = catalog.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    s.write(&LineFormat, w * 100 + i, &catalog, t(0, 0))
                        .expect("write");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let entries = s.list().expect("list");
    assert_eq!(entries.len(), 30);
    assert!(entries.iter().all(SnapshotEntry::is_readable));
    assert_eq!(files(dir.path()).len(), 30, "no temp files left");
}

/// Inode numbers of the snapshot files in `dir`, by name.
#[cfg(unix)]
fn inodes(dir: &std::path::Path) -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    files(dir)
        .into_iter()
        .map(|name| {
            let ino = std::fs::metadata(dir.join(&name)).expect("stat").ino();
            (name, ino)
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn a_snapshot_past_retention_reuses_the_file_retention_removes_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    // The oldest snapshot is the largest: the one written into its file must be cut short.
    let big = sample_catalog(500);
    s.write_retaining(&LineFormat, 1, &big, t(0, 0), 3)
        .expect("write");
    for i in 1..3 {
        s.write_retaining(
            &LineFormat,
            1 + i,
            &sample_catalog(i as i64),
            t(i as i64, 0),
            3,
        )
        .expect("write");
    }
    let before = inodes(dir.path());
    assert_eq!(before.len(), 3);

    let small = sample_catalog(2);
    let (info, removed) = s
        .write_retaining(&LineFormat, 10, &small, t(10, 0), 3)
        .expect("write");
    let after = inodes(dir.path());
    // Still three, the oldest gone, the new one in the oldest one's file.
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[..2], before[1..]);
    assert_eq!(after[2].0, info.file_name);
    assert_eq!(after[2].1, before[0].1, "written into the old file");
    assert!(removed.is_empty(), "nothing left to remove: {removed:?}");
    assert_eq!(
        info.size,
        std::fs::metadata(&info.path).expect("stat").len()
    );
    let (meta, back) = s.load(&info).expect("load");
    assert_eq!((meta.lsn, back), (10, small));
    assert!(files(dir.path()).iter().all(|f| !f.ends_with(".tmp")));

    // The other way round: a larger snapshot into a smaller file just grows it.
    let (info, _) = s
        .write_retaining(&LineFormat, 11, &big, t(11, 0), 3)
        .expect("write");
    assert_eq!(
        inodes(dir.path())[2].1,
        after[0].1,
        "written into the old file"
    );
    assert_eq!(
        info.size,
        std::fs::metadata(&info.path).expect("stat").len()
    );
    assert_eq!(s.load(&info).expect("load").1, big);
}

#[test]
fn no_file_is_reused_while_it_is_the_only_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let first = s
        .write_retaining(&LineFormat, 1, &sample_catalog(3), t(0, 0), 1)
        .expect("write")
        .0;
    // keep = 1: reusing the only snapshot's file would leave none on disk during the write.
    // It is written anew and the old one removed after.
    let (second, removed) = s
        .write_retaining(&LineFormat, 2, &sample_catalog(4), t(1, 0), 1)
        .expect("write");
    assert_eq!(removed, vec![first.path.clone()]);
    assert_eq!(files(dir.path()), vec![second.file_name.clone()]);
    // keep = 2 with one snapshot: nothing past retention, nothing reused or removed.
    let (third, removed) = s
        .write_retaining(&LineFormat, 3, &sample_catalog(5), t(2, 0), 2)
        .expect("write");
    assert!(removed.is_empty());
    assert_eq!(files(dir.path()), vec![second.file_name, third.file_name]);
}
