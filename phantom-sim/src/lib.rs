//! `phantom-sim`: test support that proves PhantomDB's durability claims.
//!
//! - [`FaultFs`] is an in-memory [`FileSystem`](phantom_storage::FileSystem) that keeps
//!   written and durable bytes (and directory entries) apart, simulates power loss with
//!   [`FaultFs::crash`] — torn, reordered and lost unsynced writes, rolled-back directory
//!   entries — and fails the Nth operation with `EIO`, `ENOSPC` or a power cut ([`FaultPlan`]).
//! - [`simulate`] runs a seeded random workload against the real engine on a `FaultFs`,
//!   crashing, reopening and injecting errors, and checks after every recovery that every
//!   acknowledged commit is there and nothing else is ([`Violation`] names the seed).
//! - [`run_corruptions`] damages every kind of file (main file, CSV and binary snapshots, log
//!   segments) and checks that opening reports the damage, repairs it visibly, or falls back to
//!   an older recovery point — never serves wrong data silently, never panics.
//!
//! The fault model and how to reproduce a seed are in `docs/testing.md`.
//!
//! ```
//! use phantom_sim::{SimConfig, simulate};
//! let report = simulate(7, &SimConfig { steps: 10, ..SimConfig::default() })?;
//! assert!(report.recoveries >= 1);
//! # Ok::<(), phantom_sim::Violation>(())
//! ```

mod corrupt;
mod fault_fs;
mod model;
mod sim;

pub use corrupt::{Corruption, CorruptionOutcome, CorruptionSummary, FileKind, run_corruptions};
pub use fault_fs::{Bugs, CrashOptions, FaultFs, FaultKind, FaultPlan, FsCounters, SECTOR};
pub use model::{ModelState, ModelTable, diff, read_state};
pub use sim::{DB, SimConfig, SimReport, Violation, run_seeds, simulate};
