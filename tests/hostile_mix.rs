//! Hostile traffic mixed with honest traffic: the real binary keeps
//! answering honest clients, reacts to each attack as it should, stays
//! alive and keeps its memory bounded.
//!
//! Honest traffic (issue → refresh → get_public_key in a loop over native
//! gRPC, gRPC-Web over HTTP/2 and REST over HTTP/1.1) runs through two
//! phases of `tokengate_load::hostile::run`, in-process:
//!
//! 1. garbage, half-open connections, oversized bodies and stream floods
//!    (~5 s, then up to 6 s for stalled connections to be closed);
//! 2. a flood of 400 silent connections against `max_connections = 300`.
//!
//! The connection limit is global: while the flood holds every free slot, a
//! *new* connection is refused whoever opens it. So the honest clients open
//! their connections (one per protocol) before the attacks and reuse them:
//! each loop is sequential, so the pooled HTTP/1.1 client never needs a
//! second connection, and the HTTP/2 clients multiplex on one. Every
//! honest call must succeed: a call refused because the limit was reached
//! would fail the test.
//!
//! The server is configured so every stall is bounded within the run:
//! header read timeout 1 s, idle timeout 2 s, default deadline 4 s (also
//! the most a `grpc-timeout` may ask for), and HTTP/2 keepalive off: a
//! silent HTTP/2 client that never answers the GOAWAY's PING is dropped
//! 5 s after the idle close (this test found that it used to be held until
//! the keepalive, or forever without one). `partial-body-long-deadline` (a
//! stalled REST body sent with `grpc-timeout: 99999999S`) must get the
//! default deadline's 504 (it used to be held for the ~3 years it asked).
//!
//! The per-source throttle is off here (`limits.source_faults = 0`): this
//! test checks how each attack is *answered*, and a throttled attacker
//! would mostly see its connections reset. tests/source_throttle.rs runs a
//! mix with the throttle on.
//!
//! No timing assertions beyond generous "closed eventually" bounds: this
//! is a robustness test, not a benchmark (`tools/bench/hostile-mix.sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokengate_load::hostile::{HalfOpen, HostileConfig, HostileReport, Kind, run};
use tokengate_test_support::prelude::{
    Clients, PASSWORD, Proto, ServerOptions, TestServer, TokenInfo, issue_call, issue_request,
    public_key_call, refresh_call,
};

const MAX_CONNECTIONS: usize = 300;
const RSS_BOUND_KIB: u64 = 256 * 1024;
/// The honest protocols, one connection each.
const HONEST: [Proto; 3] = [Proto::Grpc, Proto::WebBinaryH2, Proto::Rest];

fn server() -> TestServer {
    TestServer::start_with(ServerOptions {
        extra_config: format!(
            "[server]\nheader_read_timeout_ms = 1000\nidle_timeout_ms = 2000\ndefault_timeout_ms = 4000\nmax_timeout_ms = 4000\nhttp2_keepalive_interval_ms = 0\nmax_connections = {MAX_CONNECTIONS}\n[limits]\nmax_body_bytes = 4096\nsource_faults = 0\n"
        ),
        ..ServerOptions::default()
    })
}

/// Successes per protocol (in `HONEST` order) and the failures seen.
#[derive(Default)]
struct Honest {
    ok: [AtomicU64; 3],
    failures: std::sync::Mutex<Vec<String>>,
}

impl Honest {
    fn snapshot(&self) -> [u64; 3] {
        std::array::from_fn(|i| self.ok[i].load(Ordering::Relaxed))
    }

    fn fail(&self, what: String) {
        if let Ok(mut f) = self.failures.lock() {
            f.push(what);
        }
    }
}

/// issue → refresh → get_public_key over `proto`, until `stop`.
async fn honest_loop(
    clients: Arc<Clients>,
    index: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Honest>,
) {
    let proto = HONEST[index];
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let issue = issue_call(&req, json);
    let public_key = public_key_call("domain-a");
    while !stop.load(Ordering::Relaxed) {
        let issued = clients.call(proto, &issue).await;
        if !issued.ok() {
            tally.fail(format!("{proto:?} issue: {issued:?}"));
            continue;
        }
        let token = issued.decode::<TokenInfo>().refresh_token;
        let refreshed = clients
            .call(proto, &refresh_call(vec![("token", token)]))
            .await;
        let key = clients.call(proto, &public_key).await;
        for (name, outcome) in [("refresh", refreshed), ("get_public_key", key)] {
            if !outcome.ok() {
                tally.fail(format!("{proto:?} {name}: {outcome:?}"));
            }
        }
        tally.ok[index].fetch_add(3, Ordering::Relaxed);
    }
}

