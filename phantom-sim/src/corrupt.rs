//! The corruption campaign: damage one file of a cleanly closed database — the main file,
//! a CSV or binary snapshot, or a log segment — by flipping bits, zeroing a range, truncating,
//! duplicating or swapping blocks, then open it and classify what the engine did.
//!
//! Every case must end in one of:
//! - an error whose message names the damaged file ([`CorruptionOutcome::Error`]);
//! - a visible repair: a torn log tail cut (`torn_bytes_cut > 0`), serving a state the database
//!   really had at the LSN it reports ([`CorruptionOutcome::Repaired`]);
//! - a fallback to an older recovery point (`rejected` non-empty) that still holds every
//!   acknowledged commit ([`CorruptionOutcome::FellBack`]);
//! - no visible effect, serving exactly the acknowledged state ([`CorruptionOutcome::Unaffected`]).
//!
//! Anything else — wrong data served silently, an error that does not say where, a panic — is
//! a failure.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_core::{Database, Lsn, SyncMode, WalFactory};
use phantom_storage::{BinaryFormat, CsvFormat, FileSystem};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fault_fs::FaultFs;
use crate::model::{ModelState, apply, diff, random_op, read_state, run};
use crate::sim::DB;

/// The kinds of files the campaign damages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// The main file `<db>.db` (the spec's CSV).
    MainCsv,
    /// A snapshot in the spec's CSV format.
    CsvSnapshot,
    /// A snapshot in the binary format.
    BinarySnapshot,
    /// A write-ahead-log segment.
    LogSegment,
}

const KINDS: [FileKind; 4] = [
    FileKind::MainCsv,
    FileKind::CsvSnapshot,
    FileKind::BinarySnapshot,
    FileKind::LogSegment,
];

/// One way to damage a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Flip these bits (absolute bit positions).
    FlipBits(Vec<u64>),
    /// Overwrite `len` bytes at `offset` with zeros.
    ZeroRange {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Cut the file to `len` bytes.
    Truncate {
        /// New length.
        len: u64,
    },
    /// Copy `len` bytes from `from` over the bytes at `to`.
    DuplicateBlock {
        /// Source offset.
        from: u64,
        /// Destination offset.
        to: u64,
        /// Length.
        len: u64,
    },
    /// Exchange the `len`-byte blocks at `a` and `b` (`a + len <= b`).
    SwapBlocks {
        /// First block.
        a: u64,
        /// Second block.
        b: u64,
        /// Length.
        len: u64,
    },
}

impl Corruption {
    fn random(rng: &mut StdRng, size: u64) -> Corruption {
        let size = size.max(1);
        let block = |rng: &mut StdRng| rng.random_range(1..=size.clamp(1, 512));
        match rng.random_range(0..5) {
            0 => Corruption::FlipBits(
                (0..rng.random_range(1..=4))
                    .map(|_| rng.random_range(0..size * 8))
                    .collect(),
            ),
            1 => {
                let len = block(rng);
                Corruption::ZeroRange {
                    offset: rng.random_range(0..size),
                    len,
                }
            }
            2 => Corruption::Truncate {
                len: rng.random_range(0..size),
            },
            3 => {
                let len = block(rng);
                Corruption::DuplicateBlock {
                    from: rng.random_range(0..size),
                    to: rng.random_range(0..size),
                    len,
                }
            }
            _ => {
                let len = block(rng).min(size / 2).max(1);
                let a = rng.random_range(0..=size.saturating_sub(2 * len));
                let b = rng.random_range(a + len..=size.saturating_sub(len).max(a + len));
                Corruption::SwapBlocks { a, b, len }
            }
        }
    }

    /// Applies the damage to `bytes` (ranges are clipped to the file).
    pub fn apply(&self, bytes: &mut Vec<u8>) {
        let n = bytes.len();
        let clip = |off: u64, len: u64| {
            let s = (off as usize).min(n);
            (s, (s + len as usize).min(n))
        };
        match self {
            Corruption::FlipBits(bits) => {
                for bit in bits {
                    if let Some(b) = bytes.get_mut((bit / 8) as usize) {
                        *b ^= 1 << (bit % 8);
                    }
                }
            }
            Corruption::ZeroRange { offset, len } => {
                let (s, e) = clip(*offset, *len);
                bytes[s..e].fill(0);
            }
            Corruption::Truncate { len } => bytes.truncate(*len as usize),
            Corruption::DuplicateBlock { from, to, len } => {
                let (s, e) = clip(*from, *len);
                let block = bytes[s..e].to_vec();
                let (t, te) = clip(*to, block.len() as u64);
                bytes[t..te].copy_from_slice(&block[..te - t]);
            }
            Corruption::SwapBlocks { a, b, len } => {
                let (a0, a1) = clip(*a, *len);
                let (b0, b1) = clip(*b, *len);
                let l = (a1 - a0).min(b1 - b0);
                if a0 + l <= b0 {
                    let first = bytes[a0..a0 + l].to_vec();
                    bytes.copy_within(b0..b0 + l, a0);
                    bytes[b0..b0 + l].copy_from_slice(&first);
                }
            }
        }
    }
}

