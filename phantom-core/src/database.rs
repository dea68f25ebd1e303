//! The [`Database`]: one data directory holding many named databases, each made durable by
//! its own write-ahead log and snapshots. This is the spec's API in Rust naming.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use phantom_recovery::{
    RecoveryMode, RecoveryReport, Restored, Target, VerifyReport, load_newest_image,
    replay_pipelined,
};
use phantom_snapshot::{EveryOps, Never, SnapshotInfo, SnapshotPolicy, SnapshotStore};
use phantom_storage::{
    Column, CsvFormat, FileSystem, Row, RowId, Schema, StdFs, StorageFormat, TEMP_SUFFIX,
    WriteBack, validate_name,
};
use phantom_wal::{LogEntry, LogStats, Lsn, SyncMode};

use crate::error::{Error, Result};
use crate::filter::{Filter, Literal};
use crate::handle::{DbHandle, SnapshotSettings, View, lock};
use crate::lock::DirLock;
use crate::log::{LogFactory, WalFactory};
use crate::tx::{Query, Rows, Transaction, assignments};

/// The spec's default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The spec's default snapshot interval, in committed operations.
pub const DEFAULT_SNAPSHOT_INTERVAL: u64 = 1000;

/// Builds a [`Database`] with non-default parts: any [`StorageFormat`], [`LogFactory`]
/// (hence any `LogSink`), [`SnapshotPolicy`] and [`FileSystem`].
#[derive(Debug)]
pub struct Builder {
    data_dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    main_format: Arc<dyn StorageFormat>,
    snapshot_format: Arc<dyn StorageFormat>,
    log: Arc<dyn LogFactory>,
    policy: Arc<dyn SnapshotPolicy>,
    snapshots_enabled: bool,
    retain: usize,
    write_back: Option<WriteBack>,
    mode: RecoveryMode,
    progress: Option<ProgressFn>,
}

/// A callback told how far a long recovery got (records replayed so far).
#[derive(Clone)]
pub struct ProgressFn(pub Arc<dyn Fn(RecoveryProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn(..)")
    }
}

/// Progress of one database's recovery, for a progress bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryProgress {
    /// Database name.
    pub database: String,
    /// Log records replayed so far.
    pub records: u64,
    /// The LSN reached.
    pub lsn: Lsn,
    /// The last LSN in the log (the goal).
    pub last_lsn: Lsn,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            fs: Arc::new(StdFs),
            main_format: Arc::new(CsvFormat),
            snapshot_format: Arc::new(CsvFormat),
            log: Arc::new(WalFactory::default()),
            policy: Arc::new(EveryOps(DEFAULT_SNAPSHOT_INTERVAL)),
            snapshots_enabled: true,
            retain: phantom_snapshot::DEFAULT_RETAIN,
            write_back: Some(WriteBack::SNAPSHOT),
            mode: RecoveryMode::default(),
            progress: None,
        }
    }
}

impl Builder {
    /// The data directory (default `./data`).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }
    /// The file system every file operation goes through (default: the real one).
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }
    /// Format of the main file `<db>.db` (default: the spec's CSV).
    pub fn main_format(mut self, format: Arc<dyn StorageFormat>) -> Self {
        self.main_format = format;
        self
    }
    /// Format of snapshots (default: the spec's CSV; `BinaryFormat` is faster).
    pub fn snapshot_format(mut self, format: Arc<dyn StorageFormat>) -> Self {
        self.snapshot_format = format;
        self
    }
    /// Where each database's log comes from (default: phantom-wal, `SyncMode::Always`).
    pub fn log_factory(mut self, log: Arc<dyn LogFactory>) -> Self {
        self.log = log;
        self
    }
    /// Durability mode of the default log.
    pub fn sync_mode(mut self, sync: SyncMode) -> Self {
        self.log = Arc::new(WalFactory::new(sync));
        self
    }
    /// When automatic snapshots are taken (default: every 1000 committed operations).
    pub fn snapshot_policy(mut self, policy: Arc<dyn SnapshotPolicy>) -> Self {
        self.policy = policy;
        self
    }
    /// Turns automatic snapshots on or off (default on).
    pub fn snapshots_enabled(mut self, on: bool) -> Self {
        self.snapshots_enabled = on;
        self
    }
    /// How many snapshots to keep per database (default 5).
    pub fn retain_snapshots(mut self, keep: usize) -> Self {
        self.retain = keep.max(1);
        self
    }
    /// How snapshot files reach the device while they are written (default
    /// [`WriteBack::SNAPSHOT`]: 128 KiB chunks at up to 256 MiB/s, so commits running meanwhile
    /// never queue behind one long flush); `None` leaves everything to the final fsync.
    pub fn snapshot_write_back(mut self, write_back: Option<WriteBack>) -> Self {
        self.write_back = write_back;
        self
    }

    /// How recovery treats an irregular log (default: cut a torn tail, refuse corruption).
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.mode = mode;
        self
    }
    /// Called every 10,000 replayed records (and at the end) while a database recovers.
    pub fn recovery_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Builds the database without touching the disk (the spec's constructor).
    pub fn build(self) -> Result<Database> {
        validate_dir(&self.data_dir)?;
        Ok(Database {
            shared: Arc::new(Shared {
                fs: self.fs,
                main_format: self.main_format,
                log: self.log,
                retain: self.retain,
                write_back: self.write_back,
                mode: self.mode,
                progress: self.progress,
                settings: RwLock::new(Settings {
                    data_dir: self.data_dir,
                    snapshots_enabled: self.snapshots_enabled,
                    policy: self.policy,
                    snapshot_format: self.snapshot_format,
                }),
                dir: Mutex::new(DirState::default()),
            }),
        })
    }

    /// Builds the database and, when the data directory exists, locks it at once (so a second
    /// opener fails now, not at its first write).
    pub fn open(self) -> Result<Database> {
        let db = self.build()?;
        db.dir_for(false)?;
        Ok(db)
    }
}

