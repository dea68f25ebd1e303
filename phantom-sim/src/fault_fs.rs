//! [`FaultFs`]: an in-memory [`FileSystem`] that keeps *written* and *durable* state apart,
//! simulates power loss ([`FaultFs::crash`]) and injects I/O errors ([`FaultPlan`]).
//!
//! The model (see `docs/testing.md`, "fault model"):
//! - every file (inode) has a *live* image (what reads return) and a *durable* image (what
//!   survives a crash), plus the list of writes and length changes made since its last sync;
//!   `sync_data`/`sync_all` copy live to durable;
//! - every directory has a *live* and a *durable* set of entries, plus the list of entry
//!   operations (create, rename, unlink) since its last `sync_dir`; only `sync_dir` makes them
//!   durable — a file whose data is synced but whose new name is not can vanish in a crash;
//! - a crash keeps the durable state plus, at random (from the crash seed): a prefix of each
//!   directory's pending entry operations (a journaled file system commits metadata in order,
//!   and the contract promises nothing about un-synced entries either way), and a subset of
//!   each file's unsynced writes — some dropped, some torn at 512-byte sector boundaries, some
//!   applied in another order — with a grown file's unwritten tail left as zeros or garbage;
//! - directories themselves are created durably (the engine only creates the data directory).
//!
//! Everything is driven by seeds, so a run is reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use phantom_storage::{FileRead, FileSystem, FileWrite};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Size of the unit a crash tears writes at.
pub const SECTOR: u64 = 512;

/// `EIO` on Linux.
const EIO: i32 = 5;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The operation fails with `EIO` (a write may have been partly applied first).
    Eio,
    /// The operation fails with `ENOSPC` (a write may have been partly applied first).
    Enospc,
    /// Power is lost: this operation and every later one fail with `EIO` until
    /// [`FaultFs::crash`] produces the post-crash image.
    PowerLoss,
}

/// Which operation fails, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    /// The operation that fails, counted from 1 from the moment the plan is armed. Only
    /// mutating operations count (write, sync, set_len, create, rename, remove, create_dir,
    /// sync_dir), unless `include_reads` is set.
    pub at_op: u64,
    /// What the failure is.
    pub kind: FaultKind,
    /// `false`: only operation `at_op` fails; `true`: it and every counted operation after it.
    pub persistent: bool,
    /// Count (and fail) reads, opens, listings and length queries too.
    pub include_reads: bool,
}

/// Deliberately broken behaviours, to prove the simulation catches a durability bug.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// `sync_dir` returns Ok without making entries durable (an engine that skips the
    /// directory fsync after a rename or create).
    pub sync_dir_lies: bool,
    /// `sync_data`/`sync_all` return Ok without making data durable (acknowledging before the
    /// fsync).
    pub sync_data_lies: bool,
}

/// How adversarial a crash is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashOptions {
    /// A grown file's unwritten tail may be filled with random bytes (otherwise zeros).
    pub garbage_tail: bool,
    /// A prefix of a directory's un-synced entry operations may survive (otherwise entries
    /// always roll back to the last `sync_dir`).
    pub keep_dir_op_prefix: bool,
    /// Unsynced writes may be applied in another order than they were made.
    pub reorder: bool,
}

impl Default for CrashOptions {
    fn default() -> Self {
        CrashOptions {
            garbage_tail: true,
            keep_dir_op_prefix: true,
            reorder: true,
        }
    }
}

/// Counters of a [`FaultFs`] since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsCounters {
    /// Mutating operations attempted.
    pub ops: u64,
    /// Non-mutating operations attempted (reads, opens, listings, lengths).
    pub reads: u64,
    /// File syncs (`sync_data`, `sync_all`) attempted.
    pub file_syncs: u64,
    /// Directory syncs attempted.
    pub dir_syncs: u64,
    /// Faults injected (each failed operation counts).
    pub faults: u64,
    /// Crashes simulated.
    pub crashes: u64,
}

