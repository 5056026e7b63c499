//! Hostile traffic against one loopback target, to check that a server
//! stays up and keeps answering honest clients while it is attacked:
//!
//! - **garbage**: random bytes; the HTTP/2 preface then frames with valid
//!   9-byte headers but random types, flags, stream ids and payloads;
//!   HTTP/1.1 requests with too many, oversized or junk headers.
//! - **half-open**: connections that send part of a request (or nothing)
//!   and stall; up to N held open, re-opened as the server closes them.
//! - **oversized**: REST bodies over the limit (`Content-Length` and
//!   chunked) and a gRPC message whose length prefix announces 100 MB.
//! - **streams**: many concurrent calls on one HTTP/2 connection (hyper's
//!   client, which respects the server's stream limit, and raw frames that
//!   ignore it), and "rapid reset" (open a stream, cancel it, repeat).
//! - **connections**: many TCP connections at once, held open.
//!
//! Each attacker runs in its own tokio tasks and counts how the server
//! reacted: an HTTP status, an HTTP/2 GOAWAY (with its error code), a gRPC
//! status, or how and after how long the connection ended. With a server
//! PID the server's memory is sampled every 500 ms. [`run`] returns a
//! [`HostileReport`].
//!
//! Like the load generator, it talks only to loopback targets.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use hdrhistogram::Histogram;
use http::{HeaderMap, Request};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::conn::{ConnTasks, Lane};
use crate::proto::AuthenticationRequest;
use crate::report::ServerMemory;
use crate::target::{Dial, Target};
use crate::wire::{Call, Wire, grpc_frame};
use crate::{HttpVersion, LoadError, Payload, Protocol};

/// Errors that stop a hostile run.
#[derive(Debug, thiserror::Error)]
pub enum HostileError {
    /// The target cannot be used (not a URL, not loopback, ...).
    #[error(transparent)]
    Target(#[from] LoadError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
    /// An attacker task failed or did not stop.
    #[error("an attacker failed: {0}")]
    Attacker(String),
}

/// What a half-open connection sends before it stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum HalfOpen {
    /// Nothing at all.
    Silent,
    /// HTTP/1.1 request headers without the final empty line.
    PartialHeaders,
    /// HTTP/1.1 request headers of ~300 KiB (30 headers of 10 KiB) without
    /// the final empty line: what a stalled request may make the server
    /// buffer.
    BigPartialHeaders,
    /// The HTTP/2 client preface and an empty SETTINGS frame.
    H2Preface,
    /// A REST POST announcing 1000 body bytes and sending 10.
    PartialBody,
    /// The same with `grpc-timeout: 99999999S`, a deadline of ~3 years
    /// (tokengate honours `grpc-timeout` on every protocol).
    PartialBodyLongDeadline,
}

impl HalfOpen {
    /// The flavour name in the report.
    pub fn name(self) -> &'static str {
        match self {
            HalfOpen::Silent => "silent",
            HalfOpen::PartialHeaders => "partial-headers",
            HalfOpen::BigPartialHeaders => "big-partial-headers",
            HalfOpen::H2Preface => "h2-preface",
            HalfOpen::PartialBody => "partial-body",
            HalfOpen::PartialBodyLongDeadline => "partial-body-long-deadline",
        }
    }

    /// Every flavour.
    pub const ALL: [HalfOpen; 6] = [
        HalfOpen::Silent,
        HalfOpen::PartialHeaders,
        HalfOpen::BigPartialHeaders,
        HalfOpen::H2Preface,
        HalfOpen::PartialBody,
        HalfOpen::PartialBodyLongDeadline,
    ];
}

/// What a stream attacker does on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum StreamAttack {
    /// `streams_per_connection` concurrent get_public_key calls over hyper's
    /// HTTP/2 client, which queues streams beyond the server's limit: valid
    /// calls, i.e. extra load rather than an attack.
    HyperConcurrent,
    /// `streams_per_connection` streams in raw frames at once, ignoring the
    /// server's SETTINGS_MAX_CONCURRENT_STREAMS.
    RawOverLimit,
    /// Open a stream and cancel it at once (RST_STREAM), in batches.
    RapidReset,
}

impl StreamAttack {
    /// The flavour name in the report.
    pub fn name(self) -> &'static str {
        match self {
            StreamAttack::HyperConcurrent => "hyper-concurrent",
            StreamAttack::RawOverLimit => "raw-over-limit",
            StreamAttack::RapidReset => "rapid-reset",
        }
    }

    /// Every flavour.
    pub const ALL: [StreamAttack; 3] = [
        StreamAttack::HyperConcurrent,
        StreamAttack::RawOverLimit,
        StreamAttack::RapidReset,
    ];
}

/// The kinds of attack, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Malformed bytes, frames and headers.
    Garbage,
    /// Stalled partial requests.
    HalfOpen,
    /// Bodies and messages over the limit.
    Oversized,
    /// Too many streams, rapid reset.
    Streams,
    /// A connection flood.
    Connections,
}

impl Kind {
    /// The kind name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Garbage => "garbage",
            Kind::HalfOpen => "half-open",
            Kind::Oversized => "oversized",
            Kind::Streams => "streams",
            Kind::Connections => "connections",
        }
    }
}

/// Upper bound of the connections a run may hold at once.
pub const MAX_HELD_CONNECTIONS: usize = 16_384;
/// Upper bound of the tasks of the garbage, oversized and streams attackers.
pub const MAX_ATTACKERS: usize = 64;

