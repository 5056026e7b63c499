//! `[token]`: token lifetimes, the refresh count, the issuer and the
//! password threads.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokengate_core::TokenSettings;

/// `[token]`. Its lifetimes and limits become the core's
/// [`TokenSettings`] (`From<&Config>`), whose defaults they share.
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
    /// A count, not a time: the most refreshes one family may make (the
    /// largest `refresh_count` an issue request may ask for, and what a
    /// `refresh_count` of 0 gets). Each refresh token carries what is left
    /// of it in its `ttl` claim; the key keeps SpaceONE's name.
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
    /// The core's [`TokenSettings::default`]; the password pool's sizes are
    /// this section's own.
    fn default() -> Self {
        let core = TokenSettings::default();
        Self {
            access_timeout: Duration::from_secs(core.access_timeout),
            max_access_timeout: Duration::from_secs(core.max_access_timeout),
            refresh_timeout: Duration::from_secs(core.refresh_timeout),
            refresh_ttl: core.refresh_ttl,
            absolute_timeout: Duration::from_secs(core.absolute_timeout),
            reuse_grace: Duration::from_secs(core.reuse_grace),
            issuer: core.issuer,
            password_workers: 0,
            password_queue: 64,
        }
    }
}
