#![no_main]
//! See `tokengate_fuzz_checks::grpc_frame_limit`
//! (crates/tokengate-fuzz-checks/src/grpc_frame_limit.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz_checks::grpc_frame_limit::check(data));