#[derive(Clone, Debug)]
enum PendingWrite {
    Data { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingWrite>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link { name: String, ino: u64 },
    Unlink { name: String },
    Rename { from: String, to: String, ino: u64 },
}

#[derive(Clone, Debug, Default)]
struct Dir {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    ops: Vec<DirOp>,
}

#[derive(Clone, Debug)]
struct Armed {
    plan: FaultPlan,
    seen: u64,
    fired: bool,
}

#[derive(Clone, Debug)]
struct State {
    rng: StdRng,
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    generation: u64,
    counters: FsCounters,
    fault: Option<Armed>,
    fault_fired: bool,
    powered_off: bool,
    bugs: Bugs,
    crash_options: CrashOptions,
}

fn os_err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

fn stale() -> io::Error {
    io::Error::other("stale file handle: the file system crashed since it was opened")
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok((parent, name.to_owned()))
}

impl State {
    /// Counts an operation and decides whether it fails.
    fn check(&mut self, mutating: bool) -> io::Result<()> {
        if self.powered_off {
            return Err(os_err(EIO));
        }
        if mutating {
            self.counters.ops += 1;
        } else {
            self.counters.reads += 1;
        }
        let Some(armed) = self.fault.as_mut() else {
            return Ok(());
        };
        if !mutating && !armed.plan.include_reads {
            return Ok(());
        }
        armed.seen += 1;
        let fire = armed.seen == armed.plan.at_op
            || (armed.plan.persistent && armed.seen > armed.plan.at_op);
        if !fire {
            return Ok(());
        }
        armed.fired = true;
        self.fault_fired = true;
        self.counters.faults += 1;
        Err(match armed.plan.kind {
            FaultKind::Eio => os_err(EIO),
            FaultKind::Enospc => os_err(ENOSPC),
            FaultKind::PowerLoss => {
                self.powered_off = true;
                os_err(EIO)
            }
        })
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        self.dirs
            .get(&parent)
            .and_then(|d| d.live.get(&name))
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(stale)
    }

