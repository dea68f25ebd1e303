//! The workloads W1–W6 of issue 8 and the raw device limit. Each runs every system in
//! alternation (A B C D A B C D …), `reps` times, after waiting for an idle CPU; data lives in
//! temp dirs under the system temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use phantom_storage::{BinaryFormat, CsvFormat};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

use crate::measure::{ms, percentile, raw_fdatasync, settle};
use crate::redis::{Persistence, Reply, Server};
use crate::report::{PHANTOM, RAW, RAW_GROWING, REDIS, Report};
use crate::rows::Row;
use crate::systems::{self, DB, Kind, Phantom, Sqlite, Store};

/// The W1 row of PhantomDB with `WalOptions::preallocate` off (not the default): segments
/// grow with every commit.
const PHANTOM_GROWING: &str = "PhantomDB, growing WAL";

/// Counts for one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// W1: single-row commits per repetition.
    pub(crate) w1_commits: usize,
    /// W2: writer threads.
    pub(crate) w2_threads: usize,
    /// W2: commits per thread.
    pub(crate) w2_per_thread: usize,
    /// W3: rows loaded.
    pub(crate) w3_rows: usize,
    /// W3: rows per batch.
    pub(crate) w3_batch: usize,
    /// W5: writer commits per phase.
    pub(crate) w5_writes: usize,
    /// W6: point lookups per repetition.
    pub(crate) w6_lookups: usize,
    /// Raw device: appends per repetition.
    pub(crate) raw_appends: usize,
}

impl Sizes {
    /// `--quick`: finishes in well under two minutes on 2 cores.
    pub(crate) const QUICK: Sizes = Sizes {
        w1_commits: 200,
        w2_threads: 16,
        w2_per_thread: 25,
        w3_rows: 50_000,
        w3_batch: 1_000,
        w5_writes: 100,
        w6_lookups: 20_000,
        raw_appends: 200,
    };
    /// The full run.
    pub(crate) const FULL: Sizes = Sizes {
        w1_commits: 2_000,
        w2_threads: 16,
        w2_per_thread: 500,
        w3_rows: 1_000_000,
        w3_batch: 1_000,
        w5_writes: 500,
        w6_lookups: 200_000,
        raw_appends: 2_000,
    };

    /// Name → count, for the report.
    pub(crate) fn list(&self) -> Vec<(String, u64)> {
        let u = |v: usize| v as u64;
        vec![
            ("w1_commits".into(), u(self.w1_commits)),
            ("w2_threads".into(), u(self.w2_threads)),
            ("w2_per_thread".into(), u(self.w2_per_thread)),
            ("w3_rows".into(), u(self.w3_rows)),
            ("w3_batch".into(), u(self.w3_batch)),
            ("w5_writes".into(), u(self.w5_writes)),
            ("w6_lookups".into(), u(self.w6_lookups)),
            ("raw_appends".into(), u(self.raw_appends)),
        ]
    }
}

/// Shared state of one run.
pub(crate) struct Bench {
    /// Counts.
    pub(crate) sizes: Sizes,
    /// Repetitions.
    pub(crate) reps: usize,
    /// Everything measured.
    pub(crate) report: Report,
    /// Why Redis rows are skipped (`None`: Redis is measured).
    pub(crate) redis_skip: Option<String>,
    /// The systems measured, in the order they alternate: [`Kind::ALL`], then Redis when
    /// it is measured.
    kinds: Vec<Kind>,
    /// How long to wait for an idle CPU before each run, at most.
    pub(crate) idle_wait: Duration,
    /// Per system, a directory holding the loaded W3 data set (kept for W4–W6).
    loaded: Vec<(Kind, TempDir)>,
}

fn tempdir(kind: Kind) -> Result<TempDir> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("phantom-bench-{}-", kind.name()))
        .tempdir_in(std::env::temp_dir())?)
}

fn progress(msg: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("phantom-bench: {msg}");
    }
}

