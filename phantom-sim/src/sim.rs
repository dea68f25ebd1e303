//! The deterministic simulation: a random workload against the real engine
//! ([`phantom_core::Database`] on a [`FaultFs`]) with crashes, clean reopens, injected I/O
//! errors and crashes during recovery, checked against a model after every recovery.
//!
//! The oracle (see `docs/testing.md`):
//! - the harness keeps the model state after the last *acknowledged* commit and its LSN, and,
//!   when a commit returned an error, the state that commit would have produced (`maybe`);
//! - after every reopen the recovered `(LSN, state)` must be exactly the acknowledged one, or
//!   exactly the `maybe` one — every acknowledged commit is there, nothing after a missing one
//!   is, and nothing was invented; what a successful open served becomes the new baseline, so a
//!   later crash must not take it back;
//! - no recovery point may be rejected (nothing was corrupted), no open may fail unless a fault
//!   was injected into it, no call may fail unless a fault fired, and nothing may panic.

use std::fmt;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use phantom_core::{Database, Lsn, RecoveryReport, SyncMode, WalFactory};
use phantom_snapshot::EveryOps;
use phantom_storage::{BinaryFormat, CsvFormat, FileSystem, StorageFormat};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fault_fs::{Bugs, CrashOptions, FaultFs, FaultKind, FaultPlan, FsCounters};
use crate::model::{ModelState, Op, apply, diff, random_op, read_state, run};

/// Name of the database the simulation uses.
pub const DB: &str = "sim";

/// What a simulation run does.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Workload steps per seed.
    pub steps: usize,
    /// Crash at random points (between operations, and inside them through power loss).
    pub crashes: bool,
    /// Inject I/O errors (EIO, ENOSPC, power loss) at the Nth operation.
    pub faults: bool,
    /// Crash again while recovering (compound failures).
    pub crash_during_recovery: bool,
    /// Deliberately broken file-system behaviour (planted bugs).
    pub bugs: Bugs,
    /// How adversarial crashes are.
    pub crash_options: CrashOptions,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            steps: 40,
            crashes: true,
            faults: true,
            crash_during_recovery: true,
            bugs: Bugs::default(),
            crash_options: CrashOptions::default(),
        }
    }
}

/// What one seed did.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Commits acknowledged (including custom log entries).
    pub commits: u64,
    /// Commits that returned an error.
    pub failed_commits: u64,
    /// The last acknowledged LSN.
    pub last_lsn: Lsn,
    /// Crashes simulated (all kinds).
    pub crashes: u64,
    /// Clean reopens.
    pub clean_reopens: u64,
    /// Recoveries checked by the oracle.
    pub recoveries: u64,
    /// Opens that failed because a fault was injected into recovery.
    pub recovery_failures: u64,
    /// Faults armed.
    pub faults_armed: u64,
    /// Recoveries that brought back a commit that had returned an error.
    pub maybe_included: u64,
    /// Snapshots and main-file saves that succeeded.
    pub images_written: u64,
    /// File-system counters at the end.
    pub fs: FsCounters,
}

/// A broken guarantee, with what is needed to reproduce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The seed (`simulate(seed, config)` reproduces it).
    pub seed: u64,
    /// The workload step at which it was detected.
    pub step: usize,
    /// What was wrong.
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} step {}: {} (reproduce: PHANTOM_SIM_SEED={} cargo test -p phantom-sim --test simulation -- replay_seed --nocapture)",
            self.seed, self.step, self.description, self.seed
        )
    }
}

impl std::error::Error for Violation {}

#[derive(Clone, Copy, Debug)]
struct Params {
    segment_size: u64,
    snapshot_interval: u64,
    retain: usize,
    binary_snapshots: bool,
    binary_main: bool,
}

struct Sim<'a> {
    seed: u64,
    cfg: &'a SimConfig,
    rng: StdRng,
    fs: Arc<FaultFs>,
    dir: tempfile::TempDir,
    params: Params,
    db: Option<Database>,
    model: ModelState,
    lsn: Lsn,
    maybe: Option<(Lsn, ModelState)>,
    step: usize,
    degraded: bool,
    need_recovery: bool,
    report: SimReport,
}

/// Runs one seed. Deterministic: the same seed and config make the same workload, crash
/// images and faults (wall-clock time only changes snapshot file names).
pub fn simulate(seed: u64, config: &SimConfig) -> Result<SimReport, Violation> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(seed, config)?;
        sim.run()?;
        sim.report.fs = sim.fs.counters();
        sim.report.last_lsn = sim.lsn;
        Ok(sim.report)
    }));
    match outcome {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Violation {
                seed,
                step: 0,
                description: format!("panic: {msg}"),
            })
        }
    }
}

