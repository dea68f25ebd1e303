//! Fuzz target `recovery_image`: see `phantom_fuzz::recovery_image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| phantom_fuzz::recovery_image(data));