impl Bench {
    /// A run with these counts and repetitions.
    pub(crate) fn new(sizes: Sizes, reps: usize, mut report: Report) -> Bench {
        let redis_skip = crate::redis::unavailable();
        let mut kinds = Kind::ALL.to_vec();
        if redis_skip.is_none() {
            kinds.push(Kind::Redis);
            report.notes.push(format!(
                "Redis ({}): a redis-server child per workload on a unix socket in its temp dir \
                 (TCP off), `save \"\"`, `appendonly yes`, `appendfsync always`, automatic AOF \
                 rewrite off; one `SET` per row of the same 8-byte key and 44-byte value as \
                 redb/fjall; W3 batches are pipelined MULTI/EXEC; one connection per thread.",
                crate::redis::version()
            ));
        }
        Bench {
            sizes,
            reps,
            report,
            redis_skip,
            kinds,
            idle_wait: Duration::from_secs(3),
            loaded: Vec::new(),
        }
    }

    fn skip_redis(&mut self, workload: &str, metric: &str) {
        if let Some(why) = self.redis_skip.clone() {
            self.report.skip(workload, metric, REDIS, &why);
        }
    }

    fn redis_measured(&self) -> bool {
        self.redis_skip.is_none()
    }

    /// W1: durable single-row commits, one writer; plus the raw device limit.
    pub(crate) fn w1(&mut self) -> Result<()> {
        let n = self.sizes.w1_commits;
        for rep in 0..self.reps {
            for kind in self.kinds.clone() {
                progress(&format!("W1 rep {} {}", rep + 1, kind.name()));
                settle(self.idle_wait);
                let dir = tempdir(kind)?;
                let store = systems::open(kind, dir.path())?;
                let mut lat = Vec::with_capacity(n);
                let start = Instant::now();
                for id in 0..n {
                    let row = Row::new(id as i64);
                    let t = Instant::now();
                    store.insert_one(&row)?;
                    lat.push(ms(t.elapsed()));
                }
                let secs = start.elapsed().as_secs_f64();
                self.latencies("W1", kind.name(), n, secs, &lat);
            }
            progress(&format!("W1 rep {} {PHANTOM_GROWING}", rep + 1));
            settle(self.idle_wait);
            let dir = tempdir(Kind::Phantom)?;
            let store = Phantom::open_with(dir.path(), false)?;
            let mut lat = Vec::with_capacity(n);
            let start = Instant::now();
            for id in 0..n {
                let row = Row::new(id as i64);
                let t = Instant::now();
                store.insert_one(&row)?;
                lat.push(ms(t.elapsed()));
            }
            let secs = start.elapsed().as_secs_f64();
            self.latencies("W1", PHANTOM_GROWING, n, secs, &lat);
            for (name, grow) in [(RAW, false), (RAW_GROWING, true)] {
                progress(&format!("W1 rep {} {name}", rep + 1));
                settle(self.idle_wait);
                let dir = tempdir(Kind::Phantom)?;
                let start = Instant::now();
                let lat = raw_fdatasync(dir.path(), self.sizes.raw_appends, grow)?;
                let secs = start.elapsed().as_secs_f64();
                self.latencies("W1", name, self.sizes.raw_appends, secs, &lat);
            }
        }
        self.skip_redis("W1", "commits/s");
        Ok(())
    }

    fn latencies(&mut self, w: &str, system: &str, n: usize, secs: f64, lat: &[f64]) {
        #[allow(clippy::cast_precision_loss)]
        self.report
            .add(w, "commits/s", system, true, n as f64 / secs.max(1e-9));
        self.report
            .add(w, "p50 (ms)", system, false, percentile(lat, 0.5));
        self.report
            .add(w, "p99 (ms)", system, false, percentile(lat, 0.99));
    }

    /// W2: durable single-row commits from 16 threads sharing one handle.
    pub(crate) fn w2(&mut self) -> Result<()> {
        let (threads, per) = (self.sizes.w2_threads, self.sizes.w2_per_thread);
        for rep in 0..self.reps {
            for kind in self.kinds.clone() {
                progress(&format!("W2 rep {} {}", rep + 1, kind.name()));
                settle(self.idle_wait);
                let dir = tempdir(kind)?;
                let store = systems::open(kind, dir.path())?;
                let store: &dyn Store = &*store;
                let start = Instant::now();
                let lat = concurrent_commits(store, threads, per)?;
                let secs = start.elapsed().as_secs_f64();
                self.latencies("W2", kind.name(), threads * per, secs, &lat);
            }
        }
        self.skip_redis("W2", "commits/s");
        Ok(())
    }

