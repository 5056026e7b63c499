//! `[server]`: deadlines and connection handling of the one listener.

use serde::{Deserialize, Serialize};

/// `[server]`: connection handling. Every duration is in milliseconds, as
/// each key's `_ms` says.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Deadline for calls that send no `grpc-timeout`, ms.
    pub default_timeout_ms: u64,
    /// Longest deadline a `grpc-timeout` may ask for, ms (it also bounds
    /// how long a request body may take to arrive, and how long a password
    /// check may hold its failed-login slots).
    pub max_timeout_ms: u64,
    /// Time a client has to send its request headers, ms.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed, ms.
    pub idle_timeout_ms: u64,
    /// HTTP/2 PING interval, ms (0 = off).
    pub http2_keepalive_interval_ms: u64,
    /// HTTP/2 PING answer timeout, ms.
    pub http2_keepalive_timeout_ms: u64,
    /// Concurrent HTTP/2 streams per connection. 100, as Envoy and h2o:
    /// more let one client's burst of streams hold the core long enough to
    /// slow every other client's calls (BENCHMARKS.md, "Hostile traffic").
    pub http2_max_concurrent_streams: u32,
    /// Connections are asked to go away after this long, ms (0 = never).
    pub max_connection_age_ms: u64,
    /// How long SIGTERM waits for in-flight calls, ms.
    pub drain_timeout_ms: u64,
    /// Open connections at most; a connection beyond it is closed at once
    /// (each costs memory, and a flood of them is an attack).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            default_timeout_ms: 10_000,
            max_timeout_ms: 60_000,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 120_000,
            http2_keepalive_interval_ms: 30_000,
            http2_keepalive_timeout_ms: 10_000,
            http2_max_concurrent_streams: 100,
            max_connection_age_ms: 0,
            drain_timeout_ms: 20_000,
            max_connections: 10_000,
        }
    }
}
