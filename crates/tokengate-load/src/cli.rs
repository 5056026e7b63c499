//! The command line.

use std::time::Duration;

use bytes::Bytes;
use clap::Parser;

use crate::config::{LoadConfig, Scenario};
use crate::error::LoadError;
use crate::protocol::{HttpVersion, Protocol};
use crate::wire::{Call, Payload, Wire};

/// Load generator for the SpaceONE identity v1 Token API over native gRPC,
/// gRPC-Web and REST. Speaks only the wire contract, so it drives tokengate
/// and the stock SpaceONE identity service alike. A call succeeds only if
/// grpc-status is 0 (gRPC, gRPC-Web) or the HTTP status is 200 (REST).
#[derive(Debug, Clone, Parser)]
#[command(name = "tokengate-load", version, about, long_about = None)]
pub struct Cli {
    /// The service URL (http only; h2c for HTTP/2). A path is used as prefix
    /// of every route. Must be a loopback address unless --allow-remote.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    pub target: String,

    /// Allow a target outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_remote: bool,

    /// Protocol of the calls.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,

    /// HTTP version: 1 (HTTP/1.1, one connection per call in flight) or 2
    /// (h2c prior knowledge, calls multiplexed). Default: 2 for grpc and
    /// grpc-web, 1 for rest; native grpc is always 2.
    #[arg(long, value_name = "1|2", value_parser = parse_http)]
    pub http: Option<HttpVersion>,

    /// What to call: get-public-key, issue, refresh-chain (issue once,
    /// then refresh with each new refresh token; issue again when a refresh
    /// fails or the token's ttl is used up; issue and refresh are reported
    /// separately), or healthz (GET /healthz).
    #[arg(long, value_enum, default_value_t = Scenario::GetPublicKey)]
    pub scenario: Scenario,

    /// domain_id of every call.
    #[arg(long, value_name = "D", default_value = "domain-dev")]
    pub domain: String,

    /// user_id of issue.
    #[arg(long, value_name = "U", default_value = "admin@example.com")]
    pub user: String,

    /// Password of issue (visible in the process list: prefer --password-env).
    #[arg(long, value_name = "P", conflicts_with = "password_env")]
    pub password: Option<String>,

    /// Read the password of issue from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,

    /// user_type of issue (USER, DOMAIN_OWNER, ...); not sent when absent.
    #[arg(long, value_name = "T")]
    pub user_type: Option<String>,

    /// refresh_count of issue (chain length); 0 lets the server choose.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub refresh_count: i32,

    /// timeout (access-token lifetime, s) of issue; 0 lets the server choose.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub token_timeout: i32,

    /// Workers. HTTP/2: one connection each. HTTP/1.1: each worker opens
    /// --in-flight connections (N×M in all, one call at a time on each, no
    /// pipelining), so the concurrency is N×M on both.
    #[arg(long, short = 'c', value_name = "N", default_value_t = 4)]
    pub connections: usize,

    /// Calls in flight per worker (HTTP/2 streams, or HTTP/1.1 connections).
    #[arg(long, short = 'm', value_name = "M", default_value_t = 16)]
    pub in_flight: usize,

    /// Length of the measured window, seconds (fractions allowed).
    #[arg(long, short = 'd', value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,

    /// Unrecorded warm-up before the measured window, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub warmup: f64,

    /// A call with no answer after this many seconds is abandoned and
    /// counted as TIMEOUT.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub call_timeout: f64,

    /// Calls per second in all, spread evenly over the in-flight slots
    /// (default: as fast as answers come). A paced probe measures latency
    /// without loading the server itself.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Extra connections opened before the run, each used for one
    /// get_public_key call and then held open, idle, until the run ends:
    /// what a server pays for connections that stay open.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub idle_connections: usize,

    /// PID of the server (on this machine): its resident memory (VmRSS) and
    /// peak (VmHWM) are read from /proc at the end of the window and reported.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Runtime worker threads (0: the CPUs this process may run on).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Exit with status 2 when any call failed.
    #[arg(long)]
    pub fail_on_errors: bool,

    /// Write the request body of CALL for --protocol to stdout and exit (no
    /// connection is made): a body file for h2load or curl --data-binary.
    /// gRPC bodies carry the 5-byte frame header; grpc-web-text is base64.
    #[arg(long, value_enum, value_name = "CALL")]
    pub dump_body: Option<BodyCall>,
}

/// A call whose request body `--dump-body` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyCall {
    /// `Domain/get_public_key` for --domain.
    GetPublicKey,
    /// `Token/issue` for --domain, --user and the password.
    Issue,
    /// `Token/refresh` (google.protobuf.Empty; the token goes in a header).
    Refresh,
}

