//! `phantom-snapshot`: when to take a snapshot, and where snapshots live.
//!
//! - [`SnapshotPolicy`] is a pure decision: given what happened since the last snapshot
//!   ([`SnapshotStats`]), [`Wait`](Decision::Wait) or [`Snapshot`](Decision::Snapshot).
//!   Shipped policies: [`EveryOps`] (the spec's "every 1000 operations", the default),
//!   [`Interval`], [`LogBytes`], [`Never`], and the combinators [`AnyOf`] and [`AllOf`].
//! - [`SnapshotStore`] manages one database's snapshot files
//!   `<db>_snapshot_YYYYMMDD_HHMMSS[_NNN]`: atomic writes in any
//!   [`StorageFormat`](phantom_storage::StorageFormat), listing by header, verified loading,
//!   retention of the newest K and cleanup of interrupted writes.
//!
//! The file rules are in `docs/formats/snapshot-files.md`.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use phantom_snapshot::{
//!     AnyOf, Decision, EveryOps, Interval, SnapshotPolicy, SnapshotStats, SnapshotStore,
//! };
//! use phantom_storage::StdFs;
//!
//! let policy = AnyOf(vec![Box::new(EveryOps(1000)), Box::new(Interval(Duration::from_secs(60)))]);
//! let stats = SnapshotStats { ops_since: 1000, ..SnapshotStats::default() };
//! assert_eq!(policy.decide(&stats), Decision::Snapshot);
//!
//! let dir = tempfile::tempdir()?;
//! let store = SnapshotStore::new(Arc::new(StdFs), dir.path(), "my_database")?;
//! assert!(store.list()?.is_empty());
//! let now = chrono::DateTime::parse_from_rfc3339("2023-12-01T12:00:00Z")?.to_utc();
//! assert!(store.path_for(now)?.ends_with("my_database_snapshot_20231201_120000"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod name;
mod policy;
mod store;

pub use error::{Error, Result};
pub use name::{MAX_SEQ, SNAPSHOT_INFIX, parse_snapshot_name, snapshot_file_name};
pub use policy::{
    AllOf, AnyOf, Decision, EveryOps, Interval, LogBytes, Never, SnapshotPolicy, SnapshotStats,
    default_policy,
};
pub use store::{DEFAULT_RETAIN, SnapshotEntry, SnapshotInfo, SnapshotStore, UnreadableSnapshot};
