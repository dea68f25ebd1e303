//! The snapshot store: the timestamped snapshot files of one database in one directory —
//! naming, atomic writing, listing (header only), verified loading, retention and cleanup of
//! temp files left by a crash. See `docs/formats/snapshot-files.md`.
//!
//! Invariants:
//! - every file goes through the [`FileSystem`] seam, and every new snapshot through
//!   [`atomic_write`](phantom_storage::atomic_write): under a snapshot name there is only ever a complete, fsynced image;
//! - a new name never sorts before an existing one, so name order is creation order, even when
//!   several snapshots fall in one second or the clock steps back;
//! - a snapshot whose header cannot be read is *listed* as unreadable, never silently dropped,
//!   and retention never deletes a readable snapshot to keep an unreadable one.

use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use phantom_storage::{
    Catalog, FileRead, FileSystem, ImageKind, ImageMeta, StorageFormat, TEMP_SUFFIX, WriteBack,
    atomic_write_with, validate_name,
};

use crate::error::{Error, Result};
use crate::name::{MAX_SEQ, parse_snapshot_name, snapshot_file_name};

/// How many snapshots [`SnapshotStore::retain`] keeps unless told otherwise.
pub const DEFAULT_RETAIN: usize = 5;

/// How many leading bytes of a file format detection looks at.
const DETECT_LEN: usize = 64;

/// What a snapshot file's name and header say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Full path of the file.
    pub path: PathBuf,
    /// File name, `<db>_snapshot_YYYYMMDD_HHMMSS[_NNN]`.
    pub file_name: String,
    /// The image holds every log record with an LSN ≤ this one (from the header).
    pub lsn: u64,
    /// When the image was taken, as its header says (`None` when it does not say).
    pub created: Option<DateTime<Utc>>,
    /// File size in bytes.
    pub size: u64,
    /// Name of the format the file is in (`"csv"`, `"binary"`, …).
    pub format: &'static str,
    /// The timestamp in the file name (UTC, whole seconds).
    pub stamp: NaiveDateTime,
    /// The same-second sequence number in the file name (0 = no suffix).
    pub seq: u32,
}

impl AsRef<Path> for SnapshotInfo {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A file that is named like a snapshot of this database but whose header cannot be read
/// (unknown format, truncated header, header of another database, I/O error).
#[derive(Debug)]
pub struct UnreadableSnapshot {
    /// Full path of the file.
    pub path: PathBuf,
    /// File name.
    pub file_name: String,
    /// The timestamp in the file name (UTC, whole seconds).
    pub stamp: NaiveDateTime,
    /// The same-second sequence number in the file name.
    pub seq: u32,
    /// File size in bytes, when it could be learnt.
    pub size: Option<u64>,
    /// Why the header could not be read.
    pub error: Error,
}

impl AsRef<Path> for UnreadableSnapshot {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// One snapshot file found by [`SnapshotStore::list`]: its header was read, or it could not be.
#[derive(Debug)]
pub enum SnapshotEntry {
    /// The header was read.
    Readable(SnapshotInfo),
    /// The file is named like a snapshot but its header cannot be read.
    Unreadable(UnreadableSnapshot),
}

impl SnapshotEntry {
    /// Full path of the file.
    pub fn path(&self) -> &Path {
        match self {
            SnapshotEntry::Readable(i) => &i.path,
            SnapshotEntry::Unreadable(u) => &u.path,
        }
    }

    /// File name.
    pub fn file_name(&self) -> &str {
        match self {
            SnapshotEntry::Readable(i) => &i.file_name,
            SnapshotEntry::Unreadable(u) => &u.file_name,
        }
    }

    /// `(timestamp, sequence)` from the file name; entries are listed in this order.
    pub fn name_key(&self) -> (NaiveDateTime, u32) {
        match self {
            SnapshotEntry::Readable(i) => (i.stamp, i.seq),
            SnapshotEntry::Unreadable(u) => (u.stamp, u.seq),
        }
    }

    /// The header information, when it was read.
    pub fn info(&self) -> Option<&SnapshotInfo> {
        match self {
            SnapshotEntry::Readable(i) => Some(i),
            SnapshotEntry::Unreadable(_) => None,
        }
    }