#[derive(Debug)]
struct Settings {
    data_dir: PathBuf,
    snapshots_enabled: bool,
    policy: Arc<dyn SnapshotPolicy>,
    snapshot_format: Arc<dyn StorageFormat>,
}

#[derive(Debug, Default)]
struct DirState {
    lock: Option<DirLock>,
    dbs: BTreeMap<String, Arc<DbHandle>>,
}

#[derive(Debug)]
struct Shared {
    fs: Arc<dyn FileSystem>,
    main_format: Arc<dyn StorageFormat>,
    log: Arc<dyn LogFactory>,
    retain: usize,
    write_back: Option<WriteBack>,
    mode: RecoveryMode,
    progress: Option<ProgressFn>,
    settings: RwLock<Settings>,
    dir: Mutex<DirState>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self
            .dir
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for handle in state.dbs.values() {
            handle.wait_for_snapshots();
        }
    }
}

/// Per-database figures of [`Database::stats`].
#[derive(Clone, Debug)]
pub struct DatabaseStats {
    /// Database name.
    pub name: String,
    /// Number of tables.
    pub tables: usize,
    /// Number of rows over all tables.
    pub rows: usize,
    /// LSN of the last commit readers can see.
    pub last_lsn: Lsn,
    /// Log counters.
    pub log: LogStats,
    /// Bytes of this database's files (main file, log, snapshots).
    pub bytes_on_disk: u64,
    /// The newest snapshot on disk.
    pub last_snapshot: Option<SnapshotInfo>,
    /// Snapshots written since this database was opened.
    pub snapshots_taken: u64,
    /// What recovery did when this database was opened.
    pub recovery: RecoveryReport,
}

/// Figures of [`Database::stats`], read from the live state and the disk — never constants.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Per database, by name.
    pub databases: Vec<DatabaseStats>,
    /// Tables over all databases.
    pub tables: usize,
    /// Rows over all databases.
    pub rows: usize,
    /// Bytes of all database files.
    pub bytes_on_disk: u64,
}

/// What [`Database::health`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `true` when no problem was found.
    pub healthy: bool,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// An embedded, durable table store: many named databases in one data directory.
///
/// `Database` is `Send + Sync`; share it between threads with `Arc` (or by reference).
///
/// ```
/// use phantom_core::{Column, ColumnType, Database, Filter, Literal};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path())?;
/// db.create_database("app")?;
/// db.create_table("app", "users", vec![
///     Column::new("id", ColumnType::Int).primary_key(),
///     Column::new("name", ColumnType::String),
/// ])?;
/// db.insert("app", "users", [("id", Literal::from(1)), ("name", "Doe, John".into())])?;
/// let rows = db.select("app", "users", &Filter::parse("id = 1")?)?;
/// assert_eq!(rows.get(0, "name"), Some(&"Doe, John".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Database {
    shared: Arc<Shared>,
}

fn validate_dir(path: &Path) -> Result<()> {
    let invalid = |reason| Error::InvalidDataDirectory {
        path: path.to_path_buf(),
        reason,
    };
    if path.as_os_str().is_empty() {
        return Err(invalid("the path is empty"));
    }
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(invalid("the path contains a NUL byte"));
    }
    if path.exists() && !path.is_dir() {
        return Err(invalid("the path exists and is not a directory"));
    }
    Ok(())
}

impl Default for Database {
    fn default() -> Self {
        Database::new()
    }
}

impl Database {
    /// A database on `./data`, with the spec's defaults. Touches no file until first used.
    pub fn new() -> Database {
        Builder::default()
            .build()
            .unwrap_or_else(|_| unreachable!("the default data directory is a valid path"))
    }