    fn write_at(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let inode = self.inode(ino)?;
        write_into(&mut inode.live, offset, bytes);
        inode.pending.push(PendingWrite::Data {
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn sync_file(&mut self, ino: u64) -> io::Result<()> {
        self.check(true)?;
        self.counters.file_syncs += 1;
        if self.bugs.sync_data_lies {
            return Ok(());
        }
        let inode = self.inode(ino)?;
        inode.durable = inode.live.clone();
        inode.pending.clear();
        Ok(())
    }

    fn crash(&mut self, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let opts = self.crash_options;
        for dir in self.dirs.values_mut() {
            let keep = if opts.keep_dir_op_prefix && rng.random_bool(0.5) {
                rng.random_range(0..=dir.ops.len())
            } else {
                0
            };
            for op in dir.ops.drain(..).take(keep) {
                match op {
                    DirOp::Link { name, ino } => {
                        dir.durable.insert(name, ino);
                    }
                    DirOp::Unlink { name } => {
                        dir.durable.remove(&name);
                    }
                    DirOp::Rename { from, to, ino } => {
                        dir.durable.remove(&from);
                        dir.durable.insert(to, ino);
                    }
                }
            }
            dir.live = dir.durable.clone();
        }
        let referenced: BTreeSet<u64> = self
            .dirs
            .values()
            .flat_map(|d| d.durable.values().copied())
            .collect();
        self.inodes.retain(|ino, _| referenced.contains(ino));
        for inode in self.inodes.values_mut() {
            let image = crash_image(inode, &mut rng, opts);
            inode.live = image.clone();
            inode.durable = image;
            inode.pending.clear();
        }
        self.generation += 1;
        self.powered_off = false;
        self.fault = None;
        self.counters.crashes += 1;
    }
}

fn write_into(image: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(bytes);
}

/// The content a file has after a crash: durable content plus a random subset of its unsynced
/// writes (dropped, torn at sector boundaries, reordered), and possibly a tail of zeros or
/// garbage up to the length it had before the crash.
fn crash_image(inode: &Inode, rng: &mut StdRng, opts: CrashOptions) -> Vec<u8> {
    let mut image = inode.durable.clone();
    if inode.pending.is_empty() {
        return image;
    }
    let mut kept: Vec<PendingWrite> = Vec::new();
    for w in &inode.pending {
        let roll: f64 = rng.random();
        if roll < 0.35 {
            continue;
        }
        match w {
            PendingWrite::Data { offset, bytes } if roll < 0.6 && !bytes.is_empty() => {
                // Torn: each sector the write touches makes it, or not.
                let end = offset + bytes.len() as u64;
                let mut sector = offset / SECTOR;
                while sector * SECTOR < end {
                    let s = (sector * SECTOR).max(*offset);
                    let e = ((sector + 1) * SECTOR).min(end);
                    if rng.random_bool(0.5) {
                        let piece = bytes[(s - offset) as usize..(e - offset) as usize].to_vec();
                        kept.push(PendingWrite::Data {
                            offset: s,
                            bytes: piece,
                        });
                    }
                    sector += 1;
                }
            }
            other => kept.push(other.clone()),
        }
    }
    if opts.reorder && kept.len() > 1 && rng.random_bool(0.3) {
        kept.shuffle(rng);
    }
    for w in kept {
        match w {
            PendingWrite::Data { offset, bytes } => write_into(&mut image, offset, &bytes),
            PendingWrite::SetLen(len) => image.resize(len as usize, 0),
        }
    }
    let live_len = inode.live.len();
    if image.len() < live_len && rng.random_bool(0.3) {
        // The size reached the disk, the data did not.
        let from = image.len();
        image.resize(live_len, 0);
        if opts.garbage_tail && rng.random_bool(0.5) {
            rng.fill(&mut image[from..]);
        }
    }
    image
}

/// A fault-injecting, crash-simulating in-memory [`FileSystem`]. Cheap to clone (clones share
/// the same state); [`FaultFs::fork`] makes an independent copy.
#[derive(Clone)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("FaultFs")
            .field("files", &s.inodes.len())
            .field("generation", &s.generation)
            .field("counters", &s.counters)
            .finish()
    }
}

impl FaultFs {
    /// An empty file system; `seed` drives the random choices of partial writes.
    pub fn new(seed: u64) -> FaultFs {
        FaultFs {
            state: Arc::new(Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                dirs: BTreeMap::new(),
                inodes: BTreeMap::new(),
                next_ino: 1,
                generation: 0,
                counters: FsCounters::default(),
                fault: None,
                fault_fired: false,
                powered_off: false,
                bugs: Bugs::default(),
                crash_options: CrashOptions::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An independent copy of the whole state (files, pending writes, counters).
    pub fn fork(&self) -> FaultFs {
        let copy = self.lock().clone();
        FaultFs {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// Sets the deliberately broken behaviours.
    pub fn set_bugs(&self, bugs: Bugs) {
        self.lock().bugs = bugs;
    }

    /// Sets how adversarial crashes are.
    pub fn set_crash_options(&self, options: CrashOptions) {
        self.lock().crash_options = options;
    }

    /// Arms a fault plan (replacing any armed one); its operations are counted from now.
    pub fn arm(&self, plan: FaultPlan) {
        let mut s = self.lock();
        s.fault = Some(Armed {
            plan,
            seen: 0,
            fired: false,
        });
        s.fault_fired = false;
    }

    /// Disarms the fault plan; returns whether it fired.
    pub fn disarm(&self) -> bool {
        let mut s = self.lock();
        s.fault.take().is_some_and(|a| a.fired)
    }

    /// Whether a fault fired since the last [`arm`](Self::arm) (or [`crash`](Self::crash)
    /// or [`clear_fired`](Self::clear_fired)).
    pub fn fault_fired(&self) -> bool {
        self.lock().fault_fired
    }

    /// Forgets that a fault fired.
    pub fn clear_fired(&self) {
        self.lock().fault_fired = false;
    }

    /// Whether power is off (a [`FaultKind::PowerLoss`] fired, or [`power_off`](Self::power_off)).
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// Cuts the power: every operation fails with `EIO` until [`crash`](Self::crash).
    pub fn power_off(&self) {
        self.lock().powered_off = true;
    }

    /// Simulates a crash (see the module docs): the image becomes the durable state plus a
    /// random subset of what was not synced, chosen by `seed`; every open handle becomes
    /// invalid; power is back on and any fault plan is disarmed.
    pub fn crash(&self, seed: u64) {
        self.lock().crash(seed);
    }

    /// The counters.
    pub fn counters(&self) -> FsCounters {
        self.lock().counters
    }

    /// The live content of a file (what a read returns now), if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let ino = s.lookup(path).ok()?;
        s.inodes.get(&ino).map(|i| i.live.clone())
    }

    /// The durable content of the file currently named `path`, if it exists.
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let ino = s.lookup(path).ok()?;
        s.inodes.get(&ino).map(|i| i.durable.clone())
    }

    /// Replaces a file's content, durably (live and durable, no pending writes) — for
    /// corruption tests. Creates the file (durably) if it does not exist.
    pub fn set_durable_contents(&self, path: &Path, bytes: Vec<u8>) -> io::Result<()> {
        let mut s = self.lock();
        let (parent, name) = split(path)?;
        let ino = match s.lookup(path) {
            Ok(ino) => ino,
            Err(_) => {
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                let dir = s.dirs.get_mut(&parent).ok_or_else(|| not_found(path))?;
                dir.live.insert(name.clone(), ino);
                dir.durable.insert(name, ino);
                ino
            }
        };
        let inode = s.inode(ino)?;
        inode.live = bytes.clone();
        inode.durable = bytes;
        inode.pending.clear();
        Ok(())
    }

    /// Names in `dir` (live), sorted.
    pub fn file_names(&self, dir: &Path) -> Vec<String> {
        self.lock()
            .dirs
            .get(dir)
            .map(|d| d.live.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn handle_check(&self, generation: u64, mutating: bool) -> io::Result<()> {
        let mut s = self.lock();
        if s.generation != generation {
            return Err(stale());
        }
        s.check(mutating)
    }
}

/// A file opened on a [`FaultFs`].
struct Handle {
    fs: FaultFs,
    path: PathBuf,
    ino: u64,
    generation: u64,
    pos: u64,
    append: bool,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("pos", &self.pos)
            .finish()
    }
}

impl Read for Handle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.fs.lock();
        if s.generation != self.generation {
            return Err(stale());
        }
        s.check(false)?;
        let data = &s.inode(self.ino)?.live;
        let start = (self.pos as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Handle {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let mut s = self.fs.lock();
        if s.generation != self.generation {
            return Err(stale());
        }
        let len = s.inode(self.ino)?.live.len() as i128;
        let target = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => len + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

impl FileRead for Handle {
    fn file_len(&self) -> io::Result<u64> {
        let mut s = self.fs.lock();
        if s.generation != self.generation {
            return Err(stale());
        }
        s.check(false)?;
        Ok(s.inode(self.ino)?.live.len() as u64)
    }
}

impl Write for Handle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.fs.lock();
        if s.generation != self.generation {
            return Err(stale());
        }
        let offset = if self.append {
            s.inode(self.ino)?.live.len() as u64
        } else {
            self.pos
        };
        if let Err(e) = s.check(true) {
            // A failing write may have reached the page cache in part.
            if !s.powered_off && !buf.is_empty() {
                let n = s.rng.random_range(0..buf.len());
                if n > 0 {
                    s.write_at(self.ino, offset, &buf[..n])?;
                }
            }
            return Err(e);
        }
        s.write_at(self.ino, offset, buf)?;
        self.pos = offset + buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FileWrite for Handle {
    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.fs.lock();
        if s.generation != self.generation {
            return Err(stale());
        }
        s.sync_file(self.ino)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.fs.lock();
        if s.generation != self.generation {
            return Err(stale());
        }
        s.check(true)?;
        let inode = s.inode(self.ino)?;
        inode.live.resize(len as usize, 0);
        inode.pending.push(PendingWrite::SetLen(len));
        Ok(())
    }

    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.fs.handle_check(self.generation, false)?;
        self.pos = pos;
        Ok(())
    }
}

impl FaultFs {
    fn open_handle(&self, path: &Path, append: bool) -> io::Result<Handle> {
        let mut s = self.lock();
        s.check(false)?;
        let ino = s.lookup(path)?;
        Ok(Handle {
            fs: self.clone(),
            path: path.to_path_buf(),
            ino,
            generation: s.generation,
            pos: 0,
            append,
        })
    }
}

impl FileSystem for FaultFs {
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FileRead>> {
        Ok(Box::new(self.open_handle(path, false)?))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let mut s = self.lock();
        s.check(true)?;
        let (parent, name) = split(path)?;
        if !s.dirs.contains_key(&parent) {
            return Err(not_found(&parent));
        }
        let ino = match s.lookup(path) {
            Ok(ino) => {
                let inode = s.inode(ino)?;
                inode.live.clear();
                inode.pending.push(PendingWrite::SetLen(0));
                ino
            }
            Err(_) => {
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                if let Some(dir) = s.dirs.get_mut(&parent) {
                    dir.live.insert(name.clone(), ino);
                    dir.ops.push(DirOp::Link { name, ino });
                }
                ino
            }
        };
        Ok(Box::new(Handle {
            fs: self.clone(),
            path: path.to_path_buf(),
            ino,
            generation: s.generation,
            pos: 0,
            append: false,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(self.open_handle(path, true)?))
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(Box::new(self.open_handle(path, false)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check(true)?;
        let ino = s.lookup(from)?;
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        if !s.dirs.contains_key(&to_dir) {
            return Err(not_found(&to_dir));
        }
        if from_dir == to_dir {
            if let Some(dir) = s.dirs.get_mut(&from_dir) {
                dir.live.remove(&from_name);
                dir.live.insert(to_name.clone(), ino);
                dir.ops.push(DirOp::Rename {
                    from: from_name,
                    to: to_name,
                    ino,
                });
            }
        } else {
            if let Some(dir) = s.dirs.get_mut(&from_dir) {
                dir.live.remove(&from_name);
                dir.ops.push(DirOp::Unlink { name: from_name });
            }
            if let Some(dir) = s.dirs.get_mut(&to_dir) {
                dir.live.insert(to_name.clone(), ino);
                dir.ops.push(DirOp::Link { name: to_name, ino });
            }
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check(true)?;
        s.lookup(path)?;
        let (parent, name) = split(path)?;
        if let Some(dir) = s.dirs.get_mut(&parent) {
            dir.live.remove(&name);
            dir.ops.push(DirOp::Unlink { name });
        }
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check(true)?;
        for ancestor in path.ancestors() {
            s.dirs.entry(ancestor.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check(true)?;
        s.counters.dir_syncs += 1;
        let lies = s.bugs.sync_dir_lies;
        let dir = s.dirs.get_mut(path).ok_or_else(|| not_found(path))?;
        if !lies {
            dir.durable = dir.live.clone();
            dir.ops.clear();
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut s = self.lock();
        s.check(false)?;
        let dir = s.dirs.get(path).ok_or_else(|| not_found(path))?;
        Ok(dir.live.keys().cloned().collect())
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        let mut s = self.lock();
        s.check(false)?;
        match s.lookup(path) {
            Ok(ino) => Ok(Some(s.inode(ino)?.live.len() as u64)),
            Err(_) => Ok(None),
        }
    }
}
