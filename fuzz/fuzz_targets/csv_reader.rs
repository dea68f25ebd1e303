//! Fuzz target `csv_reader`: see `phantom_fuzz::csv_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phantom_fuzz::csv_reader(data));
