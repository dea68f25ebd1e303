//! Fuzz target `binary_reader`: see `phantom_fuzz::binary_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phantom_fuzz::binary_reader(data));
