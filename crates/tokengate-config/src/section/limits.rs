//! `[limits]`: request size, failed-login limits, and the per-source
//! throttle of clients that keep making protocol faults.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokengate_core::LoginLimits;

/// `[limits]`. The `login_*` keys become the core's [`LoginLimits`]
/// (`From<&Config>`), whose defaults they share; the others are the
/// binary's and default here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body (REST) or message (gRPC), bytes.
    pub max_body_bytes: usize,
    /// Failed logins per window per (domain, user).
    pub login_failures_per_user: u32,
    /// Failed logins per window per client IP.
    pub login_failures_per_ip: u32,
    /// The failure-counting window (seconds in the file).
    #[serde(with = "crate::seconds")]
    pub login_failure_window: Duration,
    /// Behind a proxy or ingress, the header naming the client address
    /// (e.g. `x-forwarded-for`, `x-real-ip`); its last address is used, the
    /// one your own proxy appended. Unset: the TCP peer address. Set it only
    /// when every request passes that proxy, or clients can pick their IP.
    pub client_ip_header: Option<String>,
    /// Protocol faults from one client address (malformed or oversized
    /// request heads, oversized bodies, HTTP/2 protocol errors) within
    /// `source_fault_window` that throttle it; 0 = never. Counted by TCP
    /// peer: behind a proxy that forwards oversized bodies, the proxy's
    /// address is what gets throttled (its open connections keep serving).
    pub source_faults: u32,
    /// The fault-counting window (seconds in the file).
    #[serde(with = "crate::seconds")]
    pub source_fault_window: Duration,
    /// How long an address stays throttled after its last fault (seconds
    /// in the file).
    #[serde(with = "crate::seconds")]
    pub source_throttle: Duration,
    /// New connections a throttled address may still open per second;
    /// the rest are reset as soon as they are accepted.
    pub throttled_connections_per_second: u32,
}

impl Default for LimitsConfig {
    /// The `login_*` keys: the core's [`LoginLimits::default`].
    fn default() -> Self {
        let login = LoginLimits::default();
        Self {
            max_body_bytes: 64 * 1024,
            login_failures_per_user: login.per_user,
            login_failures_per_ip: login.per_ip,
            login_failure_window: Duration::from_secs(login.window_secs),
            client_ip_header: None,
            source_faults: 20,
            source_fault_window: Duration::from_secs(10),
            source_throttle: Duration::from_secs(60),
            throttled_connections_per_second: 2,
        }
    }
}
