//! Snapshot policies: pure decisions about *when* to take a snapshot.
//!
//! A policy sees only [`SnapshotStats`] — counters the engine keeps since the last snapshot and
//! the time elapsed since then, measured by the caller — and answers [`Decision::Wait`] or
//! [`Decision::Snapshot`]. Policies never do I/O and never read a clock, so they are
//! deterministic and trivially testable; the engine does the writing.
//!
//! Zero thresholds mean "never": `EveryOps(0)`, `Interval(Duration::ZERO)` and `LogBytes(0)`
//! never fire, so a zero read from a configuration file cannot turn into "snapshot after every
//! operation".

use std::sync::Arc;
use std::time::Duration;

/// What happened since the last snapshot (or since the database was opened, when there is
/// none yet). The engine fills it in; the policy only reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Committed operations (mutations) since the last snapshot.
    pub ops_since: u64,
    /// Bytes appended to the write-ahead log since the last snapshot.
    pub log_bytes_since: u64,
    /// Time elapsed since the last snapshot, measured by the caller.
    pub elapsed_since: Duration,
}

impl SnapshotStats {
    /// `true` when anything was committed since the last snapshot.
    pub fn has_changes(&self) -> bool {
        self.ops_since > 0 || self.log_bytes_since > 0
    }
}

/// A policy's answer.
#[derive(PartialEq, Eq, Debug, Clone, Copy)]
pub enum Decision {
    /// Not yet.
    Wait,
    /// Take a snapshot now.
    Snapshot,
}

impl Decision {
    /// `true` for [`Decision::Snapshot`].
    pub fn is_snapshot(self) -> bool {
        self == Decision::Snapshot
    }
}

/// Decides when to take a snapshot.
///
/// Contract for implementations: `decide` is a pure function of `stats` (plus the policy's own
/// configuration) — no I/O, no clock reads, no interior state — and it is cheap, because the
/// engine calls it after every commit.
pub trait SnapshotPolicy: Send + Sync + std::fmt::Debug {
    /// Whether to snapshot now, given what happened since the last snapshot.
    fn decide(&self, stats: &SnapshotStats) -> Decision;
}

impl<P: SnapshotPolicy + ?Sized> SnapshotPolicy for Box<P> {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        (**self).decide(stats)
    }
}

impl<P: SnapshotPolicy + ?Sized> SnapshotPolicy for Arc<P> {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        (**self).decide(stats)
    }
}

impl<P: SnapshotPolicy + ?Sized> SnapshotPolicy for &P {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        (**self).decide(stats)
    }
}

fn fire_if(condition: bool) -> Decision {
    if condition {
        Decision::Snapshot
    } else {
        Decision::Wait
    }
}

/// Snapshot once `n` operations have been committed since the last snapshot — the spec's
/// policy ("every 1000 operations", [`EveryOps::default`]). `EveryOps(0)` never fires.
///
/// ```
/// use phantom_snapshot::{Decision, EveryOps, SnapshotPolicy, SnapshotStats};
/// let stats = SnapshotStats { ops_since: 1000, ..SnapshotStats::default() };
/// assert_eq!(EveryOps::default().decide(&stats), Decision::Snapshot);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EveryOps(pub u64);

impl Default for EveryOps {
    /// The spec's default interval: every 1000 committed operations.
    fn default() -> Self {
        EveryOps(1000)
    }
}

impl SnapshotPolicy for EveryOps {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        fire_if(self.0 > 0 && stats.ops_since >= self.0)
    }
}

/// Snapshot once this much time has passed since the last snapshot, provided something was
/// committed since (an unchanged database is not snapshotted again: the copy would be
/// identical and would only push an older, different snapshot out of retention).
/// `Interval(Duration::ZERO)` never fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl SnapshotPolicy for Interval {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        fire_if(!self.0.is_zero() && stats.elapsed_since >= self.0 && stats.has_changes())
    }
}

/// Snapshot once the write-ahead log has grown by this many bytes since the last snapshot,
/// which bounds replay time after a crash. `LogBytes(0)` never fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBytes(pub u64);

impl SnapshotPolicy for LogBytes {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        fire_if(self.0 > 0 && stats.log_bytes_since >= self.0)
    }
}

/// Never snapshot automatically (manual snapshots still work).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Never;

impl SnapshotPolicy for Never {
    fn decide(&self, _stats: &SnapshotStats) -> Decision {
        Decision::Wait
    }
}

/// Fires when any member fires, e.g. "every 1000 operations or every 5 minutes".
/// An empty `AnyOf` never fires.
///
/// ```
/// use std::time::Duration;
/// use phantom_snapshot::{AnyOf, Decision, EveryOps, Interval, SnapshotPolicy, SnapshotStats};
/// let policy = AnyOf(vec![Box::new(EveryOps(1000)), Box::new(Interval(Duration::from_secs(300)))]);
/// let stats = SnapshotStats { ops_since: 3, log_bytes_since: 120, elapsed_since: Duration::from_secs(301) };
/// assert_eq!(policy.decide(&stats), Decision::Snapshot);
/// ```
#[derive(Debug, Default)]
pub struct AnyOf(pub Vec<Box<dyn SnapshotPolicy>>);

impl SnapshotPolicy for AnyOf {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        fire_if(self.0.iter().any(|p| p.decide(stats).is_snapshot()))
    }
}

/// Fires when every member fires, e.g. "at least 100 operations *and* at least a minute".
/// An empty `AllOf` never fires.
#[derive(Debug, Default)]
pub struct AllOf(pub Vec<Box<dyn SnapshotPolicy>>);

impl SnapshotPolicy for AllOf {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        fire_if(!self.0.is_empty() && self.0.iter().all(|p| p.decide(stats).is_snapshot()))
    }
}

/// The spec's default policy: [`EveryOps(1000)`](EveryOps).
pub fn default_policy() -> EveryOps {
    EveryOps::default()
}
