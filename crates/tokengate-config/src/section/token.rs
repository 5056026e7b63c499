//! `[token]`: token lifetimes, the refresh count, the issuer and the
//! password threads.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[token]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access-token lifetime when the request says 0 (seconds in the file).
    #[serde(with = "crate::seconds")]
    pub access_timeout: Duration,
    /// Largest access-token lifetime a request may ask for (seconds in the
    /// file).
    #[serde(with = "crate::seconds")]
    pub max_access_timeout: Duration,
    /// Refresh-token lifetime (seconds in the file).
    #[serde(with = "crate::seconds")]
    pub refresh_timeout: Duration,
    /// Refreshes a family may make (the maximum `refresh_count`).
    pub refresh_ttl: u32,
    /// A family's whole life from its issue, however often it is refreshed
    /// (seconds in the file).
    #[serde(with = "crate::seconds")]
    pub absolute_timeout: Duration,
    /// Window in which a duplicate refresh gets the winner's answer; zero =
    /// any reuse revokes the family (seconds in the file).
    #[serde(with = "crate::seconds")]
    pub reuse_grace: Duration,
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
            access_timeout: Duration::from_secs(1200),
            max_access_timeout: Duration::from_secs(86400),
            refresh_timeout: Duration::from_secs(1800),
            refresh_ttl: 18,
            absolute_timeout: Duration::from_secs(86400),
            reuse_grace: Duration::ZERO,
            issuer: "tokengate".to_owned(),
            password_workers: 0,
            password_queue: 64,
        }
    }
}