    /// Loads `rows` rows in batches into a fresh dir; returns the dir and the seconds taken.
    fn load(&self, kind: Kind) -> Result<(TempDir, f64)> {
        let dir = tempdir(kind)?;
        let store = systems::open(kind, dir.path())?;
        let secs = load_rows(&*store, self.sizes.w3_rows, self.sizes.w3_batch)?;
        drop(store);
        Ok((dir, secs))
    }

    /// W3: bulk load in durable batches.
    pub(crate) fn w3(&mut self) -> Result<()> {
        for rep in 0..self.reps {
            for kind in self.kinds.clone() {
                progress(&format!("W3 rep {} {}", rep + 1, kind.name()));
                settle(self.idle_wait);
                let (dir, secs) = self.load(kind)?;
                #[allow(clippy::cast_precision_loss)]
                self.report.add(
                    "W3",
                    "rows/s",
                    kind.name(),
                    true,
                    self.sizes.w3_rows as f64 / secs,
                );
                self.loaded.retain(|(k, _)| *k != kind);
                self.loaded.push((kind, dir));
            }
        }
        self.skip_redis("W3", "rows/s");
        Ok(())
    }

    /// The loaded data set of `kind` (loading it, unmeasured, when W3 did not run).
    fn loaded_dir(&mut self, kind: Kind) -> Result<PathBuf> {
        if let Some((_, d)) = self.loaded.iter().find(|(k, _)| *k == kind) {
            return Ok(d.path().to_path_buf());
        }
        progress(&format!(
            "loading {} rows into {}",
            self.sizes.w3_rows,
            kind.name()
        ));
        let (dir, _) = self.load(kind)?;
        let path = dir.path().to_path_buf();
        self.loaded.push((kind, dir));
        Ok(path)
    }