/// Everything a hostile run needs. Zero attackers of a kind turns it off.
#[derive(Debug, Clone)]
pub struct HostileConfig {
    /// `http://host:port[/prefix]` on loopback; the only place connections go.
    pub target: String,
    /// How long attacks are started.
    pub duration: Duration,
    /// After `duration`, how long connections still open may take to be
    /// closed by the server before they are counted as still open.
    pub drain: Duration,
    /// A garbage attempt waits at most this long for the server to react.
    pub attempt_timeout: Duration,
    /// `domain_id` of the calls the stream attacks make.
    pub domain: String,
    /// Garbage attackers (each one connection at a time).
    pub garbage: usize,
    /// Half-open connections held at once.
    pub half_open: usize,
    /// What the half-open connections send, spread evenly over the slots.
    pub half_open_kinds: Vec<HalfOpen>,
    /// Oversized-body attackers.
    pub oversized: usize,
    /// Size of the oversized REST bodies.
    pub oversized_bytes: usize,
    /// Stream attackers (each one HTTP/2 connection at a time).
    pub streams: usize,
    /// Streams opened at once per connection by the stream attacks.
    pub streams_per_connection: usize,
    /// What the stream attackers do, in turn.
    pub stream_kinds: Vec<StreamAttack>,
    /// Streams opened and cancelled per rapid-reset connection, at most.
    pub rapid_reset_streams: usize,
    /// TCP connections of the flood, opened at once and held.
    pub connections: usize,
    /// The local address every attack connects from (e.g. 127.0.0.2, so
    /// the server can tell the attacker from honest clients on 127.0.0.1);
    /// the kernel's choice when None.
    pub source: Option<IpAddr>,
    /// The server's PID, to sample its memory (Linux `/proc`).
    pub server_pid: Option<u32>,
    /// Seed of the random garbage.
    pub seed: u64,
}

impl HostileConfig {
    /// The defaults of the command line: 10 s, 2 garbage attackers, 200
    /// half-open connections, 2 oversized attackers, 1 stream attacker with
    /// 1,000 streams, a flood of 1,000 connections.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            domain: "domain-dev".into(),
            garbage: 2,
            half_open: 200,
            half_open_kinds: HalfOpen::ALL.to_vec(),
            oversized: 2,
            oversized_bytes: 2 << 20,
            streams: 1,
            streams_per_connection: 1000,
            stream_kinds: StreamAttack::ALL.to_vec(),
            rapid_reset_streams: 20_000,
            connections: 1000,
            source: None,
            server_pid: None,
            seed: 1,
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), HostileError> {
        let bad = |m: &str| Err(HostileError::Config(m.to_owned()));
        if self.duration.is_zero() || self.duration.as_secs_f64() > crate::MAX_SECONDS {
            return bad("--duration must be > 0 and at most 24 h");
        }
        if self.drain.as_secs_f64() > 3600.0 || self.attempt_timeout.is_zero() {
            return bad("--drain must be at most 1 h and --attempt-timeout > 0");
        }
        if [self.garbage, self.oversized, self.streams]
            .iter()
            .any(|&n| n > MAX_ATTACKERS)
        {
            return bad("--garbage, --oversized and --streams are at most 64 each");
        }
        if self.half_open.saturating_add(self.connections) > MAX_HELD_CONNECTIONS {
            return bad("--half-open + --connections must be at most 16384");
        }
        if self.half_open > 0 && self.half_open_kinds.is_empty() {
            return bad("--half-open-kinds must name at least one kind");
        }
        if self.streams > 0 && self.stream_kinds.is_empty() {
            return bad("--stream-kinds must name at least one kind");
        }
        if !(1..=10_000).contains(&self.streams_per_connection)
            || !(1..=1_000_000).contains(&self.rapid_reset_streams)
        {
            return bad("--streams-per-connection is 1..=10000, --rapid-reset-streams 1..=1000000");
        }
        if !(1..=(256 << 20)).contains(&self.oversized_bytes) {
            return bad("--oversized-bytes is 1..=256 MiB");
        }
        if self.domain.is_empty() {
            return bad("--domain must not be empty");
        }
        if self.source.is_some_and(|ip| !ip.is_loopback()) {
            return bad("--source must be a loopback address (127.0.0.0/8 or ::1)");
        }
        Ok(())
    }
}

/// How a connection ended, from the attacker's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed it (EOF).
    Closed,
    /// The server reset it (RST), or reading failed otherwise.
    Reset,
    /// Still open when the attacker stopped waiting.
    StillOpen,
    /// The attacker closed it after reading the answer.
    Answered,
    /// The TCP connect failed.
    ConnectFailed,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Closed => "closed",
            End::Reset => "reset",
            End::StillOpen => "still open",
            End::Answered => "answered",
            End::ConnectFailed => "connect failed",
        })
    }
}

/// What the server said before the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing.
    Nothing,
    /// An HTTP/1.1 status line.
    Http(u16),
    /// HTTP/2 frames, the first GOAWAY's error code if any.
    H2 {
        /// The error code of the first GOAWAY.
        goaway: Option<u32>,
    },
    /// Bytes that are neither.
    Other,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nothing => f.write_str("no answer"),
            Reply::Http(status) => write!(f, "HTTP {status}"),
            Reply::H2 { goaway: Some(code) } => write!(f, "GOAWAY {}", h2_error_name(*code)),
            Reply::H2 { goaway: None } => f.write_str("HTTP/2 frames, no GOAWAY"),
            Reply::Other => f.write_str("unrecognised bytes"),
        }
    }
}

/// The outcome of one connection.
#[derive(Debug, Clone)]
struct Ending {
    reply: Reply,
    end: End,
    after: Duration,
}

impl Ending {
    fn key(&self) -> String {
        format!("{}, {}", self.reply, self.end)
    }

    fn server_ended(&self) -> bool {
        matches!(self.end, End::Closed | End::Reset)
    }
}

/// HTTP/2 error code names (RFC 9113 §7).
pub fn h2_error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("0x{code:x}"), |n| (*n).to_owned())
}

/// What the server's first bytes were: an HTTP/1.1 status line, HTTP/2
/// frames (with the first GOAWAY's code), or something else.
pub fn classify(bytes: &[u8]) -> Reply {
    if bytes.is_empty() {
        return Reply::Nothing;
    }
    if let Some(status) = http1_status(bytes) {
        return Reply::Http(status);
    }
    let mut buf = BytesMut::from(bytes);
    let mut frames = 0;
    while let Some(frame) = H2Frame::parse(&mut buf) {
        frames += 1;
        if let Some(code) = frame.goaway_code() {
            return Reply::H2 { goaway: Some(code) };
        }
    }
    // A server SETTINGS frame is at least 9 bytes; partial tails are fine.
    if frames > 0 {
        Reply::H2 { goaway: None }
    } else {
        Reply::Other
    }
}

fn http1_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

// ---------------------------------------------------------------- tallies