fn parse_http(s: &str) -> Result<HttpVersion, String> {
    match s {
        "1" | "1.1" => Ok(HttpVersion::H1),
        "2" => Ok(HttpVersion::H2),
        _ => Err("expected 1 (HTTP/1.1) or 2 (HTTP/2)".into()),
    }
}

fn seconds(flag: &str, v: f64) -> Result<Duration, LoadError> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| LoadError::Config(format!("{flag} must be a non-negative number of seconds")))
}

impl Cli {
    fn payload(&self, needs_password: Option<&str>) -> Result<Payload, LoadError> {
        let password = match (&self.password, &self.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                LoadError::Config(format!(
                    "--password-env {var}: the variable is not set (or not UTF-8)"
                ))
            })?),
            (None, None) => None,
        };
        if let (Some(what), None) = (needs_password, &password) {
            return Err(LoadError::Config(format!(
                "{what} needs --password or --password-env"
            )));
        }
        Ok(Payload {
            domain_id: self.domain.clone(),
            user_id: self.user.clone(),
            password: password.unwrap_or_default(),
            user_type: self.user_type.clone().unwrap_or_default(),
            token_timeout: self.token_timeout,
            refresh_count: self.refresh_count,
        })
    }

    /// The request body `--dump-body` asks for.
    pub fn body(&self, call: BodyCall) -> Result<Bytes, LoadError> {
        let (call, needs) = match call {
            BodyCall::GetPublicKey => (Call::GetPublicKey, None),
            BodyCall::Issue => (Call::Issue, Some("--dump-body issue")),
            BodyCall::Refresh => (Call::Refresh, None),
        };
        let payload = self.payload(needs)?;
        let version = self.http.unwrap_or(self.protocol.default_http());
        let wire = Wire::new(self.protocol, version, "127.0.0.1", "", &payload)?;
        Ok(wire.body(call))
    }

    /// The run configuration; reads the password from `--password-env`.
    pub fn to_config(&self) -> Result<LoadConfig, LoadError> {
        let needs = format!("scenario {}", self.scenario.name());
        let needs = self.scenario.needs_credentials().then_some(needs.as_str());
        let cfg = LoadConfig {
            target: self.target.clone(),
            allow_remote: self.allow_remote,
            protocol: self.protocol,
            http: self.http,
            scenario: self.scenario,
            payload: self.payload(needs)?,
            connections: self.connections,
            in_flight: self.in_flight,
            duration: seconds("--duration", self.duration)?,
            warmup: seconds("--warmup", self.warmup)?,
            call_timeout: seconds("--call-timeout", self.call_timeout)?,
            idle_connections: self.idle_connections,
            server_pid: self.server_pid,
            rate: self.rate,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_checks() {
        let cli = Cli::parse_from(["tokengate-load"]);
        let cfg = cli.to_config().expect("defaults are valid");
        assert_eq!(cfg.http_version(), HttpVersion::H2);
        let cli = Cli::parse_from(["tokengate-load", "--protocol", "rest"]);
        assert_eq!(
            cli.to_config().expect("rest").http_version(),
            HttpVersion::H1
        );
        let cli = Cli::parse_from(["tokengate-load", "--scenario", "issue"]);
        assert!(cli.to_config().is_err(), "issue needs a password");
        let cli = Cli::parse_from([
            "tokengate-load",
            "--scenario",
            "refresh-chain",
            "--password-env",
            "TOKENGATE_LOAD_SURELY_UNSET_VARIABLE",
        ]);
        assert!(cli.to_config().is_err());
        let negative = Cli::try_parse_from(["tokengate-load", "--duration=-1"]);
        assert!(negative.map_or(true, |c| c.to_config().is_err()));
        let cli = Cli::parse_from(["tokengate-load", "--http", "1"]);
        assert!(cli.to_config().is_err(), "native gRPC over HTTP/1.1");
        assert!(Cli::try_parse_from(["tokengate-load", "--http", "3"]).is_err());
        assert!(
            Cli::try_parse_from(["tokengate-load", "--password", "a", "--password-env", "B"])
                .is_err()
        );
    }

    #[test]
    fn dumped_bodies() {
        let cli = Cli::parse_from(["tokengate-load", "--domain", "domain-dev"]);
        let body = cli.body(BodyCall::GetPublicKey).expect("body");
        assert_eq!(&body[..], b"\0\0\0\0\x0c\x0a\x0adomain-dev");
        assert_eq!(&cli.body(BodyCall::Refresh).expect("empty")[..], &[0u8; 5]);
        assert!(cli.body(BodyCall::Issue).is_err(), "issue needs a password");
        let cli = Cli::parse_from(["tokengate-load", "--protocol", "rest", "--password", "p"]);
        let body = cli.body(BodyCall::Issue).expect("json");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["credentials"]["password"], "p");
        assert_eq!(json["user_id"], "admin@example.com");
    }
}
