//! Snapshot files are handed to the device while they are written (`WriteBack`), not all in
//! their final fsync: the store asks its files for write-back in order, chunk by chunk.

mod common;

use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{sample_catalog, t};
use phantom_snapshot::SnapshotStore;
use phantom_storage::{BinaryFormat, FileRead, FileSystem, FileWrite, StdFs, WriteBack};

/// `(offset, len, wait)` of every write-back hint, in order.
type Hints = Arc<Mutex<Vec<(u64, u64, bool)>>>;

/// The real file system, noting the write-back hints its files get.
#[derive(Debug, Default)]
struct HintFs {
    hints: Hints,
}

#[derive(Debug)]
struct HintFile {
    inner: Box<dyn FileWrite>,
    hints: Hints,
}

impl Write for HintFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FileWrite for HintFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.inner.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.inner.seek_to(pos)
    }
    fn write_back(&mut self, offset: u64, len: u64, wait: bool) -> io::Result<()> {
        self.hints.lock().expect("lock").push((offset, len, wait));
        self.inner.write_back(offset, len, wait)
    }
}

impl HintFs {
    fn wrap(&self, file: io::Result<Box<dyn FileWrite>>) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(HintFile {
            inner: file?,
            hints: Arc::clone(&self.hints),
        }))
    }
    fn take(&self) -> Vec<(u64, u64, bool)> {
        std::mem::take(&mut *self.hints.lock().expect("lock"))
    }
}

impl FileSystem for HintFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        StdFs.open_read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.wrap(StdFs.create(path))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.wrap(StdFs.open_append(path))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.wrap(StdFs.open_write(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        StdFs.file_len(path)
    }
}

#[test]
fn a_snapshot_is_written_back_chunk_by_chunk_as_it_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(HintFs::default());
    let store = SnapshotStore::new(fs.clone(), dir.path(), "shop").expect("store");
    let catalog = sample_catalog(20_000);
    let info = store
        .write(&BinaryFormat, 7, &catalog, t(0, 0))
        .expect("write");

    let chunk = WriteBack::SNAPSHOT.chunk;
    let full_chunks = info.size / chunk;
    assert!(
        full_chunks >= 2,
        "the image spans chunks: {} bytes",
        info.size
    );
    // Each full chunk started in order; from the second on, the one before it waited for.
    let mut expected = Vec::new();
    for i in 0..full_chunks {
        expected.push((i * chunk, chunk, false));
        if i > 0 {
            expected.push(((i - 1) * chunk, chunk, true));
        }
    }
    assert_eq!(fs.take(), expected);
    // And the file is the snapshot, whole.
    let (meta, back) = store.load(&info.path).expect("load");
    assert_eq!((meta.lsn, back), (7, catalog));
}

#[test]
fn without_write_back_the_final_fsync_does_it_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fs = Arc::new(HintFs::default());
    let store = SnapshotStore::new(fs.clone(), dir.path(), "shop")
        .expect("store")
        .with_write_back(None);
    let info = store
        .write(&BinaryFormat, 7, &sample_catalog(20_000), t(0, 0))
        .expect("write");
    assert!(info.size > 2 * WriteBack::SNAPSHOT.chunk);
    assert_eq!(fs.take(), Vec::new());
}