    /// W4: open after W3, in a child process (time to first lookup, peak RSS): PhantomDB
    /// from its log only, then from a binary snapshot; the peers as they are.
    pub(crate) fn w4(&mut self) -> Result<()> {
        let dirs: Vec<(Kind, PathBuf)> = self
            .kinds
            .clone()
            .into_iter()
            .map(|k| self.loaded_dir(k).map(|d| (k, d)))
            .collect::<Result<_>>()?;
        let phantom_dir = dirs
            .iter()
            .find(|(k, _)| *k == Kind::Phantom)
            .map(|(_, d)| d.clone())
            .context("no PhantomDB data set")?;
        let redis_dir = dirs
            .iter()
            .find(|(k, _)| *k == Kind::Redis)
            .map(|(_, d)| d.clone());
        // Log only: W3 takes no snapshot (automatic snapshots are off).
        for rep in 0..self.reps {
            progress(&format!("W4 rep {} PhantomDB, log only", rep + 1));
            settle(self.idle_wait);
            let (secs, rss) = child_open(Kind::Phantom, &phantom_dir)?;
            self.report
                .add("W4", "open from log only (s)", PHANTOM, false, secs);
            self.report
                .add("W4", "peak RSS, open from log (MiB)", PHANTOM, false, rss);
            if let Some(d) = &redis_dir {
                // The W3 AOF only: no dump.rdb exists yet (`save ""`; it is written below).
                progress(&format!("W4 rep {} Redis, AOF load", rep + 1));
                settle(self.idle_wait);
                let (secs, rss) = redis_open(d, Persistence::Aof)?;
                self.report
                    .add("W4", "open from log only (s)", REDIS, false, secs);
                self.report
                    .add("W4", "peak RSS, open from log (MiB)", REDIS, false, rss);
            }
        }
        self.skip_redis("W4", "open from log only (s)");
        self.w4_single_commits(redis_dir.is_some())?;
        {
            progress("W4 taking a binary snapshot of the PhantomDB data set");
            let p = Phantom::open(&phantom_dir)?;
            p.db.set_snapshot_format(Arc::new(BinaryFormat));
            p.db.create_snapshot(DB)?;
        }
        if let Some(d) = &redis_dir {
            progress("W4 writing a dump.rdb of the Redis data set (SAVE)");
            let mut server = Server::start(d, Persistence::Aof)?;
            let (mut c, _) = server.wait_ready(&Row::key(0))?;
            c.ok(&[b"SAVE"])?;
        }
        for rep in 0..self.reps {
            for (kind, dir) in &dirs {
                progress(&format!("W4 rep {} {}", rep + 1, kind.name()));
                settle(self.idle_wait);
                let (secs, rss) = if *kind == Kind::Redis {
                    redis_open(dir, Persistence::RdbOnly)?
                } else {
                    child_open(*kind, dir)?
                };
                self.report
                    .add("W4", "open from snapshot (s)", kind.name(), false, secs);
                self.report.add(
                    "W4",
                    "peak RSS, open from snapshot (MiB)",
                    kind.name(),
                    false,
                    rss,
                );
            }
        }
        self.skip_redis("W4", "open from snapshot (s)");
        self.report.notes.push(
            "W4: time from process start of the open to the first point lookup answered, in a \
             child process; peers open lazily (their 'snapshot' row is their normal open), \
             PhantomDB loads every row into memory."
                .to_owned(),
        );
        if redis_dir.is_some() {
            self.report.notes.push(
                "W4 Redis: from spawning redis-server to its first answered GET (process start \
                 included), peak RSS = the server's VmHWM; 'log only' loads the AOF of the W3 \
                 load (appendonly yes, no rewrite: 1,000 MULTI/EXEC blocks), 'snapshot' loads a \
                 dump.rdb written by SAVE (appendonly no)."
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// W4, the log-only open of issue 6: a log of `w3_rows` single-row commits (not batches),
    /// written without fsyncs (the bytes are the same), opened in a child process. Redis: the
    /// AOF of as many single `SET`s (pipelined, not in MULTI), loaded by a fresh server.
    fn w4_single_commits(&mut self, redis: bool) -> Result<()> {
        const METRIC: &str = "open from log only, single-row commits (s)";
        let rows = self.sizes.w3_rows;
        progress(&format!(
            "W4 writing {rows} single-row commits to PhantomDB"
        ));
        let phantom_dir = tempdir(Kind::Phantom)?;
        write_single_commits(phantom_dir.path(), rows)?;
        let redis_dir = if redis {
            progress(&format!("W4 writing {rows} single SETs to Redis"));
            let dir = tempdir(Kind::Redis)?;
            let mut server = Server::start(dir.path(), Persistence::Aof)?;
            let (mut c, _) = server.wait_ready(&Row::key(-1))?;
            c.ok(&[b"CONFIG", b"SET", b"appendfsync", b"no"])?;
            let mut id = 0;
            while id < rows {
                let end = (id + 1_000).min(rows);
                for i in id..end {
                    let r = Row::new(i as i64);
                    c.push(&[b"SET", &Row::key(r.id), &r.encode()]);
                }
                c.flush()?;
                for _ in id..end {
                    match c.read()? {
                        Reply::Simple(s) if s == "OK" => {}
                        other => bail!("Redis SET answered {other:?}"),
                    }
                }
                id = end;
            }
            // Every SET was answered, so its AOF write was made (Redis writes the AOF buffer
            // before replying); the kill on drop loses nothing the page cache holds.
            Some(dir)
        } else {
            None
        };
        for rep in 0..self.reps {
            progress(&format!(
                "W4 rep {} PhantomDB, log of single commits",
                rep + 1
            ));
            settle(self.idle_wait);
            let (secs, _) = child_open(Kind::Phantom, phantom_dir.path())?;
            self.report.add("W4", METRIC, PHANTOM, false, secs);
            if let Some(d) = &redis_dir {
                progress(&format!("W4 rep {} Redis, AOF of single SETs", rep + 1));
                settle(self.idle_wait);
                let (secs, _) = redis_open(d.path(), Persistence::Aof)?;
                self.report.add("W4", METRIC, REDIS, false, secs);
            }
        }
        self.skip_redis("W4", METRIC);
        Ok(())
    }

    /// W5: snapshot of the loaded data set (binary, CSV; SQLite `VACUUM INTO` + fsync as the
    /// peer), and a writer's p99 while snapshots run back to back vs idle.
    pub(crate) fn w5(&mut self) -> Result<()> {
        let phantom_dir = self.loaded_dir(Kind::Phantom)?;
        let sqlite_dir = self.loaded_dir(Kind::Sqlite)?;
        let phantom = Phantom::open(&phantom_dir)?;
        let sqlite = Sqlite::open(&sqlite_dir)?;
        let mut redis = if self.redis_measured() {
            let dir = self.loaded_dir(Kind::Redis)?;
            let mut server = Server::start(&dir, Persistence::Aof)?;
            let (mut conn, _) = server.wait_ready(&Row::key(0))?;
            // The parent notices the BGSAVE child's exit in serverCron, `hz` times a second:
            // at the default 10 that adds up to 100 ms to every measured BGSAVE; at 500, 2 ms.
            conn.ok(&[b"CONFIG", b"SET", b"hz", b"500"])?;
            Some((server, conn))
        } else {
            None
        };
        for rep in 0..self.reps {
            progress(&format!("W5 rep {} snapshots", rep + 1));
            settle(self.idle_wait);
            phantom.db.set_snapshot_format(Arc::new(BinaryFormat));
            let t = Instant::now();
            phantom.db.create_snapshot(DB)?;
            let bin = t.elapsed().as_secs_f64();
            self.report
                .add("W5", "snapshot, binary (s)", PHANTOM, false, bin);
            settle(self.idle_wait);
            let out = sqlite_dir.join(format!("vacuum-{rep}.sqlite"));
            let t = Instant::now();
            sqlite.with(|c| {
                c.execute("VACUUM INTO ?1", [out.display().to_string()])?;
                Ok(())
            })?;
            std::fs::File::open(&out)?.sync_all()?;
            let vac = t.elapsed().as_secs_f64();
            std::fs::remove_file(&out)?;
            self.report
                .add("W5", "snapshot, binary (s)", "SQLite", false, vac);
            if let Some((_, conn)) = &mut redis {
                settle(self.idle_wait);
                let secs = crate::redis::bgsave(conn)?;
                self.report
                    .add("W5", "snapshot, binary (s)", REDIS, false, secs);
            }
            settle(self.idle_wait);
            phantom.db.set_snapshot_format(Arc::new(CsvFormat));
            let t = Instant::now();
            phantom.db.create_snapshot(DB)?;
            let csv = t.elapsed().as_secs_f64();
            self.report
                .add("W5", "snapshot, CSV (s)", PHANTOM, false, csv);
        }
        self.skip_redis("W5", "snapshot, binary (s)");
        if redis.is_some() {
            self.report.notes.push(
                "W5 Redis: BGSAVE (fork, write dump.rdb with fsync, rename) timed from the \
                 command to `INFO persistence` showing it done (polled every ms; `hz 500` so the \
                 server reaps the child within 2 ms), on a server holding the W3 data set; in the same repetition loop as PhantomDB and SQLite."
                    .to_owned(),
            );
        }
        drop(redis);
        let _ = sqlite.path();
        phantom.db.set_snapshot_format(Arc::new(BinaryFormat));
        let n = self.sizes.w5_writes;
        let mut next_id: i64 = 100_000_000;
        for rep in 0..self.reps {
            progress(&format!("W5 rep {} writer p99, idle", rep + 1));
            settle(self.idle_wait);
            let idle = writer(&phantom, &mut next_id, n)?;
            self.report.add(
                "W5",
                "writer p99 idle (ms)",
                PHANTOM,
                false,
                percentile(&idle, 0.99),
            );
            progress(&format!("W5 rep {} writer p99, during snapshots", rep + 1));
            settle(self.idle_wait);
            let stop = AtomicBool::new(false);
            let (busy, snaps) = std::thread::scope(|s| -> Result<(Vec<f64>, usize)> {
                let snapper = s.spawn(|| -> Result<usize> {
                    let mut taken = 0;
                    while !stop.load(Ordering::Acquire) {
                        phantom.db.create_snapshot(DB)?;
                        taken += 1;
                    }
                    Ok(taken)
                });
                // Let the first snapshot start before writing.
                std::thread::sleep(Duration::from_millis(20));
                let lat = writer(&phantom, &mut next_id, n);
                stop.store(true, Ordering::Release);
                let taken = match snapper.join() {
                    Ok(r) => r?,
                    Err(_) => bail!("the snapshot thread panicked"),
                };
                Ok((lat?, taken))
            })?;
            self.report.add(
                "W5",
                "writer p99 during snapshot (ms)",
                PHANTOM,
                false,
                percentile(&busy, 0.99),
            );
            self.report.add(
                "W5",
                "snapshots during writer run",
                PHANTOM,
                true,
                snaps as f64,
            );
        }
        Ok(())
    }

    /// W6: point lookups by primary key (random keys, same sequence for all) and full scans.
    pub(crate) fn w6(&mut self) -> Result<()> {
        let mut stores: Vec<(Kind, Box<dyn Store>)> = Vec::new();
        for kind in self.kinds.clone() {
            let dir = self.loaded_dir(kind)?;
            stores.push((kind, systems::open(kind, &dir)?));
        }
        let rows = self.sizes.w3_rows as i64;
        let keys: Vec<i64> = {
            let mut rng = StdRng::seed_from_u64(8);
            (0..self.sizes.w6_lookups)
                .map(|_| rng.random_range(0..rows))
                .collect()
        };
        // Warm every store once (page cache, lazy loads) before measuring.
        for (_, s) in &stores {
            s.get(0)?;
        }
        for rep in 0..self.reps {
            for (kind, store) in &stores {
                progress(&format!("W6 rep {} {}", rep + 1, kind.name()));
                settle(self.idle_wait);
                let t = Instant::now();
                let mut found = 0usize;
                for k in &keys {
                    found += usize::from(store.get(*k)?.is_some());
                }
                let secs = t.elapsed().as_secs_f64();
                if found != keys.len() {
                    bail!("{}: {found} of {} keys found", kind.name(), keys.len());
                }
                #[allow(clippy::cast_precision_loss)]
                self.report.add(
                    "W6",
                    "point lookups/s",
                    kind.name(),
                    true,
                    keys.len() as f64 / secs,
                );
                let t = Instant::now();
                let n = store.scan()?;
                let secs = t.elapsed().as_secs_f64();
                if n < self.sizes.w3_rows {
                    bail!("{}: scan saw {n} rows", kind.name());
                }
                #[allow(clippy::cast_precision_loss)]
                self.report
                    .add("W6", "full scan rows/s", kind.name(), true, n as f64 / secs);
            }
        }
        self.skip_redis("W6", "point lookups/s");
        Ok(())
    }
}

fn writer(p: &Phantom, next_id: &mut i64, n: usize) -> Result<Vec<f64>> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let row = Row::new(*next_id);
        *next_id += 1;
        let t = Instant::now();
        p.insert_one(&row)?;
        lat.push(ms(t.elapsed()));
    }
    Ok(lat)
}

/// Starts redis-server on `dir` with `persistence`; returns (seconds from the spawn until the
/// first lookup answered, the server's peak RSS in MiB). The server is killed on return.
fn redis_open(dir: &Path, persistence: Persistence) -> Result<(f64, f64)> {
    let t = Instant::now();
    let mut server = Server::start(dir, persistence)?;
    let (_, reply) = server.wait_ready(&Row::key(0))?;
    let secs = t.elapsed().as_secs_f64();
    match reply {
        Reply::Bulk(Some(v)) if Row::decode(0, &v)? == Row::new(0) => {}
        other => bail!("Redis ({persistence:?}) answered {other:?} for row 0 after loading"),
    }
    #[allow(clippy::cast_precision_loss)]
    let rss = server.vmhwm_kib().unwrap_or(0) as f64 / 1024.0;
    Ok((secs, rss))
}

/// Runs `phantom-bench --child open KIND DIR`; returns (seconds, peak RSS in MiB).
fn child_open(kind: Kind, dir: &Path) -> Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["--child", "open", kind.name()])
        .arg(dir)
        .output()?;
    if !out.status.success() {
        bail!(
            "child open of {} failed: {}",
            kind.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("child output {:?}", String::from_utf8_lossy(&out.stdout)))?;
    let secs = v["seconds"].as_f64().context("child: no seconds")?;
    let kib = v["vmhwm_kib"].as_f64().context("child: no vmhwm_kib")?;
    Ok((secs, kib / 1024.0))
}

