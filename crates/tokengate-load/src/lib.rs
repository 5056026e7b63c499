//! `tokengate-load`: a small load generator for SpaceONE's identity v1 Token
//! API that speaks only the wire contract — native gRPC (h2c), gRPC-Web
//! (binary and text, HTTP/1.1 or HTTP/2) and REST/JSON — so it can drive
//! tokengate and the stock SpaceONE identity service alike.
//!
//! A call counts as a success only when the answer says so: grpc-status 0
//! (from the headers of a trailers-only answer, the HTTP/2 trailers, or the
//! gRPC-Web trailer frame) or HTTP 200 for REST. Failures are counted by
//! status and SpaceONE error code.
//!
//! The binary is a thin wrapper over [`run`]: build a [`LoadConfig`], await
//! [`run`], print the [`Report`].

pub mod cli;
pub mod conn;
pub mod hostile;
pub mod proto;
pub mod report;
pub mod target;
pub mod wire;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::time::Instant;

use crate::conn::{ConnTasks, Lane, TRANSPORT_BACKOFF};
use crate::report::OpStats;
pub use crate::report::{Report, ServerMemory};
use crate::target::{Dial, Target};
pub use crate::wire::Payload;
use crate::wire::{CALL_KINDS, Call, Failure, Wire};

/// The protocol calls are made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Native gRPC (`application/grpc`), always HTTP/2 with prior knowledge (h2c).
    Grpc,
    /// Binary gRPC-Web (`application/grpc-web+proto`).
    GrpcWeb,
    /// Text gRPC-Web (`application/grpc-web-text`, base64 bodies).
    GrpcWebText,
    /// REST/JSON routes of the `google.api.http` annotations.
    Rest,
}

impl Protocol {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::GrpcWebText => "grpc-web-text",
            Protocol::Rest => "rest",
        }
    }

    /// HTTP/2 for gRPC and gRPC-Web, HTTP/1.1 for REST.
    pub fn default_http(self) -> HttpVersion {
        match self {
            Protocol::Rest => HttpVersion::H1,
            _ => HttpVersion::H2,
        }
    }
}

/// The HTTP version of the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1: one connection per call in flight, no pipelining.
    H1,
    /// HTTP/2 with prior knowledge (h2c): one connection per worker, calls
    /// multiplexed as streams.
    H2,
}

impl HttpVersion {
    /// `1.1` or `2`.
    pub fn name(self) -> &'static str {
        match self {
            HttpVersion::H1 => "1.1",
            HttpVersion::H2 => "2",
        }
    }
}

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

    fn calls(self) -> &'static [Call] {
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

/// Errors that stop a run before or while it starts.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target URL cannot be used.
    #[error("invalid target {url}: {why}")]
    InvalidTarget {
        /// The URL given.
        url: String,
        /// Why it was refused.
        why: String,
    },
    /// The target is not on loopback and `--allow-remote` was not given.
    #[error(
        "refusing target {url}: {addr} is not a loopback address (only 127.0.0.0/8 and ::1 are allowed without --allow-remote)"
    )]
    RemoteTarget {
        /// The URL given.
        url: String,
        /// The non-loopback address it resolves to.
        addr: IpAddr,
    },
    /// A setting is out of range or inconsistent.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The connections could not be opened.
    #[error("cannot open connections to {target}: {message}")]
    Connect {
        /// The target URL.
        target: String,
        /// What failed.
        message: String,
    },
    /// A worker task failed.
    #[error("a worker failed: {0}")]
    Worker(String),
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

#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

/// Runs the load: opens the connections, calls for warm-up + duration, and
/// returns the report of the measured window. Stops by itself; calls still
/// in flight at the end are abandoned and not recorded.
pub async fn run(cfg: &LoadConfig) -> Result<Report, LoadError> {
    cfg.validate()?;
    let target = Target::resolve(&cfg.target, cfg.allow_remote).await?;
    let version = cfg.http_version();
    let wire = Arc::new(Wire::new(
        cfg.protocol,
        version,
        &target.authority,
        &target.prefix,
        &cfg.payload,
    )?);
    let tasks = ConnTasks::default();
    let result = run_with(cfg, &target, version, wire, &tasks).await;
    tasks.abort_all();
    result
}

async fn run_with(
    cfg: &LoadConfig,
    target: &Target,
    version: HttpVersion,
    wire: Arc<Wire>,
    tasks: &ConnTasks,
) -> Result<Report, LoadError> {
    let idle = open_idle_connections(cfg, target, version, &wire, tasks).await?;
    let mut lanes = Vec::with_capacity(cfg.connections * cfg.in_flight);
    for _ in 0..cfg.connections {
        let worker = Lane::open_worker(Dial::to(target.addr), version, cfg.in_flight, tasks)
            .await
            .map_err(|f| LoadError::Connect {
                target: cfg.target.clone(),
                message: f.message,
            })?;
        lanes.extend(worker);
    }
    let start = Instant::now();
    let window = Window {
        measure_from: start + cfg.warmup,
        end: start + cfg.warmup + cfg.duration,
    };
    // Each slot starts a call every `slots / rate` seconds.
    let pace = cfg
        .rate
        .map(|rate| Duration::from_secs_f64(lanes.len() as f64 / rate));
    let mut handles = Vec::with_capacity(lanes.len());
    for lane in lanes {
        handles.push(tokio::spawn(slot(
            lane,
            wire.clone(),
            cfg.scenario,
            window,
            cfg.call_timeout,
            pace,
        )));
    }
    let mut total: [OpStats; CALL_KINDS] = Default::default();
    // Every slot stops at `end`; the margin only guards against a stuck task.
    let hard_stop = window.end + Duration::from_secs(5);
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(hard_stop, h).await {
            Ok(Ok(stats)) => {
                for (t, s) in total.iter_mut().zip(stats.iter()) {
                    t.merge(s);
                }
            }
            Ok(Err(e)) => return Err(LoadError::Worker(e.to_string())),
            Err(_) => {
                abort.abort();
                return Err(LoadError::Worker("a call slot did not stop in time".into()));
            }
        }
    }
    let server_memory = cfg.server_pid.and_then(ServerMemory::read);
    drop(idle);
    let calls = cfg
        .scenario
        .calls()
        .iter()
        .map(|c| total[c.index()].report(c.name(), cfg.duration))
        .collect();
    Ok(Report {
        scenario: cfg.scenario.name().into(),
        protocol: cfg.protocol.name().into(),
        http: version.name().into(),
        target: cfg.target.clone(),
        connections: cfg.connections,
        in_flight: cfg.in_flight,
        tcp_connections: cfg.tcp_connections(),
        duration_s: cfg.duration.as_secs_f64(),
        warmup_s: cfg.warmup.as_secs_f64(),
        idle_connections: cfg.idle_connections,
        server_memory,
        calls,
    })
}

