//! Redis endpoint URLs: parsed into a client without connecting, described
//! for logs without credentials, and every password they carry remembered
//! so error texts can be scrubbed of it.

use std::time::Duration;

use ::redis::cluster::ClusterClient;
use ::redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError};

use super::config::{RedisConfigError, RedisEndpoint};
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
    /// `redis`, `rediss`, `redis+cluster` or `rediss+cluster` if valid.
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
            "expected <scheme>://… (redis, rediss, redis+cluster, rediss+cluster)".into(),
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
/// node list. `timeout` bounds each cluster node connection and response.
pub(super) fn resolve(
    endpoint: &RedisEndpoint,
    timeout: Duration,
) -> Result<Resolved, RedisConfigError> {
    let mut redactor = Redactor::default();
    let nodes: Vec<String> = match endpoint {
        RedisEndpoint::Url(url) => {
            let parts = split_url(url)?;
            note_userinfo(&mut redactor, parts.userinfo);
            let node_scheme = match parts.scheme {
                "redis+cluster" => "redis",
                "rediss+cluster" => "rediss",
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
        .response_timeout(timeout)
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

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);

    #[test]
    fn cluster_url_is_split_into_node_urls_with_shared_credentials() {
        let r = resolve(
            &RedisEndpoint::Url(
                "redis+cluster://user:pw%21x@127.0.0.1:7000,127.0.0.1:7001/0".into(),
            ),
            T,
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
        )
        .unwrap();
        assert!(matches!(r.target, Target::Standalone(_)));
        assert_eq!(r.description, "redis standalone 10.0.0.5:6380");
        assert_eq!(r.redactor.clean("bad hunter2 here".into()), "bad *** here");
    }

    #[test]
    fn tls_urls_are_accepted_and_marked() {
        let r = resolve(&RedisEndpoint::Url("rediss://cache.example:6379".into()), T).unwrap();
        assert_eq!(r.description, "redis standalone cache.example:6379 (tls)");
        let r = resolve(
            &RedisEndpoint::Url("rediss+cluster://a.example:1,b.example:2".into()),
            T,
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
        ] {
            let err = resolve(&RedisEndpoint::Url(url.into()), T)
                .err()
                .expect(url);
            assert!(!err.to_string().contains("topsecret"), "{url}: {err}");
        }
        assert!(resolve(&RedisEndpoint::ClusterNodes(vec![]), T).is_err());
        assert!(
            resolve(
                &RedisEndpoint::ClusterNodes(vec!["redis+cluster://a:1".into()]),
                T
            )
            .is_err()
        );
    }
}