/// Runs every seed of `seeds` (on up to 4 threads) and returns the violations, by seed.
pub fn run_seeds(seeds: Range<u64>, config: &SimConfig) -> Vec<Violation> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4) as u64;
    let mut out: Vec<Violation> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    seeds
                        .filter(|s| s % threads == t)
                        .filter_map(|s| simulate(s, config).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![Violation {
                        seed: u64::MAX,
                        step: 0,
                        description: "a simulation thread panicked".into(),
                    }]
                })
            })
            .collect()
    });
    out.sort_by_key(|v| v.seed);
    out
}

impl<'a> Sim<'a> {
    fn new(seed: u64, cfg: &'a SimConfig) -> Result<Sim<'a>, Violation> {
        let mut rng = StdRng::seed_from_u64(seed);
        let fail = |description: String| Violation {
            seed,
            step: 0,
            description,
        };
        let dir = tempfile::tempdir().map_err(|e| fail(format!("tempdir: {e}")))?;
        let fs = Arc::new(FaultFs::new(rng.random()));
        fs.set_bugs(cfg.bugs);
        fs.set_crash_options(cfg.crash_options);
        fs.create_dir_all(dir.path())
            .map_err(|e| fail(format!("create_dir_all: {e}")))?;
        let params = Params {
            segment_size: rng.random_range(4..=16) << 10,
            snapshot_interval: rng.random_range(3..=20),
            retain: rng.random_range(1..=3),
            binary_snapshots: rng.random_bool(0.5),
            binary_main: rng.random_bool(0.25),
        };
        tracing::debug!(seed, ?params, "simulation");
        Ok(Sim {
            seed,
            cfg,
            rng,
            fs,
            dir,
            params,
            db: None,
            model: ModelState::new(),
            lsn: 0,
            maybe: None,
            step: 0,
            degraded: false,
            need_recovery: false,
            report: SimReport {
                seed,
                ..SimReport::default()
            },
        })
    }

    fn violation(&self, description: impl Into<String>) -> Violation {
        Violation {
            seed: self.seed,
            step: self.step,
            description: description.into(),
        }
    }

    fn open_db(&self) -> phantom_core::Result<Database> {
        let mut log = WalFactory::new(SyncMode::Always);
        log.options.segment_size = self.params.segment_size;
        let format = |binary: bool| -> Arc<dyn StorageFormat> {
            if binary {
                Arc::new(BinaryFormat)
            } else {
                Arc::new(CsvFormat)
            }
        };
        let fs: Arc<dyn FileSystem> = self.fs.clone();
        Database::builder()
            .data_dir(self.dir.path())
            .file_system(fs)
            .log_factory(Arc::new(log))
            .snapshot_format(format(self.params.binary_snapshots))
            .main_format(format(self.params.binary_main))
            .retain_snapshots(self.params.retain)
            .snapshot_policy(Arc::new(EveryOps(self.params.snapshot_interval)))
            .open()
    }

    fn db(&self) -> Result<&Database, Violation> {
        self.db
            .as_ref()
            .ok_or_else(|| self.violation("harness: no open database"))
    }

    fn error_allowed(&self) -> bool {
        self.fs.fault_fired() || self.degraded || self.fs.is_powered_off()
    }

    fn run(&mut self) -> Result<(), Violation> {
        let db = self
            .open_db()
            .map_err(|e| self.violation(format!("first open failed: {e}")))?;
        db.create_database(DB)
            .map_err(|e| self.violation(format!("create_database failed: {e}")))?;
        self.lsn = db
            .recovery_report(DB)
            .map(|_| ())
            .and_then(|()| db.stats())
            .map_err(|e| self.violation(format!("stats failed: {e}")))?
            .databases
            .first()
            .map_or(0, |d| d.last_lsn);
        self.db = Some(db);
        for step in 0..self.cfg.steps {
            self.step = step + 1;
            self.one_step()?;
            self.after_action()?;
        }
        self.step = self.cfg.steps + 1;
        self.verify_live()?;
        if self.cfg.crashes {
            self.crash_and_recover()?;
        }
        self.clean_reopen()
    }

    fn one_step(&mut self) -> Result<(), Violation> {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..50 => {
                let n = 1;
                self.commit(n)
            }
            50..60 => {
                let n = self.rng.random_range(2..=5);
                self.commit(n)
            }
            60..64 => self.custom_entry(),
            64..69 => self.snapshot(),
            69..72 => self.save(),
            72..76 => self.verify_live(),
            76..80 => self.clean_reopen(),
            80..88 if self.cfg.crashes => self.crash_and_recover(),
            88..100 if self.cfg.faults => {
                self.arm_fault();
                Ok(())
            }
            _ => self.commit(1),
        }
    }