/// What opening a damaged database did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptionOutcome {
    /// Open failed with this message (it names the damaged file).
    Error(String),
    /// A torn log tail was cut; the state served is the one the database had at that LSN.
    Repaired {
        /// Bytes cut.
        torn_bytes_cut: u64,
    },
    /// Recovery fell back past these rejected files and still holds every acknowledged commit.
    FellBack {
        /// The rejected files.
        rejected: Vec<String>,
    },
    /// The damage had no visible effect and the acknowledged state was served.
    Unaffected,
    /// A log segment was truncated exactly at a record boundary: a shorter but valid log, which
    /// no reader can tell from a crash before the lost records; the state served is the
    /// history's prefix at `lsn` (documented limit, see `docs/testing.md`).
    UndetectableTruncation {
        /// The LSN recovered to.
        lsn: Lsn,
    },
}

/// Figures of a corruption campaign.
#[derive(Clone, Debug, Default)]
pub struct CorruptionSummary {
    /// Cases run.
    pub cases: usize,
    /// Outcome counts by file kind: (errors, repaired, fell back, unaffected, undetectable
    /// truncations at a record boundary).
    pub by_kind: BTreeMap<String, [usize; 5]>,
    /// Cases that broke a guarantee, with the seed, file and damage that reproduce them.
    pub failures: Vec<String>,
}

impl fmt::Display for CorruptionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} cases, {} failures", self.cases, self.failures.len())?;
        for (kind, [e, r, b, u, t]) in &self.by_kind {
            writeln!(
                f,
                "  {kind}: {e} errors, {r} repaired, {b} fell back, {u} unaffected, {t} cut at a record boundary"
            )?;
        }
        for failure in &self.failures {
            writeln!(f, "  FAIL {failure}")?;
        }
        Ok(())
    }
}

/// A cleanly closed database with recovery points of every kind and its history.
struct Base {
    fs: FaultFs,
    history: BTreeMap<Lsn, ModelState>,
    last: Lsn,
    files: Vec<(FileKind, PathBuf)>,
}

fn open(fs: &FaultFs, dir: &Path) -> phantom_core::Result<Database> {
    let mut log = WalFactory::new(SyncMode::Always);
    log.options.segment_size = 4 << 10;
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Database::builder()
        .data_dir(dir)
        .file_system(fs)
        .log_factory(Arc::new(log))
        .snapshots_enabled(false)
        .retain_snapshots(10)
        .open()
}

