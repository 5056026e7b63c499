//! The settings of the other crates, made from a config: the core's
//! [`TokenSettings`] and [`LoginLimits`], and the store a `[store]` section
//! names ([`StoreBackend`]). They are here because the orphan rule allows
//! a `From<&Config>` only beside `Config` or beside the settings type, and
//! the core must not know the config. (The binary's own settings — the
//! listener's, the request stack's — are made in its `settings` module.)

use std::time::Duration;

use tokengate_core::{IntrospectionClient, IntrospectionSettings, LoginLimits, TokenSettings};
use tokengate_store::{RedisStoreConfig, SentinelAuth};

use crate::{Config, ConfigError, StoreConfig};
use std::path::PathBuf;
use tokengate_directory_postgres::PostgresSettings;

/// Where users and domains come from, as `directory` says.
#[derive(Debug, Clone)]
pub enum DirectoryBackend {
    /// A TOML file, reloaded on change.
    File(PathBuf),
    /// A PostgreSQL database, with `[postgres]`'s settings and password.
    Postgres(PostgresSettings),
    /// An LDAP server, with `[ldap]`'s settings and bind password.
    Ldap(tokengate_directory_ldap::LdapSettings),
}

fn read_secret(file: &std::path::Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
        path: file.display().to_string(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn ldap_backend(config: &Config) -> Result<DirectoryBackend, ConfigError> {
    let l = &config.ldap;
    let bind_password = match (&l.bind_password, &l.bind_password_file) {
        (Some(password), _) => Some(password.clone()),
        (None, Some(file)) => Some(read_secret(file)?),
        (None, None) => None,
    };
    let mut domains = Vec::new();
    for d in &l.domain {
        domains.push(tokengate_directory_ldap::LdapDomain {
            domain_id: d.domain_id.clone(),
            base_dn: d.base_dn.clone(),
            state: d
                .state
                .parse()
                .map_err(|e: tokengate_directory::DirectoryError| {
                    ConfigError::Invalid(format!("ldap.domain {:?}: {e}", d.domain_id))
                })?,
        });
    }
    Ok(DirectoryBackend::Ldap(
        tokengate_directory_ldap::LdapSettings {
            starttls: l.starttls,
            bind_dn: l.bind_dn.clone(),
            bind_password,
            ca_file: l.ca_file.clone(),
            timeout: Duration::from_millis(l.timeout_ms),
            health_interval: Duration::from_millis(l.health_interval_ms),
            bind_pool_size: l.bind_pool_size,
            user_filter: l.user_filter.clone(),
            owner_filter: l.owner_filter.clone(),
            disabled_attribute: l.disabled_attribute.clone(),
            disabled_values: l.disabled_values.clone(),
            api_user_group: l.api_user_group.clone(),
            password_changed_attributes: l.password_changed_attributes.clone(),
            sync_interval: Duration::from_millis(l.sync_interval_ms),
            full_sync_interval: Duration::from_millis(l.full_sync_interval_ms),
            domains,
            ..tokengate_directory_ldap::LdapSettings::new(config.directory.to_string_lossy())
        },
    ))
}

impl TryFrom<&Config> for DirectoryBackend {
    type Error = ConfigError;

    /// Reads `postgres.password_file` when set (the password never enters
    /// the config's text or its errors).
    fn try_from(config: &Config) -> Result<Self, ConfigError> {
        if config.directory_is_ldap() {
            return ldap_backend(config);
        }
        if !config.directory_is_postgres() {
            return Ok(DirectoryBackend::File(config.directory.clone()));
        }
        let p = &config.postgres;
        let url = config.directory.to_string_lossy().into_owned();
        let password = match (&p.password, &p.password_file) {
            (Some(password), _) => Some(password.clone()),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
                    path: file.display().to_string(),
                    source,
                })?;
                Some(text.trim_end_matches(['\n', '\r']).to_owned())
            }
            (None, None) => None,
        };
        Ok(DirectoryBackend::Postgres(PostgresSettings {
            password,
            connect_timeout: Duration::from_millis(p.connect_timeout_ms),
            query_timeout: Duration::from_millis(p.query_timeout_ms),
            ping_interval: Duration::from_millis(p.ping_interval_ms),
            resync_interval: p.resync_interval,
            outage_refresh_grace: p.outage_refresh_grace,
            ca_file: p.ca_file.clone(),
            ..PostgresSettings::new(url)
        }))
    }
}

impl From<&Config> for TokenSettings {
    /// `[token]`'s lifetimes, and [`LoginLimits`] from `[limits]`.
    fn from(config: &Config) -> Self {
        let t = &config.token;
        Self {
            access_timeout: t.access_timeout.as_secs(),
            max_access_timeout: t.max_access_timeout.as_secs(),
            refresh_timeout: t.refresh_timeout.as_secs(),
            refresh_ttl: t.refresh_ttl,
            absolute_timeout: t.absolute_timeout.as_secs(),
            reuse_grace: t.reuse_grace.as_secs(),
            issuer: t.issuer.clone(),
            login_limits: LoginLimits::from(config),
            introspection: IntrospectionSettings::from(config),
        }
    }
}

impl From<&Config> for IntrospectionSettings {
    /// `[introspection]`; entries that do not parse were refused by
    /// validation, so none are left out here but by a bug.
    fn from(config: &Config) -> Self {
        let i = &config.introspection;
        Self {
            clients: i
                .parsed_clients()
                .unwrap_or_default()
                .into_iter()
                .map(|(id, secret_sha256)| IntrospectionClient { id, secret_sha256 })
                .collect(),
            service_accounts: i.parsed_service_accounts().unwrap_or_default(),
        }
    }
}