    /// A builder for non-default parts.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Opens the data directory `dir` with defaults (locking it if it exists).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Database> {
        Builder::default().data_dir(dir).open()
    }

    // ----- configuration (the spec's setters) -----

    /// Moves to another data directory: open databases are closed and the old directory's
    /// lock is released. The path is validated; it is created when first written.
    pub fn set_data_directory(&self, dir: impl Into<PathBuf>) -> Result<()> {
        let dir = dir.into();
        validate_dir(&dir)?;
        let mut state = lock(&self.shared.dir);
        for handle in state.dbs.values() {
            handle.close();
        }
        state.dbs.clear();
        state.lock = None;
        self.settings_mut().data_dir = dir;
        Ok(())
    }

    /// The data directory.
    pub fn data_directory(&self) -> PathBuf {
        self.settings().data_dir.clone()
    }

    /// Turns automatic snapshots on or off.
    pub fn set_snapshot_enabled(&self, enabled: bool) {
        self.settings_mut().snapshots_enabled = enabled;
    }

    /// Takes an automatic snapshot every `ops` committed operations (0: never).
    pub fn set_snapshot_interval(&self, ops: u64) {
        let policy: Arc<dyn SnapshotPolicy> = if ops == 0 {
            Arc::new(Never)
        } else {
            Arc::new(EveryOps(ops))
        };
        self.settings_mut().policy = policy;
    }

    /// Replaces the snapshot policy.
    pub fn set_snapshot_policy(&self, policy: Arc<dyn SnapshotPolicy>) {
        self.settings_mut().policy = policy;
    }

    /// Sets the format of later snapshots.
    pub fn set_snapshot_format(&self, format: Arc<dyn StorageFormat>) {
        self.settings_mut().snapshot_format = format;
    }

    fn settings(&self) -> std::sync::RwLockReadGuard<'_, Settings> {
        self.shared
            .settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn settings_mut(&self) -> std::sync::RwLockWriteGuard<'_, Settings> {
        self.shared
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot_settings(&self) -> SnapshotSettings {
        let s = self.settings();
        SnapshotSettings {
            enabled: s.snapshots_enabled,
            policy: Arc::clone(&s.policy),
            format: Arc::clone(&s.snapshot_format),
            retain: self.shared.retain,
        }
    }

    // ----- the directory and the handles -----

    /// The data directory, locked; `None` when it does not exist and `create` is false.
    fn dir_for(&self, create: bool) -> Result<Option<PathBuf>> {
        let mut state = lock(&self.shared.dir);
        self.dir_locked(&mut state, create)
    }

    fn dir_locked(&self, state: &mut DirState, create: bool) -> Result<Option<PathBuf>> {
        let dir = self.data_directory();
        if state.lock.is_some() {
            return Ok(Some(dir));
        }
        if !dir.exists() {
            if !create {
                return Ok(None);
            }
            self.shared
                .fs
                .create_dir_all(&dir)
                .map_err(Error::io(&dir))?;
        }
        let held = DirLock::acquire(&dir)?;
        tracing::debug!(lock = %held.path().display(), "data directory locked");
        state.lock = Some(held);
        Ok(Some(dir))
    }

    /// The open handle of `name`, recovering it from disk on first use; with `create`, a
    /// missing database is created.
    fn handle(&self, name: &str, create: bool) -> Result<Arc<DbHandle>> {
        validate_name(name)?;
        let mut state = lock(&self.shared.dir);
        if let Some(h) = state.dbs.get(name) {
            return Ok(Arc::clone(h));
        }
        let unknown = || Error::UnknownDatabase {
            name: name.to_owned(),
        };
        let Some(dir) = self.dir_locked(&mut state, create)? else {
            return Err(unknown());
        };
        let handle = match self.recover(&dir, name)? {
            Some(h) => h,
            None if create => self.create_handle(&dir, name)?,
            None => return Err(unknown()),
        };
        state.dbs.insert(name.to_owned(), Arc::clone(&handle));
        Ok(handle)
    }

    /// The formats images may be in beyond the shipped ones: the configured main and
    /// snapshot formats (a custom `StorageFormat` must be recognised to be recovered).
    fn extra_formats(&self) -> Vec<Arc<dyn StorageFormat>> {
        vec![
            Arc::clone(&self.settings().snapshot_format),
            Arc::clone(&self.shared.main_format),
        ]
    }

    fn store(&self, dir: &Path, name: &str) -> Result<SnapshotStore> {
        let mut store = SnapshotStore::new(Arc::clone(&self.shared.fs), dir, name)?
            .with_write_back(self.shared.write_back);
        for format in self.extra_formats() {
            store = store.with_format(format);
        }
        Ok(store)
    }

    fn exists_on_disk(&self, dir: &Path, name: &str, store: &SnapshotStore) -> Result<bool> {
        let fs = &self.shared.fs;
        Ok(self.shared.log.exists(fs, dir, name)?
            || fs
                .file_len(&dir.join(format!("{name}.db")))
                .map_err(Error::io(dir))?
                .is_some()
            || !store.list()?.is_empty())
    }

    /// Recovers `name` from `dir`: newest valid recovery point, then the log after it.
    fn recover(&self, dir: &Path, name: &str) -> Result<Option<Arc<DbHandle>>> {
        let started = Instant::now();
        let fs = &self.shared.fs;
        let store = self.store(dir, name)?;
        if !self.exists_on_disk(dir, name, &store)? {
            return Ok(None);
        }
        store.remove_temp_files()?;
        let main_tmp = dir.join(format!("{name}.db{TEMP_SUFFIX}"));
        if fs
            .file_len(&main_tmp)
            .map_err(Error::io(&main_tmp))?
            .is_some()
        {
            fs.remove_file(&main_tmp).map_err(Error::io(&main_tmp))?;
        }
        let mut image = load_newest_image(&**fs, dir, name, &store, &self.extra_formats())?;
        let prepared = self.shared.log.prepare(fs, dir, name, self.shared.mode)?;
        let mut opened = self.shared.log.open(fs, dir, name, image.lsn + 1)?;
        // Moved, not cloned: a catalog nothing else shares is changed in place by replay.
        let mut catalog = std::mem::take(&mut image.catalog);
        let last_lsn = opened.sink.last_lsn();
        let mut replayed = 0u64;
        let records = opened.sink.read_from(image.lsn + 1)?.inspect(|r| {
            replayed += 1;
            if let (Some(progress), Ok(r)) = (&self.shared.progress, r)
                && (replayed.is_multiple_of(10_000) || r.lsn == last_lsn)
            {
                (progress.0)(RecoveryProgress {
                    database: name.to_owned(),
                    records: replayed,
                    lsn: r.lsn,
                    last_lsn,
                });
            }
        });
        // Errors name real files: the oldest segment present for a gap, the newest for a log
        // that ends too early (listed only when there is an error to report).
        let log_file = |newest| phantom_wal::segment_file_for_error(&**fs, dir, name, newest);
        // Reading and decoding the log overlap with applying it (a second thread).
        let stats = replay_pipelined(&mut catalog, image.lsn, records)
            .map_err(|e| e.with_log(log_file(false)))?;
        // The log may claim more than replay reached: a segment that starts after the recovery
        // point with nothing before it (records in between are missing). Appending would then
        // acknowledge commits that no later open can reach: refuse now. (Found by fuzzing.)
        let log_last = opened.sink.last_lsn();
        if log_last > stats.last_lsn {
            return Err(phantom_recovery::Error::LogGap {
                log: log_file(false),
                image_lsn: image.lsn,
                expected: stats.last_lsn + 1,
                found: log_last + 1,
            }
            .into());
        }
        let mut warnings = Vec::new();
        if stats.dropped {
            tracing::info!(database = name, "finishing an interrupted drop");
            drop(opened);
            self.remove_files(dir, name, &store)?;
            return Ok(None);
        }
        if opened.sink.last_lsn() < image.lsn {
            // Images are only written after the log is durable up to their LSN, so a log that
            // ends before one has lost records it once held (a truncated or deleted file), and
            // commits after the image may be gone with them: that is an error naming the log,
            // unless salvage was asked for.
            let log_lsn = opened.sink.last_lsn();
            if self.shared.mode != RecoveryMode::Salvage {
                return Err(phantom_recovery::Error::LogBehindImage {
                    log: log_file(true),
                    log_lsn,
                    image: image.source.clone().unwrap_or_default(),
                    image_lsn: image.lsn,
                }
                .into());
            }
            tracing::warn!(
                database = name,
                log_lsn,
                image_lsn = image.lsn,
                "salvage: the log ends before the recovery point; starting a new log after it"
            );
            let torn = opened.torn_bytes_cut;
            drop(opened);
            // Keep the old log (and the bytes a torn tail cut) as evidence, never delete it.
            let moved = self.shared.log.set_aside(fs, dir, name)?;
            warnings.push(format!(
                "the log ended at LSN {log_lsn}, before the recovery point's LSN {}: a new log starts after it; old segments kept as {}",
                image.lsn,
                moved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
            opened = self.shared.log.open(fs, dir, name, image.lsn + 1)?;
            opened.torn_bytes_cut += torn;
        }
        let report = RecoveryReport {
            database: name.to_owned(),
            recovery_point: image.source.clone(),
            recovery_lsn: image.lsn,
            rejected: image.rejected.clone(),
            final_lsn: stats.last_lsn,
            replay: stats,
            torn_bytes_cut: opened.torn_bytes_cut,
            mode: self.shared.mode,
            salvaged: prepared.salvaged,
            warnings,
            duration: started.elapsed(),
        };
        tracing::info!(database = name, ?report, "recovered");
        let view = View {
            catalog,
            lsn: report.final_lsn,
        };
        Ok(Some(Arc::new(DbHandle::new(
            name,
            dir,
            Arc::clone(fs),
            opened.sink,
            store,
            view,
            report,
        ))))
    }

    fn create_handle(&self, dir: &Path, name: &str) -> Result<Arc<DbHandle>> {
        let fs = &self.shared.fs;
        let store = self.store(dir, name)?;
        let opened = self.shared.log.open(fs, dir, name, 1)?;
        let view = View {
            catalog: phantom_storage::Catalog::new(),
            lsn: opened.sink.last_lsn(),
        };
        let report = RecoveryReport {
            database: name.to_owned(),
            ..RecoveryReport::default()
        };
        let handle = Arc::new(DbHandle::new(
            name,
            dir,
            Arc::clone(fs),
            opened.sink,
            store,
            view,
            report,
        ));
        handle.log_entry(&LogEntry::CreateDatabase, &self.snapshot_settings())?;
        Ok(handle)
    }

    fn remove_files(&self, dir: &Path, name: &str, store: &SnapshotStore) -> Result<()> {
        let fs = &self.shared.fs;
        for snap in store.list()? {
            fs.remove_file(snap.path())
                .map_err(Error::io(snap.path()))?;
        }
        let main = dir.join(format!("{name}.db"));
        if fs.file_len(&main).map_err(Error::io(&main))?.is_some() {
            fs.remove_file(&main).map_err(Error::io(&main))?;
        }
        // The log goes last: until it is gone, its DropDatabase record finishes the drop.
        self.shared.log.destroy(fs, dir, name)?;
        fs.sync_dir(dir).map_err(Error::io(dir))?;
        Ok(())
    }

    // ----- databases -----

    /// Creates a database; fails with `DatabaseExists` if it exists.
    pub fn create_database(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        if self.database_exists(name)? {
            return Err(Error::DatabaseExists {
                name: name.to_owned(),
            });
        }
        self.handle(name, true).map(drop)
    }

    /// Creates a database unless it exists; `true` when it was created.
    pub fn ensure_database(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        let existed = self.database_exists(name)?;
        self.handle(name, true)?;
        Ok(!existed)
    }

    /// `true` when the database exists (in memory or on disk).
    pub fn database_exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        match self.handle(name, false) {
            Ok(_) => Ok(true),
            Err(Error::UnknownDatabase { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Drops a database and removes all its files. The drop is logged first, so a crash in
    /// the middle is finished by the next open.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        let handle = self.handle(name, false)?;
        handle.log_entry(&LogEntry::DropDatabase, &self.snapshot_settings())?;
        handle.mark_dropped();
        handle.wait_for_snapshots();
        lock(&self.shared.dir).dbs.remove(name);
        let _io = handle.io_lock();
        self.remove_files(&handle.dir, name, &handle.store)
    }

    /// Names of all databases (open or on disk), sorted.
    pub fn list_databases(&self) -> Result<Vec<String>> {
        let mut names: std::collections::BTreeSet<String> =
            lock(&self.shared.dir).dbs.keys().cloned().collect();
        if let Some(dir) = self.dir_for(false)? {
            let mut seen = std::collections::BTreeSet::new();
            for file in self.shared.fs.list_dir(&dir).map_err(Error::io(&dir))? {
                if let Some(name) = database_of_file(&file) {
                    seen.insert(name);
                }
            }
            // Checked from the files alone: listing must not recover (load and replay) every
            // database in the directory. A drop interrupted by a crash is finished, and the
            // name disappears, when that database is next opened.
            for name in seen {
                if !names.contains(&name)
                    && self.exists_on_disk(&dir, &name, &self.store(&dir, &name)?)?
                {
                    names.insert(name);
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    // ----- tables -----

    /// Creates a table; columns keep their creation order.
    pub fn create_table(&self, db: &str, table: &str, columns: Vec<Column>) -> Result<()> {
        self.transaction(db, |tx| tx.create_table(table, columns))
    }

    /// Drops a table.
    pub fn drop_table(&self, db: &str, table: &str) -> Result<()> {
        self.transaction(db, |tx| tx.drop_table(table))
    }

    /// Table names, sorted.
    pub fn list_tables(&self, db: &str) -> Result<Vec<String>> {
        let view = self.handle(db, false)?.view();
        Ok(view.catalog.table_names().map(str::to_owned).collect())
    }

    /// A table's schema (columns in creation order).
    pub fn table_schema(&self, db: &str, table: &str) -> Result<Schema> {
        let view = self.handle(db, false)?.view();
        Ok(view.catalog.table(table)?.schema().clone())
    }

    // ----- rows -----

    /// Inserts one row of `(column, value)` pairs (missing columns are NULL); returns its id.
    pub fn insert<K: Into<String>, V: Into<Literal>>(
        &self,
        db: &str,
        table: &str,
        row: impl IntoIterator<Item = (K, V)>,
    ) -> Result<RowId> {
        let row = assignments(row);
        self.transaction(db, |tx| tx.insert(table, row))
    }

    /// Inserts many rows as one atomic commit; returns their ids.
    pub fn insert_many<K: Into<String>, V: Into<Literal>, R: IntoIterator<Item = (K, V)>>(
        &self,
        db: &str,
        table: &str,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<Vec<RowId>> {
        let rows: Vec<_> = rows.into_iter().map(assignments).collect();
        self.transaction(db, |tx| tx.insert_many(table, rows))
    }

    /// Inserts rows given as values in schema order, as one atomic commit; returns their ids.
    ///
    /// The bulk-load path: no column names to look up and no text to parse. Each value must
    /// fit its column as in [`Database::insert`] (an int fits a float column; NULL only where
    /// the column allows it), and each row must have one value per column.
    ///
    /// ```
    /// # use phantom_core::{Column, ColumnType, Database, Row, Value};
    /// # let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path())?;
    /// db.ensure_database("app")?;
    /// db.create_table("app", "t", vec![
    ///     Column::new("id", ColumnType::Int).primary_key(),
    ///     Column::new("score", ColumnType::Float),
    /// ])?;
    /// let ids = db.insert_values("app", "t", [
    ///     vec![Value::Int(1), Value::Int(7)],       // 7 fits the float column as 7.0
    ///     vec![Value::Int(2), Value::Float(0.5)],
    /// ])?;
    /// assert_eq!(ids, vec![1, 2]);
    /// assert!(db.insert_values("app", "t", [vec![Value::Int(3)]]).is_err()); // too few values
    /// // A `Row` built straight from its values needs no `Vec` on the way.
    /// let row: Row = [Value::Int(3), Value::Float(1.5)].into_iter().collect();
    /// assert_eq!(db.insert_values("app", "t", [row])?, vec![3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_values<R: Into<Row>>(
        &self,
        db: &str,
        table: &str,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<Vec<RowId>> {
        let rows: Vec<Row> = rows.into_iter().map(Into::into).collect();
        self.transaction(db, |tx| tx.insert_values(table, rows))
    }

    /// Rows matching `filter`, every column, in row-id order.
    pub fn select(&self, db: &str, table: &str, filter: &Filter) -> Result<Rows> {
        self.query(db, table, &Query::filter(filter.clone()))
    }

    /// Every row of a table.
    pub fn select_all(&self, db: &str, table: &str) -> Result<Rows> {
        self.query(db, table, &Query::all())
    }

    /// A read with projection, order and limit.
    pub fn query(&self, db: &str, table: &str, query: &Query) -> Result<Rows> {
        let view = self.handle(db, false)?.view();
        crate::tx::run_query(&view.catalog, table, query)
    }

    /// Sets columns of the rows matching `filter`; returns how many changed.
    pub fn update<K: Into<String>, V: Into<Literal>>(
        &self,
        db: &str,
        table: &str,
        filter: &Filter,
        set: impl IntoIterator<Item = (K, V)>,
    ) -> Result<usize> {
        let set = assignments(set);
        self.transaction(db, |tx| tx.update(table, filter, set))
    }

    /// Sets columns of every row (explicit: an update needs a filter otherwise).
    pub fn update_all<K: Into<String>, V: Into<Literal>>(
        &self,
        db: &str,
        table: &str,
        set: impl IntoIterator<Item = (K, V)>,
    ) -> Result<usize> {
        let set = assignments(set);
        self.transaction(db, |tx| tx.update_all(table, set))
    }

    /// Deletes the rows matching `filter`; returns how many.
    pub fn delete(&self, db: &str, table: &str, filter: &Filter) -> Result<usize> {
        self.transaction(db, |tx| tx.delete(table, filter))
    }

    /// Deletes every row of a table (explicit: an empty filter never means "all").
    pub fn delete_all(&self, db: &str, table: &str) -> Result<usize> {
        self.transaction(db, |tx| tx.delete_all(table))
    }

    /// Runs `f` as one atomic commit: every change it makes is logged as one record and is
    /// durable (in `SyncMode::Always`) when this returns Ok; on error nothing is applied.
    ///
    /// ```
    /// # use phantom_core::{Column, ColumnType, Database, Literal};
    /// # let dir = tempfile::tempdir()?;
    /// # let db = Database::open(dir.path())?;
    /// # db.create_database("bank")?;
    /// db.transaction("bank", |tx| {
    ///     tx.create_table("accounts", vec![Column::new("id", ColumnType::Int).primary_key()])?;
    ///     tx.insert("accounts", [("id", Literal::from(1))])?;
    ///     tx.insert("accounts", [("id", Literal::from(2))])?;
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transaction<T>(
        &self,
        db: &str,
        f: impl FnOnce(&mut Transaction) -> Result<T>,
    ) -> Result<T> {
        let handle = self.handle(db, false)?;
        Ok(handle.write(&self.snapshot_settings(), f)?.0)
    }

    // ----- persistence (the spec's API) -----

    /// Writes the main file `<dir>/<db>.db` (the spec's CSV by default) of the current durable
    /// state, atomically; it is also a recovery point. Returns its path.
    pub fn save_to_disk(&self, db: &str) -> Result<PathBuf> {
        let handle = self.handle(db, false)?;
        handle.save_main(&*self.shared.main_format, db)
    }

    /// Writes the current state of `db` as `<dir>/<file_stem>.db`: a copy that opens as a
    /// database named `file_stem`. Refuses to overwrite another existing database.
    pub fn save_to_disk_as(&self, db: &str, file_stem: &str) -> Result<PathBuf> {
        validate_name(file_stem)?;
        if file_stem != db && self.database_exists(file_stem)? {
            return Err(Error::DatabaseExists {
                name: file_stem.to_owned(),
            });
        }
        let handle = self.handle(db, false)?;
        handle.save_main(&*self.shared.main_format, file_stem)
    }

    /// Replaces the in-memory database with what is on disk: the newest valid recovery point
    /// plus the log after it (for a database never opened here, this is its first load).
    pub fn load_from_disk(&self, db: &str) -> Result<()> {
        validate_name(db)?;
        {
            let mut state = lock(&self.shared.dir);
            if let Some(h) = state.dbs.remove(db) {
                h.close();
            }
        }
        self.handle(db, false).map(drop)
    }

    /// Appends a custom entry to the database's log (the spec's `appendTransactionLog`);
    /// returns its LSN. Durable when this returns (in `SyncMode::Always`).
    pub fn append_transaction_log<K: Into<String>, V: Into<String>>(
        &self,
        db: &str,
        operation: &str,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Lsn> {
        let handle = self.handle(db, false)?;
        let entry = LogEntry::Custom {
            operation: operation.to_owned(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        };
        handle.log_entry(&entry, &self.snapshot_settings())
    }

    /// Takes a snapshot now; returns its file and LSN.
    pub fn create_snapshot(&self, db: &str) -> Result<SnapshotInfo> {
        let handle = self.handle(db, false)?;
        let info = handle.write_snapshot(&handle.view(), &self.snapshot_settings())?;
        handle.record_snapshot(&info);
        Ok(info)
    }

    /// The snapshots of a database on disk, oldest first.
    pub fn list_snapshots(&self, db: &str) -> Result<Vec<SnapshotInfo>> {
        let handle = self.handle(db, false)?;
        Ok(handle
            .store
            .list()?
            .into_iter()
            .filter_map(|e| e.info().cloned())
            .collect())
    }

    /// Waits until background snapshots queued so far are written.
    pub fn wait_for_snapshots(&self, db: &str) -> Result<()> {
        self.handle(db, false)?.wait_for_snapshots();
        Ok(())
    }

    /// Forces every committed record of `db` to stable storage (useful with
    /// `SyncMode::Interval` or `Never`).
    pub fn sync(&self, db: &str) -> Result<()> {
        let handle = self.handle(db, false)?;
        let lsn = handle.log.last_lsn();
        Ok(handle.log.sync(lsn)?)
    }

    /// What recovery did when `db` was opened.
    pub fn recovery_report(&self, db: &str) -> Result<RecoveryReport> {
        Ok(self.handle(db, false)?.report.clone())
    }

    /// Checks every file of `db` (main file, snapshots, log segments) in full without
    /// modifying anything; works even when the database cannot be opened.
    ///
    /// It takes no lock: it may run beside a process that has the directory open (a record
    /// being appended at that moment can show up as a torn tail).
    pub fn verify(&self, db: &str) -> Result<VerifyReport> {
        let (dir, store) = self.on_disk(db, false)?;
        Ok(phantom_recovery::verify(
            &self.shared.fs,
            &dir,
            db,
            &store,
            &self.extra_formats(),
        )?)
    }

    /// The data directory and snapshot store of `db`, which must exist on disk; with `lock`,
    /// the directory is locked first (everything but the read-only `verify` locks).
    fn on_disk(&self, db: &str, lock: bool) -> Result<(PathBuf, SnapshotStore)> {
        validate_name(db)?;
        let unknown = || Error::UnknownDatabase {
            name: db.to_owned(),
        };
        let dir = if lock {
            self.dir_for(false)?.ok_or_else(unknown)?
        } else {
            Some(self.data_directory())
                .filter(|d| d.is_dir())
                .ok_or_else(unknown)?
        };
        let store = self.store(&dir, db)?;
        if !self.exists_on_disk(&dir, db, &store)? {
            return Err(unknown());
        }
        Ok((dir, store))
    }

    /// What point-in-time recovery of `db` to `target` would give, computed without writing
    /// anything (`Target::End`: what the next open would recover).
    pub fn restore_preview(&self, db: &str, target: Target) -> Result<Restored> {
        let (dir, store) = self.on_disk(db, true)?;
        Ok(phantom_recovery::restore(
            &self.shared.fs,
            &dir,
            db,
            &store,
            &self.extra_formats(),
            target,
        )?)
    }

    /// Point-in-time recovery of `db` to `target`.
    ///
    /// With `out`, the recovered state is written as `<out>/<db>.db` (a directory that opens as
    /// a PhantomDB data directory) and the source is left untouched. Without `out`, the live
    /// database is rewound: its log segments and every snapshot newer than the target are moved
    /// aside (renamed `<file>.pre-restore`, never deleted), the recovered state becomes the main
    /// file, and the database reopens from it.
    pub fn restore(&self, db: &str, target: Target, out: Option<&Path>) -> Result<Restored> {
        let (dir, store) = self.on_disk(db, true)?;
        let fs = &self.shared.fs;
        let write_image = |restored: &Restored, path: &Path| -> Result<()> {
            let meta = phantom_storage::ImageMeta {
                database: db.to_owned(),
                lsn: restored.lsn,
                created: Some(crate::handle::now()),
                kind: phantom_storage::ImageKind::Database,
            };
            let format = &self.shared.main_format;
            phantom_storage::atomic_write(&**fs, path, &mut |w| {
                format.write(&meta, &restored.catalog, w)
            })?;
            Ok(())
        };
        if let Some(out) = out {
            validate_dir(out)?;
            if out.canonicalize().ok() == dir.canonicalize().ok() {
                return Err(Error::InvalidDataDirectory {
                    path: out.to_path_buf(),
                    reason: "the output directory is the data directory; omit it to restore in place",
                });
            }
            let restored =
                phantom_recovery::restore(fs, &dir, db, &store, &self.extra_formats(), target)?;
            fs.create_dir_all(out).map_err(Error::io(out))?;
            let out_store = self.store(out, db)?;
            if self.exists_on_disk(out, db, &out_store)? {
                return Err(Error::DatabaseExists {
                    name: db.to_owned(),
                });
            }
            write_image(&restored, &out.join(format!("{db}.db")))?;
            return Ok(restored);
        }
        // In place: close the live handle first so nothing writes while files move.
        let mut state = lock(&self.shared.dir);
        if let Some(h) = state.dbs.remove(db) {
            h.close();
        }
        let restored =
            phantom_recovery::restore(fs, &dir, db, &store, &self.extra_formats(), target)?;
        let aside = |path: &Path| -> Result<()> {
            let to = PathBuf::from(format!("{}.pre-restore", path.display()));
            fs.rename(path, &to).map_err(Error::io(path))
        };
        for entry in store.list()? {
            if entry.info().is_none_or(|i| i.lsn > restored.lsn) {
                aside(entry.path())?;
            }
        }
        for file in fs.list_dir(&dir).map_err(Error::io(&dir))? {
            if crate::log::is_segment(db, &file) {
                aside(&dir.join(file))?;
            }
        }
        write_image(&restored, &dir.join(format!("{db}.db")))?;
        fs.sync_dir(&dir).map_err(Error::io(&dir))?;
        drop(state);
        self.handle(db, false)?;
        Ok(restored)
    }

    // ----- observability -----

    /// Live figures: databases, tables, rows, bytes on disk, last LSN, last snapshot.
    pub fn stats(&self) -> Result<Stats> {
        let mut out = Stats {
            data_dir: self.data_directory(),
            databases: Vec::new(),
            tables: 0,
            rows: 0,
            bytes_on_disk: 0,
        };
        for name in self.list_databases()? {
            let handle = self.handle(&name, false)?;
            let view = handle.view();
            let mut bytes = 0;
            for file in self
                .shared
                .fs
                .list_dir(&handle.dir)
                .map_err(Error::io(&handle.dir))?
            {
                if database_of_file(&file).as_deref() == Some(name.as_str()) {
                    bytes += self
                        .shared
                        .fs
                        .file_len(&handle.dir.join(&file))
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                }
            }
            let snapshots: Vec<SnapshotInfo> = handle
                .store
                .list()?
                .into_iter()
                .filter_map(|e| e.info().cloned())
                .collect();
            let (_, _, taken) = handle.last_snapshot();
            let s = DatabaseStats {
                name: name.clone(),
                tables: view.catalog.len(),
                rows: view.catalog.row_count(),
                last_lsn: view.lsn,
                log: handle.log.stats(),
                bytes_on_disk: bytes,
                last_snapshot: snapshots.last().cloned(),
                snapshots_taken: taken,
                recovery: handle.report.clone(),
            };
            out.tables += s.tables;
            out.rows += s.rows;
            out.bytes_on_disk += s.bytes_on_disk;
            out.databases.push(s);
        }
        Ok(out)
    }

    /// Checks the real state: the data directory is usable, no log has failed, the last
    /// automatic snapshot did not fail.
    pub fn health(&self) -> Health {
        let mut problems = Vec::new();
        let dir = self.data_directory();
        if dir.exists() {
            match std::fs::metadata(&dir) {
                Ok(m) if m.permissions().readonly() => {
                    problems.push(format!("data directory {} is read-only", dir.display()))
                }
                Ok(_) => {}
                Err(e) => problems.push(format!("data directory {}: {e}", dir.display())),
            }
        }
        let handles: Vec<Arc<DbHandle>> = lock(&self.shared.dir).dbs.values().cloned().collect();
        for h in handles {
            if let Some(f) = h.failure() {
                problems.push(format!(
                    "database {}: log failed ({f}); reopen to recover",
                    h.name
                ));
            }
            if let (_, Some(e), _) = h.last_snapshot() {
                problems.push(format!(
                    "database {}: last automatic snapshot failed: {e}",
                    h.name
                ));
            }
        }
        Health {
            healthy: problems.is_empty(),
            problems,
        }
    }
}

/// The database a file in a data directory belongs to, if it is a database file.
fn database_of_file(file: &str) -> Option<String> {
    let name = if let Some(stem) = file.strip_suffix(".log") {
        stem
    } else if let Some((stem, _)) = file.rsplit_once(".log.")
        && crate::log::is_segment(stem, file)
    {
        stem
    } else if let Some(stem) = file.strip_suffix(".db") {
        stem
    } else {
        // `<db>_snapshot_YYYYMMDD_HHMMSS[_NNN]`: try each occurrence of the marker.
        let mut found = None;
        for (i, _) in file.match_indices("_snapshot_") {
            let db = &file[..i];
            if validate_name(db).is_ok()
                && phantom_snapshot::parse_snapshot_name(db, file).is_some()
            {
                found = Some(db);
                break;
            }
        }
        found?
    };
    validate_name(name).ok().map(|()| name.to_owned())
}
