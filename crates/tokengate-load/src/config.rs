//! What a load run is asked to do: the target, the protocol, what each
//! in-flight slot calls ([`Scenario`]), how many connections and calls in
//! flight, for how long and at what rate ([`LoadConfig`]); and the bounds
//! [`LoadConfig::validate`] holds them to, so that a run cannot take the
//! machine it runs on down with the server.

use std::time::Duration;

use crate::error::LoadError;
use crate::protocol::{HttpVersion, Protocol};
use crate::wire::{Call, Payload};

/// What each in-flight slot does in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `Domain/get_public_key` for `--domain` (no credentials needed).
    GetPublicKey,
    /// `Token/issue` with the given credentials (a password check per call).
    Issue,
    /// Issue once, then refresh along the chain with each new refresh token;
    /// issue again when a refresh fails or the token's `ttl` is used up.
    RefreshChain,
    /// `GET /healthz` (tokengate's liveness route; HTTP 200 = success).
    Healthz,
}

impl Scenario {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::GetPublicKey => "get-public-key",
            Scenario::Issue => "issue",
            Scenario::RefreshChain => "refresh-chain",
            Scenario::Healthz => "healthz",
        }
    }

    pub(crate) fn calls(self) -> &'static [Call] {
        match self {
            Scenario::GetPublicKey => &[Call::GetPublicKey],
            Scenario::Issue => &[Call::Issue],
            Scenario::RefreshChain => &[Call::Issue, Call::Refresh],
            Scenario::Healthz => &[Call::Healthz],
        }
    }

    /// Whether issue (and so a user and a password) is part of it.
    pub fn needs_credentials(self) -> bool {
        matches!(self, Scenario::Issue | Scenario::RefreshChain)
    }
}

/// Upper bounds that keep a run (and the machine) sane.
pub const MAX_CONNECTIONS: usize = 1024;
/// Upper bound of `--in-flight`.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Upper bound of TCP connections (HTTP/1.1 opens N×M).
pub const MAX_TCP_CONNECTIONS: usize = 4096;
/// Upper bound of `--duration` and `--warmup`.
pub const MAX_SECONDS: f64 = 24.0 * 3600.0;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// `http://host:port[/prefix]`; the only place calls go.
    pub target: String,
    /// Allow a target outside 127.0.0.0/8 and ::1.
    pub allow_remote: bool,
    /// Protocol of the calls.
    pub protocol: Protocol,
    /// HTTP version (`None`: the protocol's default).
    pub http: Option<HttpVersion>,
    /// What to call.
    pub scenario: Scenario,
    /// Domain, user and credentials put in the requests.
    pub payload: Payload,
    /// Workers: HTTP/2 connections, or groups of HTTP/1.1 connections.
    pub connections: usize,
    /// Calls in flight per worker.
    pub in_flight: usize,
    /// The measured window.
    pub duration: Duration,
    /// Unrecorded time before the measured window.
    pub warmup: Duration,
    /// A call taking longer is abandoned and counted as `TIMEOUT`.
    pub call_timeout: Duration,
    /// Extra connections held open and idle during the run (one call each
    /// when opened).
    pub idle_connections: usize,
    /// The server's PID, to report its memory (Linux `/proc`).
    pub server_pid: Option<u32>,
    /// Calls per second in all (`None`: as fast as answers come).
    pub rate: Option<f64>,
}

impl LoadConfig {
    /// A config with the defaults of the command line: 4 connections × 16
    /// in flight, 10 s after 2 s of warm-up, the dev-mode demo domain and
    /// user, no password.
    pub fn new(target: impl Into<String>, protocol: Protocol, scenario: Scenario) -> Self {
        Self {
            target: target.into(),
            allow_remote: false,
            protocol,
            http: None,
            scenario,
            payload: Payload {
                domain_id: "domain-dev".into(),
                user_id: "admin@example.com".into(),
                ..Payload::default()
            },
            connections: 4,
            in_flight: 16,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            call_timeout: Duration::from_secs(10),
            idle_connections: 0,
            server_pid: None,
            rate: None,
        }
    }

    /// The HTTP version used.
    pub fn http_version(&self) -> HttpVersion {
        self.http.unwrap_or(self.protocol.default_http())
    }

    /// TCP connections opened at start, idle ones included.
    pub fn tcp_connections(&self) -> usize {
        let busy = match self.http_version() {
            HttpVersion::H2 => self.connections,
            HttpVersion::H1 => self.connections.saturating_mul(self.in_flight),
        };
        busy.saturating_add(self.idle_connections)
    }

    /// Checks ranges and combinations.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: String| Err(LoadError::Config(m));
        if self.protocol == Protocol::Grpc && self.http_version() == HttpVersion::H1 {
            return bad(
                "native gRPC needs HTTP/2 (use --http 2, or grpc-web over HTTP/1.1)".into(),
            );
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return bad(format!("--connections must be 1..={MAX_CONNECTIONS}"));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.in_flight) {
            return bad(format!("--in-flight must be 1..={MAX_IN_FLIGHT}"));
        }
        if self.tcp_connections() > MAX_TCP_CONNECTIONS {
            return bad(format!(
                "{} TCP connections (HTTP/1.1 opens connections x in-flight; idle ones count too); at most {MAX_TCP_CONNECTIONS}",
                self.tcp_connections()
            ));
        }
        if self.duration.is_zero() || self.duration.as_secs_f64() > MAX_SECONDS {
            return bad(format!("--duration must be > 0 and <= {MAX_SECONDS} s"));
        }
        if self.warmup.as_secs_f64() > MAX_SECONDS {
            return bad(format!("--warmup must be <= {MAX_SECONDS} s"));
        }
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate <= 1e7)
        {
            return bad("--rate must be > 0 calls per second".into());
        }
        if self.call_timeout.is_zero() {
            return bad("--call-timeout must be > 0".into());
        }
        if self.payload.domain_id.is_empty() {
            return bad("--domain must not be empty".into());
        }
        if self.scenario.needs_credentials() && self.payload.user_id.is_empty() {
            return bad("--user must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut c = LoadConfig::new("http://127.0.0.1:1", Protocol::Grpc, Scenario::GetPublicKey);
        assert!(c.validate().is_ok());
        c.http = Some(HttpVersion::H1);
        assert!(matches!(c.validate(), Err(LoadError::Config(_))));
        c.protocol = Protocol::Rest;
        assert!(c.validate().is_ok());
        assert_eq!(c.tcp_connections(), 64);
        c.connections = 8;
        c.in_flight = 1024;
        assert!(
            c.validate().is_err(),
            "8 x 1024 HTTP/1.1 connections is past the cap"
        );
        c.connections = 4;
        c.in_flight = 1;
        c.duration = Duration::ZERO;
        assert!(c.validate().is_err());
    }
}
