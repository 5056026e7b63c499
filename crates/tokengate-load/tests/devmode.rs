//! The load generator against the real tokengate binary in dev mode: every
//! protocol, get-public-key and refresh-chain without a single error, and a
//! wrong password counted as ERROR_AUTHENTICATION_FAILURE on every issue.
//!
//! The binary is the one next to this test's executable,
//! `target/<profile>/tokengate` (or `$TOKENGATE_BIN`); when it is missing
//! the test builds it with `cargo build -p tokengate --bin tokengate`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use tokengate_load::{HttpVersion, LoadConfig, Protocol, Report, Scenario, run};
use tokengate_test_support::dev_server::DevServer;
use tokengate_test_support::locate::tokengate_binary_path;
use tokengate_test_support::ports::free_port;

const DOMAIN: &str = "domain-dev";
const USER: &str = "admin@example.com";

fn tokengate_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TOKENGATE_BIN") {
        return PathBuf::from(bin);
    }
    let bin = tokengate_binary_path();
    if !bin.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "tokengate", "--bin", "tokengate"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .status()
            .expect("run cargo build -p tokengate");
        assert!(status.success(), "cargo build -p tokengate failed");
    }
    assert!(bin.exists(), "no tokengate binary at {}", bin.display());
    bin
}

/// A `tokengate serve` in dev mode on a port of its choosing.
fn dev_server() -> DevServer {
    DevServer::start_with(
        &tokengate_binary(),
        // The wrong-password run must meet the password check, not a login-failure limit.
        &[
            ("TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER", "1000000"),
            ("TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP", "1000000"),
        ],
    )
}

fn config(
    server: &DevServer,
    protocol: Protocol,
    http: HttpVersion,
    scenario: Scenario,
) -> LoadConfig {
    let mut cfg = LoadConfig::new(server.url(), protocol, scenario);
    cfg.http = Some(http);
    cfg.payload.domain_id = DOMAIN.into();
    cfg.payload.user_id = USER.into();
    cfg.payload.password = server.password().to_owned();
    cfg.connections = 1;
    cfg.in_flight = 2;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_secs(1);
    cfg
}

const MATRIX: [(Protocol, HttpVersion); 5] = [
    (Protocol::Grpc, HttpVersion::H2),
    (Protocol::GrpcWeb, HttpVersion::H1),
    (Protocol::GrpcWeb, HttpVersion::H2),
    (Protocol::GrpcWebText, HttpVersion::H2),
    (Protocol::Rest, HttpVersion::H1),
];

fn label(r: &Report) -> String {
    format!("{} over HTTP/{} ({})", r.protocol, r.http, r.scenario)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_without_errors_and_wrong_passwords_are_errors() {
    let server = dev_server();

    // get-public-key: ~1 s per protocol.
    for (protocol, http) in MATRIX {
        let cfg = config(&server, protocol, http, Scenario::GetPublicKey);
        let report = run(&cfg).await.expect("run");
        eprintln!("{report}");
        let op = report.op("get_public_key").expect("get_public_key entry");
        assert!(op.calls > 0, "{}: no calls\n{report}", label(&report));
        assert_eq!(report.errors_total(), 0, "{}\n{report}", label(&report));
        assert_eq!(op.ok, op.calls);
    }

    // refresh-chain: one slot per protocol, all protocols at once. An issue
    // is one argon2id check (about 1 s in a debug build), so the window is
    // longer and the first issue is measured (no warm-up).
    let runs = MATRIX.map(|(protocol, http)| {
        let mut cfg = config(&server, protocol, http, Scenario::RefreshChain);
        cfg.in_flight = 1;
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_secs(6);
        // Short chains, so that re-issuing after the last refresh is exercised too.
        cfg.payload.refresh_count = 3;
        tokio::spawn(async move { run(&cfg).await })
    });
    for handle in runs {
        let report = handle.await.expect("join").expect("run");
        eprintln!("{report}");
        let issue = report.op("issue").expect("issue entry");
        let refresh = report.op("refresh").expect("refresh entry");
        assert!(issue.calls > 0, "{}: no issue\n{report}", label(&report));
        assert!(
            refresh.calls > 0,
            "{}: no refresh\n{report}",
            label(&report)
        );
        assert_eq!(report.errors_total(), 0, "{}\n{report}", label(&report));
        assert_eq!(refresh.ok, refresh.calls);
    }

    // A wrong password: every issue is a failure, counted as ERROR_AUTHENTICATION_FAILURE.
    for (protocol, http) in [
        (Protocol::Grpc, HttpVersion::H2),
        (Protocol::Rest, HttpVersion::H1),
    ] {
        let mut cfg = config(&server, protocol, http, Scenario::Issue);
        cfg.payload.password = "certainly-not-the-password".into();
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_secs(3);
        let report = run(&cfg).await.expect("run");
        eprintln!("{report}");
        let issue = report.op("issue").expect("issue entry");
        assert!(issue.calls > 0, "{}: no calls\n{report}", label(&report));
        assert_eq!(
            issue.ok,
            0,
            "{}: a wrong password succeeded\n{report}",
            label(&report)
        );
        assert_eq!(issue.errors_total, issue.calls);
        assert_eq!(issue.errors.len(), 1, "{report}");
        let e = &issue.errors[0];
        assert_eq!(
            e.code.as_deref(),
            Some("ERROR_AUTHENTICATION_FAILURE"),
            "{report}"
        );
        let status = if protocol == Protocol::Rest {
            "HTTP 401"
        } else {
            "UNAUTHENTICATED"
        };
        assert_eq!(e.status, status, "{report}");
        assert_eq!(e.count, issue.calls);
    }
}

#[tokio::test]
async fn refuses_remote_targets_and_reports_dead_ones() {
    let mut cfg = LoadConfig::new(
        "http://192.0.2.1:50051",
        Protocol::Grpc,
        Scenario::GetPublicKey,
    );
    let err = run(&cfg).await.expect_err("not loopback");
    assert!(err.to_string().contains("--allow-remote"), "{err}");

    // Nothing listens: the run fails at connect time, it does not hang.
    cfg.target = format!("http://127.0.0.1:{}", free_port());
    cfg.duration = Duration::from_millis(200);
    let started = Instant::now();
    let err = run(&cfg).await.expect_err("nothing listens");
    assert!(err.to_string().contains("cannot open connections"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