fn attacks(server: &TestServer) -> HostileConfig {
    let mut cfg = HostileConfig::new(server.url(""));
    cfg.duration = Duration::from_secs(5);
    // Idle timeout 2 s + the idle close's 5 s grace + a margin.
    cfg.drain = Duration::from_secs(9);
    cfg.domain = "domain-a".into();
    cfg.garbage = 2;
    cfg.half_open = 100;
    // Every kind, whatever the defaults become.
    cfg.half_open_kinds = HalfOpen::ALL.to_vec();
    cfg.oversized = 2;
    cfg.oversized_bytes = 256 * 1024;
    cfg.streams = 1;
    cfg.streams_per_connection = 1000;
    cfg.connections = 0;
    cfg.server_pid = Some(server.child.id());
    cfg
}

fn flood(server: &TestServer) -> HostileConfig {
    let mut cfg = HostileConfig::new(server.url(""));
    cfg.duration = Duration::from_secs(3);
    cfg.drain = Duration::from_secs(5);
    (cfg.garbage, cfg.half_open, cfg.oversized, cfg.streams) = (0, 0, 0, 0);
    cfg.connections = 400;
    cfg.server_pid = Some(server.child.id());
    cfg
}

/// Every outcome of `kind`/`flavour` satisfies `pred`, and there was one.
fn all_outcomes(report: &HostileReport, kind: Kind, flavour: &str, pred: impl Fn(&str) -> bool) {
    let a = report
        .attack(kind, flavour)
        .unwrap_or_else(|| panic!("{}/{flavour} did not run:\n{report}", kind.name()));
    let total: u64 = a.outcomes.values().sum();
    assert!(total > 0, "{}/{flavour}: no outcome\n{report}", kind.name());
    assert_eq!(
        a.count(&pred),
        total,
        "{}/{flavour}: unexpected outcomes {:?}\n{report}",
        kind.name(),
        a.outcomes
    );
}

fn ended_by_server(outcome: &str) -> bool {
    outcome.ends_with(", closed") || outcome.ends_with(", reset")
}

/// `status` (answered), or no answer at all: when the server answers
/// early and closes while the client is still sending, the TCP reset its
/// unread data causes may discard the answer before it is read. Any other
/// answer is wrong; and `status` must have been seen.
fn early_answer(report: &HostileReport, kind: Kind, flavour: &str, status: &str) {
    all_outcomes(report, kind, flavour, |o| {
        o.starts_with(status) || o == "no answer, closed" || o == "no answer, reset"
    });
    let a = report.attack(kind, flavour).expect("ran");
    assert!(
        a.count(|o| o.starts_with(status)) > 0,
        "{flavour}: never {status}\n{report}"
    );
}