/// The child side: opens `kind` in `dir`, answers one lookup, prints seconds and VmHWM.
/// Inserts rows `0..total` into `store` in batches of `batch`; returns the seconds taken.
///
/// Only the insert calls are timed: building a batch's rows (two `format!` per row, the same
/// for every system) happens off the clock. Until the fifth session of 2026-12-02 it was timed
/// too: about a quarter of PhantomDB's load time, which pulled every ratio toward 1.
fn load_rows(store: &dyn Store, total: usize, batch: usize) -> Result<f64> {
    let mut secs = 0.0;
    let mut rows = Vec::with_capacity(batch);
    let mut id = 0;
    while id < total {
        rows.clear();
        rows.extend((id..(id + batch).min(total)).map(|i| Row::new(i as i64)));
        let t = Instant::now();
        store.insert_batch(&rows)?;
        secs += t.elapsed().as_secs_f64();
        id += batch;
    }
    Ok(secs)
}

/// `--child load SYSTEM DIR`: loads the full W3 data set into `dir` and reports rows/s.
pub(crate) fn child_load_main(kind: &str, dir: &Path) -> Result<String> {
    let kind = Kind::parse(kind)?;
    let store = systems::open(kind, dir)?;
    let total = Sizes::FULL.w3_rows;
    let secs = load_rows(&*store, total, Sizes::FULL.w3_batch)?;
    #[allow(clippy::cast_precision_loss)]
    Ok(serde_json::json!({ "seconds": secs, "rows_per_s": total as f64 / secs }).to_string())
}

