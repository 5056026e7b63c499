//! `[store]`: where refresh state lives.

use serde::{Deserialize, Serialize};
use tokengate_store::RedisStoreConfig;

/// `[store]`. Becomes a [`StoreBackend`](crate::StoreBackend) (`TryFrom`);
/// its defaults are the store's ([`RedisStoreConfig::DEFAULT_KEY_PREFIX`],
/// [`RedisStoreConfig::DEFAULT_TIMEOUT`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `redis://`, `rediss://` or `redis+cluster://`; absent = in-memory.
    pub redis_url: Option<String>,
    /// Cluster seed nodes (alternative to a `redis+cluster://` URL).
    pub cluster_nodes: Vec<String>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Bound on every store call, milliseconds.
    pub timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            cluster_nodes: Vec::new(),
            key_prefix: RedisStoreConfig::DEFAULT_KEY_PREFIX.to_owned(),
            // A constant of half a second: the cast cannot truncate.
            timeout_ms: RedisStoreConfig::DEFAULT_TIMEOUT.as_millis() as u64,
        }
    }
}
