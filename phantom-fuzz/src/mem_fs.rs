//! [`MemFs`]: a [`FileSystem`] held in memory, so a fuzz target can lay out a log or a whole
//! data directory without touching the disk (tens of thousands of executions per second).
//!
//! It keeps no separate "durable" image: every write is visible at once and `sync_*` always
//! succeeds. Open writers address their file by path, as if each write reopened it; a writer
//! whose file was removed or renamed away gets `NotFound` (the engine never writes through a
//! handle after moving its file, so this difference from POSIX does not matter here).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use phantom_storage::{FileRead, FileSystem, FileWrite};

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: BTreeSet<PathBuf>,
}

/// An in-memory file system. Clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{}: no such file in the in-memory file system",
            path.display()
        ),
    )
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a file (replacing any previous content); its directory is created.
    pub fn insert(&self, path: impl Into<PathBuf>, bytes: Vec<u8>) {
        let path = path.into();
        let mut state = self.lock();
        if let Some(parent) = path.parent() {
            add_dirs(&mut state, parent);
        }
        state.files.insert(path, bytes);
    }

    /// The content of a file, if it exists.
    pub fn get(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).cloned()
    }

    /// Every file with its content, sorted by path.
    pub fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.lock()
            .files
            .iter()
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect()
    }
}

fn add_dirs(state: &mut State, dir: &Path) {
    for ancestor in dir.ancestors() {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        state.dirs.insert(ancestor.to_path_buf());
    }
}

#[derive(Debug)]
struct MemRead(Cursor<Vec<u8>>);

impl Read for MemRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for MemRead {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl FileRead for MemRead {
    fn file_len(&self) -> io::Result<u64> {
        Ok(self.0.get_ref().len() as u64)
    }
}

#[derive(Debug)]
struct MemWrite {
    fs: MemFs,
    path: PathBuf,
    pos: u64,
}

impl MemWrite {
    fn with_file<T>(&self, f: impl FnOnce(&mut Vec<u8>) -> T) -> io::Result<T> {
        let mut state = self.fs.lock();
        let file = state
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        Ok(f(file))
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::other("offset does not fit in memory"))
}

impl Write for MemWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = to_usize(self.pos)?;
        let end = start
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::other("file too large"))?;
        self.with_file(|file| {
            if file.len() < end {
                file.resize(end, 0);
            }
            if let Some(dst) = file.get_mut(start..end) {
                dst.copy_from_slice(buf);
            }
        })?;
        self.pos = end as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileWrite for MemWrite {
    fn sync_data(&mut self) -> io::Result<()> {
        self.with_file(|_| ())
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.with_file(|_| ())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = to_usize(len)?;
        self.with_file(|file| file.resize(len, 0))
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.pos = pos;
        Ok(())
    }
}

impl FileSystem for MemFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        let bytes = self.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(MemRead(Cursor::new(bytes))))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.lock().files.insert(path.to_path_buf(), Vec::new());
        Ok(Box::new(MemWrite {
            fs: self.clone(),
            path: path.to_path_buf(),
            pos: 0,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let len = self.lock().files.get(path).map(Vec::len);
        let len = len.ok_or_else(|| not_found(path))?;
        Ok(Box::new(MemWrite {
            fs: self.clone(),
            path: path.to_path_buf(),
            pos: len as u64,
        }))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        if !self.lock().files.contains_key(path) {
            return Err(not_found(path));
        }
        Ok(Box::new(MemWrite {
            fs: self.clone(),
            path: path.to_path_buf(),
            pos: 0,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let bytes = state.files.remove(from).ok_or_else(|| not_found(from))?;
        state.files.insert(to.to_path_buf(), bytes);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.lock()
            .files
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        add_dirs(&mut self.lock(), path);
        Ok(())
    }

    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        if !state.dirs.contains(path) {
            return Err(not_found(path));
        }
        // BTreeMap order is path order, which for one directory is file-name order.
        Ok(state
            .files
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        Ok(self.lock().files.get(path).map(|b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bytes_are_read_back_and_listed() {
        let fs = MemFs::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).expect("mkdir");
        let mut w = fs.create(&dir.join("b")).expect("create");
        w.write_all(b"hello").expect("write");
        w.seek_to(1).expect("seek");
        w.write_all(b"EL").expect("overwrite");
        w.set_len(4).expect("truncate");
        drop(w);
        fs.insert(dir.join("a"), b"x".to_vec());
        let mut text = String::new();
        fs.open_read(&dir.join("b"))
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "hELl");
        assert_eq!(fs.list_dir(dir).expect("list"), vec!["a", "b"]);
        fs.rename(&dir.join("a"), &dir.join("c")).expect("rename");
        assert_eq!(fs.file_len(&dir.join("a")).expect("len"), None);
        assert_eq!(fs.file_len(&dir.join("c")).expect("len"), Some(1));
        let err = fs.list_dir(Path::new("/nowhere")).expect_err("no such dir");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn appending_writes_at_the_end() {
        let fs = MemFs::new();
        let path = Path::new("/d/f");
        fs.insert(path, b"ab".to_vec());
        fs.open_append(path)
            .expect("append")
            .write_all(b"cd")
            .expect("write");
        assert_eq!(fs.get(path), Some(b"abcd".to_vec()));
        assert!(fs.open_append(Path::new("/d/missing")).is_err());
    }
}
