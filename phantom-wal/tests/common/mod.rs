//! Helpers shared by the integration tests: sample entries, a log opener, and a file system
//! that fails syncs or writes on demand.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use phantom_storage::{
    Column, ColumnType, FileRead, FileSystem, FileWrite, Mutation, Schema, StdFs, Value,
};
use phantom_wal::{LogEntry, OpenReport, Wal, WalOptions};

/// A batch inserting one row `(i, "row i")` into `t`.
pub fn insert(i: u64) -> LogEntry {
    LogEntry::Batch(vec![Mutation::Insert {
        table: "t".into(),
        rows: vec![(
            i,
            vec![Value::Int(i as i64), format!("row {i}").into()].into(),
        )],
    }])
}

/// A batch creating table `t`.
pub fn create_table() -> LogEntry {
    LogEntry::Batch(vec![Mutation::CreateTable {
        table: "t".into(),
        schema: Schema::new(
            "t",
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("name", ColumnType::String),
            ],
        )
        .expect("schema"),
    }])
}

/// Opens log `db` in `dir` on the real file system.
pub fn open(dir: &Path, options: WalOptions) -> (Wal, OpenReport) {
    Wal::open(Arc::new(StdFs), dir, "db", options).expect("open log")
}

/// Options of a log whose segments are not preallocated (they grow as records are appended):
/// the file ends where the last record does.
pub fn not_preallocated() -> WalOptions {
    WalOptions {
        preallocate: false,
        ..WalOptions::default()
    }
}

/// Options with a tiny segment size so tests roll over often.
pub fn tiny_segments() -> WalOptions {
    WalOptions {
        segment_size: 256,
        ..WalOptions::default()
    }
}

/// The real file system, with syncs and writes that fail while a switch is on, and syncs that
/// take `sync_delay_ms` longer (to make a round of group commit last).
#[derive(Debug, Clone, Default)]
pub struct FailingFs {
    pub fail_sync: Arc<AtomicBool>,
    pub fail_write: Arc<AtomicBool>,
    pub sync_delay_ms: Arc<AtomicU64>,
}

#[derive(Debug)]
struct FailingFile {
    inner: Box<dyn FileWrite>,
    fs: FailingFs,
}

impl Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.fs.fail_write.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected write failure"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FileWrite for FailingFile {
    fn sync_data(&mut self) -> io::Result<()> {
        let delay = self.fs.sync_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        if self.fs.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.inner.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        if self.fs.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        self.inner.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.inner.seek_to(pos)
    }
}

impl FileSystem for FailingFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        StdFs.open_read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(FailingFile {
            inner: StdFs.create(path)?,
            fs: self.clone(),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(FailingFile {
            inner: StdFs.open_append(path)?,
            fs: self.clone(),
        }))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(FailingFile {
            inner: StdFs.open_write(path)?,
            fs: self.clone(),
        }))
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
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        StdFs.file_len(path)
    }
}

/// The directory operations of a test `FileSystem` that only wraps files: straight to
/// [`StdFs`].
macro_rules! std_fs_directory_ops {
    () => {
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
    };
}

/// The real file system, counting the bytes read through it.
#[derive(Debug, Clone, Default)]
pub struct CountingFs {
    pub bytes_read: Arc<AtomicU64>,
}

impl CountingFs {
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn FileRead>,
    bytes_read: Arc<AtomicU64>,
}

impl Read for CountingFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl Seek for CountingFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl FileRead for CountingFile {
    fn file_len(&self) -> io::Result<u64> {
        self.inner.file_len()
    }
}

impl FileSystem for CountingFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        Ok(Box::new(CountingFile {
            inner: StdFs.open_read(path)?,
            bytes_read: Arc::clone(&self.bytes_read),
        }))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        StdFs.create(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        StdFs.open_append(path)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        StdFs.open_write(path)
    }
    std_fs_directory_ops!();
}

/// The real file system, recording the most bytes any file had written but not synced —
/// per file, over all its handles: a sync through any handle makes durable what was written
/// through every handle before it started.
#[derive(Debug, Clone, Default)]
pub struct SyncTrackingFs {
    pub max_unsynced: Arc<AtomicU64>,
    unsynced: Arc<Mutex<HashMap<PathBuf, Arc<AtomicU64>>>>,
}

#[derive(Debug)]
struct TrackedFile {
    inner: Box<dyn FileWrite>,
    unsynced: Arc<AtomicU64>,
    max_unsynced: Arc<AtomicU64>,
}

impl TrackedFile {
    fn synced(
        &mut self,
        sync: impl FnOnce(&mut dyn FileWrite) -> io::Result<()>,
    ) -> io::Result<()> {
        let before = self.unsynced.load(Ordering::SeqCst);
        sync(self.inner.as_mut())?;
        self.unsynced.fetch_sub(before, Ordering::SeqCst);
        Ok(())
    }
}

impl Write for TrackedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only bytes of records count: zeros written ahead into a preallocated segment read
        // back as the free space they replace, so a crash that leaves them unsynced is
        // harmless (records are never all zero: a record header starts with a non-zero byte).
        if buf.get(..n).is_some_and(|b| b.iter().any(|&x| x != 0)) {
            let now = self.unsynced.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            self.max_unsynced.fetch_max(now, Ordering::SeqCst);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl FileWrite for TrackedFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.synced(|f| f.sync_data())
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.synced(|f| f.sync_all())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.inner.seek_to(pos)
    }
}

impl SyncTrackingFs {
    pub fn max_unsynced(&self) -> u64 {
        self.max_unsynced.load(Ordering::SeqCst)
    }

    fn track(&self, path: &Path, inner: Box<dyn FileWrite>, fresh: bool) -> Box<dyn FileWrite> {
        let mut files = self.unsynced.lock().unwrap();
        let counter = files.entry(path.to_path_buf()).or_default();
        if fresh {
            counter.store(0, Ordering::SeqCst);
        }
        Box::new(TrackedFile {
            inner,
            unsynced: Arc::clone(counter),
            max_unsynced: Arc::clone(&self.max_unsynced),
        })
    }
}

impl FileSystem for SyncTrackingFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        StdFs.open_read(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.track(path, StdFs.create(path)?, true))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.track(path, StdFs.open_append(path)?, false))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.track(path, StdFs.open_write(path)?, false))
    }
    std_fs_directory_ops!();
}

// Keep the imports used by every test crate that includes this module.
const _: fn(&mut dyn Read, &mut dyn Seek) = |_, _| {};
