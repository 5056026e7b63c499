//! The properties the cargo-fuzz targets check (`fuzz/fuzz_targets/`), one
//! module per target, plus `json_eq` which two of them share.
//!
//! A crate of its own, in the workspace, because two builds run them: the
//! fuzz crate (`fuzz/`, outside the workspace, built by cargo-fuzz with
//! nightly flags and libFuzzer) hands each fuzz input to a `check`, and
//! `tests/fuzz_regressions.rs` at the repository root replays every
//! committed seed and regression through the same `check`s, so
//! `cargo test --workspace` keeps the harnesses compiling and the fixed bugs
//! fixed.
#![warn(missing_docs)]

pub mod config;
pub mod directory;
pub mod grpc_frame_limit;
pub mod grpc_web_framing;
pub mod json_eq;
pub mod jwt;
pub mod rest_decode;