/// Writes `rows` single-row commits to a PhantomDB log in `dir`, without fsyncs (the bytes are
/// those of durable commits): the log-only data set of W4.
fn write_single_commits(dir: &Path, rows: usize) -> Result<()> {
    let p = Phantom::open_unsynced(dir)?;
    for id in 0..rows {
        let r = Row::new(id as i64);
        p.db.insert_values(DB, systems::TABLE, [systems::values(&r)])?;
    }
    Ok(())
}

/// `--child single-commits DIR`: writes W4's log of single-row commits (full size) into `dir`,
/// for profiling `--child open PhantomDB DIR` on it.
pub(crate) fn child_single_commits_main(dir: &Path) -> Result<String> {
    write_single_commits(dir, Sizes::FULL.w3_rows)?;
    Ok(serde_json::json!({ "rows": Sizes::FULL.w3_rows }).to_string())
}

/// W2's writers: `threads` threads of `per` durable single-row commits each into `store`
/// (thread `t` inserts ids `t * per ..`); returns every commit's latency in ms.
fn concurrent_commits(store: &dyn Store, threads: usize, per: usize) -> Result<Vec<f64>> {
    std::thread::scope(|s| -> Result<Vec<f64>> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<Vec<f64>> {
                    let mut lat = Vec::with_capacity(per);
                    for i in 0..per {
                        let row = Row::new((t * per + i) as i64);
                        let at = Instant::now();
                        store.insert_one(&row)?;
                        lat.push(ms(at.elapsed()));
                    }
                    Ok(lat)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r?),
                Err(_) => bail!("a writer thread panicked"),
            }
        }
        Ok(all)
    })
}

