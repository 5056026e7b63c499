//! `tokengate-load`: a small load generator for SpaceONE's identity v1 Token
//! API that speaks only the wire contract — native gRPC (h2c), gRPC-Web
//! (binary and text, HTTP/1.1 or HTTP/2) and REST/JSON — so it can drive
//! tokengate and the stock SpaceONE identity service alike.
//!
//! A call counts as a success only when the answer says so: grpc-status 0
//! (from the headers of a trailers-only answer, the HTTP/2 trailers, or the
//! gRPC-Web trailer frame) or HTTP 200 for REST. Failures are counted by
//! status and SpaceONE error code.
//!
//! The binary is a thin wrapper over [`run`]: build a [`LoadConfig`], await
//! [`run`], print the [`Report`].
//!
//! The crate root only names the parts: what the calls speak (`protocol`),
//! what a run is asked to do (`config`) and why it stops (`error`), the run
//! itself (`run`); the wire format, connections, target, report, command
//! line and the hostile traffic are public modules of their own.

pub mod cli;
mod config;
pub mod conn;
mod error;
pub mod hostile;
pub mod proto;
mod protocol;
pub mod report;
mod run;
pub mod target;
pub mod wire;

pub use crate::config::{
    LoadConfig, MAX_CONNECTIONS, MAX_IN_FLIGHT, MAX_SECONDS, MAX_TCP_CONNECTIONS, Scenario,
};
pub use crate::error::LoadError;
pub use crate::protocol::{HttpVersion, Protocol};
pub use crate::report::{Report, ServerMemory};
pub use crate::run::{jwt_ttl, run};
pub use crate::wire::Payload;
