//! Redis endpoint URLs: parsed into a client without connecting, described
//! for logs without credentials, and every password they carry remembered
//! so error texts can be scrubbed of it.

use std::time::Duration;

use ::redis::cluster::ClusterClient;
use ::redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use ::redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, TlsMode};

use super::config::{RedisConfigError, RedisEndpoint, SentinelAuth};
use super::link::Target;

/// An endpoint turned into a client, a log line and the secrets to scrub.
pub(super) struct Resolved {
    /// What to connect to.
    pub(super) target: Target,
    /// For start-up logs: scheme and hosts, never credentials.
    pub(super) description: String,
    /// Scrubs this endpoint's passwords from error texts.
    pub(super) redactor: Redactor,
}

/// Removes secrets (passwords) from text that may quote them.
#[derive(Default)]
pub(super) struct Redactor {
    /// Every password seen, raw and percent-decoded.
    secrets: Vec<String>,
}

impl Redactor {
    /// Remembers a secret to scrub (empty and repeated ones are skipped).
    fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub(super) fn clean(&self, mut text: String) -> String {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

/// A URL split just enough to find its hosts and credentials.
struct UrlParts<'a> {
    /// `redis`, `rediss`, `redis+cluster`, `rediss+cluster`,
    /// `redis+sentinel` or `rediss+sentinel` if valid.
    scheme: &'a str,
    /// `user:password` or `:password`, without the `@`.
    userinfo: Option<&'a str>,
    /// The authority after the userinfo: `host:port[,host:port…]`.
    hosts: &'a str,
    /// Path and query, with their leading `/` or `?`.
    rest: &'a str,
}

/// Splits a URL into scheme, userinfo, hosts and the rest, without
/// validating more than the `://`.
fn split_url(url: &str) -> Result<UrlParts<'_>, RedisConfigError> {
    let (scheme, after) = url.split_once("://").ok_or_else(|| {
        RedisConfigError::InvalidUrl(
            "expected <scheme>://… (redis, rediss, redis+cluster, rediss+cluster, \
             redis+sentinel, rediss+sentinel)"
                .into(),
        )
    })?;
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);
    // A password may contain '@' only percent-encoded, but split at the
    // last one anyway so a stray '@' never ends up among the hosts.
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    Ok(UrlParts {
        scheme,
        userinfo,
        hosts,
        rest,
    })
}

/// Registers the password part of a URL's userinfo, raw and decoded.
fn note_userinfo(redactor: &mut Redactor, userinfo: Option<&str>) {
    if let Some(userinfo) = userinfo {
        if let Some((_, password)) = userinfo.split_once(':') {
            redactor.add(password);
        } else {
            // `redis://secret@host` is read by some clients as a password.
            redactor.add(userinfo);
        }
    }
}

/// Registers the password redis-rs parsed out of a URL (decoded).
fn note_info(redactor: &mut Redactor, info: &ConnectionInfo) {
    if let Some(password) = info.redis_settings().password() {
        redactor.add(password);
    }
}

/// Whether the address is reached over TLS (`rediss://`).
fn is_tls(addr: &ConnectionAddr) -> bool {
    matches!(addr, ConnectionAddr::TcpTls { .. })
}

/// `host:port`, marked `(tls)` when it is, for logs.
fn describe_addr(addr: &ConnectionAddr) -> String {
    if is_tls(addr) {
        format!("{addr} (tls)")
    } else {
        addr.to_string()
    }
}

/// Makes sure rustls has a process-wide crypto provider before the first
/// TLS connection. redis-rs builds its TLS config with rustls' default
/// provider, which rustls only picks by itself when exactly one provider
/// feature is compiled in; another crate enabling a second one (`ring`)
/// would turn every `rediss://` connection into a panic. An application
/// that installed its own provider keeps it (installing then fails, which
/// is fine).
fn ensure_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A parse error of `what`, scrubbed of every known password.
fn invalid(redactor: &Redactor, what: &str, error: &RedisError) -> RedisConfigError {
    RedisConfigError::InvalidUrl(redactor.clean(format!("{what}: {error}")))
}