fn build_base(seed: u64, dir: &Path) -> Result<Base, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let fs = FaultFs::new(seed);
    fs.create_dir_all(dir).map_err(|e| e.to_string())?;
    let db = open(&fs, dir).map_err(|e| e.to_string())?;
    db.create_database(DB).map_err(|e| e.to_string())?;
    let mut lsn = db
        .stats()
        .map_err(|e| e.to_string())?
        .databases
        .first()
        .map_or(0, |d| d.last_lsn);
    let mut state = ModelState::new();
    let mut history = BTreeMap::from([(lsn, state.clone())]);
    let mut points = [0u8, 1, 2];
    for i in (1..points.len()).rev() {
        points.swap(i, rng.random_range(0..=i));
    }
    for point in points.iter().copied().chain([3]) {
        for _ in 0..rng.random_range(6..=14) {
            let op = random_op(&mut rng, &state);
            let before = state.clone();
            let changed = apply(&mut state, &op);
            db.transaction(DB, |tx| run(tx, &op, &before))
                .map_err(|e| format!("commit: {e}"))?;
            if changed {
                lsn += 1;
                history.insert(lsn, state.clone());
            }
        }
        match point {
            0 => {
                db.set_snapshot_format(Arc::new(CsvFormat));
                db.create_snapshot(DB).map_err(|e| e.to_string())?;
            }
            1 => {
                db.set_snapshot_format(Arc::new(BinaryFormat));
                db.create_snapshot(DB).map_err(|e| e.to_string())?;
            }
            2 => {
                db.save_to_disk(DB).map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
    drop(db);
    let mut files = Vec::new();
    for name in fs.file_names(dir) {
        let path = dir.join(&name);
        let kind = if name == format!("{DB}.db") {
            FileKind::MainCsv
        } else if name.starts_with(&format!("{DB}.log")) {
            FileKind::LogSegment
        } else if name.starts_with(&format!("{DB}_snapshot_")) {
            let head = fs.contents(&path).unwrap_or_default();
            if head.starts_with(b"#") {
                FileKind::CsvSnapshot
            } else {
                FileKind::BinarySnapshot
            }
        } else {
            continue;
        };
        files.push((kind, path));
    }
    Ok(Base {
        fs,
        history,
        last: lsn,
        files,
    })
}

fn bump(summary: &mut CorruptionSummary, kind: FileKind, slot: usize) {
    summary.by_kind.entry(format!("{kind:?}")).or_default()[slot] += 1;
}

/// Runs `n` corruption cases derived from `seed` (four base databases, file kinds in turn).
pub fn run_corruptions(n: usize, seed: u64) -> CorruptionSummary {
    let mut summary = CorruptionSummary::default();
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            summary.failures.push(format!("tempdir: {e}"));
            return summary;
        }
    };
    let mut bases = Vec::new();
    for b in 0..4 {
        match build_base(seed.wrapping_mul(31).wrapping_add(b), dir.path()) {
            Ok(base) => bases.push(base),
            Err(e) => summary.failures.push(format!("seed {seed}: base {b}: {e}")),
        }
    }
    if bases.is_empty() {
        return summary;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    for case in 0..n {
        let base = &bases[case % bases.len()];
        let kind = KINDS[(case / bases.len()) % KINDS.len()];
        let candidates: Vec<&PathBuf> = base
            .files
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, p)| p)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let path = candidates[rng.random_range(0..candidates.len())];
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fs = base.fs.fork();
        let mut bytes = fs.durable_contents(path).unwrap_or_default();
        let damage = Corruption::random(&mut rng, bytes.len() as u64);
        damage.apply(&mut bytes);
        summary.cases += 1;
        let what = format!("seed {seed} case {case}: {name} ({kind:?}) damaged by {damage:?}");
        if let Err(e) = fs.set_durable_contents(path, bytes) {
            summary.failures.push(format!("{what}: {e}"));
            continue;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let truncated_log =
                kind == FileKind::LogSegment && matches!(damage, Corruption::Truncate { .. });
            check_case(&fs, dir.path(), base, &name, truncated_log)
        }));
        match outcome {
            Ok(Ok(outcome)) => {
                let slot = match outcome {
                    CorruptionOutcome::Error(_) => 0,
                    CorruptionOutcome::Repaired { .. } => 1,
                    CorruptionOutcome::FellBack { .. } => 2,
                    CorruptionOutcome::Unaffected => 3,
                    CorruptionOutcome::UndetectableTruncation { .. } => 4,
                };
                bump(&mut summary, kind, slot);
            }
            Ok(Err(why)) => summary.failures.push(format!("{what}: {why}")),
            Err(_) => summary.failures.push(format!("{what}: panic")),
        }
    }
    summary
}

fn check_case(
    fs: &FaultFs,
    dir: &Path,
    base: &Base,
    damaged: &str,
    truncated_log: bool,
) -> Result<CorruptionOutcome, String> {
    let opened = open(fs, dir).and_then(|db| {
        let report = db.recovery_report(DB)?;
        Ok((db, report))
    });
    let (db, report) = match opened {
        Ok(x) => x,
        Err(e) => {
            let msg = e.to_string();
            return if msg.contains(damaged) {
                Ok(CorruptionOutcome::Error(msg))
            } else {
                Err(format!("the error does not name the damaged file: {msg}"))
            };
        }
    };
    let state = read_state(&db, DB).map_err(|e| format!("read: {e}"))?;
    let lsn = report.final_lsn;
    let expected = base.history.get(&base.last).cloned().unwrap_or_default();
    if !report.rejected.is_empty() && report.torn_bytes_cut == 0 {
        if lsn != base.last || state != expected {
            return Err(format!(
                "fell back to an older recovery point but lost acknowledged commits: LSN {lsn} of {} ({})",
                base.last,
                diff(&expected, &state)
            ));
        }
        return Ok(CorruptionOutcome::FellBack {
            rejected: report
                .rejected
                .iter()
                .map(|r| r.path.display().to_string())
                .collect(),
        });
    }
    if report.torn_bytes_cut > 0 {
        return match base.history.get(&lsn) {
            Some(s) if *s == state => Ok(CorruptionOutcome::Repaired {
                torn_bytes_cut: report.torn_bytes_cut,
            }),
            Some(s) => Err(format!(
                "torn tail cut, but the state at LSN {lsn} is wrong: {}",
                diff(s, &state)
            )),
            None => Err(format!(
                "torn tail cut, recovered to LSN {lsn} which never existed"
            )),
        };
    }
    if truncated_log && lsn < base.last && base.history.get(&lsn) == Some(&state) {
        // The last segment was cut exactly between two records: the log that remains is a
        // valid, complete log of a shorter history. Nothing in the bytes can tell it from a
        // crash before the lost records were written (no log format can, short of a durable
        // high-water mark written by every commit); the state served is a real prefix of the
        // history, with no hole.
        return Ok(CorruptionOutcome::UndetectableTruncation { lsn });
    }
    if lsn != base.last || state != expected {
        return Err(format!(
            "wrong data served silently: LSN {lsn} of {} ({})",
            base.last,
            diff(&expected, &state)
        ));
    }
    Ok(CorruptionOutcome::Unaffected)
}
