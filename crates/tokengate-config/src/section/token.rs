//! `[token]`: token lifetimes, the refresh count, the issuer and the
//! password threads.

use serde::{Deserialize, Serialize};

/// `[token]` (seconds).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access-token lifetime when the request says 0.
    pub access_timeout: u64,
    /// Largest access-token lifetime a request may ask for.
    pub max_access_timeout: u64,
    /// Refresh-token lifetime.
    pub refresh_timeout: u64,
    /// Refreshes a family may make (the maximum `refresh_count`).
    pub refresh_ttl: u32,
    /// A family's whole life, however often it is refreshed.
    pub absolute_timeout: u64,
    /// Window in which a duplicate refresh gets the winner's answer; 0 = any
    /// reuse revokes the family.
    pub reuse_grace: u64,
    /// The `iss` claim.
    pub issuer: String,
    /// Concurrent password checks (0 = number of CPUs).
    pub password_workers: usize,
    /// Password checks that may wait for a worker before issue answers
    /// RESOURCE_EXHAUSTED.
    pub password_queue: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_timeout: 1200,
            max_access_timeout: 86400,
            refresh_timeout: 1800,
            refresh_ttl: 18,
            absolute_timeout: 86400,
            reuse_grace: 0,
            issuer: "tokengate".to_owned(),
            password_workers: 0,
            password_queue: 64,
        }
    }
}
