#![no_main]
//! See `tokengate_fuzz::config` (fuzz/src/config.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz::config::check(data));
