//! One open database: its log, its snapshot store, the state writers build on and the state
//! readers see, and its background snapshot worker.
//!
//! The commit pipeline (group commit without showing readers anything undurable):
//! 1. under the writer mutex, a transaction runs against the *pending* catalog (the state after
//!    every appended record), its record is appended to the log (which assigns the LSN), and
//!    the pending catalog advances — so LSN order is apply order;
//! 2. the mutex is released and the committer waits for its LSN to be durable
//!    ([`LogSink::commit`]); other writers append meanwhile and share the next fsync;
//! 3. only then is the new state *published* to readers (unless a later LSN already was).
//!
//! Invariants: readers only ever see published state, which in `SyncMode::Always` is durable;
//! a failed append leaves the pending state unchanged; a failed commit publishes nothing and,
//! since the log is then poisoned, no later commit succeeds until the database is reopened.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::Utc;
use phantom_recovery::RecoveryReport;
use phantom_snapshot::{Decision, SnapshotInfo, SnapshotPolicy, SnapshotStats, SnapshotStore};
use phantom_storage::{Catalog, FileSystem, ImageKind, ImageMeta, StorageFormat, atomic_write};
use phantom_wal::{LogEntry, LogSink, Lsn};

use crate::background::run_at_background_priority;
use crate::error::{Error, Result};
use crate::tx::Transaction;

/// A consistent view: the catalog after every record up to `lsn`, and none after.
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) catalog: Catalog,
    pub(crate) lsn: Lsn,
}

#[derive(Debug, Default)]
struct SnapState {
    ops_since: u64,
    log_bytes_at_last: u64,
    last_at: Option<Instant>,
    queue: VecDeque<View>,
    worker: Option<JoinHandle<()>>,
    running: bool,
    last: Option<SnapshotInfo>,
    last_error: Option<String>,
    taken: u64,
}

/// Settings a handle needs from the database at the moment it acts.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotSettings {
    pub(crate) enabled: bool,
    pub(crate) policy: Arc<dyn SnapshotPolicy>,
    pub(crate) format: Arc<dyn StorageFormat>,
    pub(crate) retain: usize,
}

#[derive(Debug)]
pub(crate) struct DbHandle {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    pub(crate) log: Arc<dyn LogSink>,
    pub(crate) store: SnapshotStore,
    pending: Mutex<View>,
    published: RwLock<View>,
    snap: Mutex<SnapState>,
    snap_idle: Condvar,
    /// Serializes whole-file writes (snapshots, main file) and retention.
    io: Mutex<()>,
    dropped: AtomicBool,
    failure: Mutex<Option<String>>,
    pub(crate) report: RecoveryReport,
}

impl DbHandle {
    pub(crate) fn new(
        name: &str,
        dir: &Path,
        fs: Arc<dyn FileSystem>,
        log: Arc<dyn LogSink>,
        store: SnapshotStore,
        view: View,
        report: RecoveryReport,
    ) -> DbHandle {
        let log_bytes = log.stats().bytes;
        DbHandle {
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            fs,
            log,
            store,
            pending: Mutex::new(view.clone()),
            published: RwLock::new(view),
            snap: Mutex::new(SnapState {
                log_bytes_at_last: log_bytes,
                last_at: Some(Instant::now()),
                ..SnapState::default()
            }),
            snap_idle: Condvar::new(),
            io: Mutex::new(()),
            dropped: AtomicBool::new(false),
            failure: Mutex::new(None),
            report,
        }
    }

    /// The published (durable) view.
    pub(crate) fn view(&self) -> View {
        read(&self.published).clone()
    }