/// Opens `cfg.idle_connections` connections, makes one get_public_key call
/// on each (so the server has set the connection up fully) and returns
/// them, to be held until the run ends.
async fn open_idle_connections(
    cfg: &LoadConfig,
    target: &Target,
    version: HttpVersion,
    wire: &Wire,
    tasks: &ConnTasks,
) -> Result<Vec<Lane>, LoadError> {
    let mut idle = Vec::with_capacity(cfg.idle_connections);
    for n in 0..cfg.idle_connections {
        let failed = |message: String| LoadError::Connect {
            target: cfg.target.clone(),
            message: format!("idle connection {}: {message}", n + 1),
        };
        let mut lanes = Lane::open_worker(Dial::to(target.addr), version, 1, tasks)
            .await
            .map_err(|f| failed(f.message))?;
        let mut lane = lanes.pop().ok_or_else(|| failed("no lane".into()))?;
        let request = wire
            .request(Call::GetPublicKey, None)
            .map_err(|f| failed(f.message))?;
        let answer = lane.send(request).await.map_err(|f| failed(f.message))?;
        wire.judge(
            Call::GetPublicKey,
            answer.status,
            &answer.headers,
            answer.body,
            answer.trailers.as_ref(),
        )
        .map_err(|f| failed(f.message))?;
        idle.push(lane);
    }
    Ok(idle)
}

/// One in-flight slot: calls one after the other until the window ends.
async fn slot(
    mut lane: Lane,
    wire: Arc<Wire>,
    scenario: Scenario,
    window: Window,
    call_timeout: Duration,
    pace: Option<Duration>,
) -> [OpStats; CALL_KINDS] {
    let mut stats: [OpStats; CALL_KINDS] = Default::default();
    let mut chain: Option<String> = None;
    let mut next_start = Instant::now();
    loop {
        if let Some(pace) = pace {
            // Paced: wait for this slot's turn; a late call starts at once
            // and the schedule moves on from it (no catch-up burst).
            tokio::time::sleep_until(next_start.min(window.end)).await;
            let now = Instant::now();
            if next_start + pace < now {
                next_start = now;
            }
            next_start += pace;
        }
        let started = Instant::now();
        if started >= window.end {
            break;
        }
        let (call, token) = match scenario {
            Scenario::GetPublicKey => (Call::GetPublicKey, None),
            Scenario::Issue => (Call::Issue, None),
            Scenario::Healthz => (Call::Healthz, None),
            Scenario::RefreshChain => match chain.take() {
                Some(t) => (Call::Refresh, Some(t)),
                None => (Call::Issue, None),
            },
        };
        let deadline = (started + call_timeout).min(window.end);
        let attempt = async {
            let req = wire.request(call, token.as_deref())?;
            let r = lane.send(req).await?;
            wire.judge(call, r.status, &r.headers, r.body, r.trailers.as_ref())
        };
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(r) => r,
            // The run is over: the call is abandoned, not recorded.
            Err(_) if deadline >= window.end => break,
            Err(_) => Err(Failure::new(
                "TIMEOUT",
                format!("no answer within {:?}", call_timeout),
            )),
        };
        let latency = started.elapsed();
        let result = match (scenario, result) {
            (Scenario::RefreshChain, Ok(answer)) => wire.refresh_token(&answer).map(|t| {
                // A token with no refresh left would only earn ERROR_REFRESH_COUNT: issue anew.
                if jwt_ttl(&t) != Some(0) {
                    chain = Some(t);
                }
            }),
            (_, r) => r.map(drop),
        };
        let backoff =
            matches!(&result, Err(f) if f.key.status == "TRANSPORT" || f.key.status == "CONNECT");
        if started >= window.measure_from {
            stats[call.index()].record(latency, result.as_ref().map(|_| ()));
        }
        if backoff {
            tokio::time::sleep_until((Instant::now() + TRANSPORT_BACKOFF).min(window.end)).await;
        }
    }
    stats
}

/// The `ttl` claim (refreshes left) of a refresh JWT, read without
/// verification; `None` when it is not a JWT or has no `ttl`.
pub fn jwt_ttl(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&json)
        .ok()?
        .get("ttl")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_of_a_jwt() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"cat":"REFRESH_TOKEN","ttl":0}"#);
        assert_eq!(jwt_ttl(&format!("e30.{payload}.sig")), Some(0));
        let payload = URL_SAFE_NO_PAD.encode(br#"{"ttl":17}"#);
        assert_eq!(jwt_ttl(&format!("e30.{payload}.sig")), Some(17));
        assert_eq!(jwt_ttl("not a jwt"), None);
        assert_eq!(jwt_ttl("a.!!!.c"), None);
    }

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
