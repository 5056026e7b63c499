#![no_main]
//! See `tokengate_fuzz::jwt` (fuzz/src/jwt.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz::jwt::check(data));