/// Outcomes of one flavour of attack, kept by one task.
#[derive(Debug, Clone)]
struct Tally {
    attempts: u64,
    outcomes: BTreeMap<String, u64>,
    closed_after_ms: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            attempts: 0,
            outcomes: BTreeMap::new(),
            // 1 ms .. 1 h, 2 significant digits: constant and valid.
            closed_after_ms: Histogram::new_with_bounds(1, 3_600_000, 2)
                .expect("valid histogram bounds"),
        }
    }
}

impl Tally {
    fn add(&mut self, key: impl Into<String>, n: u64) {
        *self.outcomes.entry(key.into()).or_default() += n;
    }

    fn record(&mut self, ending: &Ending) {
        self.attempts += 1;
        self.add(ending.key(), 1);
        if ending.server_ended() {
            self.record_close(ending.after);
        }
    }

    fn record_close(&mut self, after: Duration) {
        let ms = (after.as_millis() as u64).clamp(1, 3_600_000);
        // Clamped into the histogram's range: cannot fail.
        let _ = self.closed_after_ms.record(ms);
    }

    fn merge(&mut self, other: &Tally) {
        self.attempts += other.attempts;
        for (k, n) in &other.outcomes {
            self.add(k.clone(), *n);
        }
        let _ = self.closed_after_ms.add(&other.closed_after_ms);
    }
}

/// Tallies by (kind, flavour).
#[derive(Debug, Default)]
struct Tallies(BTreeMap<(Kind, &'static str), Tally>);

impl Tallies {
    fn of(&mut self, kind: Kind, flavour: &'static str) -> &mut Tally {
        self.0.entry((kind, flavour)).or_default()
    }

    fn merge(&mut self, other: Tallies) {
        for (key, tally) in other.0 {
            self.0.entry(key).or_default().merge(&tally);
        }
    }
}

// ---------------------------------------------------------------- report

/// Time from opening to the server ending the connection, ms.
#[derive(Debug, Clone, Serialize)]
pub struct CloseTimes {
    /// Connections the server closed or reset.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Longest.
    pub max: u64,
}

/// The outcomes of one flavour of one attack kind.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    /// `garbage`, `half-open`, `oversized`, `streams` or `connections`.
    pub kind: String,
    /// The flavour, e.g. `random-bytes`, `partial-headers`, `rapid-reset`.
    pub flavour: String,
    /// Connections (or, for the stream attacks, connections used).
    pub attempts: u64,
    /// Counts by outcome, e.g. `"HTTP 400, closed": 12`.
    pub outcomes: BTreeMap<String, u64>,
    /// How long the connections the server ended lasted.
    pub closed_after_ms: Option<CloseTimes>,
}

impl AttackReport {
    /// The count of outcomes whose key satisfies `pred`.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.outcomes
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The server's memory over the run.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryTrace {
    /// Samples taken (every 500 ms).
    pub samples: usize,
    /// Before the attacks started.
    pub start: ServerMemory,
    /// Highest `VmRSS` sampled, KiB.
    pub max_rss_kib: u64,
    /// At the end of the drain (`peak_rss_kib` is `VmHWM`, the peak since
    /// the server started).
    pub end: ServerMemory,
}

/// The whole hostile run.
#[derive(Debug, Clone, Serialize)]
pub struct HostileReport {
    /// The target URL.
    pub target: String,
    /// Attacks were started for this long, seconds.
    pub duration_s: f64,
    /// Then open connections were watched this long, seconds.
    pub drain_s: f64,
    /// One entry per (kind, flavour) that ran.
    pub attacks: Vec<AttackReport>,
    /// The server's memory, with `server_pid`.
    pub server_memory: Option<MemoryTrace>,
}

impl HostileReport {
    /// The entry of `kind`/`flavour`, if it ran.
    pub fn attack(&self, kind: Kind, flavour: &str) -> Option<&AttackReport> {
        self.attacks
            .iter()
            .find(|a| a.kind == kind.name() && a.flavour == flavour)
    }

    /// The entries of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &AttackReport> {
        self.attacks.iter().filter(move |a| a.kind == kind.name())
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for HostileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "hostile mix | {} | attacks for {:.1} s, then {:.1} s for open connections to close",
            self.target, self.duration_s, self.drain_s
        )?;
        for a in &self.attacks {
            write!(f, "\n{}/{}  attempts {}", a.kind, a.flavour, a.attempts)?;
            if let Some(c) = &a.closed_after_ms {
                write!(
                    f,
                    "  closed by the server after ms: p50 {} p99 {} max {} ({} closed)",
                    c.p50, c.p99, c.max, c.count
                )?;
            }
            writeln!(f)?;
            for (outcome, n) in &a.outcomes {
                writeln!(f, "  {n:>9}  {outcome}")?;
            }
        }
        if let Some(m) = &self.server_memory {
            writeln!(
                f,
                "\nserver memory ({} samples): VmRSS start {:.1} MiB, max {:.1} MiB, end {:.1} MiB; VmHWM {:.1} MiB",
                m.samples,
                mib(m.start.rss_kib),
                mib(m.max_rss_kib),
                mib(m.end.rss_kib),
                mib(m.end.peak_rss_kib)
            )?;
        }
        Ok(())
    }
}

