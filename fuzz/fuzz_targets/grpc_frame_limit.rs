#![no_main]
//! See `tokengate_fuzz::grpc_frame_limit` (fuzz/src/grpc_frame_limit.rs) for the input format and
//! the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokengate_fuzz::grpc_frame_limit::check(data));