/// Parses an endpoint into a client without connecting: a standalone
/// client for `redis://`/`rediss://`, a cluster client for a `+cluster` URL
/// (one node URL per listed host, all with its credentials and path) or a
/// node list, a sentinel client for a `+sentinel` URL. `timeout` bounds
/// each cluster node connection, `response_timeout` each cluster response.
pub(super) fn resolve(
    endpoint: &RedisEndpoint,
    timeout: Duration,
    response_timeout: Duration,
    sentinel_auth: &SentinelAuth,
) -> Result<Resolved, RedisConfigError> {
    let mut redactor = Redactor::default();
    if let SentinelAuth::Password { password, .. } = sentinel_auth {
        redactor.add(password);
    }
    let nodes: Vec<String> = match endpoint {
        RedisEndpoint::Url(url) => {
            let parts = split_url(url)?;
            note_userinfo(&mut redactor, parts.userinfo);
            let node_scheme = match parts.scheme {
                "redis+cluster" => "redis",
                "rediss+cluster" => "rediss",
                "redis+sentinel" | "rediss+sentinel" => {
                    return resolve_sentinel(&parts, sentinel_auth, redactor);
                }
                _ => return resolve_standalone(url, redactor),
            };
            let credentials = parts.userinfo.map(|u| format!("{u}@")).unwrap_or_default();
            parts
                .hosts
                .split(',')
                .map(|host| {
                    if host.trim().is_empty() {
                        Err(RedisConfigError::InvalidUrl(
                            "a cluster URL lists an empty node".into(),
                        ))
                    } else {
                        Ok(format!(
                            "{node_scheme}://{credentials}{}{}",
                            host.trim(),
                            parts.rest
                        ))
                    }
                })
                .collect::<Result<_, _>>()?
        }
        RedisEndpoint::ClusterNodes(nodes) => {
            for node in nodes {
                note_userinfo(&mut redactor, split_url(node)?.userinfo);
            }
            nodes.clone()
        }
    };
    if nodes.is_empty() {
        return Err(RedisConfigError::InvalidUrl(
            "no cluster nodes given".into(),
        ));
    }
    let mut infos = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let scheme = split_url(node)?.scheme;
        if scheme != "redis" && scheme != "rediss" {
            return Err(RedisConfigError::InvalidUrl(format!(
                "cluster node scheme must be redis or rediss, not {scheme}"
            )));
        }
        let info = node
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(&redactor, "cluster node", &e))?;
        note_info(&mut redactor, &info);
        infos.push(info);
    }
    if infos.iter().any(|i| is_tls(i.addr())) {
        ensure_tls_provider();
    }
    let addrs: Vec<String> = infos.iter().map(|i| describe_addr(i.addr())).collect();
    // The cluster client bounds each node connection and each response
    // itself too; the store's own timeout around every call stays the
    // authority.
    let client = ClusterClient::builder(infos)
        .connection_timeout(timeout)
        .response_timeout(response_timeout)
        .build()
        .map_err(|e| invalid(&redactor, "cluster", &e))?;
    Ok(Resolved {
        target: Target::Cluster(client),
        description: format!("redis cluster {}", addrs.join(",")),
        redactor,
    })
}

/// A standalone client for a `redis://` or `rediss://` URL.
fn resolve_standalone(url: &str, mut redactor: Redactor) -> Result<Resolved, RedisConfigError> {
    let client = ::redis::Client::open(url).map_err(|e| invalid(&redactor, "standalone", &e))?;
    note_info(&mut redactor, client.get_connection_info());
    if is_tls(client.get_connection_info().addr()) {
        ensure_tls_provider();
    }
    Ok(Resolved {
        description: format!(
            "redis standalone {}",
            describe_addr(client.get_connection_info().addr())
        ),
        target: Target::Standalone(client),
        redactor,
    })
}