fn report_of(tallies: Tallies) -> Vec<AttackReport> {
    tallies
        .0
        .into_iter()
        .map(|((kind, flavour), t)| {
            let h = &t.closed_after_ms;
            let closed_after_ms = (!h.is_empty()).then(|| CloseTimes {
                count: h.len(),
                p50: h.value_at_quantile(0.5),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            });
            AttackReport {
                kind: kind.name().into(),
                flavour: flavour.into(),
                attempts: t.attempts,
                outcomes: t.outcomes,
                closed_after_ms,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- run

/// The shared, read-only state of the attackers.
#[derive(Debug)]
struct Ctx {
    cfg: HostileConfig,
    dial: Dial,
    authority: String,
    prefix: String,
    /// No attack starts after this.
    end: Instant,
    /// Open connections are counted as still open after this.
    give_up: Instant,
}

impl Ctx {
    fn running(&self) -> bool {
        Instant::now() < self.end
    }

    fn uri(&self, path: &str) -> String {
        format!("http://{}{}{}", self.authority, self.prefix, path)
    }
}

/// Runs the attacks for `duration`, waits up to `drain` for the connections
/// still open to be closed by the server, and returns what was seen.
pub async fn run(cfg: &HostileConfig) -> Result<HostileReport, HostileError> {
    cfg.validate()?;
    // Never anything but loopback: there is no --allow-remote here.
    let target = Target::resolve(&cfg.target, false).await?;
    let start = Instant::now();
    let ctx = Arc::new(Ctx {
        cfg: cfg.clone(),
        dial: Dial {
            addr: target.addr,
            source: cfg.source,
        },
        authority: target.authority,
        prefix: target.prefix,
        end: start + cfg.duration,
        give_up: start + cfg.duration + cfg.drain,
    });
    let memory = cfg
        .server_pid
        .map(|pid| tokio::spawn(sample_memory(pid, ctx.give_up)));
    let mut set = JoinSet::new();
    spawn_attackers(&ctx, &mut set);
    let mut tallies = Tallies::default();
    // Every task stops by `give_up` (plus a call timeout); the margin only
    // guards against a stuck one.
    let hard_stop = ctx.give_up + cfg.attempt_timeout + Duration::from_secs(5);
    loop {
        match timeout_at(hard_stop, set.join_next()).await {
            Ok(None) => break,
            Ok(Some(Ok(t))) => tallies.merge(t),
            Ok(Some(Err(e))) => return Err(HostileError::Attacker(e.to_string())),
            Err(_) => {
                set.abort_all();
                return Err(HostileError::Attacker(
                    "an attacker did not stop in time".into(),
                ));
            }
        }
    }
    let server_memory = match memory {
        Some(h) => h
            .await
            .map_err(|e| HostileError::Attacker(format!("memory sampler: {e}")))?,
        None => None,
    };
    Ok(HostileReport {
        target: cfg.target.clone(),
        duration_s: cfg.duration.as_secs_f64(),
        drain_s: cfg.drain.as_secs_f64(),
        attacks: report_of(tallies),
        server_memory,
    })
}

fn spawn_attackers(ctx: &Arc<Ctx>, set: &mut JoinSet<Tallies>) {
    let cfg = &ctx.cfg;
    for i in 0..cfg.garbage {
        set.spawn(garbage_attacker(ctx.clone(), Rng::new(cfg.seed, i as u64)));
    }
    for i in 0..cfg.half_open {
        let kind = cfg.half_open_kinds[i % cfg.half_open_kinds.len()];
        set.spawn(half_open_slot(ctx.clone(), kind));
    }
    for i in 0..cfg.oversized {
        set.spawn(oversized_attacker(ctx.clone(), i));
    }
    for i in 0..cfg.streams {
        set.spawn(streams_attacker(ctx.clone(), i));
    }
    for _ in 0..cfg.connections {
        set.spawn(flood_slot(ctx.clone()));
    }
}

async fn sample_memory(pid: u32, until: Instant) -> Option<MemoryTrace> {
    let start = ServerMemory::read(pid)?;
    let mut trace = MemoryTrace {
        samples: 1,
        start,
        max_rss_kib: start.rss_kib,
        end: start,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while Instant::now() < until {
        tick.tick().await;
        let Some(m) = ServerMemory::read(pid) else {
            break;
        };
        trace.samples += 1;
        trace.max_rss_kib = trace.max_rss_kib.max(m.rss_kib);
        trace.end = m;
    }
    Some(trace)
}

// ---------------------------------------------------------------- raw connections

/// A small deterministic generator (SplitMix64) for the garbage.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The most of the server's answer kept for classification.
const KEEP_BYTES: usize = 64 * 1024;

async fn connect(dial: Dial, until: Instant) -> Option<TcpStream> {
    match timeout_at(until, dial.connect()).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Some(s)
        }
        _ => None,
    }
}

/// Writes `chunks` while reading the server's answer, until the server ends
/// the connection, `until` passes, or (with `stop_at_answer`) an HTTP status
/// line arrives. The write half stays open the whole time: a half-close
/// would tell the server the request is over.
async fn send_and_watch(
    dial: Dial,
    chunks: Vec<Bytes>,
    until: Instant,
    stop_at_answer: bool,
) -> Ending {
    let started = Instant::now();
    let Some(stream) = connect(dial, until).await else {
        return Ending {
            reply: Reply::Nothing,
            end: End::ConnectFailed,
            after: started.elapsed(),
        };
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = async {
        for chunk in &chunks {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
        }
    };
    let reader = read_until_end(&mut rd, until, stop_at_answer);
    tokio::pin!(writer, reader);
    let mut written = false;
    let (kept, end) = loop {
        tokio::select! {
            () = &mut writer, if !written => written = true,
            r = &mut reader => break r,
        }
    };
    Ending {
        reply: classify(&kept),
        end,
        after: started.elapsed(),
    }
}

async fn read_until_end(
    rd: &mut OwnedReadHalf,
    until: Instant,
    stop_at_answer: bool,
) -> (Vec<u8>, End) {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match timeout_at(until, rd.read(&mut buf)).await {
            Err(_) => return (kept, End::StillOpen),
            Ok(Ok(0)) => return (kept, End::Closed),
            Ok(Ok(n)) => {
                let room = KEEP_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if stop_at_answer && http1_status(&kept).is_some() {
                    return (kept, End::Answered);
                }
            }
            // ECONNRESET mostly; any read error ends the connection.
            Ok(Err(_)) => return (kept, End::Reset),
        }
    }
}

// ---------------------------------------------------------------- garbage

/// The garbage flavours, tried in turn by each garbage attacker.
const GARBAGE: [&str; 6] = [
    "random-bytes",
    "h2-random-frames",
    "h1-100-headers",
    "h1-64k-header",
    "h1-1m-header",
    "h1-junk-request-line",
];

async fn garbage_attacker(ctx: Arc<Ctx>, mut rng: Rng) -> Tallies {
    let mut tallies = Tallies::default();
    let mut n = rng.below(GARBAGE.len() as u64) as usize;
    while ctx.running() {
        let flavour = GARBAGE[n % GARBAGE.len()];
        n += 1;
        let chunks = garbage_bytes(flavour, &ctx.authority, &mut rng);
        let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
        let ending = send_and_watch(ctx.dial, chunks, until, false).await;
        tallies.of(Kind::Garbage, flavour).record(&ending);
    }
    tallies
}

fn garbage_bytes(flavour: &str, authority: &str, rng: &mut Rng) -> Vec<Bytes> {
    let request = |extra: &[u8]| {
        let mut r = format!("GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n")
            .into_bytes();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r
    };
    let bytes = match flavour {
        "random-bytes" => {
            let len = 1 + rng.below(4096) as usize;
            rng.bytes(len)
        }
        "h2-random-frames" => random_h2_frames(rng).to_vec(),
        "h1-100-headers" => request(
            &(0..100)
                .flat_map(|i| format!("X-Junk-{i}: {}\r\n", rng.next_u64()).into_bytes())
                .collect::<Vec<u8>>(),
        ),
        "h1-64k-header" => request(&big_header(64 * 1024)),
        "h1-1m-header" => request(&big_header(1 << 20)),
        _ => {
            let len = 1 + rng.below(200) as usize;
            let mut line = rng.bytes(len);
            line.retain(|b| *b != b'\n');
            line.extend_from_slice(b" /\x00\xff HTTP/9.9\r\nHost: \x01\r\n\r\n");
            line
        }
    };
    // Big requests go out in pieces, so the server can answer midway.
    bytes
        .chunks(64 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn big_header(len: usize) -> Vec<u8> {
    let mut h = b"X-Big: ".to_vec();
    h.resize(7 + len, b'a');
    h.extend_from_slice(b"\r\n");
    h
}

/// The client preface, an empty SETTINGS frame, then 1..=8 frames with
/// valid 9-byte headers and random type, flags, stream id and payload.
fn random_h2_frames(rng: &mut Rng) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_slice(PREFACE);
    put_frame(&mut buf, SETTINGS, 0, 0, &[]);
    for _ in 0..1 + rng.below(8) {
        let kind = rng.below(12) as u8;
        let flags = rng.next_u64() as u8;
        let stream = match rng.below(4) {
            0 => 0,
            1 => 1,
            2 => 1 + 2 * rng.below(100) as u32,
            _ => rng.next_u64() as u32,
        };
        let len = rng.below(65) as usize;
        let payload = rng.bytes(len);
        put_frame(&mut buf, kind, flags, stream, &payload);
    }
    buf.freeze()
}

// ---------------------------------------------------------------- half-open

async fn half_open_slot(ctx: Arc<Ctx>, kind: HalfOpen) -> Tallies {
    let mut tallies = Tallies::default();
    let bytes = half_open_bytes(kind, &ctx.authority, &ctx.prefix);
    while ctx.running() {
        let ending = send_and_watch(ctx.dial, vec![bytes.clone()], ctx.give_up, false).await;
        tallies.of(Kind::HalfOpen, kind.name()).record(&ending);
        if ending.end == End::ConnectFailed {
            pause(&ctx, Duration::from_millis(100)).await;
        }
    }
    tallies
}

fn half_open_bytes(kind: HalfOpen, authority: &str, prefix: &str) -> Bytes {
    let post = |extra: &str| {
        format!(
            "POST {prefix}/identity/v1/token/issue HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{extra}Content-Length: 1000\r\n\r\n{{\"domain_i"
        )
    };
    match kind {
        HalfOpen::Silent => Bytes::new(),
        HalfOpen::PartialHeaders => Bytes::from(format!(
            "POST {prefix}/identity/v1/token/issue HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n"
        )),
        HalfOpen::BigPartialHeaders => {
            let mut head =
                format!("POST {prefix}/identity/v1/token/issue HTTP/1.1\r\nHost: {authority}\r\n")
                    .into_bytes();
            for i in 0..30 {
                head.extend_from_slice(format!("X-Pad-{i}: ").as_bytes());
                head.resize(head.len() + 10 * 1024, b'a');
                head.extend_from_slice(b"\r\n");
            }
            Bytes::from(head)
        }
        HalfOpen::H2Preface => {
            let mut buf = BytesMut::new();
            buf.put_slice(PREFACE);
            put_frame(&mut buf, SETTINGS, 0, 0, &[]);
            buf.freeze()
        }
        HalfOpen::PartialBody => Bytes::from(post("")),
        HalfOpen::PartialBodyLongDeadline => Bytes::from(post("grpc-timeout: 99999999S\r\n")),
    }
}

async fn pause(ctx: &Ctx, d: Duration) {
    tokio::time::sleep_until((Instant::now() + d).min(ctx.end)).await;
}

// ---------------------------------------------------------------- connection flood

/// A connection the server closes this soon after it was opened counts as
/// refused at once (the connection limit), not closed for idling.
const AT_ONCE: Duration = Duration::from_millis(500);

async fn flood_slot(ctx: Arc<Ctx>) -> Tallies {
    let mut tallies = Tallies::default();
    while ctx.running() {
        let ending = send_and_watch(ctx.dial, Vec::new(), ctx.give_up, false).await;
        let key = match ending.end {
            End::Closed | End::Reset if ending.after < AT_ONCE => "closed at once (< 500 ms)",
            End::Closed | End::Reset => "closed later (>= 500 ms)",
            End::ConnectFailed => "connect failed",
            End::StillOpen | End::Answered => "held open to the end",
        };
        let tally = tallies.of(Kind::Connections, "hold-silent");
        tally.attempts += 1;
        tally.add(key, 1);
        if ending.server_ended() {
            tally.record_close(ending.after);
        }
        // A refused connection is re-opened after a short pause, not in a spin.
        if ending.end != End::StillOpen {
            pause(&ctx, Duration::from_millis(100)).await;
        }
    }
    tallies
}

// ---------------------------------------------------------------- oversized

const OVERSIZED: [&str; 3] = ["rest-content-length", "rest-chunked", "grpc-length-prefix"];

async fn oversized_attacker(ctx: Arc<Ctx>, index: usize) -> Tallies {
    let mut tallies = Tallies::default();
    let mut n = index;
    while ctx.running() {
        let flavour = OVERSIZED[n % OVERSIZED.len()];
        n += 1;
        let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
        let tally = tallies.of(Kind::Oversized, flavour);
        if flavour == "grpc-length-prefix" {
            let key = grpc_oversized(&ctx, until).await;
            tally.attempts += 1;
            tally.add(key, 1);
        } else {
            let chunks = rest_oversized(&ctx, flavour == "rest-chunked");
            let ending = send_and_watch(ctx.dial, chunks, until, true).await;
            tally.record(&ending);
        }
    }
    tallies
}

/// A REST issue with a body of `oversized_bytes`, announced by
/// `Content-Length` or sent chunked, in 64 KiB pieces.
fn rest_oversized(ctx: &Ctx, chunked: bool) -> Vec<Bytes> {
    let size = ctx.cfg.oversized_bytes;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {size}")
    };
    let head = format!(
        "POST {}/identity/v1/token/issue HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nConnection: close\r\n{framing}\r\n\r\n",
        ctx.prefix, ctx.authority
    );
    let mut chunks = vec![Bytes::from(head)];
    let piece = Bytes::from(vec![b' '; 64 * 1024]);
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len());
        if chunked {
            let mut c = BytesMut::with_capacity(n + 16);
            c.put_slice(format!("{n:x}\r\n").as_bytes());
            c.put_slice(&piece[..n]);
            c.put_slice(b"\r\n");
            chunks.push(c.freeze());
        } else {
            chunks.push(piece.slice(..n));
        }
        left -= n;
    }
    if chunked {
        chunks.push(Bytes::from_static(b"0\r\n\r\n"));
    }
    chunks
}

/// A request body that sends one chunk and then stalls forever.
struct StallBody(Option<Bytes>);

impl Body for StallBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0.take() {
            Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
            // Never woken: the stream ends when the server answers or the
            // connection is dropped.
            None => Poll::Pending,
        }
    }
}

