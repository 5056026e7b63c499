#![no_main]
//! See `tokengate_fuzz::rest_decode` (fuzz/src/rest_decode.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz::rest_decode::check(data));
