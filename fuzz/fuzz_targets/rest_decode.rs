#![no_main]
//! See `tokengate_fuzz_checks::rest_decode`
//! (crates/tokengate-fuzz-checks/src/rest_decode.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz_checks::rest_decode::check(data));