fn check_attacks(report: &HostileReport) {
    // Garbage: every connection ended by the server, with the right answer
    // where there is one to expect.
    for a in report.of_kind(Kind::Garbage) {
        all_outcomes(report, Kind::Garbage, &a.flavour, ended_by_server);
    }
    all_outcomes(report, Kind::Garbage, "h1-100-headers", |o| {
        o.starts_with("HTTP 431")
    });
    early_answer(report, Kind::Garbage, "h1-1m-header", "HTTP 431");
    all_outcomes(report, Kind::Garbage, "h1-junk-request-line", |o| {
        o.starts_with("HTTP 400")
    });

    // Half-open: closed by the server, eventually (the stalled body with
    // the deadline's 504 answer).
    for flavour in [
        "silent",
        "partial-headers",
        "big-partial-headers",
        "h2-preface",
        "partial-body",
        "partial-body-long-deadline",
    ] {
        all_outcomes(report, Kind::HalfOpen, flavour, ended_by_server);
        let closed = report
            .attack(Kind::HalfOpen, flavour)
            .and_then(|a| a.closed_after_ms.clone())
            .expect("close times");
        assert!(closed.max < 15_000, "half-open/{flavour} held {closed:?}");
    }
    for flavour in ["partial-body", "partial-body-long-deadline"] {
        all_outcomes(report, Kind::HalfOpen, flavour, |o| {
            o.starts_with("HTTP 504")
        });
    }

    // Oversized: 413 over REST, RESOURCE_EXHAUSTED over gRPC.
    early_answer(report, Kind::Oversized, "rest-content-length", "HTTP 413");
    early_answer(report, Kind::Oversized, "rest-chunked", "HTTP 413");
    all_outcomes(report, Kind::Oversized, "grpc-length-prefix", |o| {
        o == "grpc RESOURCE_EXHAUSTED"
    });

    // Streams: hyper's client respects the stream limit and every call
    // succeeds; raw streams past the limit are refused; rapid reset ends
    // with GOAWAY ENHANCE_YOUR_CALM.
    let hyper = report
        .attack(Kind::Streams, "hyper-concurrent")
        .expect("ran");
    assert!(hyper.count(|o| o == "call ok") > 0, "{report}");
    assert_eq!(hyper.count(|o| o.starts_with("call failed")), 0, "{report}");
    let raw = report.attack(Kind::Streams, "raw-over-limit").expect("ran");
    assert!(
        raw.count(|o| o.contains("REFUSED_STREAM") || o.contains("ENHANCE_YOUR_CALM")) > 0,
        "{report}"
    );
    assert_eq!(
        raw.count(|o| o.starts_with("connection:") && o.ends_with("still open")),
        0,
        "{report}"
    );
    let rapid = report.attack(Kind::Streams, "rapid-reset").expect("ran");
    assert!(
        rapid.count(|o| o.contains("GOAWAY ENHANCE_YOUR_CALM")) > 0,
        "{report}"
    );
}

fn check_flood(report: &HostileReport) {
    let a = report
        .attack(Kind::Connections, "hold-silent")
        .expect("ran");
    assert!(
        a.count(|o| o.starts_with("closed at once")) > 0,
        "connections beyond max_connections are closed at once\n{report}"
    );
    assert_eq!(
        a.count(|o| o == "held open to the end"),
        0,
        "idle connections are closed\n{report}"
    );
}

fn check_memory(report: &HostileReport) {
    let m = report.server_memory.as_ref().expect("memory sampled");
    assert!(
        m.max_rss_kib < RSS_BOUND_KIB && m.end.peak_rss_kib < RSS_BOUND_KIB,
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_calls_survive_a_hostile_mix() {
    let mut server = server();
    let started = Instant::now();
    let clients = Arc::new(Clients::new(&server).await);
    let stop = Arc::new(AtomicBool::new(false));
    let honest = Arc::new(Honest::default());
    let loops: Vec<_> = (0..HONEST.len())
        .map(|i| {
            tokio::spawn(honest_loop(
                clients.clone(),
                i,
                stop.clone(),
                honest.clone(),
            ))
        })
        .collect();
    // The honest connections are open and used before any attack starts.
    while honest.snapshot().contains(&0) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "honest traffic never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Phase 1: garbage, half-open, oversized and stream attacks.
    let before = honest.snapshot();
    let mix = run(&attacks(&server)).await.expect("hostile mix");
    let after_mix = honest.snapshot();
    // Phase 2: the connection flood, past max_connections.
    let flood_report = run(&flood(&server)).await.expect("connection flood");
    let after_flood = honest.snapshot();

    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.expect("honest loop");
    }
    println!("{mix}\n{flood_report}");
    println!(
        "honest calls ok (grpc, grpc-web h2, rest): before {before:?}, after the mix {after_mix:?}, after the flood {after_flood:?}"
    );

    let failures = honest
        .failures
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    assert!(failures.is_empty(), "honest calls failed: {failures:#?}");
    for i in 0..HONEST.len() {
        assert!(
            after_mix[i] > before[i] && after_flood[i] > after_mix[i],
            "{:?} made progress in each phase: {before:?} {after_mix:?} {after_flood:?}",
            HONEST[i]
        );
    }
    check_attacks(&mix);
    check_flood(&flood_report);
    check_memory(&mix);
    check_memory(&flood_report);

    // Still alive, still answering, and it counted the refused connections.
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "the server exited: {}",
        server.logs()
    );
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(
        server
            .metric("tokengate_connections_rejected_total{reason=\"max_connections\"}")
            .await
            > 0.0
    );
    println!("hostile_mix took {:.1} s", started.elapsed().as_secs_f64());
}
