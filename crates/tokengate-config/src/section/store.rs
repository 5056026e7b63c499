//! `[store]`: where refresh state lives.

use std::fmt;

use serde::{Deserialize, Serialize};
use tokengate_store::RedisStoreConfig;

/// `[store]`. Becomes a [`StoreBackend`](crate::StoreBackend) (`TryFrom`);
/// its defaults are the store's ([`RedisStoreConfig::DEFAULT_KEY_PREFIX`],
/// [`RedisStoreConfig::DEFAULT_TIMEOUT`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `redis://`, `rediss://`, `redis+cluster://` or `redis+sentinel://`
    /// (and their `rediss` forms); absent = in-memory.
    pub redis_url: Option<String>,
    /// Cluster seed nodes (alternative to a `redis+cluster://` URL).
    pub cluster_nodes: Vec<String>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Bound on every store call, milliseconds.
    pub timeout_ms: u64,
    /// Replicas that must acknowledge a refresh's write before its tokens
    /// are answered (`WAIT`); 0 = answer once the master has it.
    pub replica_acks: u32,
    /// ACL user for the sentinels of a `redis+sentinel://` URL; with
    /// `sentinel_password` only.
    pub sentinel_username: Option<String>,
    /// Password for the sentinels: absent = the URL's credentials, as for
    /// the data nodes; `""` = the sentinels need none.
    #[serde(skip_serializing)]
    pub sentinel_password: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            cluster_nodes: Vec::new(),
            key_prefix: RedisStoreConfig::DEFAULT_KEY_PREFIX.to_owned(),
            // A constant of half a second: the cast cannot truncate.
            timeout_ms: RedisStoreConfig::DEFAULT_TIMEOUT.as_millis() as u64,
            replica_acks: 0,
            sentinel_username: None,
            sentinel_password: None,
        }
    }
}

/// Debug output never shows URLs or passwords (a URL may carry one).
impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |set: bool| if set { "<redacted>" } else { "<unset>" };
        f.debug_struct("StoreConfig")
            .field("redis_url", &shown(self.redis_url.is_some()))
            .field("cluster_nodes", &self.cluster_nodes.len())
            .field("key_prefix", &self.key_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("replica_acks", &self.replica_acks)
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &shown(self.sentinel_password.is_some()),
            )
            .finish()
    }
}
