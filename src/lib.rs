//! tokengate: SpaceONE identity v1 Token API over native gRPC, gRPC-Web and
//! REST on one port.
//!
//! The crates under `crates/` hold the parts with one job each (core token
//! logic, keys, directory, store, config); this crate holds the transports
//! around them and the binary's wiring.

pub mod app;
pub mod cli;
pub mod devmode;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod layers;
pub mod lifecycle;
pub mod peer;
pub mod proto;
pub mod reload;
pub mod server;
pub mod settings;
pub mod stack;
pub mod telemetry;
pub mod transport;
