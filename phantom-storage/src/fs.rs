//! The file-system seam: every file operation of the engine goes through [`FileSystem`], so
//! tests can swap in a file system that injects faults or simulates crashes.
//!
//! [`StdFs`] is the real implementation. [`atomic_write`] is the one way whole files (main
//! files, snapshots) are written: temp file in the same directory, write, fsync, rename over
//! the target, fsync the directory. A crash at any point leaves either the old file or the new
//! one under the target name, never a mix; a stray temp file (ending in [`TEMP_SUFFIX`]) may be
//! left behind and is removed by whoever opens the directory next.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Suffix of temporary files written by [`atomic_write`].
pub const TEMP_SUFFIX: &str = ".tmp";

/// A file opened for reading.
pub trait FileRead: Read + Seek + Send + fmt::Debug {
    /// Current length of the file in bytes.
    fn file_len(&self) -> io::Result<u64>;
}

/// A file opened for writing.
pub trait FileWrite: Write + Send + fmt::Debug {
    /// Makes the file's data durable (fdatasync): after Ok, every byte written before is on
    /// stable storage, and so is the file size.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes data and metadata durable (fsync).
    fn sync_all(&mut self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Moves the write position (for writers that overwrite preallocated space).
    fn seek_to(&mut self, pos: u64) -> io::Result<()>;
}

/// Every file-system operation the engine performs.
///
/// Contract: a file created, renamed or removed is durable in its directory only after
/// `sync_dir` on that directory returns Ok.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>>;
    /// Creates a file (truncating an existing one) for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Opens an existing file for writing at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Opens an existing file for writing at position 0 without truncating it.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Names of the regular files in a directory, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Length of a file, or `None` when it does not exist.
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>>;
}

/// The real file system (`std::fs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl Read for StdFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for StdFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl Write for StdFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl FileRead for StdFile {
    fn file_len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl FileWrite for StdFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.0.seek(io::SeekFrom::Start(pos)).map(drop)
    }
}

impl FileSystem for StdFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        Ok(Box::new(StdFile(File::open(path)?)))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(StdFile(File::create(path)?)))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(StdFile(
            OpenOptions::new().append(true).open(path)?,
        )))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(StdFile(
            OpenOptions::new().write(true).open(path)?,
        )))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        // On Unix a directory opened read-only can be fsynced; that makes its entries durable.
        File::open(path)?.sync_all()
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The temp path [`atomic_write`] uses for `target`.
pub fn temp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(TEMP_SUFFIX);
    target.with_file_name(name)
}

/// Writes a whole file atomically: `write` fills a temp file in the same directory, which is
/// fsynced, renamed over `target`, and the directory fsynced; returns the bytes written. On
/// error the temp file is removed (best effort) and `target` is untouched. Errors carry the
/// path.
pub fn atomic_write(
    fs: &dyn FileSystem,
    target: &Path,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    let tmp = temp_path(target);
    write_then_rename(fs, target, &tmp, fs.create(&tmp), None, write)
}

/// [`atomic_write`] into the blocks of `reuse`, a file the caller was about to delete (an old
/// snapshot past retention): it is renamed to the temp name, the directory fsynced (so its old
/// name can never come back pointing at half-overwritten bytes), and overwritten in place,
/// then cut to the new length, fsynced and renamed over `target` as usual.
///
/// Why: deleting a large file frees its blocks, and on a file system mounted with `discard`
/// (this project's VM disk) that sends the device a discard that stalls concurrent fdatasyncs
/// for ~10 ms; writing a new file allocates blocks again. Reusing the file does neither
/// (`docs/performance.md`, "Summary (2026-12-02, third session)"). If `reuse` cannot be
/// renamed (it is gone), this is [`atomic_write`].
pub fn atomic_write_reusing(
    fs: &dyn FileSystem,
    target: &Path,
    reuse: &Path,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    let tmp = temp_path(target);
    if let Err(e) = fs.rename(reuse, &tmp) {
        tracing::debug!(file = %reuse.display(), error = %e, "not reused; writing a new file");
        return atomic_write(fs, target, write);
    }
    let dir = parent_dir(target);
    if let Err(e) = fs.sync_dir(&dir) {
        let _ = fs.remove_file(&tmp);
        return Err(Error::from(e).in_file(&dir));
    }
    let old_len = match fs.file_len(&tmp) {
        Ok(len) => len,
        Err(e) => {
            let _ = fs.remove_file(&tmp);
            return Err(Error::from(e).in_file(&tmp));
        }
    };
    write_then_rename(fs, target, &tmp, fs.open_write(&tmp), old_len, write)
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Fills `file` (the temp file `tmp`, opened at position 0) through `write`, cuts it to what
/// was written if it was longer before (`old_len`, a reused file), fsyncs it, renames it over
/// `target` and fsyncs the directory; returns the bytes written. On error `tmp` is removed
/// (best effort). A file that only grew is not truncated: on ext4 even a truncate to the
/// current size costs milliseconds, and a commit waits behind it (`docs/performance.md`).
fn write_then_rename(
    fs: &dyn FileSystem,
    target: &Path,
    tmp: &Path,
    file: io::Result<Box<dyn FileWrite>>,
    old_len: Option<u64>,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    let result = (|| -> Result<u64> {
        let mut file = file?;
        let len = {
            let mut counted = CountingWriter {
                inner: &mut file,
                count: 0,
            };
            let mut buf = BufWriter::with_capacity(1 << 20, &mut counted);
            write(&mut buf)?;
            buf.flush()?;
            drop(buf);
            counted.count
        };
        if old_len.is_some_and(|old| old > len) {
            file.set_len(len)?;
        }
        file.sync_all()?;
        drop(file);
        fs.rename(tmp, target)?;
        Ok(len)
    })();
    let len = match result {
        Ok(len) => len,
        Err(e) => {
            let _ = fs.remove_file(tmp);
            return Err(e.in_file(target));
        }
    };
    let dir = parent_dir(target);
    fs.sync_dir(&dir)
        .map_err(|e| Error::from(e).in_file(&dir))?;
    Ok(len)
}

/// Counts the bytes written through it.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes stray temp files left in `dir` by an interrupted [`atomic_write`]; returns their names.
pub fn remove_temp_files(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in fs.list_dir(dir)? {
        if name.ends_with(TEMP_SUFFIX) {
            fs.remove_file(&dir.join(&name))?;
            tracing::info!(file = %name, "removed stray temp file");
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_target_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a.db");
        std::fs::write(&target, b"old").expect("seed");
        atomic_write(&StdFs, &target, &mut |w| Ok(w.write_all(b"new")?)).expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        assert_eq!(
            StdFs.list_dir(dir.path()).expect("list"),
            vec!["a.db".to_owned()]
        );
    }

    #[test]
    fn a_failed_atomic_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a.db");
        std::fs::write(&target, b"old").expect("seed");
        let err = atomic_write(&StdFs, &target, &mut |w| {
            w.write_all(b"partial")?;
            Err(Error::Io(io::Error::other("boom")))
        })
        .expect_err("must fail");
        assert!(matches!(err, Error::InFile { .. }), "{err}");
        assert_eq!(std::fs::read(&target).expect("read"), b"old");
        assert_eq!(
            StdFs.list_dir(dir.path()).expect("list"),
            vec!["a.db".to_owned()]
        );
    }
}
