//! `phantom-wal`: the `LogSink` trait and a checksummed, segmented binary write-ahead log
//! with group commit. (Filled in by the WAL issue.)