    fn arm_fault(&mut self) {
        let kind = match self.rng.random_range(0..10) {
            0..4 => FaultKind::Eio,
            4..7 => FaultKind::Enospc,
            _ if self.cfg.crashes => FaultKind::PowerLoss,
            _ => FaultKind::Eio,
        };
        let plan = FaultPlan {
            at_op: self.rng.random_range(1..=12),
            kind,
            persistent: self.rng.random_bool(0.5),
            include_reads: self.rng.random_bool(0.2),
        };
        tracing::debug!(seed = self.seed, step = self.step, ?plan, "fault armed");
        self.fs.arm(plan);
        self.report.faults_armed += 1;
    }

    /// Reacts to a fault that fired or a commit that failed: crash, reopen, or go on degraded.
    fn after_action(&mut self) -> Result<(), Violation> {
        if self.fs.is_powered_off() {
            return self.crash_and_recover();
        }
        if self.need_recovery {
            return if self.cfg.crashes && self.rng.random_bool(0.5) {
                self.crash_and_recover()
            } else {
                self.clean_reopen()
            };
        }
        if self.fs.fault_fired() {
            self.fs.disarm();
            self.fs.clear_fired();
            self.degraded = true;
            let roll = self.rng.random_range(0..10);
            if roll < 4 {
                return Ok(());
            }
            return if roll < 7 || !self.cfg.crashes {
                self.clean_reopen()
            } else {
                self.crash_and_recover()
            };
        }
        Ok(())
    }

