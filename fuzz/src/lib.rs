//! The properties the fuzz targets check, one module per target. Each
//! module is self-contained (it names only the project crates and their
//! dependencies) because `tests/fuzz_regressions.rs` at the repository root
//! includes the very same files, so `cargo test --workspace` replays the
//! committed seeds and regressions through them and they cannot rot.

pub mod config;
pub mod directory;
pub mod grpc_frame_limit;
pub mod grpc_web_framing;
pub mod jwt;
pub mod rest_decode;
