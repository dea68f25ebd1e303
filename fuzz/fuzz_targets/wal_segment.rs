//! Fuzz target `wal_segment`: see `phantom_fuzz::wal_segment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phantom_fuzz::wal_segment(data));