    /// Why the header could not be read, when it could not.
    pub fn error(&self) -> Option<&Error> {
        match self {
            SnapshotEntry::Readable(_) => None,
            SnapshotEntry::Unreadable(u) => Some(&u.error),
        }
    }

    /// `true` when the header was read.
    pub fn is_readable(&self) -> bool {
        matches!(self, SnapshotEntry::Readable(_))
    }
}

impl AsRef<Path> for SnapshotEntry {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// The snapshots of one database in one directory.
///
/// Files are recognised by name ([`parse_snapshot_name`]) and their format by their first
/// bytes: first the formats added with [`SnapshotStore::with_format`], then the shipped ones
/// ([`phantom_storage::backends::detect`]). Writes, retention and temp-file cleanup of one
/// store are serialised by an internal lock, so a store can be shared between the engine's
/// background snapshot thread and manual snapshots.
pub struct SnapshotStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    database: String,
    extra_formats: Vec<Arc<dyn StorageFormat>>,
    /// How snapshot files reach the device while they are written.
    write_back: Option<WriteBack>,
    lock: Mutex<()>,
}

impl fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotStore")
            .field("fs", &self.fs)
            .field("dir", &self.dir)
            .field("database", &self.database)
            .field("extra_formats", &self.extra_formats)
            .field("write_back", &self.write_back)
            .finish_non_exhaustive()
    }
}

/// How many of `entries` (oldest first) retention removes to keep `keep` readable ones: the
/// entries before the oldest of the newest `keep` readable ones (unreadable ones newer than it
/// stay, as evidence).
fn retention_cutoff(entries: &[SnapshotEntry], keep: usize) -> usize {
    let mut cutoff = entries.len();
    let mut readable = 0;
    for (i, entry) in entries.iter().enumerate().rev() {
        if readable == keep {
            break;
        }
        cutoff = i;
        if entry.is_readable() {
            readable += 1;
        }
    }
    cutoff
}

impl SnapshotStore {
    /// A store for the snapshots of `database` in `dir`. Validates the name
    /// ([`validate_name`]); creates nothing (the directory is created by the first
    /// [`write`](Self::write)).
    pub fn new(fs: Arc<dyn FileSystem>, dir: impl Into<PathBuf>, database: &str) -> Result<Self> {
        validate_name(database)?;
        Ok(SnapshotStore {
            fs,
            dir: dir.into(),
            database: database.to_owned(),
            extra_formats: Vec::new(),
            write_back: Some(WriteBack::SNAPSHOT),
            lock: Mutex::new(()),
        })
    }

    /// How snapshot files are handed to the device while they are written (default
    /// [`WriteBack::SNAPSHOT`]: in 128 KiB chunks at up to 256 MiB/s, so that commits running
    /// meanwhile never wait behind one long flush); `None` leaves it all to the final fsync,
    /// the fastest way to write a snapshot when nothing else uses the disk.
    #[must_use]
    pub fn with_write_back(mut self, write_back: Option<WriteBack>) -> Self {
        self.write_back = write_back;
        self
    }

    /// Also recognises files in `format` when listing and loading (tried before the shipped
    /// formats). Needed when snapshots are written with a format of your own.
    #[must_use]
    pub fn with_format(mut self, format: Arc<dyn StorageFormat>) -> Self {
        self.extra_formats.push(format);
        self
    }

    /// The database whose snapshots this store manages.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The directory holding the snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path the next snapshot taken at `now` would get: `<db>_snapshot_YYYYMMDD_HHMMSS`
    /// for `now` (UTC), with the next free `_NNN` suffix when that second already has
    /// snapshots. Never a name that sorts before an existing snapshot: if the newest existing
    /// one is stamped later than `now` (the clock stepped back), the name continues from it;
    /// past `_999` it moves on to the following second.
    pub fn path_for(&self, now: DateTime<Utc>) -> Result<PathBuf> {
        let names = self.scan()?.unwrap_or_default();
        let (stamp, seq) = self.next_name(&names, now)?;
        Ok(self
            .dir
            .join(snapshot_file_name(&self.database, stamp, seq)))
    }

