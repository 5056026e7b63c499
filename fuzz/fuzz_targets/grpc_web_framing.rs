#![no_main]
//! See `tokengate_fuzz_checks::grpc_web_framing`
//! (crates/tokengate-fuzz-checks/src/grpc_web_framing.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz_checks::grpc_web_framing::check(data));
