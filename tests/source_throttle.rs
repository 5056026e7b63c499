//! The per-source throttle (`src/server/source_guard.rs`) through the real
//! binary: which client faults it counts, that an address with too many is
//! throttled and nobody else is, that the throttled address's open
//! connections keep serving, that the throttle ends, and that honest
//! clients are untouched while a hostile mix from another address is
//! throttled.
//!
//! The attacker connects from 127.0.0.2 and honest clients from 127.0.0.1:
//! on Linux every 127.0.0.0/8 address is the loopback interface.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokengate_load::hostile::{HalfOpen, HostileConfig, run};
use tokengate_test_support::prelude::{
    Clients, Proto, ServerOptions, TestServer, connect_from, public_key_call,
};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn server_with(limits: &str) -> TestServer {
    TestServer::start_with(ServerOptions {
        extra_config: format!("[limits]\n{limits}\n"),
        ..ServerOptions::default()
    })
}

/// Sends `request` on `stream` and reads until one whole answer is in, or
/// the server closes, resets or stays silent past the read timeout: the
/// bytes read, and whether the connection was reset.
fn exchange(stream: &mut TcpStream, request: &[u8]) -> (Vec<u8>, bool) {
    // A reset may arrive before the write: then the write reports it (and
    // the read after it sees only the end of the stream).
    let write_failed = stream.write_all(request).is_err();
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !whole_http1_answer(&answer) {
        match stream.read(&mut buf) {
            Ok(0) if write_failed => return (answer, true),
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (answer, true),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    (answer, false)
}

/// Whether `answer` holds an HTTP/1.1 head and all the body its
/// Content-Length announces.
fn whole_http1_answer(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .is_some_and(|length| answer.len() >= end + 4 + length)
}

/// The error codes of the GOAWAY frames among HTTP/2 `frames`.
fn goaway_codes(mut frames: &[u8]) -> Vec<u32> {
    let mut codes = Vec::new();
    while frames.len() >= 9 {
        let length = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        let Some(payload) = frames.get(9..9 + length) else {
            break;
        };
        if frames[3] == 7 && payload.len() >= 8 {
            codes.push(u32::from_be_bytes([
                payload[4], payload[5], payload[6], payload[7],
            ]));
        }
        frames = &frames[9 + length..];
    }
    codes
}

/// The HTTP status of an HTTP/1.1 answer.
fn status_of(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
const MALFORMED: &[u8] = b"GET / HTTP/9.9\x00\x01 junk\r\n\r\n";

/// One request from `source` on a new connection: its status, or None when
/// the connection was refused without an answer.
fn status_from(source: IpAddr, server: &TestServer, request: &[u8]) -> Option<u16> {
    let mut stream = connect_from(source, server.addr);
    let (answer, _) = exchange(&mut stream, request);
    status_of(&answer)
}

fn fault(kind: &str) -> String {
    format!("tokengate_client_faults_total{{fault=\"{kind}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_client_fault_is_counted() {
    // Counted, never throttled here.
    let server = server_with("source_faults = 1000\nmax_body_bytes = 4096");

    assert_eq!(status_from(ATTACKER, &server, MALFORMED), Some(400));

    let mut big_head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    big_head.resize(big_head.len() + 40 * 1024, b'a');
    big_head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_from(ATTACKER, &server, &big_head), Some(431));

    let client = reqwest::Client::new();
    let url = server.url("/identity/v1/token/issue");
    let declared = client
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b' '; 8192])
        .send()
        .await
        .expect("upload with a length");
    assert_eq!(declared.status(), 413);
    let chunks = futures::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 2048]))),
    );
    let chunked = client
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("chunked upload");
    assert_eq!(chunked.status(), 413);

    let clients = Clients::new(&server).await;
    let mut oversized = public_key_call("domain-a");
    oversized.message = vec![0u8; 8192];
    let outcome = clients.call(Proto::Grpc, &oversized).await;
    assert_eq!(outcome.code, tonic::Code::ResourceExhausted as i32);

    // HTTP/2: DATA on stream 0 is a connection error (PROTOCOL_ERROR).
    let mut h2 = connect_from(ATTACKER, server.addr);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS
    hello.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, b'x']); // DATA, stream 0
    let (answer, _) = exchange(&mut h2, &hello);
    assert_eq!(
        goaway_codes(&answer),
        [1],
        "GOAWAY PROTOCOL_ERROR: {answer:?}"
    );

    // The fault is counted when the connection ends: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.metric(&fault("http2_protocol_error")).await < 1.0 {
        assert!(Instant::now() < deadline, "{}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metric(&fault("malformed_request")).await, 1.0);
    assert_eq!(server.metric(&fault("request_head_too_large")).await, 1.0);
    assert_eq!(server.metric(&fault("body_too_large")).await, 3.0);
    assert_eq!(server.metric(&fault("http2_protocol_error")).await, 1.0);
    // An upload cut short (the client went away) is no fault.
    let mut cut = connect_from(ATTACKER, server.addr);
    cut.write_all(
        b"POST /identity/v1/token/issue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"domain_id\": \"d",
    )
    .expect("write");
    drop(cut);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A well-formed call that fails (no such domain) is no fault.
    let unknown = clients
        .call(Proto::Rest, &public_key_call("no-such-domain"))
        .await;
    assert!(!unknown.ok());
    for (kind, count) in [
        ("malformed_request", 1.0),
        ("request_head_too_large", 1.0),
        ("body_too_large", 3.0),
        ("http2_protocol_error", 1.0),
    ] {
        assert_eq!(server.metric(&fault(kind)).await, count, "{kind}");
    }
    assert_eq!(
        server.metric("tokengate_sources_throttled_total").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_faulting_is_throttled_and_nobody_else() {
    let server = server_with(
        "source_faults = 5\nsource_fault_window = 60\nsource_throttle = 3\nthrottled_connections_per_second = 0",
    );
    // A kept-alive connection opened before the faults (a proxy's pool).
    let mut kept = connect_from(ATTACKER, server.addr);
    let (answer, _) = exchange(&mut kept, HEALTH);
    assert_eq!(status_of(&answer), Some(200));

    for _ in 0..4 {
        assert_eq!(status_from(ATTACKER, &server, MALFORMED), Some(400));
    }
    // Four faults: not yet.
    assert_eq!(status_from(ATTACKER, &server, HEALTH), Some(200));
    assert_eq!(status_from(ATTACKER, &server, MALFORMED), Some(400));
    // A fault is counted as its connection ends, just after the answer
    // went out: wait for the count rather than race it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.metric("tokengate_sources_throttled_total").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "never throttled: {}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The throttle started before this instant, so it ends within 3 s of it.
    let throttled_by = Instant::now();

    // The fifth fault throttled 127.0.0.2: reset on accept, nothing read.
    let mut refused = connect_from(ATTACKER, server.addr);
    let (answer, reset) = exchange(&mut refused, HEALTH);
    assert!(answer.is_empty() && reset, "{answer:?} reset={reset}");

    // Honest clients elsewhere are served, on every protocol.
    let clients = Clients::new(&server).await;
    for proto in [Proto::Grpc, Proto::WebBinaryH1, Proto::Rest] {
        let outcome = clients.call(proto, &public_key_call("domain-a")).await;
        assert!(outcome.ok(), "{proto:?}: {outcome:?}");
    }
    // So is the throttled address's connection opened before.
    let (answer, _) = exchange(&mut kept, HEALTH);
    assert_eq!(status_of(&answer), Some(200));

    assert_eq!(
        server.metric("tokengate_sources_throttled_total").await,
        1.0
    );
    assert!(
        server
            .metric("tokengate_connections_rejected_total{reason=\"source_throttled\"}")
            .await
            >= 1.0
    );
    let logs = server.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("source_throttled"))
        .unwrap_or_else(|| panic!("no source_throttled line:\n{logs}"));
    assert!(line.contains("127.0.0.2"), "{line}");

    // The throttle ends 3 s after the last fault.
    let ends = throttled_by + Duration::from_secs(3) + Duration::from_millis(200);
    tokio::time::sleep_until(ends.into()).await;
    assert_eq!(status_from(ATTACKER, &server, HEALTH), Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_faults_turns_the_throttle_off() {
    let server = server_with("source_faults = 0");
    for _ in 0..30 {
        assert_eq!(status_from(ATTACKER, &server, MALFORMED), Some(400));
    }
    assert_eq!(status_from(ATTACKER, &server, HEALTH), Some(200));
    assert_eq!(server.metric(&fault("malformed_request")).await, 30.0);
    assert_eq!(
        server.metric("tokengate_sources_throttled_total").await,
        0.0
    );
}

/// Garbage, half-open connections and oversized bodies from 127.0.0.2 with
/// the default throttle; honest get_public_key calls from 127.0.0.1 over
/// gRPC and REST all succeed, and the attacker ends up throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_mix_from_one_address_is_throttled_and_honest_calls_go_on() {
    let server = TestServer::start();
    let clients = Arc::new(Clients::new(&server).await);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let honest: Vec<_> = [Proto::Grpc, Proto::Rest]
        .into_iter()
        .map(|proto| {
            let (clients, stop, ok) = (clients.clone(), stop.clone(), ok.clone());
            tokio::spawn(async move {
                let call = public_key_call("domain-a");
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let outcome = clients.call(proto, &call).await;
                    if outcome.ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.push(format!("{proto:?}: {outcome:?}"));
                    }
                }
                failures
            })
        })
        .collect();

    let mut attack = HostileConfig::new(server.url(""));
    attack.source = Some(ATTACKER);
    attack.duration = Duration::from_secs(3);
    attack.drain = Duration::from_secs(1);
    attack.attempt_timeout = Duration::from_secs(2);
    attack.domain = "domain-a".into();
    (attack.garbage, attack.oversized, attack.half_open) = (2, 2, 60);
    attack.half_open_kinds = HalfOpen::ALL.to_vec();
    attack.oversized_bytes = 256 * 1024;
    (attack.streams, attack.connections) = (0, 0);
    let ok_before = ok.load(Ordering::Relaxed);
    let report = run(&attack).await.expect("hostile mix");
    let ok_during = ok.load(Ordering::Relaxed) - ok_before;

    stop.store(true, Ordering::Relaxed);
    for task in honest {
        let failures = task.await.expect("honest loop");
        assert!(failures.is_empty(), "honest calls failed: {failures:#?}");
    }
    assert!(
        ok_during > 0,
        "honest calls made progress during the attack"
    );
    assert!(server.metric("tokengate_sources_throttled_total").await >= 1.0);
    assert!(
        server
            .metric("tokengate_connections_rejected_total{reason=\"source_throttled\"}")
            .await
            > 0.0,
        "{report}"
    );
    // The attacker saw it: connections reset without an answer.
    let refused: u64 = report
        .attacks
        .iter()
        .map(|a| a.count(|o| o == "no answer, reset"))
        .sum();
    assert!(refused > 0, "{report}");
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
}