impl From<&Config> for LoginLimits {
    /// `limits.login_*`, with `server.max_timeout_ms` as the check lease.
    fn from(config: &Config) -> Self {
        let l = &config.limits;
        Self {
            per_user: l.login_failures_per_user,
            per_ip: l.login_failures_per_ip,
            window_secs: l.login_failure_window.as_secs(),
            // A check cannot outlive the longest call, so that is its lease.
            check_lease_secs: config.server.max_timeout_ms.div_ceil(1000),
        }
    }
}

/// Where refresh state lives, as `[store]` says.
#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// Neither `redis_url` nor `cluster_nodes`: inside this one process.
    Memory,
    /// Redis, standalone or cluster, with the section's prefix and timeout.
    Redis(RedisStoreConfig),
}

/// `store.redis_url` and `store.cluster_nodes` are both set.
#[derive(Debug, thiserror::Error)]
#[error("set either store.redis_url or store.cluster_nodes, not both")]
pub struct AmbiguousStore;

impl TryFrom<&StoreConfig> for StoreBackend {
    type Error = AmbiguousStore;

    fn try_from(store: &StoreConfig) -> Result<Self, Self::Error> {
        let endpoint = match (&store.redis_url, store.cluster_nodes.as_slice()) {
            (Some(_), [_, ..]) => return Err(AmbiguousStore),
            (Some(url), []) => RedisStoreConfig::new(url.clone()),
            (None, [_, ..]) => RedisStoreConfig::cluster(store.cluster_nodes.clone()),
            (None, []) => return Ok(Self::Memory),
        };
        let sentinel_auth = match store.sentinel_password.as_deref() {
            None => SentinelAuth::SameAsData,
            Some("") => SentinelAuth::None,
            Some(password) => SentinelAuth::Password {
                username: store.sentinel_username.clone(),
                password: password.to_owned(),
            },
        };
        Ok(Self::Redis(
            endpoint
                .with_key_prefix(store.key_prefix.clone())
                .with_timeout(Duration::from_millis(store.timeout_ms))
                .with_replica_acks(store.replica_acks)
                .with_sentinel_auth(sentinel_auth),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use tokengate_store::RedisEndpoint;

    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(
            &format!("directory = \"u\"\n{text}"),
            Path::new("."),
            vec![],
        )
        .expect("config")
    }

    /// One set of defaults: an empty file makes exactly the core's own.
    #[test]
    fn defaults_are_the_cores() {
        let made = TokenSettings::from(&config(""));
        assert_eq!(
            format!("{made:?}"),
            format!("{:?}", TokenSettings::default())
        );
    }

    #[test]
    fn token_settings_from_every_key() {
        let made = TokenSettings::from(&config(
            "[token]\naccess_timeout = 60\nmax_access_timeout = 600\nrefresh_timeout = 120\n\
             refresh_ttl = 3\nabsolute_timeout = 900\nreuse_grace = 2\nissuer = \"me\"\n\
             [limits]\nlogin_failures_per_user = 4\nlogin_failures_per_ip = 5\n\
             login_failure_window = 30\n\
             [server]\ndefault_timeout_ms = 1000\nmax_timeout_ms = 1500\n",
        ));
        assert_eq!(
            (
                made.access_timeout,
                made.max_access_timeout,
                made.refresh_timeout,
                made.refresh_ttl,
                made.absolute_timeout,
                made.reuse_grace,
                made.issuer.as_str(),
            ),
            (60, 600, 120, 3, 900, 2, "me")
        );
        let l = made.login_limits;
        assert_eq!(
            (l.per_user, l.per_ip, l.window_secs, l.check_lease_secs),
            (4, 5, 30, 2),
            "the lease is the longest call, rounded up to a second"
        );
    }

    #[test]
    fn store_backends() {
        let backend = |text: &str| StoreBackend::try_from(&config(text).store);
        assert!(matches!(backend(""), Ok(StoreBackend::Memory)));
        let Ok(StoreBackend::Redis(redis)) = backend("[store]\nredis_url = \"redis://h:1\"\n")
        else {
            panic!("redis");
        };
        assert_eq!(redis.endpoint, RedisEndpoint::Url("redis://h:1".into()));
        assert_eq!(redis.key_prefix, RedisStoreConfig::DEFAULT_KEY_PREFIX);
        assert_eq!(redis.timeout, RedisStoreConfig::DEFAULT_TIMEOUT);
        let Ok(StoreBackend::Redis(cluster)) = backend(
            "[store]\ncluster_nodes = [\"redis://a:1\", \"redis://b:2\"]\n\
             key_prefix = \"tg:\"\ntimeout_ms = 250\n",
        ) else {
            panic!("cluster");
        };
        assert_eq!(
            cluster.endpoint,
            RedisEndpoint::ClusterNodes(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert_eq!(cluster.key_prefix, "tg:");
        assert_eq!(cluster.timeout, Duration::from_millis(250));
        let both =
            backend("[store]\nredis_url = \"redis://h:1\"\ncluster_nodes = [\"redis://a:1\"]\n")
                .expect_err("both");
        assert_eq!(
            both.to_string(),
            "set either store.redis_url or store.cluster_nodes, not both"
        );
    }
}