    /// Writes a snapshot of `catalog` at log position `lsn`, taken at `now`, in `format`,
    /// atomically (temp file, fsync, rename, fsync the directory), under a fresh name
    /// ([`path_for`](Self::path_for)). Creates the directory if missing. On error no file is
    /// left under a snapshot name.
    pub fn write(
        &self,
        format: &dyn StorageFormat,
        lsn: u64,
        catalog: &Catalog,
        now: DateTime<Utc>,
    ) -> Result<SnapshotInfo> {
        self.write_inner(format, lsn, catalog, now, None)
    }

    /// [`write`](Self::write), then [`retain`](Self::retain)`(keep)`; returns the new
    /// snapshot and the files retention removed. The new snapshot is written into the blocks
    /// of a file retention would remove anyway (the oldest one past `keep`), renamed out of
    /// the way first, rather than into a new file while that one is deleted
    /// ([`atomic_write_reusing`](phantom_storage::atomic_write_reusing): no block freeing, no discard, no allocation).
    ///
    /// Invariant: a file is only reused while another readable snapshot stays under its name
    /// for the whole write, so a crash mid-write never leaves the directory without a
    /// snapshot the log can roll forward from (the log keeps every record after the oldest
    /// snapshot, and the reused one was the oldest). So with `keep < 2` nothing is reused.
    pub fn write_retaining(
        &self,
        format: &dyn StorageFormat,
        lsn: u64,
        catalog: &Catalog,
        now: DateTime<Utc>,
        keep: usize,
    ) -> Result<(SnapshotInfo, Vec<PathBuf>)> {
        let info = self.write_inner(format, lsn, catalog, now, Some(keep))?;
        let removed = self.retain(keep)?;
        Ok((info, removed))
    }

    /// The file a snapshot written now may reuse when `keep` are to be retained afterwards:
    /// the oldest one that retention would remove once the new snapshot exists, provided a
    /// readable snapshot other than it remains (see [`write_retaining`](Self::write_retaining)).
    fn reusable(&self, keep: usize) -> Result<Option<PathBuf>> {
        if keep < 2 {
            return Ok(None);
        }
        let entries = self.list()?;
        // As `retain` will decide once the new snapshot has taken one of the `keep` places.
        let cutoff = retention_cutoff(&entries, keep - 1);
        let others_readable = entries.iter().skip(1).any(SnapshotEntry::is_readable);
        Ok(match entries.first() {
            Some(oldest) if cutoff > 0 && others_readable => Some(oldest.path().to_path_buf()),
            _ => None,
        })
    }

    fn write_inner(
        &self,
        format: &dyn StorageFormat,
        lsn: u64,
        catalog: &Catalog,
        now: DateTime<Utc>,
        keep: Option<usize>,
    ) -> Result<SnapshotInfo> {
        let _guard = self.guard();
        let names = match self.scan()? {
            Some(names) => names,
            None => {
                self.create_dir()?;
                Vec::new()
            }
        };
        let reuse = match keep {
            Some(keep) => self.reusable(keep)?,
            None => None,
        };
        let (stamp, seq) = self.next_name(&names, now)?;
        let file_name = snapshot_file_name(&self.database, stamp, seq);
        let path = self.dir.join(&file_name);
        let meta = ImageMeta {
            database: self.database.clone(),
            lsn,
            created: Some(now),
            kind: ImageKind::Snapshot,
        };
        let mut write = |out: &mut dyn Write| format.write(&meta, catalog, out);
        let size = atomic_write_with(
            &*self.fs,
            &path,
            reuse.as_deref(),
            self.write_back,
            &mut write,
        )?;
        if let Some(old) = &reuse {
            tracing::debug!(file = %path.display(), reused = %old.display(), "snapshot written over an old one's blocks");
        }
        tracing::info!(
            file = %path.display(),
            lsn,
            size,
            format = format.name(),
            "snapshot written"
        );
        Ok(SnapshotInfo {
            path,
            file_name,
            lsn,
            created: Some(now),
            size,
            format: format.name(),
            stamp,
            seq,
        })
    }

