//! The load generator against the real tokengate binary in dev mode: every
//! protocol, get-public-key and refresh-chain without a single error, and a
//! wrong password counted as ERROR_AUTHENTICATION_FAILURE on every issue.
//!
//! The binary is `target/debug/tokengate` (or `$TOKENGATE_BIN`); when it is
//! missing the test builds it with `cargo build -p tokengate --bin tokengate`.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokengate_load::{HttpVersion, LoadConfig, Protocol, Report, Scenario, run};
use tokengate_test_support::ports::free_port;

const DOMAIN: &str = "domain-dev";
const USER: &str = "admin@example.com";

/// A `tokengate serve` in dev mode on a free port, killed on drop.
struct DevServer {
    child: Child,
    url: String,
    password: String,
    _data: tempfile::TempDir,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace_target() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

fn tokengate_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TOKENGATE_BIN") {
        return PathBuf::from(bin);
    }
    let bin = workspace_target().join("debug/tokengate");
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

impl DevServer {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut child = Command::new(tokengate_binary())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data.path())
            .env_remove("TOKENGATE_CONFIG")
            // The wrong-password run must meet the password check, not a login-failure limit.
            .env("TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER", "1000000")
            .env("TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP", "1000000")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tokengate serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the banner, then keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("  password:")
                    && let (Some(tx), Some(pw)) = (tx.take(), line.split_whitespace().nth(1))
                {
                    let _ = tx.send(pw.to_owned());
                }
            }
        });
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            password: String::new(),
            _data: data,
        };
        server.password = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the dev banner's password line");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tokengate did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn config(&self, protocol: Protocol, http: HttpVersion, scenario: Scenario) -> LoadConfig {
        let mut cfg = LoadConfig::new(self.url.clone(), protocol, scenario);
        cfg.http = Some(http);
        cfg.payload.domain_id = DOMAIN.into();
        cfg.payload.user_id = USER.into();
        cfg.payload.password = self.password.clone();
        cfg.connections = 1;
        cfg.in_flight = 2;
        cfg.warmup = Duration::from_millis(200);
        cfg.duration = Duration::from_secs(1);
        cfg
    }
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
    let server = DevServer::start();

    // get-public-key: ~1 s per protocol.
    for (protocol, http) in MATRIX {
        let cfg = server.config(protocol, http, Scenario::GetPublicKey);
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
        let mut cfg = server.config(protocol, http, Scenario::RefreshChain);
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
        let mut cfg = server.config(protocol, http, Scenario::Issue);
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
