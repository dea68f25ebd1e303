//! `phantom-core`: the `Database` users call — typed tables in memory, made durable by the
//! write-ahead log, snapshots and recovery of the other phantom crates.
