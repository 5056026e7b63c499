//! The one URL the generator may talk to, and the loopback guard.

use std::net::{IpAddr, SocketAddr};

use http::Uri;

use crate::error::LoadError;

/// A resolved target: where to connect, what to send as authority, and the
/// path prefix put before every route.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address every connection goes to (resolved once).
    pub addr: SocketAddr,
    /// `host:port` as given, for the `Host` header / `:authority`.
    pub authority: String,
    /// A path prefix without trailing slash (usually empty).
    pub prefix: String,
}

/// Where a connection goes, and the local address it leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dial {
    /// The target's address.
    pub addr: SocketAddr,
    /// The local address to connect from (the kernel's choice when None):
    /// on loopback any 127.0.0.0/8 address works, so an attacker and the
    /// honest clients can come from different addresses, as they would.
    pub source: Option<IpAddr>,
}

impl Dial {
    /// Connections to `addr` from the kernel's choice of local address.
    pub fn to(addr: SocketAddr) -> Self {
        Self { addr, source: None }
    }

    /// Opens a TCP connection.
    pub async fn connect(&self) -> std::io::Result<tokio::net::TcpStream> {
        let Some(source) = self.source else {
            return tokio::net::TcpStream::connect(self.addr).await;
        };
        let socket = match source {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(self.addr).await
    }
}

impl Target {
    /// Parses `url` (`http://host[:port][/prefix]`) and resolves it. Unless
    /// `allow_remote`, every address the host resolves to must be loopback.
    pub async fn resolve(url: &str, allow_remote: bool) -> Result<Self, LoadError> {
        let bad = |why: &str| LoadError::InvalidTarget {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad("https is not supported (plaintext h2c/HTTP/1.1 only)"));
            }
            _ => return Err(bad("the scheme must be http://")),
        }
        if uri.query().is_some() {
            return Err(bad("a query string makes no sense here"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = authority.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(bad("the host resolves to no address"));
        }
        if !allow_remote && let Some(remote) = addrs.iter().find(|a| !is_loopback(a.ip())) {
            return Err(LoadError::RemoteTarget {
                url: url.to_owned(),
                addr: remote.ip(),
            });
        }
        // Prefer IPv4 (`localhost` often lists ::1 first while servers bind 127.0.0.1).
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .copied()
            .unwrap_or(addrs[0]);
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            addr,
            authority: authority.as_str().to_owned(),
            prefix,
        })
    }
}

/// 127.0.0.0/8, `::1`, and IPv4-mapped loopback.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_targets_only() {
        let t = Target::resolve("http://127.0.0.1:50051", false)
            .await
            .expect("loopback");
        assert_eq!(t.authority, "127.0.0.1:50051");
        assert_eq!(t.prefix, "");
        let t = Target::resolve("http://127.3.4.5:8080/api/", false)
            .await
            .expect("127/8");
        assert_eq!(t.prefix, "/api");
        assert!(Target::resolve("http://[::1]:1", false).await.is_ok());
        assert!(matches!(
            Target::resolve("http://10.0.0.1:50051", false).await,
            Err(LoadError::RemoteTarget { .. })
        ));
        assert!(Target::resolve("http://10.0.0.1:50051", true).await.is_ok());
        assert!(matches!(
            Target::resolve("https://127.0.0.1", false).await,
            Err(LoadError::InvalidTarget { .. })
        ));
        assert!(matches!(
            Target::resolve("127.0.0.1:50051", false).await,
            Err(LoadError::InvalidTarget { .. })
        ));
    }
}
