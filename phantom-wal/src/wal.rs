//! [`Wal`]: the segmented, checksummed binary write-ahead log with group commit.
//!
//! Concurrency design (leader/follower group commit):
//! - `append` encodes the entry and checksums its payload outside any lock, then takes the short
//!   `pending` mutex only to assign the LSN and timestamp and copy the payload into a buffer.
//! - A committer that needs durability becomes the leader if no sync is in progress: under the
//!   `io` mutex it swaps out everything buffered, writes it (rolling segments as needed),
//!   fdatasyncs once, publishes `durable_lsn` and wakes the followers it covered. Committers
//!   that arrive while a leader syncs wait for the round that covers them (`Inner::sync`);
//!   those a round covered return at once (they never queue behind the next fsync), and one of
//!   the others is woken to lead the next round, for everything appended meanwhile. A lone
//!   writer never waits for a timer.
//! - Invariant: records reach the file in LSN order, because the buffer is only swapped out by a
//!   holder of the `io` mutex.
//! - Any failed write or sync poisons the log (see `docs/durability.md`): it is never retried.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use phantom_storage::{FileSystem, FileWrite};

use crate::entry::{EntryKind, LogEntry, Lsn, Record, now_micros};
use crate::error::{Error, Result};
use crate::layout::{
    FLAG_PREALLOCATED, FormatVersion, MAX_PAYLOAD_LEN, Probe, RECORD_HEADER_LEN, RecordMeta,
    SEGMENT_HEADER_LEN, SegmentBytes, SegmentHeader, Tail, ZERO_CHECK_WINDOW, classify_tail,
    encode_record_header, interrupted_roll_over, len_without_trailing_zeros, list_segments,
    new_salt, segment_file_name,
};
use crate::reader::{TornTail, WalReader};
use crate::sink::{LogSink, LogStats, SyncMode};

/// How many bytes of zeros [`Inner::zero_ahead`] writes after a write that passed the
/// written part of a preallocated segment.
const ZERO_AHEAD: u64 = 1 << 20;
/// The longest a leader waits for a group to gather (`Inner::gather`): well under one
/// fdatasync of this machine's disk (90–150 µs), so a group that does not come back costs less
/// than the fsync it would have saved.
const GATHER_MAX: std::time::Duration = std::time::Duration::from_micros(40);
/// The source of the zeros written ahead.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

thread_local! {
    /// Each appending thread's buffer for encoding payloads (see [`Inner::append`]).
    static ENCODE_SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}
/// A scratch buffer grown past this by a large record is freed, not kept for the thread.
const SCRATCH_KEEP: usize = 1 << 20;

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Smallest accepted segment size.
pub const MIN_SEGMENT_SIZE: u64 = (SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) as u64;

/// Options of a [`Wal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// When records are made durable. Default [`SyncMode::Always`].
    pub sync_mode: SyncMode,
    /// A segment rolls over before a record would make it larger than this. Default 64 MiB.
    pub segment_size: u64,
    /// Extend each new segment to `segment_size` up front (zeros, `set_len`), so fdatasync need
    /// not update the file size; the writer also keeps 1 MiB of zeros written ahead of its
    /// records, so fdatasync need not write a block map either. Default true. Opening never
    /// reads the free space past a window of [`ZERO_CHECK_WINDOW`] bytes after the last record
    /// (`docs/formats/wal.md`).
    pub preallocate: bool,
    /// LSN of the first record when the log is created (ignored when segments exist). The engine
    /// passes the snapshot LSN + 1 when the log was truncated away. Default 1.
    pub first_lsn: Lsn,
    /// `append` hands buffered records to the OS once this many bytes are buffered (if no other
    /// thread is writing). Default 4 MiB.
    pub buffer_limit: usize,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            sync_mode: SyncMode::Always,
            segment_size: DEFAULT_SEGMENT_SIZE,
            preallocate: true,
            first_lsn: 1,
            buffer_limit: 4 << 20,
        }
    }
}

/// What [`Wal::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Number of segments after opening.
    pub segments: usize,
    /// Valid records in them.
    pub records: u64,
    /// LSN of the last valid record (first LSN − 1 when the log is empty).
    pub last_lsn: Lsn,
    /// The torn tail that was cut (and saved to a `.broken` file), if any.
    pub torn_tail: Option<TornTail>,
}

/// One segment of a [`Wal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its file.
    pub path: PathBuf,
    /// Its number (1 for `<name>.log`).
    pub number: u64,
    /// LSN of its first record (or of the record it would hold first, if empty).
    pub first_lsn: Lsn,
    /// LSN of its last record (`first_lsn − 1` if empty).
    pub last_lsn: Lsn,
    /// Bytes used (header and records; preallocated free space is not counted).
    pub bytes: u64,
}

struct Pending {
    next_lsn: Lsn,
    payloads: Vec<u8>,
    metas: Vec<RecordMeta>,
    bytes: usize,
}