/// A native gRPC issue whose 5-byte prefix announces a 100 MB message, with
/// 16 KiB of it sent; the answer's gRPC status (or what went wrong).
async fn grpc_oversized(ctx: &Ctx, until: Instant) -> String {
    let Some(stream) = connect(ctx.dial, until).await else {
        return "connect failed".into();
    };
    let handshake =
        http2::Builder::new(TokioExecutor::new()).handshake::<_, StallBody>(TokioIo::new(stream));
    let (mut sender, conn) = match timeout_at(until, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return format!("HTTP/2 handshake failed: {e}"),
        Err(_) => return "no HTTP/2 handshake in time".into(),
    };
    let conn = tokio::spawn(async move { drop(conn.await) });
    let key = grpc_oversized_call(ctx, &mut sender, until).await;
    conn.abort();
    key
}

async fn grpc_oversized_call(
    ctx: &Ctx,
    sender: &mut http2::SendRequest<StallBody>,
    until: Instant,
) -> String {
    let mut first = BytesMut::with_capacity(5 + 16 * 1024);
    first.put_u8(0);
    first.put_u32(100_000_000);
    first.put_bytes(0x0a, 16 * 1024);
    let request = Request::post(ctx.uri("/spaceone.api.identity.v1.Token/issue"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(StallBody(Some(first.freeze())));
    let request = match request {
        Ok(r) => r,
        Err(e) => return format!("bad request: {e}"),
    };
    let response = match timeout_at(until, sender.send_request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return format!("transport error: {e}"),
        Err(_) => return "no answer in time".into(),
    };
    let (parts, body) = response.into_parts();
    let trailers = match timeout_at(until, body.collect()).await {
        Ok(Ok(collected)) => collected.trailers().cloned(),
        Ok(Err(_)) | Err(_) => None,
    };
    grpc_outcome(parts.status, &parts.headers, trailers.as_ref())
}

fn grpc_outcome(
    status: http::StatusCode,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) -> String {
    if status != http::StatusCode::OK {
        return format!("HTTP {}", status.as_u16());
    }
    let code = headers
        .get("grpc-status")
        .or_else(|| trailers.and_then(|t| t.get("grpc-status")))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    match code {
        Some(c) => format!("grpc {}", crate::wire::grpc_code_name(c)),
        None => "no grpc-status".into(),
    }
}

// ---------------------------------------------------------------- streams

async fn streams_attacker(ctx: Arc<Ctx>, index: usize) -> Tallies {
    let mut tallies = Tallies::default();
    let mut n = index;
    while ctx.running() {
        let kinds = &ctx.cfg.stream_kinds;
        let attack = kinds[n % kinds.len()];
        n += 1;
        let tally = tallies.of(Kind::Streams, attack.name());
        tally.attempts += 1;
        match attack {
            StreamAttack::HyperConcurrent => hyper_concurrent(&ctx, tally).await,
            StreamAttack::RawOverLimit => raw_over_limit(&ctx, tally).await,
            StreamAttack::RapidReset => rapid_reset(&ctx, tally).await,
        }
    }
    tallies
}

/// `streams_per_connection` concurrent get_public_key calls over hyper's
/// HTTP/2 client on one connection (which queues streams beyond the
/// server's SETTINGS_MAX_CONCURRENT_STREAMS).
async fn hyper_concurrent(ctx: &Ctx, tally: &mut Tally) {
    let payload = Payload {
        domain_id: ctx.cfg.domain.clone(),
        ..Payload::default()
    };
    let wire = match Wire::new(
        Protocol::Grpc,
        HttpVersion::H2,
        &ctx.authority,
        &ctx.prefix,
        &payload,
    ) {
        Ok(w) => Arc::new(w),
        Err(e) => return tally.add(format!("bad request: {e}"), 1),
    };
    let tasks = ConnTasks::default();
    let n = ctx.cfg.streams_per_connection;
    let lanes = match Lane::open_worker(ctx.dial, HttpVersion::H2, n, &tasks).await {
        Ok(l) => l,
        Err(f) => return tally.add(format!("connection: {}", f.key), 1),
    };
    let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
    let mut calls = JoinSet::new();
    for mut lane in lanes {
        let wire = wire.clone();
        calls.spawn(async move {
            let call = async {
                let r = lane.send(wire.request(Call::GetPublicKey, None)?).await?;
                wire.judge(
                    Call::GetPublicKey,
                    r.status,
                    &r.headers,
                    r.body,
                    r.trailers.as_ref(),
                )
            };
            match timeout_at(until, call).await {
                Ok(Ok(_)) => "call ok".to_owned(),
                Ok(Err(f)) => format!("call failed: {}", f.key),
                Err(_) => "call unanswered".to_owned(),
            }
        });
    }
    while let Some(r) = calls.join_next().await {
        tally.add(r.unwrap_or_else(|e| format!("call task: {e}")), 1);
    }
    tasks.abort_all();
}

/// Raw frames: `streams_per_connection` get_public_key streams sent at once,
/// ignoring the server's stream limit; counts answered and refused streams.
async fn raw_over_limit(ctx: &Ctx, tally: &mut Tally) {
    let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
    let started = Instant::now();
    let mut conn = match RawH2::open(ctx.dial, until).await {
        Ok(c) => c,
        Err(end) => return tally.add(format!("handshake: {end}"), 1),
    };
    let n = ctx.cfg.streams_per_connection;
    let headers = get_public_key_headers(ctx);
    let message = grpc_frame(
        &AuthenticationRequest {
            domain_id: ctx.cfg.domain.clone(),
        }
        .encode_to_vec(),
    );
    let mut out = BytesMut::new();
    for i in 0..n {
        let id = 1 + 2 * i as u32;
        put_frame(&mut out, HEADERS, END_HEADERS, id, &headers);
        put_frame(&mut out, DATA, END_STREAM, id, &message);
    }
    if conn.wr.write_all(&out).await.is_err() {
        return tally.add("write failed", 1);
    }
    let mut done = HashSet::new();
    let mut goaway = None;
    let end = loop {
        if done.len() == n {
            break End::Answered;
        }
        let frame = match conn.next_frame(until).await {
            Ok(f) => f,
            Err(end) => break end,
        };
        let ended = match frame.kind {
            HEADERS | DATA if frame.flags & END_STREAM != 0 => Some("stream answered".to_owned()),
            RST_STREAM if frame.payload.len() >= 4 => {
                let code = frame.payload.clone().get_u32();
                Some(format!("stream reset {}", h2_error_name(code)))
            }
            GOAWAY => {
                goaway = goaway.or(frame.goaway_code());
                None
            }
            _ => None,
        };
        // Each stream counts once (a reset may follow an answer).
        if let Some(key) = ended
            && done.insert(frame.stream)
        {
            tally.add(key, 1);
        }
    };
    let unanswered = (n - done.len()) as u64;
    if unanswered > 0 {
        tally.add("stream unanswered", unanswered);
    }
    let reply = Reply::H2 { goaway };
    tally.add(format!("connection: {reply}, {end}"), 1);
    if matches!(end, End::Closed | End::Reset) {
        tally.record_close(started.elapsed());
    }
}

/// Raw frames: open a stream (HEADERS without END_STREAM) and cancel it
/// (RST_STREAM CANCEL) at once, in batches of 100, until the server sends
/// GOAWAY or closes, or `rapid_reset_streams` were sent.
async fn rapid_reset(ctx: &Ctx, tally: &mut Tally) {
    let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
    let started = Instant::now();
    let mut conn = match RawH2::open(ctx.dial, until).await {
        Ok(c) => c,
        Err(end) => return tally.add(format!("handshake: {end}"), 1),
    };
    let headers = get_public_key_headers(ctx);
    let mut sent = 0usize;
    let mut goaway = None;
    let end = 'outer: loop {
        if sent >= ctx.cfg.rapid_reset_streams || Instant::now() >= until {
            break End::StillOpen;
        }
        let mut out = BytesMut::new();
        for _ in 0..100 {
            let id = 1 + 2 * sent as u32;
            put_frame(&mut out, HEADERS, END_HEADERS, id, &headers);
            put_frame(&mut out, RST_STREAM, 0, id, &8u32.to_be_bytes());
            sent += 1;
        }
        if conn.wr.write_all(&out).await.is_err() {
            break conn.finish(until).await;
        }
        // Read what is there before the next batch.
        let peek = (Instant::now() + Duration::from_millis(2)).min(until);
        loop {
            match conn.next_frame(peek).await {
                Ok(f) if f.kind == GOAWAY => {
                    goaway = f.goaway_code();
                    break 'outer conn.finish(until).await;
                }
                Ok(_) => {}
                Err(End::StillOpen) => break,
                Err(end) => break 'outer end,
            }
        }
    };
    tally.add("streams opened and cancelled", sent as u64);
    tally.add(format!("connection: {}, {end}", Reply::H2 { goaway }), 1);
    if matches!(end, End::Closed | End::Reset) {
        tally.record_close(started.elapsed());
    }
}

fn get_public_key_headers(ctx: &Ctx) -> Bytes {
    let path = format!(
        "{}/spaceone.api.identity.v1.Domain/get_public_key",
        ctx.prefix
    );
    let mut block = BytesMut::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path.as_str()),
        (":authority", ctx.authority.as_str()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        hpack_literal(&mut block, name.as_bytes(), value.as_bytes());
    }
    block.freeze()
}

