//! Hostile traffic against one loopback target, to check that a server
//! stays up and keeps answering honest clients while it is attacked:
//!
//! - **garbage**: random bytes; the HTTP/2 preface then frames with valid
//!   9-byte headers but random types, flags, stream ids and payloads;
//!   HTTP/1.1 requests with too many, oversized or junk headers.
//! - **half-open**: connections that send part of a request (or nothing)
//!   and stall; up to N held open, re-opened as the server closes them.
//! - **oversized**: REST bodies over the limit (`Content-Length` and
//!   chunked) and a gRPC message whose length prefix announces 100 MB.
//! - **streams**: many concurrent calls on one HTTP/2 connection (hyper's
//!   client, which respects the server's stream limit, and raw frames that
//!   ignore it), and "rapid reset" (open a stream, cancel it, repeat).
//! - **connections**: many TCP connections at once, held open.
//!
//! Each attacker runs in its own tokio tasks and counts how the server
//! reacted: an HTTP status, an HTTP/2 GOAWAY (with its error code), a gRPC
//! status, or how and after how long the connection ended. With a server
//! PID the server's memory is sampled every 500 ms. [`run`] returns a
//! [`HostileReport`].
//!
//! Like the load generator, it talks only to loopback targets.
//!
//! One file per attack (`garbage`, `half_open`, `flood`, `oversized`,
//! `streams`), beside what they share: the settings (`config`) and why a
//! run stops early (`error`), plain TCP connections (`raw_conn`) and
//! hand-made HTTP/2 (`raw_h2`), how a connection ended (`reply`), the
//! counts (`tally`), the result (`report`) and the loop that runs the
//! attackers (`run`).

mod config;
mod error;
mod flood;
mod garbage;
mod half_open;
mod oversized;
mod raw_conn;
mod raw_h2;
mod reply;
mod report;
mod run;
mod streams;
mod tally;

pub use config::{HostileConfig, Kind, MAX_ATTACKERS, MAX_HELD_CONNECTIONS};
pub use error::HostileError;
pub use half_open::HalfOpen;
pub use reply::{End, Reply, classify, h2_error_name};
pub use report::{AttackReport, CloseTimes, HostileReport, MemoryTrace};
pub use run::run;
pub use streams::StreamAttack;