struct Active {
    file: Box<dyn FileWrite>,
    path: PathBuf,
    number: u64,
    salt: u32,
    /// Bytes used: where the next record goes.
    bytes: u64,
    /// Bytes known to be on stable storage (everything written up to the last sync).
    synced: u64,
    /// Bytes from the start that have been written (records, or zeros written ahead): a write
    /// below this allocates no blocks. See [`Inner::zero_ahead`].
    written: u64,
    /// The preallocated length of the file, 0 if the segment is not preallocated: zeros are
    /// never written past it.
    preallocated_len: u64,
    last_lsn: Lsn,
}

impl Active {
    /// Whether the segment was preallocated (its header's flag; see [`WalOptions::preallocate`]).
    fn preallocated(&self) -> bool {
        self.preallocated_len > 0
    }
}

struct Io {
    active: Active,
    /// Last LSN handed to the OS.
    written_lsn: Lsn,
    out: Vec<u8>,
    spare_payloads: Vec<u8>,
    spare_metas: Vec<RecordMeta>,
}

struct Inner {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    name: String,
    options: WalOptions,
    pending: Mutex<Pending>,
    io: Mutex<Io>,
    /// All segments, the active one last.
    segments: Mutex<Vec<SegmentInfo>>,
    last_lsn: AtomicU64,
    durable_lsn: AtomicU64,
    poisoned: AtomicBool,
    poison_cause: Mutex<Option<String>>,
    appended: AtomicU64,
    syncs: AtomicU64,
    bytes: AtomicU64,
    /// How many records the last fsync made durable: the size of the group whose committers
    /// are about to commit again (`Inner::gather`).
    last_group: AtomicU64,
    /// Who is syncing, and what the current round covers; followers wait on `round_cvs`.
    syncing: Mutex<SyncRounds>,
    /// Indexed by round parity: committers waiting for round `r` sleep on `round_epochs[r % 2]`
    /// (a futex), which the round's end bumps. They wake without taking `syncing`: ten
    /// committers woken at once no longer queue on that mutex to learn they are done.
    round_epochs: [AtomicU32; 2],
    /// Whether a leader is syncing now. Written only under `syncing` (with the round it
    /// leads); read there, and without the lock by a woken committer's fast path.
    leading: AtomicBool,
    stop: Mutex<bool>,
    stop_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The segmented binary write-ahead log. See the crate docs, `docs/formats/wal.md` and
/// `docs/durability.md`.
pub struct Wal {
    inner: Arc<Inner>,
    syncer: Option<JoinHandle<()>>,
    closed: bool,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("name", &self.inner.name)
            .field("sync_mode", &self.inner.options.sync_mode)
            .field("last_lsn", &self.inner.last_lsn.load(Ordering::Acquire))
            .field(
                "durable_lsn",
                &self.inner.durable_lsn.load(Ordering::Acquire),
            )
            .field("poisoned", &self.inner.poisoned.load(Ordering::Acquire))
            .finish()
    }
}

/// The group-commit state ([`Inner::sync`]).
#[derive(Debug, Default)]
struct SyncRounds {
    /// The number of the current (or last) round.
    round: u64,
    /// The last LSN appended when the current round started: the round makes it durable.
    covering: Lsn,
}

/// Which of the two round futexes (`Inner::round_epochs`) round `round` uses.
fn parity(round: u64) -> usize {
    (round % 2) as usize
}

