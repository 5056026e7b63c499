//! The properties the fuzz targets check, one module per target, plus
//! `json_eq` which two of them share. The modules name only the project
//! crates, their dependencies and each other by `crate::` paths, because
//! `tests/fuzz_regressions.rs` at the repository root includes the very
//! same files (as modules of the same names), so `cargo test --workspace` replays the
//! committed seeds and regressions through them and they cannot rot.

pub mod config;
pub mod directory;
pub mod grpc_frame_limit;
pub mod grpc_web_framing;
pub mod json_eq;
pub mod jwt;
pub mod rest_decode;
