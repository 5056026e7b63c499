#![no_main]
//! See `tokengate_fuzz::directory` (fuzz/src/directory.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz::directory::check(data));