/// Creates a segment: header written, optionally preallocated, fsynced. The caller fsyncs the
/// directory.
fn create_segment(
    fs: &dyn FileSystem,
    path: &Path,
    header: &SegmentHeader,
    preallocate_to: Option<u64>,
) -> Result<Box<dyn FileWrite>> {
    let io = |e| Error::io(path, e);
    let mut file = fs.create(path).map_err(io)?;
    file.write_all(&header.encode()).map_err(io)?;
    if let Some(len) = preallocate_to {
        file.set_len(len).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    Ok(file)
}

/// Copies `bytes` to `<file>.broken` (or `.broken.2`, … if taken), durably.
fn save_broken(fs: &dyn FileSystem, file: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let mut n = 1;
    loop {
        let mut name = file.file_name().unwrap_or_default().to_os_string();
        name.push(if n == 1 {
            ".broken".to_owned()
        } else {
            format!(".broken.{n}")
        });
        let target = file.with_file_name(name);
        if fs
            .file_len(&target)
            .map_err(|e| Error::io(&target, e))?
            .is_none()
        {
            phantom_storage::atomic_write(fs, &target, &mut |w| Ok(w.write_all(bytes)?))?;
            return Ok(target);
        }
        n += 1;
    }
}

impl Wal {
    /// Opens (or creates) log `name` in `dir`: scans and validates every segment, cuts a torn
    /// tail (saving it to `<segment>.broken`), and positions the writer after the last valid
    /// record. Errors name the file and byte offset of any corruption.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        name: &str,
        options: WalOptions,
    ) -> Result<(Wal, OpenReport)> {
        phantom_storage::validate_name(name)?;
        if options.first_lsn == 0 {
            return Err(Error::InvalidOptions {
                reason: "first_lsn must be at least 1".into(),
            });
        }
        if options.segment_size < MIN_SEGMENT_SIZE {
            return Err(Error::InvalidOptions {
                reason: format!("segment_size must be at least {MIN_SEGMENT_SIZE} bytes"),
            });
        }
        if let SyncMode::Interval(d) = options.sync_mode
            && d.is_zero()
        {
            return Err(Error::InvalidOptions {
                reason: "the sync interval must not be zero".into(),
            });
        }
        fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut segs = list_segments(fs.as_ref(), dir, name)?;
        let mut torn_tail = None;
        let mut next_number = 1;

        // A last segment without a complete header is a roll-over (or creation) that a crash
        // interrupted: nothing in it was ever acknowledged (`interrupted_roll_over`).
        if let Some((number, path)) = segs.last().cloned() {
            let mut seg = SegmentBytes::open(fs.as_ref(), &path)?;
            if interrupted_roll_over(&mut seg)? {
                tracing::warn!(file = %path.display(), "segment with an incomplete header: interrupted roll-over");
                seg.fill_all()?;
                let bytes = seg.bytes();
                let cut_end = len_without_trailing_zeros(bytes);
                if cut_end > 0 {
                    save_broken(fs.as_ref(), &path, bytes.get(..cut_end).unwrap_or_default())?;
                }
                drop(seg);
                fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
                fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                torn_tail = Some(TornTail {
                    file: path,
                    offset: 0,
                    bytes_cut: cut_end as u64,
                });
                segs.pop();
                next_number = number;
            }
        }

        let mut infos: Vec<SegmentInfo> = Vec::new();
        let mut records = 0u64;
        let mut expected: Option<Lsn> = None;
        let mut active_state: Option<(SegmentHeader, u64)> = None;
        let count = segs.len();
        for (i, (number, path)) in segs.iter().enumerate() {
            let last = i + 1 == count;
            // Read only as far as the records go (plus a window of a preallocated segment's
            // free space), never the whole preallocated file.
            let mut seg = SegmentBytes::open(fs.as_ref(), path)?;
            let header = seg.header()?;
            if header.number != *number {
                return Err(Error::Corrupt {
                    file: path.clone(),
                    offset: 24,
                    reason: format!(
                        "header says segment {}, file name says {number}",
                        header.number
                    ),
                });
            }
            if let Some(exp) = expected
                && header.first_lsn != exp
            {
                return Err(Error::LsnGap {
                    file: path.clone(),
                    expected: exp,
                    found: header.first_lsn,
                });
            }
            let mut exp = header.first_lsn;
            let mut pos = SEGMENT_HEADER_LEN;
            let stopped = loop {
                match seg.probe(header.salt, pos)? {
                    Probe::Record(r) => {
                        if r.lsn != exp {
                            return Err(Error::LsnGap {
                                file: path.clone(),
                                expected: exp,
                                found: r.lsn,
                            });
                        }
                        exp += 1;
                        pos = r.end;
                        records += 1;
                    }
                    other => break other,
                }
            };
            let tail = classify_tail(&mut seg, &header, pos, stopped, last, exp - 1)?;
            if let Tail::Torn { offset } = tail {
                // `classify_tail` loaded the whole file to decide the tail is torn.
                let bytes = seg.bytes();
                let file_len = bytes.len() as u64;
                let rest = bytes.get(offset..).unwrap_or_default();
                let cut_len = if header.preallocated() {
                    len_without_trailing_zeros(rest)
                } else {
                    rest.len()
                };
                let broken =
                    save_broken(fs.as_ref(), path, rest.get(..cut_len).unwrap_or_default())?;
                let io = |e| Error::io(path, e);
                let mut f = fs.open_write(path).map_err(io)?;
                f.set_len(offset as u64).map_err(io)?;
                if header.preallocated() {
                    f.set_len(file_len).map_err(io)?;
                }
                f.sync_all().map_err(io)?;
                tracing::warn!(file = %path.display(), offset, bytes_cut = cut_len, broken = %broken.display(), "cut torn tail of the log");
                torn_tail = Some(TornTail {
                    file: path.clone(),
                    offset: offset as u64,
                    bytes_cut: cut_len as u64,
                });
            }
            infos.push(SegmentInfo {
                path: path.clone(),
                number: *number,
                first_lsn: header.first_lsn,
                last_lsn: exp - 1,
                bytes: pos as u64,
            });
            expected = Some(exp);
            if last {
                active_state = Some((header, pos as u64));
            }
        }

        let active = match (active_state, infos.last()) {
            (Some((header, used)), Some(info)) => {
                let io = |e| Error::io(&info.path, e);
                let mut file = fs.open_write(&info.path).map_err(io)?;
                file.seek_to(used).map_err(io)?;
                // What we read may still be only in the page cache (a previous run in `Never`
                // mode): make it durable so `durable_lsn` can start at `last_lsn`.
                file.sync_data().map_err(io)?;
                // So may the directory entries: a roll-over whose directory fsync failed leaves
                // a segment that exists now but would vanish in a crash, taking every record
                // appended to it later with it. Found by the simulation (an ENOSPC on the
                // directory fsync of a roll-over, then commits, then a crash).
                fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                Active {
                    file,
                    path: info.path.clone(),
                    number: info.number,
                    salt: header.salt,
                    bytes: used,
                    synced: used,
                    written: used,
                    preallocated_len: if header.preallocated() {
                        // At least the header, so never 0 for a preallocated segment.
                        fs.file_len(&info.path)
                            .map_err(io)?
                            .unwrap_or(used)
                            .max(SEGMENT_HEADER_LEN as u64)
                    } else {
                        0
                    },
                    last_lsn: info.last_lsn,
                }
            }
            _ => {
                let header = SegmentHeader {
                    version: FormatVersion::CURRENT,
                    flags: if options.preallocate {
                        FLAG_PREALLOCATED
                    } else {
                        0
                    },
                    first_lsn: options.first_lsn,
                    number: next_number,
                    salt: new_salt(),
                };
                let path = dir.join(segment_file_name(name, next_number));
                let file = create_segment(
                    fs.as_ref(),
                    &path,
                    &header,
                    options.preallocate.then_some(options.segment_size),
                )?;
                fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                infos.push(SegmentInfo {
                    path: path.clone(),
                    number: next_number,
                    first_lsn: options.first_lsn,
                    last_lsn: options.first_lsn - 1,
                    bytes: SEGMENT_HEADER_LEN as u64,
                });
                Active {
                    file,
                    path,
                    number: next_number,
                    salt: header.salt,
                    bytes: SEGMENT_HEADER_LEN as u64,
                    synced: SEGMENT_HEADER_LEN as u64,
                    written: SEGMENT_HEADER_LEN as u64,
                    preallocated_len: if options.preallocate {
                        options.segment_size
                    } else {
                        0
                    },
                    last_lsn: options.first_lsn - 1,
                }
            }
        };
        let last_lsn = active.last_lsn;
        let report = OpenReport {
            segments: infos.len(),
            records,
            last_lsn,
            torn_tail,
        };
        tracing::debug!(dir = %dir.display(), name, ?report, "opened write-ahead log");
        let inner = Arc::new(Inner {
            fs,
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            pending: Mutex::new(Pending {
                next_lsn: last_lsn + 1,
                payloads: Vec::new(),
                metas: Vec::new(),
                bytes: 0,
            }),
            io: Mutex::new(Io {
                active,
                written_lsn: last_lsn,
                out: Vec::new(),
                spare_payloads: Vec::new(),
                spare_metas: Vec::new(),
            }),
            segments: Mutex::new(infos),
            last_lsn: AtomicU64::new(last_lsn),
            durable_lsn: AtomicU64::new(last_lsn),
            poisoned: AtomicBool::new(false),
            poison_cause: Mutex::new(None),
            appended: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            last_group: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            syncing: Mutex::new(SyncRounds::default()),
            round_epochs: [AtomicU32::new(0), AtomicU32::new(0)],
            leading: AtomicBool::new(false),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            options,
        });
        let syncer = match inner.options.sync_mode {
            SyncMode::Interval(every) => {
                let inner = Arc::clone(&inner);
                let handle = std::thread::Builder::new()
                    .name("phantom-wal-sync".into())
                    .spawn(move || inner.background_sync(every))
                    .map_err(|e| Error::io(dir, e))?;
                Some(handle)
            }
            _ => None,
        };
        Ok((
            Wal {
                inner,
                syncer,
                closed: false,
            },
            report,
        ))
    }

    /// Opens log `name` for reading from LSN `from` without modifying anything (same as
    /// [`WalReader::open`]).
    pub fn open_read_only(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        name: &str,
        from: Lsn,
    ) -> Result<WalReader> {
        WalReader::open(fs, dir, name, from)
    }

    /// Removes every segment of log `name` (and the `.broken` files of its torn tails), then
    /// fsyncs the directory; returns the bytes freed. For dropping a database: the log must
    /// not be open.
    pub fn destroy(fs: Arc<dyn FileSystem>, dir: &Path, name: &str) -> Result<u64> {
        let names = match fs.list_dir(dir) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let prefix = format!("{name}.log");
        let mut freed = 0;
        let mut removed = false;
        for file in names {
            let is_ours = crate::layout::parse_segment_number(name, &file).is_some()
                || (file.starts_with(&prefix)
                    && file.contains(".broken")
                    && crate::layout::parse_segment_number(
                        name,
                        file.split(".broken").next().unwrap_or_default(),
                    )
                    .is_some());
            if is_ours {
                let path = dir.join(&file);
                freed += fs
                    .file_len(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .unwrap_or(0);
                fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed = true;
            }
        }
        if removed {
            fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(freed)
    }

    /// The segments, oldest first; the last one is the active segment.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        lock(&self.inner.segments).clone()
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.inner.options
    }

    /// Whether a failed write or sync has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// Flushes and syncs everything appended, stops the background syncer and closes the log.
    /// Returns the error a failed final sync gives (dropping the log does the same, but can
    /// only log the error).
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        *lock(&self.inner.stop) = true;
        self.inner.stop_cv.notify_all();
        if let Some(h) = self.syncer.take()
            && h.join().is_err()
        {
            tracing::error!("the log's background sync thread panicked");
        }
        if self.inner.poisoned.load(Ordering::Acquire) {
            return self.inner.check_poison();
        }
        self.inner.sync(self.inner.last_lsn.load(Ordering::Acquire))
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, dir = %self.inner.dir.display(), name = %self.inner.name, "closing the log failed");
        }
    }
}