    fn commit(&mut self, n: usize) -> Result<(), Violation> {
        let mut next = self.model.clone();
        let mut ops: Vec<(Op, ModelState)> = Vec::new();
        let mut changed = false;
        for _ in 0..n {
            let op = random_op(&mut self.rng, &next);
            let before = next.clone();
            changed |= apply(&mut next, &op);
            ops.push((op, before));
        }
        let result = self.db()?.transaction(DB, |tx| {
            for (op, before) in &ops {
                run(tx, op, before)?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.model = next;
                if changed {
                    self.lsn += 1;
                }
                self.report.commits += 1;
                self.db()?
                    .wait_for_snapshots(DB)
                    .map_err(|e| self.violation(format!("wait_for_snapshots: {e}")))?;
                Ok(())
            }
            Err(e) => {
                self.report.failed_commits += 1;
                if !self.error_allowed() {
                    return Err(self.violation(format!(
                        "a commit failed without an injected fault: {e} (ops {:?})",
                        ops.iter().map(|(o, _)| o).collect::<Vec<_>>()
                    )));
                }
                if changed {
                    self.maybe = Some((self.lsn + 1, next));
                }
                self.need_recovery = true;
                Ok(())
            }
        }
    }

    fn custom_entry(&mut self) -> Result<(), Violation> {
        let step = self.step.to_string();
        match self
            .db()?
            .append_transaction_log(DB, "SIM", [("step", step.as_str())])
        {
            Ok(lsn) => {
                if lsn != self.lsn + 1 {
                    return Err(self.violation(format!(
                        "custom entry got LSN {lsn}, expected {}",
                        self.lsn + 1
                    )));
                }
                self.lsn = lsn;
                self.report.commits += 1;
                Ok(())
            }
            Err(e) => {
                self.report.failed_commits += 1;
                if !self.error_allowed() {
                    return Err(
                        self.violation(format!("a custom entry failed without a fault: {e}"))
                    );
                }
                self.maybe = Some((self.lsn + 1, self.model.clone()));
                self.need_recovery = true;
                Ok(())
            }
        }
    }

    fn snapshot(&mut self) -> Result<(), Violation> {
        match self.db()?.create_snapshot(DB) {
            Ok(info) => {
                if info.lsn != self.lsn {
                    return Err(self.violation(format!(
                        "snapshot claims LSN {}, the acknowledged LSN is {}",
                        info.lsn, self.lsn
                    )));
                }
                self.report.images_written += 1;
                Ok(())
            }
            Err(e) if self.error_allowed() => {
                tracing::debug!(error = %e, "snapshot failed under a fault");
                Ok(())
            }
            Err(e) => Err(self.violation(format!("create_snapshot failed without a fault: {e}"))),
        }
    }

    fn save(&mut self) -> Result<(), Violation> {
        match self.db()?.save_to_disk(DB) {
            Ok(_) => {
                self.report.images_written += 1;
                Ok(())
            }
            Err(e) if self.error_allowed() => {
                tracing::debug!(error = %e, "save failed under a fault");
                Ok(())
            }
            Err(e) => Err(self.violation(format!("save_to_disk failed without a fault: {e}"))),
        }
    }

    /// Readers see exactly the acknowledged state.
    fn verify_live(&mut self) -> Result<(), Violation> {
        let db = self.db()?;
        let state = read_state(db, DB).map_err(|e| self.violation(format!("read: {e}")))?;
        if state != self.model {
            return Err(self.violation(format!(
                "live state differs from the acknowledged state: {}",
                diff(&self.model, &state)
            )));
        }
        match db.stats() {
            Ok(stats) => {
                let lsn = stats.databases.first().map_or(0, |d| d.last_lsn);
                if lsn != self.lsn {
                    return Err(self.violation(format!(
                        "stats say LSN {lsn}, the acknowledged LSN is {}",
                        self.lsn
                    )));
                }
                Ok(())
            }
            Err(_) if self.error_allowed() => Ok(()),
            Err(e) => Err(self.violation(format!("stats failed without a fault: {e}"))),
        }
    }

    fn clean_reopen(&mut self) -> Result<(), Violation> {
        self.report.clean_reopens += 1;
        self.fs.disarm();
        self.db = None;
        self.recover()
    }

    fn crash_and_recover(&mut self) -> Result<(), Violation> {
        self.crash();
        self.recover()
    }

    fn crash(&mut self) {
        self.report.crashes += 1;
        self.fs.power_off();
        self.db = None;
        self.fs.crash(self.rng.random());
    }

    fn open_and_read(&self) -> Result<(Database, RecoveryReport, ModelState), String> {
        let db = self.open_db().map_err(|e| format!("open: {e}"))?;
        let report = db
            .recovery_report(DB)
            .map_err(|e| format!("recovery: {e}"))?;
        let state = read_state(&db, DB).map_err(|e| format!("read after recovery: {e}"))?;
        Ok((db, report, state))
    }

    /// Opens the database again (possibly crashing during recovery) and checks the oracle.
    fn recover(&mut self) -> Result<(), Violation> {
        self.fs.disarm();
        self.fs.clear_fired();
        self.degraded = false;
        self.need_recovery = false;
        for attempt in 0..6 {
            let inject = self.cfg.crash_during_recovery && attempt < 4 && self.rng.random_bool(0.3);
            if inject {
                let kind = if self.rng.random_bool(0.7) {
                    FaultKind::PowerLoss
                } else {
                    FaultKind::Eio
                };
                self.fs.arm(FaultPlan {
                    at_op: self.rng.random_range(1..=25),
                    kind,
                    persistent: false,
                    include_reads: self.rng.random_bool(0.3),
                });
            }
            let result = self.open_and_read();
            let fired = self.fs.fault_fired();
            self.fs.disarm();
            self.fs.clear_fired();
            match result {
                Ok((db, report, state)) => {
                    self.report.recoveries += 1;
                    self.check_recovered(&report, &state)?;
                    if fired && (self.fs.is_powered_off() || self.rng.random_bool(0.5)) {
                        // Power went out after the open, or just crash again for good measure.
                        self.fs.power_off();
                        drop(db);
                        self.report.crashes += 1;
                        self.fs.crash(self.rng.random());
                        continue;
                    }
                    self.db = Some(db);
                    return Ok(());
                }
                Err(e) => {
                    if !fired {
                        return Err(self.violation(format!(
                            "open failed without an injected fault (recovery attempt {attempt}): {e}"
                        )));
                    }
                    self.report.recovery_failures += 1;
                    self.report.crashes += 1;
                    self.fs.power_off();
                    self.fs.crash(self.rng.random());
                }
            }
        }
        Err(self.violation("harness: recovery did not finish in 6 attempts"))
    }

    fn check_recovered(
        &mut self,
        report: &RecoveryReport,
        state: &ModelState,
    ) -> Result<(), Violation> {
        if let Some(r) = report.rejected.first() {
            return Err(self.violation(format!(
                "recovery rejected {} without any corruption injected: {}",
                file_name(&r.path),
                r.reason
            )));
        }
        let lsn = report.final_lsn;
        if lsn == self.lsn && *state == self.model {
            self.maybe = None;
            return Ok(());
        }
        if let Some((mlsn, mstate)) = self.maybe.take()
            && lsn == mlsn
            && *state == mstate
        {
            self.lsn = mlsn;
            self.model = mstate;
            self.report.maybe_included += 1;
            return Ok(());
        }
        let why = if lsn < self.lsn {
            format!(
                "acknowledged commits lost: recovered to LSN {lsn}, acknowledged LSN {} ({})",
                self.lsn,
                diff(&self.model, state)
            )
        } else if lsn == self.lsn {
            format!(
                "recovered state at LSN {lsn} differs from the acknowledged one: {}",
                diff(&self.model, state)
            )
        } else {
            format!(
                "recovered to LSN {lsn}, beyond the acknowledged LSN {} and not the failed commit's state ({})",
                self.lsn,
                diff(&self.model, state)
            )
        };
        Err(self.violation(why))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}