    /// Every snapshot of this database, oldest first (name order = creation order), reading
    /// only each file's header. Files of other databases, temp files (`*.tmp`) and
    /// quarantined files (`*.broken`) are not listed; a file named like a snapshot whose
    /// header cannot be read is listed as [`SnapshotEntry::Unreadable`]. A missing directory
    /// lists as empty.
    pub fn list(&self) -> Result<Vec<SnapshotEntry>> {
        let names = self.scan()?.unwrap_or_default();
        Ok(names
            .into_iter()
            .map(|(file_name, stamp, seq)| {
                let path = self.dir.join(&file_name);
                match self.read_header(&path) {
                    Ok((meta, size, format)) => SnapshotEntry::Readable(SnapshotInfo {
                        path,
                        file_name,
                        lsn: meta.lsn,
                        created: meta.created,
                        size,
                        format,
                        stamp,
                        seq,
                    }),
                    Err((error, size)) => {
                        tracing::warn!(file = %path.display(), %error, "unreadable snapshot");
                        SnapshotEntry::Unreadable(UnreadableSnapshot {
                            path,
                            file_name,
                            stamp,
                            seq,
                            size,
                            error,
                        })
                    }
                }
            })
            .collect())
    }

    /// The newest snapshot whose header reads, if any.
    pub fn latest(&self) -> Result<Option<SnapshotInfo>> {
        Ok(self.list()?.into_iter().rev().find_map(|e| match e {
            SnapshotEntry::Readable(info) => Some(info),
            SnapshotEntry::Unreadable(_) => None,
        }))
    }

    /// Reads and verifies a whole snapshot (a [`SnapshotInfo`], [`SnapshotEntry`] or path),
    /// detecting its format. Fails with [`Error::WrongDatabase`] when the header names another
    /// database. Either kind of image is accepted: files written by the original C++ code may
    /// not say they are snapshots.
    pub fn load(&self, snapshot: impl AsRef<Path>) -> Result<(ImageMeta, Catalog)> {
        let path = snapshot.as_ref();
        let (mut file, format) = self.open_detected(path)?;
        let (meta, catalog) = format
            .read(&mut BufReader::new(&mut file))
            .map_err(|e| e.in_file(path))?;
        self.check_database(path, &meta)?;
        tracing::debug!(file = %path.display(), lsn = meta.lsn, "snapshot loaded");
        Ok((meta, catalog))
    }

