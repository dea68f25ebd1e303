//! `phantom-recovery`: composes snapshot loading with write-ahead-log replay: the newest valid
//! recovery point, torn-tail handling, recovery modes and point-in-time recovery.
