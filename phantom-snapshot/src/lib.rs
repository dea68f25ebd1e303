//! `phantom-snapshot`: the `SnapshotPolicy` trait (pure decisions: when to snapshot) and the
//! snapshot store (timestamped atomic snapshot files, listing, retention).
