//! The exclusive lock on a data directory: `LOCK`, held with an OS file lock (`flock` on
//! Unix) for as long as a [`Database`](crate::Database) uses the directory.
//!
//! Invariants: the lock is taken before anything in the directory is read for recovery or
//! written; the lock file is never deleted (deleting it would let a second process lock a new
//! inode while the first still holds the old one); the holder writes its pid into it so a
//! refused opener can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the lock file in a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// A held directory lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist), or fails with [`Error::Locked`].
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(Error::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    pid: text.trim().parse().ok(),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path)(e)),
        }
        // Best effort: the pid is information for a refused opener, not part of the lock.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
