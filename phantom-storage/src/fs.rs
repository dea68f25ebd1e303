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
    /// Starts writing `len` bytes at `offset` back to the device, without waiting and without
    /// a cache flush; with `wait`, waits for the writeback of that range (started earlier) to
    /// finish. A hint for spreading a long write's device traffic (see [`WriteBack`]): it
    /// makes nothing durable, only `sync_data`/`sync_all` do. The default does nothing;
    /// [`StdFs`] uses `sync_file_range(2)` on Linux.
    fn write_back(&mut self, offset: u64, len: u64, wait: bool) -> io::Result<()> {
        let _ = (offset, len, wait);
        Ok(())
    }
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
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn write_back(&mut self, offset: u64, len: u64, wait: bool) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Ok(());
        };
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        // SAFETY: `sync_file_range` takes no pointers, so it cannot touch our memory; its one
        // resource is the descriptor, which `self.0` (an open `File`) owns for the whole call.
        // Any range and flags are valid input (a bad one is an `EINVAL` return, not UB).
        let rc = unsafe { libc::sync_file_range(self.0.as_raw_fd(), offset, len, flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
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
    atomic_write_with(fs, target, None, None, write)
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
    atomic_write_with(fs, target, Some(reuse), None, write)
}

/// How a long [`atomic_write_with`] hands its bytes to the device while it writes, instead of
/// all at once in its final fsync.
///
/// Why: a 55 MB snapshot's fsync keeps the device busy for 14–20 ms on the machines we
/// measure, and a log commit's fdatasync issued meanwhile waits behind it (the writer p99 of
/// issue 5). Written back in `chunk`s as it goes — each chunk's writeback started when it is
/// full, the one before it waited for, so at most two are in flight — and at no more than
/// `bytes_per_sec`, the device is never busy for long, and a commit finds it free or nearly
/// (`docs/performance.md`, "Snapshot write-back"). Durability is unchanged: the fsync at the
/// end still makes the file durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBack {
    /// Bytes per writeback request.
    pub chunk: u64,
    /// The most bytes a second the writer hands on (it sleeps when ahead); `None`: no limit.
    pub bytes_per_sec: Option<u64>,
}

impl WriteBack {
    /// What snapshots use by default: 128 KiB chunks, at most 256 MiB/s (a 55 MB image in
    /// about 0.21 s; 256 KiB at 512 MiB/s was a little worse for commits, `docs/performance.md`).
    pub const SNAPSHOT: WriteBack = WriteBack {
        chunk: 128 << 10,
        bytes_per_sec: Some(256 << 20),
    };
}