    /// Deletes all but the newest `keep` snapshots whose header reads, then fsyncs the
    /// directory; returns the removed paths, oldest first. Unreadable snapshots newer than the
    /// oldest kept one are kept too (they are evidence, and do not count towards `keep`);
    /// older ones are removed. `keep == 0` removes every snapshot.
    pub fn retain(&self, keep: usize) -> Result<Vec<PathBuf>> {
        let _guard = self.guard();
        let entries = self.list()?;
        let cutoff = retention_cutoff(&entries, keep);
        let mut removed = Vec::new();
        for entry in entries.into_iter().take(cutoff) {
            let path = entry.path().to_path_buf();
            match self.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("removing", path, e)),
            }
            tracing::info!(file = %path.display(), "old snapshot removed by retention");
            removed.push(path);
        }
        if !removed.is_empty() {
            self.sync_dir()?;
        }
        Ok(removed)
    }

    /// Removes the temp files (`<snapshot name>.tmp`) of this database's snapshots left by an
    /// interrupted write, then fsyncs the directory; returns their names. Other files,
    /// including other databases' temp files, are left alone.
    pub fn remove_temp_files(&self) -> Result<Vec<String>> {
        let _guard = self.guard();
        let Some(all) = self.list_dir()? else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for name in all {
            let is_ours = name
                .strip_suffix(TEMP_SUFFIX)
                .is_some_and(|stem| parse_snapshot_name(&self.database, stem).is_some());
            if !is_ours {
                continue;
            }
            let path = self.dir.join(&name);
            match self.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("removing", path, e)),
            }
            tracing::info!(file = %path.display(), "stray snapshot temp file removed");
            removed.push(name);
        }
        if !removed.is_empty() {
            self.sync_dir()?;
        }
        Ok(removed)
    }

    // ----- internals -----

    fn guard(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, so a panic while holding it leaves nothing inconsistent.
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// File names in the directory; `None` when the directory does not exist.
    fn list_dir(&self) -> Result<Option<Vec<String>>> {
        match self.fs.list_dir(&self.dir) {
            Ok(names) => Ok(Some(names)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("listing", &self.dir, e)),
        }
    }

    /// This database's snapshot names, parsed, sorted by `(stamp, seq)`; `None` when the
    /// directory does not exist.
    fn scan(&self) -> Result<Option<Vec<(String, NaiveDateTime, u32)>>> {
        let Some(all) = self.list_dir()? else {
            return Ok(None);
        };
        let mut names: Vec<_> = all
            .into_iter()
            .filter_map(|name| {
                let (stamp, seq) = parse_snapshot_name(&self.database, &name)?;
                Some((name, stamp, seq))
            })
            .collect();
        names.sort_by_key(|&(_, stamp, seq)| (stamp, seq));
        Ok(Some(names))
    }

    fn next_name(
        &self,
        existing: &[(String, NaiveDateTime, u32)],
        now: DateTime<Utc>,
    ) -> Result<(NaiveDateTime, u32)> {
        let wanted = now.naive_utc().trunc_subsecs(0);
        let Some(&(_, last, last_seq)) = existing.last() else {
            return Ok((wanted, 0));
        };
        if wanted > last {
            return Ok((wanted, 0));
        }
        if wanted < last {
            tracing::warn!(
                database = %self.database,
                now = %wanted,
                newest = %last,
                "clock is behind the newest snapshot; naming the new one after it"
            );
        }
        if last_seq < MAX_SEQ {
            return Ok((last, last_seq + 1));
        }
        last.checked_add_signed(TimeDelta::seconds(1))
            .map(|next| (next, 0))
            .ok_or_else(|| Error::NamesExhausted {
                database: self.database.clone(),
                stamp: last,
            })
    }

    fn create_dir(&self) -> Result<()> {
        self.fs
            .create_dir_all(&self.dir)
            .map_err(|e| Error::io("creating directory", &self.dir, e))?;
        // The new directory's entry lives in its parent: make it durable too.
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.fs
                .sync_dir(parent)
                .map_err(|e| Error::io("syncing directory", parent, e))?;
        }
        tracing::debug!(dir = %self.dir.display(), "snapshot directory created");
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("syncing directory", &self.dir, e))
    }

    /// The format that recognises a file starting with `head`.
    fn detect(&self, head: &[u8]) -> Option<Arc<dyn StorageFormat>> {
        self.extra_formats
            .iter()
            .find(|f| f.detect(head))
            .cloned()
            .or_else(|| phantom_storage::backends::detect(head).map(Arc::from))
    }

    /// Opens `path`, detects its format from its first bytes, and rewinds it.
    fn open_detected(&self, path: &Path) -> Result<(Box<dyn FileRead>, Arc<dyn StorageFormat>)> {
        let mut file = self
            .fs
            .open_read(path)
            .map_err(|e| Error::io("opening", path, e))?;
        let mut head = [0u8; DETECT_LEN];
        let mut filled = 0;
        while filled < DETECT_LEN {
            let buf = head.get_mut(filled..).unwrap_or_default();
            match file.read(buf) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading", path, e)),
            }
        }
        let head = head.get(..filled).unwrap_or_default();
        let format = self.detect(head).ok_or_else(|| Error::UnknownFormat {
            path: path.to_path_buf(),
            head: format!("\"{}\"", head.get(..16).unwrap_or(head).escape_ascii()),
        })?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seeking", path, e))?;
        Ok((file, format))
    }

    fn check_database(&self, path: &Path, meta: &ImageMeta) -> Result<()> {
        if meta.database == self.database {
            Ok(())
        } else {
            Err(Error::WrongDatabase {
                path: path.to_path_buf(),
                expected: self.database.clone(),
                found: meta.database.clone(),
            })
        }
    }

    /// The header, size and format name of one file; on error, the error and the size if known.
    #[allow(clippy::type_complexity)]
    fn read_header(
        &self,
        path: &Path,
    ) -> Result<(ImageMeta, u64, &'static str), (Error, Option<u64>)> {
        let (mut file, format) = self.open_detected(path).map_err(|e| {
            let size = self.fs.file_len(path).ok().flatten();
            (e, size)
        })?;
        let size = file
            .file_len()
            .map_err(|e| (Error::io("reading", path, e), None))?;
        let meta = format
            .read_meta(&mut BufReader::new(&mut file))
            .map_err(|e| (Error::from(e.in_file(path)), Some(size)))?;
        self.check_database(path, &meta)
            .map_err(|e| (e, Some(size)))?;
        Ok((meta, size, format.name()))
    }
}