// ---------------------------------------------------------------- raw HTTP/2

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Appends one frame: 24-bit length, type, flags, 31-bit stream id, payload.
fn put_frame(buf: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).min(0x00FF_FFFF);
    buf.put_slice(&len.to_be_bytes()[1..]);
    buf.put_u8(kind);
    buf.put_u8(flags);
    buf.put_u32(stream & 0x7FFF_FFFF);
    buf.put_slice(&payload[..len as usize]);
}

/// HPACK "literal header field without indexing — new name", no Huffman.
fn hpack_literal(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_u8(0);
    hpack_int(buf, name.len());
    buf.put_slice(name);
    hpack_int(buf, value.len());
    buf.put_slice(value);
}

/// An HPACK integer with a 7-bit prefix (a string length, H bit 0).
fn hpack_int(buf: &mut BytesMut, mut v: usize) {
    const MAX: usize = 127;
    if v < MAX {
        buf.put_u8(v as u8);
        return;
    }
    buf.put_u8(MAX as u8);
    v -= MAX;
    while v >= 128 {
        buf.put_u8((v % 128 + 128) as u8);
        v /= 128;
    }
    buf.put_u8(v as u8);
}

/// One HTTP/2 frame read off the wire.
#[derive(Debug)]
struct H2Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Bytes,
}

