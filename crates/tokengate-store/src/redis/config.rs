//! How to reach Redis and how to name keys there: the endpoint, the
//! store's settings, and the errors of a setting that can never work.

use std::fmt;
use std::time::Duration;

/// Where a [`RedisStore`](crate::RedisStore) connects.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisEndpoint {
    /// One URL: `redis://` or `rediss://` for a standalone server,
    /// `redis+cluster://[user:password@]host:port,host:port[/db]` or
    /// `rediss+cluster://…` for a Redis Cluster (the hosts are its seeds),
    /// `redis+sentinel://[user:password@]host:port,host:port/<master
    /// name>[/db]` or `rediss+sentinel://…` for the master that Redis
    /// Sentinel names (the hosts are the sentinels; the credentials and TLS
    /// are the data nodes', and the sentinels' unless
    /// [`RedisStoreConfig::sentinel_auth`] says otherwise).
    Url(String),
    /// Redis Cluster seed nodes, each a `redis://` or `rediss://` URL
    /// (all with the same credentials and TLS mode).
    ClusterNodes(Vec<String>),
}

/// How to reach Redis and how to name keys there.
#[derive(Clone)]
pub struct RedisStoreConfig {
    /// The server or cluster.
    pub endpoint: RedisEndpoint,
    /// Prepended to every key; must not contain `{` or `}` (they would
    /// change which part of a key Redis Cluster hashes).
    pub key_prefix: String,
    /// Bound on every Redis call, connecting included.
    pub timeout: Duration,
    /// Replicas that must acknowledge a rotation before its answer is given
    /// (`WAIT`); 0 answers as soon as the master has it.
    pub replica_acks: u32,
    /// How tokengate authenticates to the sentinels of a
    /// `redis+sentinel://` URL.
    pub sentinel_auth: SentinelAuth,
}

/// How tokengate authenticates to Redis Sentinel.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum SentinelAuth {
    /// With the URL's credentials, as to the data nodes.
    #[default]
    SameAsData,
    /// Without credentials (sentinels without `requirepass`).
    None,
    /// With these credentials.
    Password {
        /// The ACL user, if not `default`.
        username: Option<String>,
        /// The password.
        password: String,
    },
}

/// Debug output never shows a password.
impl fmt::Debug for SentinelAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameAsData => f.write_str("SameAsData"),
            Self::None => f.write_str("None"),
            Self::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl RedisStoreConfig {
    /// The key prefix when none is configured.
    pub const DEFAULT_KEY_PREFIX: &'static str = "tokengate:";
    /// The call timeout when none is configured (`store.timeout_ms`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

    /// A config for one URL (standalone, or cluster with a `+cluster`
    /// scheme), with the default prefix and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            endpoint: RedisEndpoint::Url(url.into()),
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            replica_acks: 0,
            sentinel_auth: SentinelAuth::SameAsData,
        }
    }

    /// A config for a Redis Cluster given by its seed node URLs, with the
    /// default prefix and timeout.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoint: RedisEndpoint::ClusterNodes(nodes.into_iter().map(Into::into).collect()),
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
            replica_acks: 0,
            sentinel_auth: SentinelAuth::SameAsData,
        }
    }

    /// The same config with another key prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The same config with another call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same config, waiting for `replicas` acknowledgements of every
    /// rotation.
    pub fn with_replica_acks(mut self, replicas: u32) -> Self {
        self.replica_acks = replicas;
        self
    }

    /// The same config with other sentinel credentials.
    pub fn with_sentinel_auth(mut self, auth: SentinelAuth) -> Self {
        self.sentinel_auth = auth;
        self
    }
}

/// Debug output never shows URLs: they may carry a password.
impl fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url(<redacted>)"),
            Self::ClusterNodes(nodes) => write!(f, "ClusterNodes(<{} redacted>)", nodes.len()),
        }
    }
}

/// Debug output never shows URLs: they may carry a password.
impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("endpoint", &self.endpoint)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("replica_acks", &self.replica_acks)
            .field("sentinel_auth", &self.sentinel_auth)
            .finish()
    }
}

/// A [`RedisStoreConfig`] that cannot work. Redis being unreachable is not
/// one of these: the store starts anyway and connects when it can.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// The URL or a node URL is malformed or of an unknown kind. The text
    /// never repeats the URL (it may carry a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The key prefix contains `{` or `}`.
    #[error("invalid Redis key prefix: it must not contain '{{' or '}}'")]
    InvalidPrefix,
    /// A zero timeout would fail every call.
    #[error("the Redis call timeout must be greater than zero")]
    ZeroTimeout,
    /// More replica acknowledgements than Redis can ever give.
    #[error("store.replica_acks must be at most {max}")]
    TooManyReplicaAcks {
        /// The largest accepted value.
        max: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_urls() {
        let config = RedisStoreConfig::new("redis://:topsecret@h:1");
        assert!(!format!("{config:?}").contains("topsecret"));
        let config = RedisStoreConfig::cluster(["redis://:topsecret@h:1"]);
        assert!(!format!("{config:?}").contains("topsecret"));
        let config = RedisStoreConfig::new("redis+sentinel://s:1/m").with_sentinel_auth(
            SentinelAuth::Password {
                username: Some("watcher".into()),
                password: "topsecret".into(),
            },
        );
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("topsecret") && shown.contains("watcher"),
            "{shown}"
        );
    }
}