/// W2's shape on its own: `threads` writers of `per` durable single-row commits each.
pub(crate) fn child_group_commits_main(dir: &Path, threads: usize, per: usize) -> Result<String> {
    let store = Phantom::open(dir)?;
    let cpu = crate::measure::cpu_seconds();
    let start = Instant::now();
    concurrent_commits(&store, threads, per)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = crate::measure::cpu_seconds() - cpu;
    let stats = store
        .db
        .stats()?
        .databases
        .into_iter()
        .find(|d| d.name == DB)
        .map(|d| d.log)
        .context("no stats for the bench database")?;
    #[allow(clippy::cast_precision_loss)]
    let commits = (threads * per) as f64;
    Ok(serde_json::json!({
        "commits_per_s": commits / secs,
        "fsyncs": stats.syncs,
        "commits_per_fsync": commits / stats.syncs.max(1) as f64,
        "cpu_us_per_commit": cpu * 1e6 / commits,
    })
    .to_string())
}

pub(crate) fn child_open_main(kind: &str, dir: &Path) -> Result<String> {
    let kind = Kind::parse(kind)?;
    let t = Instant::now();
    let store = systems::open(kind, dir)?;
    let found = store.get(0)?.is_some();
    let secs = t.elapsed().as_secs_f64();
    if !found {
        bail!("row 0 not found after open");
    }
    let rss = crate::measure::vmhwm_kib().unwrap_or(0);
    Ok(serde_json::json!({ "seconds": secs, "vmhwm_kib": rss }).to_string())
}