impl H2Frame {
    /// Takes one whole frame off the front of `buf`, if there is one.
    fn parse(buf: &mut BytesMut) -> Option<Self> {
        if buf.len() < 9 {
            return None;
        }
        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
        if buf.len() < 9 + len {
            return None;
        }
        let mut head = buf.split_to(9);
        let _ = head.split_to(3);
        let kind = head.get_u8();
        let flags = head.get_u8();
        let stream = head.get_u32() & 0x7FFF_FFFF;
        let payload = buf.split_to(len).freeze();
        Some(Self {
            kind,
            flags,
            stream,
            payload,
        })
    }

    /// The error code of a GOAWAY frame.
    fn goaway_code(&self) -> Option<u32> {
        (self.kind == GOAWAY && self.payload.len() >= 8).then(|| {
            let mut p = self.payload.slice(4..8);
            p.get_u32()
        })
    }
}

/// A hand-driven HTTP/2 client connection: the preface with large windows,
/// the server's SETTINGS acknowledged, then frames read one by one.
struct RawH2 {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
}

impl RawH2 {
    async fn open(dial: Dial, until: Instant) -> Result<Self, End> {
        let stream = connect(dial, until).await.ok_or(End::ConnectFailed)?;
        let (rd, wr) = stream.into_split();
        let mut conn = Self {
            rd,
            wr,
            buf: BytesMut::with_capacity(64 * 1024),
        };
        let mut hello = BytesMut::new();
        hello.put_slice(PREFACE);
        // SETTINGS_ENABLE_PUSH = 0, SETTINGS_INITIAL_WINDOW_SIZE = 16 MiB.
        let mut settings = BytesMut::new();
        settings.put_u16(0x2);
        settings.put_u32(0);
        settings.put_u16(0x4);
        settings.put_u32(16 << 20);
        put_frame(&mut hello, SETTINGS, 0, 0, &settings);
        put_frame(&mut hello, WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes());
        conn.wr.write_all(&hello).await.map_err(|_| End::Reset)?;
        // The server's limits apply once its SETTINGS are acknowledged.
        loop {
            let f = conn.next_frame(until).await?;
            if f.kind == SETTINGS && f.flags & ACK == 0 {
                let mut ack = BytesMut::new();
                put_frame(&mut ack, SETTINGS, ACK, 0, &[]);
                conn.wr.write_all(&ack).await.map_err(|_| End::Reset)?;
                return Ok(conn);
            }
        }
    }

