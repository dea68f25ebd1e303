//! I/O failures injected through the `FileSystem` seam: every failure surfaces as an error
//! naming the operation and the file, and never leaves a partial file under a snapshot name.

mod common;

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{LineFormat, files, sample_catalog, t};
use phantom_snapshot::{Error, SnapshotStore};
use phantom_storage::{FileRead, FileSystem, FileWrite, StdFs};

/// The real file system, except that the operation named in `fail` returns an error. It notes
/// the file operations it is asked for, in order, with the file name.
#[derive(Debug, Default)]
struct FaultFs {
    fail: Mutex<Option<&'static str>>,
    ops: Mutex<Vec<String>>,
}

impl FaultFs {
    fn set(&self, op: Option<&'static str>) {
        *self.fail.lock().expect("lock") = op;
    }
    fn note(&self, op: &str, path: &Path) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        self.ops.lock().expect("lock").push(format!("{op} {name}"));
    }
    fn take_ops(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().expect("lock"))
    }
    fn check(&self, op: &'static str) -> io::Result<()> {
        if *self.fail.lock().expect("lock") == Some(op) {
            Err(io::Error::other(format!("injected {op} failure")))
        } else {
            Ok(())
        }
    }
}

impl FileSystem for FaultFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        self.check("open_read")?;
        StdFs.open_read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.note("create", path);
        self.check("create")?;
        StdFs.create(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        StdFs.open_append(path)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.note("open_write", path);
        StdFs.open_write(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.note("rename", from);
        self.check("rename")?;
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.note("remove_file", path);
        self.check("remove_file")?;
        StdFs.remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check("create_dir_all")?;
        StdFs.create_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.ops.lock().expect("lock").push("sync_dir".to_owned());
        self.check("sync_dir")?;
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.check("list_dir")?;
        StdFs.list_dir(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        StdFs.file_len(path)
    }
}

fn setup(dir: &Path) -> (Arc<FaultFs>, SnapshotStore) {
    let fs = Arc::new(FaultFs::default());
    let store = SnapshotStore::new(fs.clone(), dir, "shop")
        .expect("store")
        .with_format(Arc::new(LineFormat));
    (fs, store)
}

#[test]
fn a_failed_create_or_rename_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fs, s) = setup(dir.path());
    for op in ["create", "rename"] {
        fs.set(Some(op));
        let err = s
            .write(&LineFormat, 1, &sample_catalog(5), t(0, 0))
            .expect_err(op);
        assert!(
            matches!(&err, Error::Storage(phantom_storage::Error::InFile { path, .. })
                if path.ends_with("shop_snapshot_20231201_120000")),
            "{op}: {err}"
        );
        assert!(
            files(dir.path()).is_empty(),
            "{op}: {:?}",
            files(dir.path())
        );
    }
}

#[test]
fn a_failed_directory_sync_is_reported_so_the_snapshot_is_not_trusted_as_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fs, s) = setup(dir.path());
    fs.set(Some("sync_dir"));
    let err = s
        .write(&LineFormat, 1, &sample_catalog(5), t(0, 0))
        .expect_err("sync_dir fails");
    assert!(
        err.to_string().contains("injected sync_dir failure"),
        "{err}"
    );
}

#[test]
fn a_missing_directory_that_cannot_be_created_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("snaps");
    let (fs, s) = setup(&sub);
    fs.set(Some("create_dir_all"));
    let err = s
        .write(&LineFormat, 1, &sample_catalog(1), t(0, 0))
        .expect_err("mkdir fails");
    assert!(
        matches!(&err, Error::Io { op: "creating directory", path, .. } if path == &sub),
        "{err}"
    );
}

#[test]
fn listing_and_retention_failures_name_the_operation_and_keep_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fs, s) = setup(dir.path());
    for i in 0..3 {
        s.write(&LineFormat, i, &sample_catalog(1), t(i as i64, 0))
            .expect("write");
    }

    fs.set(Some("list_dir"));
    let err = s.list().expect_err("list fails");
    assert!(
        matches!(&err, Error::Io { op: "listing", path, .. } if path == dir.path()),
        "{err}"
    );

    fs.set(Some("remove_file"));
    let err = s.retain(1).expect_err("remove fails");
    assert!(matches!(&err, Error::Io { op: "removing", .. }), "{err}");
    assert_eq!(files(dir.path()).len(), 3);

    fs.set(Some("open_read"));
    let entries = s.list().expect("list still works");
    assert!(
        entries
            .iter()
            .all(|e| matches!(e.error(), Some(Error::Io { op: "opening", .. }))),
        "an unopenable snapshot is listed as unreadable: {entries:?}"
    );

    fs.set(None);
    assert_eq!(s.retain(1).expect("retain").len(), 2);
}

#[test]
fn a_failure_while_reusing_an_old_snapshots_file_leaves_the_newer_snapshots_and_no_temp_file() {
    for op in ["sync_dir", "rename"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (fs, s) = setup(dir.path());
        for i in 0..3 {
            s.write_retaining(&LineFormat, i + 1, &sample_catalog(3), t(i as i64, 0), 3)
                .expect("write");
        }
        let before = files(dir.path());
        // The next write reuses the oldest file: fail the directory sync after it is renamed
        // away, or the rename itself.
        fs.set(Some(op));
        s.write_retaining(&LineFormat, 9, &sample_catalog(4), t(9, 0), 3)
            .expect_err(op);
        fs.set(None);
        let after = files(dir.path());
        assert!(
            after.iter().all(|f| !f.ends_with(".tmp")),
            "{op}: {after:?}"
        );
        // The two newer snapshots are untouched and load; at most the oldest (which retention
        // was about to remove) is gone.
        assert!(after.len() >= 2, "{op}: {after:?}");
        assert_eq!(after[after.len() - 2..], before[1..], "{op}");
        for entry in s.list().expect("list") {
            s.load(entry.path()).expect("loads");
        }
    }
}

#[test]
fn a_reused_file_leaves_its_old_name_durably_before_a_byte_of_it_is_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fs, s) = setup(dir.path());
    for i in 0..2 {
        s.write_retaining(&LineFormat, i + 1, &sample_catalog(3), t(i as i64, 0), 2)
            .expect("write");
    }
    let oldest = files(dir.path())[0].clone();
    fs.take_ops();
    let (info, removed) = s
        .write_retaining(&LineFormat, 9, &sample_catalog(4), t(9, 0), 2)
        .expect("write");
    assert!(removed.is_empty());
    let tmp = format!("{}.tmp", info.file_name);
    // Renamed to the temp name, and that rename made durable, before the file is opened for
    // writing: a crash can never bring the old name back over half-overwritten bytes. Then
    // the usual end: rename over the new name, directory fsync. Nothing is deleted.
    assert_eq!(
        fs.take_ops(),
        vec![
            format!("rename {oldest}"),
            "sync_dir".to_owned(),
            format!("open_write {tmp}"),
            format!("rename {tmp}"),
            "sync_dir".to_owned(),
        ]
    );
}