impl Inner {
    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned {
                cause: lock(&self.poison_cause)
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            });
        }
        Ok(())
    }

    /// Poisons the log with `e` and returns the `Poisoned` error to give the caller.
    fn poison(&self, e: Error) -> Error {
        let cause = e.to_string();
        tracing::error!(error = %e, dir = %self.dir.display(), name = %self.name, "write-ahead log poisoned");
        let mut slot = lock(&self.poison_cause);
        let cause = slot.get_or_insert(cause).clone();
        self.poisoned.store(true, Ordering::Release);
        Error::Poisoned { cause }
    }

    fn append(&self, entry: &LogEntry) -> Result<Lsn> {
        self.check_poison()?;
        // Encoded outside the lock (appenders encode in parallel) into this thread's scratch
        // buffer: a batch's payload does not grow a fresh vector by doubling on every append.
        let mut scratch = ENCODE_SCRATCH.take();
        scratch.clear();
        let (kind, payload) = entry.encode_into(scratch)?;
        let lsn = self.append_encoded(kind, &payload);
        if payload.capacity() <= SCRATCH_KEEP {
            ENCODE_SCRATCH.set(payload);
        }
        lsn
    }

    fn append_encoded(&self, kind: EntryKind, payload: &[u8]) -> Result<Lsn> {
        let len = payload.len() as u64;
        if len > MAX_PAYLOAD_LEN {
            return Err(Error::RecordTooLarge {
                len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let payload_crc = crc32c::crc32c(payload);
        let record_bytes = RECORD_HEADER_LEN + payload.len();
        let (lsn, over_limit) = {
            let mut p = lock(&self.pending);
            // Checked again under the lock: nothing is appended after poisoning is published.
            self.check_poison()?;
            let lsn = p.next_lsn;
            p.next_lsn += 1;
            let (micros, _) = now_micros();
            p.metas.push(RecordMeta {
                lsn,
                micros,
                kind,
                payload_len: len as u32,
                payload_crc,
            });
            p.payloads.extend_from_slice(payload);
            p.bytes += record_bytes;
            self.last_lsn.store(lsn, Ordering::Release);
            (lsn, p.bytes > self.options.buffer_limit)
        };
        self.appended.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(record_bytes as u64, Ordering::Relaxed);
        if over_limit && let Ok(mut io) = self.io.try_lock() {
            self.flush(&mut io)?;
        }
        Ok(lsn)
    }

    /// Hands everything buffered to the OS (no fsync); poisons on failure.
    fn flush(&self, io: &mut Io) -> Result<()> {
        self.flush_inner(io).map_err(|e| self.poison(e))
    }

    fn flush_inner(&self, io: &mut Io) -> Result<()> {
        let (mut payloads, mut metas) = {
            let mut p = lock(&self.pending);
            p.bytes = 0;
            (
                std::mem::replace(&mut p.payloads, std::mem::take(&mut io.spare_payloads)),
                std::mem::replace(&mut p.metas, std::mem::take(&mut io.spare_metas)),
            )
        };
        let Some(last) = metas.last().map(|m| m.lsn) else {
            io.spare_payloads = payloads;
            io.spare_metas = metas;
            return Ok(());
        };
        io.out.clear();
        let mut off = 0usize;
        for meta in &metas {
            let len = meta.payload_len as usize;
            let rec_len = (RECORD_HEADER_LEN + len) as u64;
            if io.active.bytes > SEGMENT_HEADER_LEN as u64
                && io.active.bytes + rec_len > self.options.segment_size
            {
                self.write_out(io)?;
                self.roll(io, meta.lsn)?;
            }
            io.out
                .extend_from_slice(&encode_record_header(meta, io.active.salt));
            io.out
                .extend_from_slice(payloads.get(off..off + len).unwrap_or_default());
            off += len;
            io.active.bytes += rec_len;
            io.active.last_lsn = meta.lsn;
        }
        self.write_out(io)?;
        io.written_lsn = last;
        if let Some(seg) = lock(&self.segments).last_mut() {
            seg.last_lsn = io.active.last_lsn;
            seg.bytes = io.active.bytes;
        }
        payloads.clear();
        metas.clear();
        io.spare_payloads = payloads;
        io.spare_metas = metas;
        Ok(())
    }

    /// Writes `io.out`, which ends at `io.active.bytes`. In a preallocated segment no more than
    /// [`ZERO_CHECK_WINDOW`] bytes are ever written but not synced: a longer write is split,
    /// with an fdatasync between the pieces. A crash therefore leaves non-zero bytes after
    /// the end of valid data only within the window that open checks; past it, the free space
    /// is zero and need not be read (`docs/formats/wal.md`).
    fn write_out(&self, io: &mut Io) -> Result<()> {
        let active = &mut io.active;
        let mut rest = io.out.as_slice();
        let mut at = active.bytes - rest.len() as u64;
        while !rest.is_empty() {
            let n = if active.preallocated() {
                let room = (active.synced + ZERO_CHECK_WINDOW as u64).saturating_sub(at);
                if room == 0 {
                    let synced = active.file.sync_data();
                    synced.map_err(|e| Error::io(&active.path, e))?;
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                    active.synced = at;
                    continue;
                }
                rest.len().min(usize::try_from(room).unwrap_or(usize::MAX))
            } else {
                rest.len()
            };
            let (piece, tail) = rest.split_at(n);
            let wrote = active.file.write_all(piece);
            wrote.map_err(|e| Error::io(&active.path, e))?;
            at += n as u64;
            rest = tail;
            if at > active.written {
                Self::zero_ahead(active, at)?;
            }
        }
        io.out.clear();
        Ok(())
    }

    /// Called when a write has just ended at `end`, past the bytes written so far: writes
    /// [`ZERO_AHEAD`] bytes of zeros after it (within the preallocated length) and moves the
    /// file position back to `end`.
    ///
    /// Why: a preallocated segment is sparse (`set_len`). Writing into a hole allocates blocks,
    /// and then the next fdatasync must also write the file's block map — a second, dependent
    /// device write on every commit that fills a new 4 KiB block. A record batch of 56 KB
    /// (W3's 1,000 rows) fills 14. Zeros written ahead allocate the blocks once per
    /// [`ZERO_AHEAD`], so most fdatasyncs write data only (`docs/formats/wal.md`, "Zeros written
    /// ahead"). The zeros are free space to a reader, as the holes were.
    ///
    /// Invariant (`written`): every byte below it has been written, so a write below it
    /// allocates nothing; it never exceeds the preallocated length unless a record did.
    fn zero_ahead(active: &mut Active, end: u64) -> Result<()> {
        let target = active.preallocated_len.min(end.saturating_add(ZERO_AHEAD));
        let err = |e| Error::io(&active.path, e);
        if target > end {
            let mut left = target - end;
            while left > 0 {
                let n = ZEROS.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                active
                    .file
                    .write_all(ZEROS.get(..n).unwrap_or_default())
                    .map_err(err)?;
                left -= n as u64;
            }
            active.file.seek_to(end).map_err(err)?;
        }
        active.written = target.max(end);
        Ok(())
    }

    /// Seals the active segment (fsynced, trimmed if preallocated) and starts a new one whose
    /// first record will be `first_lsn`.
    fn roll(&self, io: &mut Io, first_lsn: Lsn) -> Result<()> {
        let old = &mut io.active;
        let err = |e| Error::io(&old.path, e);
        if old.preallocated() {
            old.file.set_len(old.bytes).map_err(err)?;
        }
        old.file.sync_all().map_err(err)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.durable_lsn.fetch_max(old.last_lsn, Ordering::AcqRel);
        let number = old.number + 1;
        let header = SegmentHeader {
            version: FormatVersion::CURRENT,
            flags: if self.options.preallocate {
                FLAG_PREALLOCATED
            } else {
                0
            },
            first_lsn,
            number,
            salt: new_salt(),
        };
        let path = self.dir.join(segment_file_name(&self.name, number));
        let file = create_segment(
            self.fs.as_ref(),
            &path,
            &header,
            self.options
                .preallocate
                .then_some(self.options.segment_size),
        )?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        tracing::debug!(segment = %path.display(), first_lsn, "log rolled over to a new segment");
        {
            let mut segs = lock(&self.segments);
            if let Some(seg) = segs.last_mut() {
                seg.last_lsn = old.last_lsn;
                seg.bytes = old.bytes;
            }
            segs.push(SegmentInfo {
                path: path.clone(),
                number,
                first_lsn,
                last_lsn: first_lsn - 1,
                bytes: SEGMENT_HEADER_LEN as u64,
            });
        }
        io.active = Active {
            file,
            path,
            number,
            salt: header.salt,
            bytes: SEGMENT_HEADER_LEN as u64,
            synced: SEGMENT_HEADER_LEN as u64,
            written: SEGMENT_HEADER_LEN as u64,
            preallocated_len: if self.options.preallocate {
                self.options.segment_size
            } else {
                0
            },
            last_lsn: first_lsn - 1,
        };
        Ok(())
    }

    /// Group commit: one leader at a time writes and fsyncs everything buffered; the others
    /// wait for the round that covers their LSN and return when it has (or one of them leads
    /// the next round).
    ///
    /// Rounds: a leader starts round `r` and notes `covering`, the last LSN appended when it
    /// started; its fdatasync covers at least that. A follower whose LSN is within it waits
    /// for the end of round `r`; one whose LSN came later waits for round `r + 1`, which
    /// covers it (it was appended before that round starts). Each round has its own futex
    /// (`round_epochs`, by parity), so the end of round `r` wakes the followers it covered,
    /// all of them, and only one follower of round `r + 1`, to lead it. With one wait queue
    /// for all, every end of a round woke every waiter, half of them to go back to sleep: on
    /// 2 cores with 16 committers those wake-ups were most of the CPU (`docs/performance.md`,
    /// W2). A woken follower that is done returns without taking `syncing`. On failure every
    /// waiter is woken, to see the poisoned log.
    fn sync(&self, upto: Lsn) -> Result<()> {
        let mut waited = false;
        let gather = loop {
            let mut rounds = lock(&self.syncing);
            // Checked under `syncing`, which the leader takes after publishing both: no
            // wake-up is lost.
            self.check_poison()?;
            let durable = self.durable_lsn.load(Ordering::Acquire);
            if durable >= upto {
                if waited && !self.leading.load(Ordering::Acquire) {
                    self.pass_on(&rounds, durable);
                }
                return Ok(());
            }
            if !self.leading.load(Ordering::Acquire) {
                self.leading.store(true, Ordering::Release);
                rounds.round += 1;
                let gather = self.last_group.load(Ordering::Relaxed) > 1;
                // While the leader gathers, the round covers every LSN: a committer that
                // arrives meanwhile appended before the leader notes `covering` below, so it
                // waits for this round (asleep, leaving the CPU to those appending) instead of
                // gathering too.
                rounds.covering = if gather {
                    Lsn::MAX
                } else {
                    self.last_lsn.load(Ordering::Acquire)
                };
                break gather;
            }
            let round = if upto <= rounds.covering {
                rounds.round
            } else {
                rounds.round + 1
            };
            // Read under `syncing`: the end of the round bumps it after taking `syncing`, so
            // `wait` either sleeps before the bump (and is woken) or sees it and returns.
            let epoch = &self.round_epochs[parity(round)];
            let seen = epoch.load(Ordering::Acquire);
            drop(rounds);
            atomic_wait::wait(epoch, seen);
            waited = true;
            // The fast path: done, and not needed to lead (or somebody leads).
            if self.durable_lsn.load(Ordering::Acquire) >= upto
                && !self.poisoned.load(Ordering::Acquire)
                && (self.leading.load(Ordering::Acquire)
                    || self.last_lsn.load(Ordering::Acquire)
                        <= self.durable_lsn.load(Ordering::Acquire))
            {
                return Ok(());
            }
        };
        if gather {
            self.gather();
            lock(&self.syncing).covering = self.last_lsn.load(Ordering::Acquire);
        }
        let result = self.lead_sync();
        let (round, covering) = {
            let rounds = lock(&self.syncing);
            self.leading.store(false, Ordering::Release);
            (rounds.round, rounds.covering)
        };
        self.end_round(round);
        let durable = self.durable_lsn.load(Ordering::Acquire);
        if result.is_err() || durable > covering {
            // On failure, everyone: to see the poisoned log. And when the flush took records
            // appended after the round started (between the leader noting `covering` and its
            // flush): their committers wait for the next round though they are durable now,
            // and no later commit may come to run it. Wake them all; one of the others, if
            // any, leads.
            self.end_round(round + 1);
        } else if self.last_lsn.load(Ordering::Acquire) > durable {
            self.wake_next_leader(round + 1);
        }
        result
    }

    /// Wakes every committer waiting for round `round`.
    fn end_round(&self, round: u64) {
        let epoch = &self.round_epochs[parity(round)];
        epoch.fetch_add(1, Ordering::Release);
        atomic_wait::wake_all(epoch);
    }

    /// Wakes one committer waiting for round `round` (not started yet), to lead it. The
    /// bump makes those about to sleep for it retry instead: none of them misses the call.
    fn wake_next_leader(&self, round: u64) {
        let epoch = &self.round_epochs[parity(round)];
        epoch.fetch_add(1, Ordering::Release);
        atomic_wait::wake_one(epoch);
    }

    /// Called by a committer woken (perhaps to lead) that turned out done, and nobody leads:
    /// durability rose outside a round (a roll-over in an appender's flush syncs the sealed
    /// segment), so the wake-up meant for a leader may have reached a committer that no
    /// longer needs one. Passes it on while records wait. (A round that wrote more than it
    /// covered wakes the next round's committers itself, in `sync`.)
    fn pass_on(&self, rounds: &SyncRounds, durable: Lsn) {
        if self.last_lsn.load(Ordering::Acquire) > durable {
            self.wake_next_leader(rounds.round + 1);
        }
    }

    /// Before leading a round after one that covered a group of commits: lets the group's
    /// committers, just woken, append their next records first, so that one fdatasync covers
    /// them too — yielding the CPU (they need it: two cores, sixteen committers) until as many
    /// new records were appended as the last fsync covered, for at most [`GATHER_MAX`]. With 16 committers
    /// each fsync otherwise covered about half of them: those that arrived while the one
    /// before ran. A lone committer (a group of one) never waits. Only the leader gathers:
    /// the round is already its own (`leading`, covering every LSN), so committers arriving
    /// meanwhile sleep until it ends instead of yielding in turn (which took 9 % of the CPU).
    fn gather(&self) {
        let group = self.last_group.load(Ordering::Relaxed);
        let start_lsn = self.last_lsn.load(Ordering::Acquire);
        let started = std::time::Instant::now();
        while self.last_lsn.load(Ordering::Acquire) - start_lsn < group
            && started.elapsed() < GATHER_MAX
        {
            std::thread::yield_now();
        }
    }

    /// The leader's work: write everything buffered, fdatasync once, publish `durable_lsn`.
    fn lead_sync(&self) -> Result<()> {
        let mut io = lock(&self.io);
        self.check_poison()?;
        self.flush(&mut io)?;
        if io.written_lsn > self.durable_lsn.load(Ordering::Acquire) {
            let path = io.active.path.clone();
            io.active
                .file
                .sync_data()
                .map_err(|e| self.poison(Error::io(path, e)))?;
            io.active.synced = io.active.bytes;
            self.syncs.fetch_add(1, Ordering::Relaxed);
            let before = self.durable_lsn.fetch_max(io.written_lsn, Ordering::AcqRel);
            self.last_group
                .store(io.written_lsn.saturating_sub(before), Ordering::Relaxed);
        }
        Ok(())
    }

    fn commit(&self, lsn: Lsn) -> Result<()> {
        match self.options.sync_mode {
            SyncMode::Always => self.sync(lsn),
            SyncMode::Interval(_) | SyncMode::Never => {
                self.check_poison()?;
                let mut io = lock(&self.io);
                self.check_poison()?;
                if io.written_lsn < lsn {
                    self.flush(&mut io)?;
                }
                Ok(())
            }
        }
    }

    fn background_sync(&self, every: std::time::Duration) {
        let mut stop = lock(&self.stop);
        // `stop` is checked before every wait: a shutdown may come before the first wait.
        while !*stop {
            stop = match self.stop_cv.wait_timeout(stop, every) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            if *stop {
                return;
            }
            if self.poisoned.load(Ordering::Acquire) {
                continue;
            }
            drop(stop);
            let target = self.last_lsn.load(Ordering::Acquire);
            if let Err(e) = self.sync(target) {
                tracing::error!(error = %e, "background log sync failed");
            }
            stop = lock(&self.stop);
        }
    }
}

impl LogSink for Wal {
    fn append(&self, entry: &LogEntry) -> Result<Lsn> {
        self.inner.append(entry)
    }

    fn sync(&self, upto: Lsn) -> Result<()> {
        self.inner.sync(upto)
    }

    fn commit(&self, lsn: Lsn) -> Result<()> {
        self.inner.commit(lsn)
    }

    fn last_lsn(&self) -> Lsn {
        self.inner.last_lsn.load(Ordering::Acquire)
    }

    fn durable_lsn(&self) -> Lsn {
        self.inner.durable_lsn.load(Ordering::Acquire)
    }

    fn stats(&self) -> LogStats {
        LogStats {
            appended: self.inner.appended.load(Ordering::Relaxed),
            syncs: self.inner.syncs.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
            last_lsn: self.last_lsn(),
            durable_lsn: self.durable_lsn(),
        }
    }

    /// Hands buffered records to the OS first (unless poisoned), then reads the segments up
    /// to the last record written. A segment removed concurrently by `remove_before` makes
    /// the iterator yield an I/O error.
    fn read_from(&self, from: Lsn) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send + '_>> {
        let inner = &self.inner;
        let mut io = lock(&inner.io);
        if !inner.poisoned.load(Ordering::Acquire) {
            inner.flush(&mut io)?;
        }
        let reader = WalReader::open_limited(
            Arc::clone(&inner.fs),
            &inner.dir,
            &inner.name,
            from,
            Some(io.written_lsn),
        )?;
        Ok(Box::new(reader))
    }

    fn remove_before(&self, lsn: Lsn) -> Result<u64> {
        let inner = &self.inner;
        // Holding `io` keeps the segment list still (no roll-over meanwhile).
        let mut io = lock(&inner.io);
        // When every record is below `lsn` (a snapshot of the latest state, as after a bulk
        // load) and the active segment holds at least 1/16 of a segment (4 MiB by default),
        // roll over so the whole old segment can go: otherwise every later open reads and
        // checks all of it only to skip it. Smaller logs are not worth a roll (two fsyncs) and
        // keep their name (`<db>.log`, the spec's file). The roll fsyncs the old segment first,
        // and the new one starts at the next LSN, so the log still reaches the snapshot.
        // Records appended but not yet handed to the OS are written first.
        if !inner.poisoned.load(Ordering::Acquire) {
            inner.flush(&mut io)?;
            let active = &io.active;
            if active.bytes > SEGMENT_HEADER_LEN as u64
                && active.bytes >= inner.options.segment_size / 16
                && active.last_lsn < lsn
            {
                let next = active.last_lsn + 1;
                inner.roll(&mut io, next).map_err(|e| inner.poison(e))?;
            }
        }
        let mut segs = lock(&inner.segments);
        let mut freed = 0;
        let mut removed = 0usize;
        // Never the active (last) segment; only a prefix, so no hole is ever left.
        let mut failure = None;
        while segs.len() > removed + 1 {
            let Some(seg) = segs.get(removed) else { break };
            if seg.last_lsn >= lsn {
                break;
            }
            if let Err(e) = inner.fs.remove_file(&seg.path) {
                failure = Some(Error::io(&seg.path, e));
                break;
            }
            tracing::debug!(segment = %seg.path.display(), last_lsn = seg.last_lsn, "removed log segment");
            freed += seg.bytes;
            removed += 1;
        }
        segs.drain(..removed);
        if let Some(e) = failure {
            return Err(e);
        }
        if removed > 0 {
            inner
                .fs
                .sync_dir(&inner.dir)
                .map_err(|e| Error::io(&inner.dir, e))?;
        }
        Ok(freed)
    }
}