    /// The next frame; `Err(StillOpen)` when `until` passes first.
    async fn next_frame(&mut self, until: Instant) -> Result<H2Frame, End> {
        loop {
            if let Some(f) = H2Frame::parse(&mut self.buf) {
                return Ok(f);
            }
            match timeout_at(until, self.rd.read_buf(&mut self.buf)).await {
                Err(_) => return Err(End::StillOpen),
                Ok(Ok(0)) => return Err(End::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(End::Reset),
            }
        }
    }

    /// Reads until the server ends the connection or `until` passes.
    async fn finish(&mut self, until: Instant) -> End {
        loop {
            if let Err(end) = self.next_frame(until).await {
                return end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified() {
        assert_eq!(classify(b""), Reply::Nothing);
        assert_eq!(
            classify(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            Reply::Http(431)
        );
        let mut buf = BytesMut::new();
        put_frame(&mut buf, SETTINGS, 0, 0, &[0, 3, 0, 0, 1, 0]);
        put_frame(&mut buf, GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(classify(&buf), Reply::H2 { goaway: Some(1) });
        assert_eq!(
            Reply::H2 { goaway: Some(11) }.to_string(),
            "GOAWAY ENHANCE_YOUR_CALM"
        );
        let mut buf = BytesMut::new();
        put_frame(&mut buf, SETTINGS, 0, 0, &[]);
        assert_eq!(classify(&buf), Reply::H2 { goaway: None });
        assert_eq!(classify(b"\xff\xff"), Reply::Other);
        assert_eq!(h2_error_name(99), "0x63");
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = BytesMut::new();
        put_frame(&mut buf, HEADERS, END_HEADERS, 5, b"abc");
        put_frame(&mut buf, RST_STREAM, 0, 5, &8u32.to_be_bytes());
        buf.put_slice(&[0, 0]); // a partial next frame
        let f = H2Frame::parse(&mut buf).expect("headers");
        assert_eq!(
            (f.kind, f.flags, f.stream, &f.payload[..]),
            (HEADERS, END_HEADERS, 5, &b"abc"[..])
        );
        let f = H2Frame::parse(&mut buf).expect("rst");
        assert_eq!(f.payload.clone().get_u32(), 8);
        assert!(H2Frame::parse(&mut buf).is_none());
    }

    #[test]
    fn hpack_lengths() {
        let mut buf = BytesMut::new();
        hpack_int(&mut buf, 10);
        hpack_int(&mut buf, 127);
        hpack_int(&mut buf, 1337);
        // RFC 7541 C.1 gives 1337 with a 5-bit prefix; with 7 bits:
        // 127, then 1210 = 0b1001_0111010 -> 0xBA 0x09.
        assert_eq!(&buf[..], &[10, 127, 0, 127, 0xBA, 0x09]);
    }

    #[test]
    fn garbage_is_deterministic_and_bounded() {
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 1);
        for flavour in GARBAGE {
            let x = garbage_bytes(flavour, "127.0.0.1:1", &mut a);
            let y = garbage_bytes(flavour, "127.0.0.1:1", &mut b);
            assert_eq!(x, y, "{flavour}");
            assert!(x.iter().all(|c| c.len() <= 64 * 1024));
        }
        let frames = random_h2_frames(&mut a);
        assert!(frames.starts_with(PREFACE));
        let mut rest = BytesMut::from(&frames[PREFACE.len()..]);
        let mut n = 0;
        while H2Frame::parse(&mut rest).is_some() {
            n += 1;
        }
        assert!(rest.is_empty() && (2..=9).contains(&n), "{n} whole frames");
    }

    #[test]
    fn config_bounds() {
        let mut c = HostileConfig::new("http://127.0.0.1:1");
        assert!(c.validate().is_ok());
        c.connections = MAX_HELD_CONNECTIONS;
        assert!(c.validate().is_err());
        c.connections = 0;
        c.half_open_kinds.clear();
        assert!(c.validate().is_err());
        c.half_open = 0;
        assert!(c.validate().is_ok());
    }

    #[tokio::test]
    async fn remote_targets_are_refused() {
        let c = HostileConfig::new("http://10.0.0.1:50051");
        assert!(matches!(
            run(&c).await,
            Err(HostileError::Target(LoadError::RemoteTarget { .. }))
        ));
    }
}
