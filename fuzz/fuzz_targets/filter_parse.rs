//! Fuzz target `filter_parse`: see `phantom_fuzz::filter_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phantom_fuzz::filter_parse(data));