    fn check_open(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::UnknownDatabase {
                name: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Runs `f` as one transaction and commits it as one log record (nothing is logged when
    /// it changed nothing). Returns `f`'s result and the commit's LSN (`None`: nothing logged).
    pub(crate) fn write<T>(
        self: &Arc<Self>,
        settings: &SnapshotSettings,
        f: impl FnOnce(&mut Transaction) -> Result<T>,
    ) -> Result<(T, Option<Lsn>)> {
        let (out, staged, replaced) = {
            let mut pending = lock(&self.pending);
            self.check_open()?;
            let mut tx = Transaction::new(pending.catalog.clone());
            let out = f(&mut tx)?;
            if tx.mutations.is_empty() {
                return Ok((out, None));
            }
            let lsn = self.log.append(&LogEntry::Batch(tx.mutations))?;
            let replaced = std::mem::replace(
                &mut *pending,
                View {
                    catalog: tx.catalog,
                    lsn,
                },
            );
            (out, pending.clone(), replaced)
        };
        // Dropped outside the lock: the last reference frees the tree nodes the commit
        // copied, work the next committer need not wait for.
        drop(replaced);
        let lsn = staged.lsn;
        self.finish_commit(staged, settings)?;
        Ok((out, Some(lsn)))
    }

    /// Logs an entry that does not change the catalog (custom entries, drop database).
    pub(crate) fn log_entry(
        self: &Arc<Self>,
        entry: &LogEntry,
        settings: &SnapshotSettings,
    ) -> Result<Lsn> {
        let staged = {
            let mut pending = lock(&self.pending);
            self.check_open()?;
            let lsn = self.log.append(entry)?;
            pending.lsn = lsn;
            pending.clone()
        };
        let lsn = staged.lsn;
        self.finish_commit(staged, settings)?;
        Ok(lsn)
    }

    fn finish_commit(self: &Arc<Self>, staged: View, settings: &SnapshotSettings) -> Result<()> {
        if let Err(e) = self.log.commit(staged.lsn) {
            *lock(&self.failure) = Some(e.to_string());
            return Err(e.into());
        }
        let replaced = {
            let mut published = write(&self.published);
            (published.lsn < staged.lsn).then(|| std::mem::replace(&mut *published, staged))
        };
        // Outside the lock, as in `write`: readers and other committers do not wait for it.
        drop(replaced);
        self.after_commit(settings);
        Ok(())
    }

    /// Counts a commit and, when the policy says so, queues a snapshot of the published view
    /// for the background worker. Never blocks on snapshot I/O.
    fn after_commit(self: &Arc<Self>, settings: &SnapshotSettings) {
        let mut s = lock(&self.snap);
        s.ops_since += 1;
        if !settings.enabled {
            return;
        }
        let stats = SnapshotStats {
            ops_since: s.ops_since,
            log_bytes_since: self.log.stats().bytes.saturating_sub(s.log_bytes_at_last),
            elapsed_since: s.last_at.map(|t| t.elapsed()).unwrap_or_default(),
        };
        if settings.policy.decide(&stats) != Decision::Snapshot {
            return;
        }
        s.ops_since = 0;
        s.log_bytes_at_last = self.log.stats().bytes;
        s.last_at = Some(Instant::now());
        // The view at this moment: O(1) to take, shared structure with the live catalog.
        s.queue.push_back(self.view());
        if !s.running {
            s.running = true;
            if let Some(old) = s.worker.take() {
                let _ = old.join();
            }
            let me = Arc::clone(self);
            let settings = settings.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("phantom-snapshot-{}", self.name))
                .spawn(move || me.snapshot_worker(&settings));
            match spawned {
                Ok(handle) => s.worker = Some(handle),
                Err(e) => {
                    s.running = false;
                    s.last_error = Some(format!("could not start the snapshot thread: {e}"));
                    tracing::error!(database = %self.name, error = %e, "could not start the snapshot thread");
                }
            }
        }
    }

    fn snapshot_worker(self: Arc<Self>, settings: &SnapshotSettings) {
        loop {
            let job = {
                let mut s = lock(&self.snap);
                match s.queue.pop_front() {
                    Some(job) => job,
                    None => {
                        s.running = false;
                        self.snap_idle.notify_all();
                        return;
                    }
                }
            };
            let result = self.write_snapshot(&job, settings);
            let mut s = lock(&self.snap);
            match result {
                Ok(info) => {
                    tracing::info!(database = %self.name, lsn = info.lsn, file = %info.file_name, "automatic snapshot written");
                    s.last = Some(info);
                    s.last_error = None;
                }
                Err(e) => {
                    tracing::error!(database = %self.name, error = %e, "automatic snapshot failed");
                    s.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// Writes a snapshot of `view`, applies retention, then drops log segments no retained
    /// snapshot needs.
    pub(crate) fn write_snapshot(
        &self,
        view: &View,
        settings: &SnapshotSettings,
    ) -> Result<SnapshotInfo> {
        let _io = lock(&self.io);
        self.check_open()?;
        // Invariant: no image covers a record the log has not made durable (in every sync
        // mode), so a log that ends before an image can only mean lost log data.
        self.log.sync(view.lsn)?;
        // Encoding and writing the image (the CPU-heavy part, and its fsync) run at background
        // priority so that committers get a CPU first; the log calls before and after stay on
        // this thread, since they take locks that committers wait for.
        // Retention runs with the write: the file it would remove becomes the new snapshot's
        // (`SnapshotStore::write_retaining`).
        let (info, _removed) = run_at_background_priority("phantom-snapshot-write", || {
            self.store.write_retaining(
                &*settings.format,
                view.lsn,
                &view.catalog,
                now(),
                settings.retain.max(1),
            )
        })?;
        lock(&self.snap).taken += 1;
        // Every retained snapshot must still be able to roll forward: keep all records after
        // the oldest retained snapshot's LSN.
        let oldest = self
            .store
            .list()?
            .iter()
            .filter_map(|s| s.info().map(|i| i.lsn))
            .min()
            .unwrap_or(view.lsn);
        let freed = self.log.remove_before(oldest + 1)?;
        if freed > 0 {
            tracing::info!(database = %self.name, bytes = freed, before_lsn = oldest + 1, "removed log segments");
        }
        Ok(info)
    }

    /// Writes the main file `<db>.db` (or `<file_stem>.db`) of the published view.
    pub(crate) fn save_main(&self, format: &dyn StorageFormat, file_stem: &str) -> Result<PathBuf> {
        let view = self.view();
        let _io = lock(&self.io);
        self.check_open()?;
        self.log.sync(view.lsn)?;
        let path = self.dir.join(format!("{file_stem}.db"));
        let meta = ImageMeta {
            database: self.name.clone(),
            lsn: view.lsn,
            created: Some(now()),
            kind: ImageKind::Database,
        };
        atomic_write(&*self.fs, &path, &mut |w| {
            format.write(&meta, &view.catalog, w)
        })?;
        Ok(path)
    }

    /// Waits until the background snapshot worker has nothing queued.
    pub(crate) fn wait_for_snapshots(&self) {
        let mut s = lock(&self.snap);
        while s.running {
            s = self
                .snap_idle
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if let Some(worker) = s.worker.take() {
            let _ = worker.join();
        }
    }

    /// Marks the handle dropped: every later call fails with `UnknownDatabase`.
    pub(crate) fn mark_dropped(&self) {
        let _pending = lock(&self.pending);
        self.dropped.store(true, Ordering::Release);
    }

    /// Closes the handle before its files are reopened by a new one (load, restore, a change
    /// of data directory): no later write is accepted, everything already appended is flushed
    /// and synced, and the snapshot worker is drained. Without this, a commit appended to the
    /// old log's buffer could reach the file after a new log object has opened it.
    pub(crate) fn close(&self) {
        self.mark_dropped();
        let last = self.log.last_lsn();
        if let Err(e) = self.log.sync(last) {
            tracing::error!(database = %self.name, error = %e, "closing: final log sync failed");
        }
        self.wait_for_snapshots();
    }

    pub(crate) fn last_snapshot(&self) -> (Option<SnapshotInfo>, Option<String>, u64) {
        let s = lock(&self.snap);
        (s.last.clone(), s.last_error.clone(), s.taken)
    }

    pub(crate) fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    pub(crate) fn io_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        lock(&self.io)
    }

    pub(crate) fn record_snapshot(&self, info: &SnapshotInfo) {
        let mut s = lock(&self.snap);
        s.last = Some(info.clone());
        s.ops_since = 0;
        s.log_bytes_at_last = self.log.stats().bytes;
        s.last_at = Some(Instant::now());
    }
}

// Lock helpers: a panic while a lock is held must not make the database unusable forever;
// every critical section above leaves the protected state consistent before it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The creation time written into images: whole seconds, so the CSV header keeps the spec's
/// `# Generated: YYYY-MM-DD HH:MM:SS UTC` form (snapshot names have one-second resolution too).
pub(crate) fn now() -> chrono::DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(0)
}