/// The port sentinels listen on unless a URL names another.
const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// A sentinel client for `redis+sentinel://[user:password@]host[:port],…
/// /<master name>[/db]` (`rediss+sentinel` for TLS to sentinels and data
/// nodes alike). The URL's credentials are the data nodes', and the
/// sentinels' too unless `auth` says otherwise.
fn resolve_sentinel(
    parts: &UrlParts<'_>,
    auth: &SentinelAuth,
    mut redactor: Redactor,
) -> Result<Resolved, RedisConfigError> {
    let tls = parts.scheme == "rediss+sentinel";
    let node_scheme = if tls { "rediss" } else { "redis" };
    let invalid_url = |text: &str| Err(RedisConfigError::InvalidUrl(text.to_owned()));
    if parts.rest.contains('?') {
        return invalid_url("a sentinel URL takes no query parameters");
    }
    let mut path = parts.rest.trim_start_matches('/').split('/');
    let service = path.next().unwrap_or_default();
    if service.is_empty() {
        return invalid_url("a sentinel URL names its master after the hosts: /<master name>[/db]");
    }
    let db = match path.next() {
        None | Some("") => 0,
        Some(db) => match db.parse::<i64>() {
            Ok(db) if db >= 0 => db,
            _ => return invalid_url("the database of a sentinel URL must be a number"),
        },
    };
    if path.next().is_some() {
        return invalid_url("a sentinel URL's path is /<master name>[/db]");
    }
    // Each sentinel's address, through redis-rs' own URL parsing (TLS,
    // IPv6 brackets); credentials are set apart below.
    let mut sentinels = Vec::new();
    for host in parts.hosts.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return invalid_url("a sentinel URL lists an empty host");
        }
        let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']')) {
            host.to_owned()
        } else {
            format!("{host}:{DEFAULT_SENTINEL_PORT}")
        };
        let info = format!("{node_scheme}://{with_port}")
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(&redactor, "sentinel", &e))?;
        sentinels.push(info.addr().clone());
    }
    // The data nodes' credentials, percent-decoded by the same parser.
    let credentials = match parts.userinfo {
        Some(userinfo) => {
            let info = format!("redis://{userinfo}@sentinel")
                .as_str()
                .into_connection_info()
                .map_err(|e| invalid(&redactor, "sentinel credentials", &e))?;
            note_info(&mut redactor, &info);
            let settings = info.redis_settings();
            (
                settings.username().map(str::to_owned),
                settings.password().map(str::to_owned),
            )
        }
        None => (None, None),
    };
    let describe_hosts: Vec<String> = sentinels.iter().map(describe_addr).collect();
    let build = || {
        let mut builder =
            SentinelClientBuilder::new(sentinels.clone(), service, SentinelServerType::Master)?
                .set_client_to_redis_db(db);
        if tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        }
        if let Some(username) = &credentials.0 {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &credentials.1 {
            builder = builder.set_client_to_redis_password(password);
        }
        let (username, password) = match auth {
            SentinelAuth::SameAsData => (credentials.0.as_deref(), credentials.1.as_deref()),
            SentinelAuth::None => (None, None),
            SentinelAuth::Password { username, password } => {
                (username.as_deref(), Some(password.as_str()))
            }
        };
        if let Some(username) = username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        builder.build()
    };
    let client = build().map_err(|e| invalid(&redactor, "sentinel", &e))?;
    if tls {
        ensure_tls_provider();
    }
    Ok(Resolved {
        target: Target::Sentinel(tokio::sync::Mutex::new(client)),
        description: format!(
            "redis sentinel {} master {service} db {db}",
            describe_hosts.join(",")
        ),
        redactor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);
    const SAME: &SentinelAuth = &SentinelAuth::SameAsData;

    #[test]
    fn cluster_url_is_split_into_node_urls_with_shared_credentials() {
        let r = resolve(
            &RedisEndpoint::Url(
                "redis+cluster://user:pw%21x@127.0.0.1:7000,127.0.0.1:7001/0".into(),
            ),
            T,
            T,
            SAME,
        )
        .unwrap();
        assert!(matches!(r.target, Target::Cluster(_)));
        assert_eq!(r.description, "redis cluster 127.0.0.1:7000,127.0.0.1:7001");
        assert!(r.redactor.secrets.iter().any(|s| s == "pw%21x"));
        assert!(r.redactor.secrets.iter().any(|s| s == "pw!x"));
    }

    #[test]
    fn standalone_url_describes_host_without_credentials() {
        let r = resolve(
            &RedisEndpoint::Url("redis://:hunter2@10.0.0.5:6380/2".into()),
            T,
            T,
            SAME,
        )
        .unwrap();
        assert!(matches!(r.target, Target::Standalone(_)));
        assert_eq!(r.description, "redis standalone 10.0.0.5:6380");
        assert_eq!(r.redactor.clean("bad hunter2 here".into()), "bad *** here");
    }

    #[test]
    fn tls_urls_are_accepted_and_marked() {
        let r = resolve(
            &RedisEndpoint::Url("rediss://cache.example:6379".into()),
            T,
            T,
            SAME,
        )
        .unwrap();
        assert_eq!(r.description, "redis standalone cache.example:6379 (tls)");
        let r = resolve(
            &RedisEndpoint::Url("rediss+cluster://a.example:1,b.example:2".into()),
            T,
            T,
            SAME,
        )
        .unwrap();
        assert_eq!(
            r.description,
            "redis cluster a.example:1 (tls),b.example:2 (tls)"
        );
    }

    #[test]
    fn bad_endpoints_are_config_errors_without_the_password() {
        for url in [
            "http://:topsecret@host:1",
            "redis+cluster://:topsecret@",
            "redis+cluster://:topsecret@a:1,,b:2",
            "no-scheme-topsecret",
            "redis+sentinel://:topsecret@a:1",
            "redis+sentinel://:topsecret@a:1/",
            "redis+sentinel://:topsecret@a:1/m/x",
            "redis+sentinel://:topsecret@a:1/m/0/extra",
            "redis+sentinel://:topsecret@a:1,,b:2/m",
            "redis+sentinel://:topsecret@a:1/m?x=1",
        ] {
            let err = resolve(&RedisEndpoint::Url(url.into()), T, T, SAME)
                .err()
                .expect(url);
            assert!(!err.to_string().contains("topsecret"), "{url}: {err}");
        }
        assert!(resolve(&RedisEndpoint::ClusterNodes(vec![]), T, T, SAME).is_err());
        assert!(
            resolve(
                &RedisEndpoint::ClusterNodes(vec!["redis+cluster://a:1".into()]),
                T,
                T,
                SAME
            )
            .is_err()
        );
    }

    #[test]
    fn sentinel_urls_name_sentinels_master_and_db() {
        let r = resolve(
            &RedisEndpoint::Url(
                "redis+sentinel://:pw%40x@10.0.0.1,10.0.0.2:26380/mymaster/3".into(),
            ),
            T,
            T,
            SAME,
        )
        .unwrap();
        assert!(matches!(r.target, Target::Sentinel(_)));
        assert_eq!(
            r.description,
            "redis sentinel 10.0.0.1:26379,10.0.0.2:26380 master mymaster db 3"
        );
        assert_eq!(r.redactor.clean("a pw@x b pw%40x".into()), "a *** b ***");
        let r = resolve(
            &RedisEndpoint::Url("rediss+sentinel://s.example/m".into()),
            T,
            T,
            &SentinelAuth::Password {
                username: None,
                password: "sentinel-secret".into(),
            },
        )
        .unwrap();
        assert_eq!(
            r.description,
            "redis sentinel s.example:26379 (tls) master m db 0"
        );
        assert_eq!(r.redactor.clean("sentinel-secret".into()), "***");
    }
}
