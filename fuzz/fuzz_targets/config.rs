#![no_main]
//! See `tokengate_fuzz_checks::config`
//! (crates/tokengate-fuzz-checks/src/config.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz_checks::config::check(data));