/// [`atomic_write`], or with `reuse` [`atomic_write_reusing`], writing back as it goes when
/// `write_back` says how ([`WriteBack`]); returns the bytes written.
pub fn atomic_write_with(
    fs: &dyn FileSystem,
    target: &Path,
    reuse: Option<&Path>,
    write_back: Option<WriteBack>,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    let tmp = temp_path(target);
    let reused = reuse.is_some_and(|reuse| match fs.rename(reuse, &tmp) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(file = %reuse.display(), error = %e, "not reused; writing a new file");
            false
        }
    });
    if !reused {
        return write_then_rename(fs, target, &tmp, fs.create(&tmp), None, write_back, write);
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
    write_then_rename(
        fs,
        target,
        &tmp,
        fs.open_write(&tmp),
        old_len,
        write_back,
        write,
    )
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
    write_back: Option<WriteBack>,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    let result = (|| -> Result<u64> {
        let mut file = file?;
        let len = {
            let mut paced;
            let inner: &mut dyn Write = match write_back {
                Some(how) => {
                    paced = Paced::new(&mut *file, how);
                    &mut paced
                }
                None => &mut file,
            };
            let mut counted = CountingWriter { inner, count: 0 };
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

/// Writes through to a file while handing full chunks to the device ([`WriteBack`]).
struct Paced<'a> {
    file: &'a mut dyn FileWrite,
    how: WriteBack,
    /// Bytes written so far (the file is written from offset 0).
    pos: u64,
    /// Where the chunk being filled starts.
    chunk_start: u64,
    /// The chunk whose writeback was started last, to wait for after starting the next.
    in_flight: Option<(u64, u64)>,
    started: std::time::Instant,
    /// Cleared when the file refuses a hint: the write goes on without them.
    hints: bool,
}

impl<'a> Paced<'a> {
    fn new(file: &'a mut dyn FileWrite, how: WriteBack) -> Self {
        Paced {
            file,
            how: WriteBack {
                chunk: how.chunk.max(4096),
                ..how
            },
            pos: 0,
            chunk_start: 0,
            in_flight: None,
            started: std::time::Instant::now(),
            hints: true,
        }
    }

    /// The chunk `chunk_start..pos` is full: start its writeback, wait for the one before,
    /// then sleep while ahead of the rate.
    fn end_chunk(&mut self) {
        let chunk = (self.chunk_start, self.pos - self.chunk_start);
        if self.hints {
            let hinted = self
                .file
                .write_back(chunk.0, chunk.1, false)
                .and_then(|()| match self.in_flight {
                    Some((offset, len)) => self.file.write_back(offset, len, true),
                    None => Ok(()),
                });
            if let Err(e) = hinted {
                // Only a hint: a real write error shows in the final fsync.
                tracing::debug!(error = %e, "write-back hint refused; writing without");
                self.hints = false;
            }
        }
        self.in_flight = Some(chunk);
        self.chunk_start = self.pos;
        if let Some(rate) = self.how.bytes_per_sec.filter(|r| *r > 0) {
            #[allow(clippy::cast_precision_loss)]
            let due = std::time::Duration::from_secs_f64(self.pos as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
}

impl Write for Paced<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.how.chunk - (self.pos - self.chunk_start);
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.file.write(buf.get(..take).unwrap_or(buf))?;
        self.pos += n as u64;
        if self.pos - self.chunk_start >= self.how.chunk {
            self.end_chunk();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
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

    /// A file in memory that records the write-back hints it gets (and can refuse them).
    #[derive(Debug, Default)]
    struct HintLog {
        bytes: Vec<u8>,
        /// `(offset, len, wait)`, in call order.
        hints: Vec<(u64, u64, bool)>,
        refuse: bool,
    }

    impl Write for HintLog {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl FileWrite for HintLog {
        fn sync_data(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn sync_all(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.bytes.truncate(len as usize);
            Ok(())
        }
        fn seek_to(&mut self, _pos: u64) -> io::Result<()> {
            Ok(())
        }
        fn write_back(&mut self, offset: u64, len: u64, wait: bool) -> io::Result<()> {
            self.hints.push((offset, len, wait));
            if self.refuse {
                return Err(io::Error::from(io::ErrorKind::Unsupported));
            }
            Ok(())
        }
    }

    fn paced_write(file: &mut HintLog, data: &[u8], pieces: usize) {
        let mut paced = Paced::new(
            file,
            WriteBack {
                chunk: 4096,
                bytes_per_sec: None,
            },
        );
        // Through a buffer of another size, as `write_then_rename` does.
        let mut buf = BufWriter::with_capacity(pieces, &mut paced);
        buf.write_all(data).expect("write");
        buf.flush().expect("flush");
    }

    #[test]
    fn a_paced_write_starts_each_full_chunk_and_waits_for_the_one_before() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = HintLog::default();
        paced_write(&mut file, &data, 1500);
        assert_eq!(file.bytes, data, "the bytes are written unchanged");
        // Chunks 0..4096 and 4096..8192 are full; the tail 8192..10000 is left to the fsync.
        assert_eq!(
            file.hints,
            vec![(0, 4096, false), (4096, 4096, false), (0, 4096, true)]
        );
    }

    #[test]
    fn a_file_that_refuses_hints_still_gets_every_byte() {
        let data = vec![7u8; 20_000];
        let mut file = HintLog {
            refuse: true,
            ..HintLog::default()
        };
        paced_write(&mut file, &data, 1 << 16);
        assert_eq!(file.bytes, data);
        assert_eq!(
            file.hints,
            vec![(0, 4096, false)],
            "no hint after a refusal"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_real_file_takes_write_back_hints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = StdFs.create(&dir.path().join("f")).expect("create");
        file.write_all(&[1u8; 8192]).expect("write");
        file.write_back(0, 8192, false).expect("start writeback");
        file.write_back(0, 8192, true).expect("wait for it");
    }

    #[test]
    fn a_paced_atomic_write_on_a_real_file_writes_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a.db");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let how = WriteBack {
            chunk: 64 << 10,
            bytes_per_sec: Some(1 << 30),
        };
        let len = atomic_write_with(&StdFs, &target, None, Some(how), &mut |w| {
            Ok(w.write_all(&data)?)
        })
        .expect("write");
        assert_eq!(len, data.len() as u64);
        assert_eq!(std::fs::read(&target).expect("read"), data);
    }

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
