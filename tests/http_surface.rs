//! Everything around the methods on the one port: limits, CORS, REST JSON
//! details, 404/405, deadlines, slow clients, health, readiness, metrics and
//! the OpenAPI document checked against real answers.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use tokengate_test_support::prelude::*;

const RESOURCE_EXHAUSTED: i32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_above_the_limit_are_refused_before_decoding() {
    let server = TestServer::start_with(ServerOptions {
        extra_config: "[limits]\nmax_body_bytes = 1024\n".to_owned(),
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let big = "x".repeat(4096);
    // REST with a Content-Length: 413 at once.
    let (req, json) = issue_request("domain-a", &big, Some(PASSWORD), "", 0, 0);
    let call = issue_call(&req, json);
    let (status, body) = rest(&clients.h1, &clients.base, &call).await;
    assert_eq!(status.as_u16(), 413);
    assert_eq!(body["code"], RESOURCE_EXHAUSTED);
    assert_eq!(body["details"][0]["reason"], "ERROR_REQUEST_TOO_LARGE");
    // REST streamed without a length (chunked): still 413.
    let chunks = futures::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 512]))),
    );
    let response = clients
        .h1
        .post(server.url("/identity/v1/token/issue"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 413);
    // gRPC and gRPC-Web: RESOURCE_EXHAUSTED (tonic alone would say OUT_OF_RANGE).
    for proto in [
        Proto::Grpc,
        Proto::WebBinaryH1,
        Proto::WebBinaryH2,
        Proto::WebTextH1,
    ] {
        let outcome = clients.call(proto, &call).await;
        assert_eq!(outcome.code, RESOURCE_EXHAUSTED, "{proto:?}: {outcome:?}");
        assert!(
            outcome.message.starts_with("ERROR_REQUEST_TOO_LARGE"),
            "{proto:?}: {outcome:?}"
        );
    }
    // Under the limit still works.
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    assert!(
        clients
            .call(Proto::Grpc, &issue_call(&req, json))
            .await
            .ok()
    );
}

/// An upload refused before its body was read: the server closes while
/// the client is still writing. Without a lingering close the client's next
/// write meets a reset and hyper's client reports "broken pipe" instead of
/// the 413 (9 of 20 attempts before the fix). Twenty refused uploads
/// would get the address throttled (tests/source_throttle.rs): off here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_still_reads_its_413() {
    let server = TestServer::start_with(ServerOptions {
        extra_config: "[limits]\nmax_body_bytes = 1024\nsource_faults = 0\n".to_owned(),
        ..ServerOptions::default()
    });
    let client = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    const BODY_BYTES: usize = 1 << 20;
    for declared_length in [true, false] {
        for attempt in 0..10 {
            let chunks = futures::stream::iter(
                (0..BODY_BYTES / 65536)
                    .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 65536]))),
            );
            let mut request = client
                .post(server.url("/identity/v1/token/issue"))
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(chunks));
            if declared_length {
                request = request.header("content-length", BODY_BYTES.to_string());
            }
            let answer = request
                .send()
                .await
                .map(|r| (r.status().as_u16(), r.headers().get("connection").cloned()));
            // `Connection: close`: the client must not pool this connection,
            // which the server closes after the answer.
            assert!(
                matches!(&answer, Ok((413, Some(c))) if c == "close"),
                "content-length {declared_length}, attempt {attempt}: {answer:?}"
            );
        }
    }
    // Answers to bodies read to their end keep the connection (REST and
    // gRPC-Web over HTTP/1.1).
    let call = public_key_call("domain-a");
    let rest = client
        .post(server.url(call.rest_path))
        .header("content-type", "application/json")
        .body(call.json.clone())
        .send()
        .await
        .expect("rest");
    assert_eq!(rest.status(), 200);
    assert_eq!(rest.headers().get("connection"), None);
    let grpc_web = client
        .post(server.url(call.grpc_path))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(&call.message))
        .send()
        .await
        .expect("grpc-web");
    assert_eq!(grpc_web.status(), 200);
    assert_eq!(grpc_web.headers().get("connection"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_exact_origins_only() {
    let server = TestServer::start();
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                server.url("/spaceone.api.identity.v1.Token/issue"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,authorization",
            )
            .send()
    };
    let allowed = preflight("http://localhost:3000").await.expect("preflight");
    assert!(allowed.status().is_success());
    let h = allowed.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:3000");
    let allow_headers = h["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for name in [
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "token",
        "authorization",
    ] {
        assert!(allow_headers.contains(name), "{name} in {allow_headers}");
    }
    assert!(!allow_headers.contains('*'));
    for origin in [
        "http://127.0.0.1:3000",
        "http://localhost:3001",
        "https://localhost:3000",
    ] {
        let denied = preflight(origin).await.expect("preflight");
        assert!(
            denied
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}"
        );
    }
    // Real answers (REST errors included) expose the gRPC status headers.
    let response = client
        .post(server.url("/identity/v1/token/refresh"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(name), "{exposed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_json_mapping() {
    let server = TestServer::start();
    let client = reqwest::Client::new();
    let post = |path: &'static str, body: &'static str| {
        client
            .post(server.url(path))
            .header("content-type", "text/plain")
            .body(body.replace("PW", PASSWORD))
            .send()
    };
    // camelCase input, unknown fields ignored, any content type, proto names out.
    let ok = post(
        "/identity/v1/token/issue",
        r#"{"domainId":"domain-a","userId":"alice@example.com","credentials":{"password":"PW"},"refreshCount":2,"futureField":{"x":1}}"#,
    )
    .await
    .expect("post");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["content-type"], "application/json");
    let json: serde_json::Value = ok.json().await.expect("json");
    assert!(
        json["access_token"].is_string() && json["refresh_token"].is_string(),
        "{json}"
    );
    // A wrong type names the field.
    let bad = post(
        "/identity/v1/token/issue",
        r#"{"domain_id":"domain-a","timeout":"soon"}"#,
    )
    .await
    .expect("post");
    assert_eq!(bad.status().as_u16(), 400);
    let json: serde_json::Value = bad.json().await.expect("json");
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("key = timeout"),
        "{json}"
    );
    // Malformed JSON is a 400 in the same shape.
    let bad = post("/identity/v1/token/issue", r#"{"domain_id":"#)
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 400);
    let json: serde_json::Value = bad.json().await.expect("json");
    assert_eq!(
        json["details"][0]["reason"], "ERROR_INVALID_PARAMETER",
        "{json}"
    );
    // Refresh accepts an empty body and `{}`.
    for body in ["", "{}"] {
        let r = post("/identity/v1/token/refresh", body)
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"tokengate\""
        );
    }
    // Unknown route 404 and wrong method 405, same JSON shape.
    let missing = client
        .post(server.url("/identity/v1/nothing"))
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status().as_u16(), 404);
    let json: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(json["code"], 5);
    let wrong = client
        .get(server.url("/identity/v1/token/issue"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status().as_u16(), 405);
    assert_eq!(wrong.headers()["allow"], "POST");
    let json: serde_json::Value = wrong.json().await.expect("json");
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .starts_with("ERROR_METHOD_NOT_ALLOWED")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_is_honoured() {
    let server = TestServer::start_with(ServerOptions {
        bcrypt_cost: 12,
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let mut call = issue_call(&req, json);
    call.headers.push(("grpc-timeout", "20m".to_owned()));
    for proto in [Proto::WebBinaryH1, Proto::WebBinaryH2] {
        let outcome = clients.call(proto, &call).await;
        assert_eq!(
            outcome.code, 4,
            "DEADLINE_EXCEEDED over {proto:?}: {outcome:?}"
        );
    }
    let mut request = tonic::Request::new(bytes::Bytes::from(call.message.clone()));
    request.set_timeout(Duration::from_millis(20));
    let mut client = tonic::client::Grpc::new(clients.channel.clone());
    client.ready().await.expect("ready");
    let status = client
        .unary(
            request,
            "/spaceone.api.identity.v1.Token/issue"
                .parse()
                .expect("path"),
            RawCodec,
        )
        .await
        .expect_err("deadline");
    assert!(
        matches!(
            status.code(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        ),
        "{status:?}"
    );
}

#[test]
fn slow_header_senders_are_disconnected() {
    let server = TestServer::start_with(ServerOptions {
        extra_config: "[server]\nheader_read_timeout_ms = 500\nidle_timeout_ms = 1000\n".to_owned(),
        ..ServerOptions::default()
    });
    // Slowloris: start a request and never finish its headers.
    let mut slow = std::net::TcpStream::connect(server.addr).expect("connect");
    slow.write_all(b"POST /identity/v1/token/issue HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    slow.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        n == 0 || answer.starts_with("HTTP/1.1 408"),
        "closed or 408: {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed by the header read timeout"
    );
    // Silent connection (HTTP/2 preface never sent, nothing at all): closed by the idle timeout.
    let mut silent = std::net::TcpStream::connect(server.addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(6)))
        .expect("timeout");
    let started = Instant::now();
    let n = silent.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "silent connection closed"
    );
}

#[test]
fn connections_that_never_send_a_byte_get_the_header_read_timeout() {
    // A long idle timeout: only the header read timeout can close them.
    let server = TestServer::start_with(ServerOptions {
        extra_config: "[server]\nheader_read_timeout_ms = 500\nidle_timeout_ms = 60000\n"
            .to_owned(),
        ..ServerOptions::default()
    });
    let silent: Vec<_> = (0..20)
        .map(|_| std::net::TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let started = Instant::now();
    for mut connection in silent {
        connection
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let n = connection.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "silent connections closed long before the idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_openapi() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    // grpc.health.v1 over native gRPC.
    let mut health = tonic_health::pb::health_client::HealthClient::new(clients.channel.clone());
    for service in [
        "",
        "spaceone.api.identity.v1.Token",
        "spaceone.api.identity.v1.Domain",
    ] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(
            answer.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    let get = |path: &'static str| clients.h1.get(server.url(path)).send();
    assert_eq!(
        get("/healthz").await.expect("healthz").status().as_u16(),
        200
    );
    assert_eq!(get("/readyz").await.expect("readyz").status().as_u16(), 200);

    // Make some traffic, then read the counters.
    let (req, json) = issue_request("domain-a", "alice@example.com", Some("wrong"), "", 0, 0);
    let call = issue_call(&req, json);
    for proto in [Proto::Grpc, Proto::WebBinaryH1, Proto::Rest] {
        clients.call(proto, &call).await;
    }
    let metrics = get("/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for needle in [
        r#"protocol="grpc",method="/spaceone.api.identity.v1.Token/issue",code="Unauthenticated""#,
        r#"protocol="grpc-web",method="/spaceone.api.identity.v1.Token/issue",code="Unauthenticated""#,
        r#"protocol="rest",method="/identity/v1/token/issue",code="401""#,
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("tokengate_requests_total") && l.contains(needle)),
            "{needle} in\n{metrics}"
        );
    }

    // The OpenAPI document matches the real answers.
    let doc: serde_json::Value = get("/openapi.json")
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.0.3");
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .expect(name)
            .keys()
            .cloned()
            .collect()
    };
    for (path, method_json, output) in [
        (
            "/identity/v1/token/issue",
            serde_json::json!({"domain_id":"domain-a","user_id":"alice@example.com","credentials":{"password": PASSWORD}}),
            "spaceone.api.identity.v1.TokenInfo",
        ),
        (
            "/identity/v1/domain/get-public-key",
            serde_json::json!({"domain_id":"domain-a"}),
            "spaceone.api.core.v1.AuthenticationResponse",
        ),
    ] {
        let op = &doc["paths"][path]["post"];
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{output}")
        );
        let answer: serde_json::Value = clients
            .h1
            .post(server.url(path))
            .json(&method_json)
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        let mut got: Vec<String> = answer
            .as_object()
            .expect("object")
            .keys()
            .cloned()
            .collect();
        let mut want = props(output);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{path} answer fields match the schema");
    }
    assert!(doc["paths"]["/identity/v1/token/refresh"]["post"].is_object());
    // Error answers match the google.rpc.Status schema.
    let (status, error) = rest(&clients.h1, &clients.base, &call).await;
    assert_eq!(status.as_u16(), 401);
    let mut got: Vec<String> = error.as_object().expect("object").keys().cloned().collect();
    let mut want = props("google.rpc.Status");
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let info_fields = props("google.rpc.ErrorInfo");
    for key in error["details"][0].as_object().expect("detail").keys() {
        assert!(key == "@type" || info_fields.contains(key), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limit_reads_the_trusted_proxy_header() {
    let server = TestServer::start_with(ServerOptions {
        extra_config: "[limits]\nclient_ip_header = \"X-Forwarded-For\"\n".to_owned(),
        env: vec![
            (
                "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER".to_owned(),
                "1000".to_owned(),
            ),
            (
                "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP".to_owned(),
                "3".to_owned(),
            ),
        ],
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let attempt = |password: &'static str, forwarded: &'static str| {
        let (req, json) = issue_request("domain-a", "alice@example.com", Some(password), "", 0, 0);
        let mut call = issue_call(&req, json);
        // A client may send its own X-Forwarded-For: only the last entry,
        // appended by our proxy, counts.
        call.headers
            .push(("x-forwarded-for", format!("6.6.6.6, {forwarded}")));
        call
    };
    for _ in 0..3 {
        assert_eq!(
            clients
                .call(Proto::Rest, &attempt("wrong", "192.0.2.1"))
                .await
                .code,
            16
        );
    }
    assert_eq!(
        clients
            .call(Proto::Grpc, &attempt(PASSWORD, "192.0.2.1"))
            .await
            .code,
        8,
        "that client is locked"
    );
    assert!(
        clients
            .call(Proto::Grpc, &attempt(PASSWORD, "192.0.2.2"))
            .await
            .ok(),
        "another client behind the same proxy is not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_are_refused_and_the_server_stays_up() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    // 200 headers over HTTP/1.1.
    let mut request = clients
        .h1
        .post(server.url("/identity/v1/domain/get-public-key"))
        .body(r#"{"domain_id":"domain-a"}"#);
    for i in 0..200 {
        request = request.header(format!("x-filler-{i}"), "x");
    }
    let status = request.send().await.map(|r| r.status().as_u16());
    assert!(matches!(status, Ok(431) | Ok(400) | Err(_)), "{status:?}");
    // One 64 KiB header over HTTP/2.
    let huge = "y".repeat(64 * 1024);
    let status = clients
        .h2
        .post(server.url("/identity/v1/domain/get-public-key"))
        .header("x-huge", huge)
        .body(r#"{"domain_id":"domain-a"}"#)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(!matches!(status, Ok(200)), "{status:?}");
    assert_still_serving(&clients).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_or_huge_credentials_are_refused_and_the_server_stays_up() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    // REST: 10,000 levels of nesting (serde_json stops at 128) → 400.
    let deep = format!(
        r#"{{"domain_id":"domain-a","user_id":"alice@example.com","credentials":{}{}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    let response = clients
        .h1
        .post(server.url("/identity/v1/token/issue"))
        .body(deep)
        .send()
        .await
        .expect("post");
    assert!(
        matches!(response.status().as_u16(), 400 | 413),
        "{}",
        response.status()
    );
    // gRPC: a Struct nested 200 deep (prost stops at 100) → an error, no crash.
    use pbjson_types::{Struct, Value, value::Kind};
    let mut credentials = Struct::default();
    for _ in 0..200 {
        let mut outer = Struct::default();
        outer.fields.insert(
            "a".to_owned(),
            Value {
                kind: Some(Kind::StructValue(credentials)),
            },
        );
        credentials = outer;
    }
    let req = IssueTokenRequest {
        domain_id: "domain-a".to_owned(),
        user_id: "alice@example.com".to_owned(),
        credentials: Some(credentials),
        ..Default::default()
    };
    let call = issue_call(&req, serde_json::json!({}));
    let outcome = clients.call(Proto::Grpc, &call).await;
    assert!(!outcome.ok(), "{outcome:?}");
    // A 60 KiB user id (under the 64 KiB body limit) is answered normally.
    let long_user = "u".repeat(60 * 1024);
    let (req, json) = issue_request("domain-a", &long_user, Some(PASSWORD), "", 0, 0);
    let outcome = clients.call(Proto::Grpc, &issue_call(&req, json)).await;
    assert_eq!(outcome.code, 16, "unknown user: {outcome:?}");
    assert!(
        outcome.message.len() < 400,
        "the echoed user id is cut: {} bytes",
        outcome.message.len()
    );
    assert_still_serving(&clients).await;
}

/// After an attack: an honest `get_public_key` still succeeds over native
/// gRPC and over REST.
async fn assert_still_serving(clients: &Clients) {
    for proto in [Proto::Grpc, Proto::Rest] {
        let outcome = clients.call(proto, &public_key_call("domain-a")).await;
        assert!(outcome.ok(), "{proto:?} after the attack: {outcome:?}");
    }
}

/// The OpenAPI document a server serves.
async fn openapi_document(server: &TestServer) -> serde_json::Value {
    reqwest::get(server.url("/openapi.json"))
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json")
}

/// A REST POST of a raw body with extra headers: the HTTP status and the
/// JSON answer.
async fn post_json(
    server: &TestServer,
    path: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, String)],
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().post(server.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// An issue body for `domain-a` with the given password and extra fields.
fn login_body(user_id: &str, password: &str, extra: serde_json::Value) -> String {
    let mut body = serde_json::json!({
        "domain_id": "domain-a",
        "user_id": user_id,
        "credentials": {"password": password},
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string()
}

/// The statuses the document declares for `POST path`.
fn declared_statuses(doc: &serde_json::Value, path: &str) -> Vec<String> {
    doc["paths"][path]["post"]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("no responses for {path}"))
        .keys()
        .cloned()
        .collect()
}

/// The schema of a request message's field.
fn field_schema<'a>(
    doc: &'a serde_json::Value,
    message: &str,
    field: &str,
) -> &'a serde_json::Value {
    &doc["components"]["schemas"][message]["properties"][field]
}

const ISSUE_REQUEST: &str = "spaceone.api.identity.v1.IssueTokenRequest";
const AUTHENTICATION_REQUEST: &str = "spaceone.api.core.v1.AuthenticationRequest";

/// The document states what the server enforces (SPEC §1): the required
/// fields (google.api.field_behavior) as `required` with `minLength: 1`
/// (proto3 JSON cannot tell an empty string from an absent one, and the
/// server refuses both), the bounds of timeout and refresh_count, the
/// accepted user types, and how refresh takes its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_declares_required_fields_and_bounds() {
    let server = TestServer::start();
    let doc = openapi_document(&server).await;
    let required = |message: &str| -> Vec<String> {
        let mut names: Vec<String> = doc["components"]["schemas"][message]["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{message} declares no required fields"))
            .iter()
            .map(|v| v.as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        required(ISSUE_REQUEST),
        ["credentials", "domain_id", "user_id"]
    );
    assert_eq!(required(AUTHENTICATION_REQUEST), ["domain_id"]);
    for (message, field) in [
        (ISSUE_REQUEST, "domain_id"),
        (ISSUE_REQUEST, "user_id"),
        (AUTHENTICATION_REQUEST, "domain_id"),
    ] {
        let schema = field_schema(&doc, message, field);
        assert_eq!(schema["type"], "string", "{message}.{field}");
        assert_eq!(schema["minLength"], 1, "{message}.{field}");
    }
    // credentials is any object, its `password` a string: one without a
    // password is a 401 (ERROR_INVALID_CREDENTIALS), an answer, not a
    // refusal of its shape.
    let credentials = field_schema(&doc, ISSUE_REQUEST, "credentials");
    assert_eq!(
        credentials["allOf"][0]["$ref"],
        "#/components/schemas/google.protobuf.Struct"
    );
    assert_eq!(credentials["properties"]["password"]["type"], "string");
    assert!(credentials.get("required").is_none(), "{credentials}");
    // A Struct holds numbers as doubles: an integer a double cannot hold
    // exactly is refused, and the document says where that starts
    // (schemathesis found `{"credentials": {"n": [1, 2, 2^63]}}` refused).
    let value = &doc["components"]["schemas"]["google.protobuf.Value"];
    let number = value["anyOf"]
        .as_array()
        .expect("Value is one of several")
        .iter()
        .find(|branch| branch["type"] == "number")
        .expect("a number branch");
    let largest = number["maximum"].as_i64().expect("numbers are bounded");
    assert_eq!(number["minimum"], -largest);
    for (n, status) in [(largest, 200), (largest + 1, 400)] {
        let body = format!(
            r#"{{"domain_id":"domain-a","user_id":"alice@example.com","credentials":{{"password":"{PASSWORD}","n":[{n}]}}}}"#
        );
        let (got, answer) = post_json(&server, "/identity/v1/token/issue", body, &[]).await;
        assert_eq!(got, status, "credentials.n = [{n}]: {answer}");
    }
    assert_eq!(
        doc["components"]["schemas"]["google.protobuf.Struct"]["type"],
        "object"
    );
    for (field, maximum) in [("timeout", 86400), ("refresh_count", 18)] {
        let schema = field_schema(&doc, ISSUE_REQUEST, field);
        assert_eq!(
            (&schema["type"], &schema["minimum"], &schema["maximum"]),
            (
                &serde_json::json!("integer"),
                &serde_json::json!(0),
                &serde_json::json!(maximum)
            ),
            "{field}: {schema}"
        );
    }
    assert_eq!(
        field_schema(&doc, ISSUE_REQUEST, "user_type")["enum"],
        serde_json::json!(["", "USER", "LOCAL", "DOMAIN_OWNER"])
    );
    // A body is required where a field is: an empty body reads as `{}`.
    for (path, body_required) in [
        ("/identity/v1/token/issue", true),
        ("/identity/v1/domain/get-public-key", true),
        ("/identity/v1/token/refresh", false),
    ] {
        assert_eq!(
            doc["paths"][path]["post"]["requestBody"]["required"], body_required,
            "{path}"
        );
    }
    // Refresh reads its token from either header.
    let refresh = &doc["paths"]["/identity/v1/token/refresh"]["post"];
    assert_eq!(
        refresh["security"],
        serde_json::json!([{"bearer": []}, {"token": []}])
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(
        (&schemes["token"]["in"], &schemes["token"]["name"]),
        (&serde_json::json!("header"), &serde_json::json!("token"))
    );
    assert!(
        doc["paths"]["/identity/v1/token/issue"]["post"]
            .get("security")
            .is_none()
    );
    // Every error answer has the google.rpc.Status body; a 401 says how to
    // authenticate.
    for path in [
        "/identity/v1/token/issue",
        "/identity/v1/token/refresh",
        "/identity/v1/domain/get-public-key",
    ] {
        let responses = &doc["paths"][path]["post"]["responses"];
        for status in declared_statuses(&doc, path) {
            if status == "200" {
                continue;
            }
            assert_eq!(
                responses[&status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/google.rpc.Status",
                "{path} {status}"
            );
        }
        assert_eq!(
            responses["401"]["headers"]["WWW-Authenticate"]["required"], true,
            "{path}"
        );
    }
}

/// The bounds a deployment configures are the bounds its document states,
/// and the server holds them exactly: the largest value the document allows
/// succeeds, the next one is refused with a declared status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_bounds_follow_the_running_configuration() {
    let mut env = default_test_env();
    for (key, value) in [
        ("TOKENGATE_TOKEN_ACCESS_TIMEOUT", "300"),
        ("TOKENGATE_TOKEN_MAX_ACCESS_TIMEOUT", "600"),
        ("TOKENGATE_TOKEN_REFRESH_TTL", "5"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    let server = TestServer::start_with(ServerOptions {
        env,
        ..ServerOptions::default()
    });
    let doc = openapi_document(&server).await;
    let issue = "/identity/v1/token/issue";
    let declared = declared_statuses(&doc, issue);
    for (field, refused_status) in [("timeout", 400), ("refresh_count", 401)] {
        let maximum = field_schema(&doc, ISSUE_REQUEST, field)["maximum"]
            .as_i64()
            .unwrap_or_else(|| panic!("{field} has no maximum"));
        assert_eq!(maximum, if field == "timeout" { 600 } else { 5 });
        for (value, status) in [(0, 200), (maximum, 200), (maximum + 1, refused_status)] {
            let body = login_body(
                "alice@example.com",
                PASSWORD,
                serde_json::json!({ field: value }),
            );
            let (got, answer) = post_json(&server, issue, body, &[]).await;
            assert_eq!(got, status, "{field} = {value}: {answer}");
            assert!(declared.contains(&got.to_string()), "{got} undeclared");
        }
        let below = login_body(
            "alice@example.com",
            PASSWORD,
            serde_json::json!({ field: -1 }),
        );
        assert_eq!(post_json(&server, issue, below, &[]).await.0, 400);
    }
}

/// A refresh token naming a domain that does not exist, signed by nobody:
/// the domain is looked up before the signature (SPEC §2 refresh rule 1).
fn token_of_unknown_domain() -> String {
    use base64::Engine as _;
    let b64 = |json: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    };
    format!(
        "{}.{}.AAAA",
        b64(serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "k"})),
        b64(serde_json::json!({"cat": "REFRESH_TOKEN", "did": "nope", "aud": "u"}))
    )
}

/// One REST call of [`every_rest_error_status_is_declared_for_its_operation`]
/// and the status it must get.
struct ErrorRow {
    name: &'static str,
    path: &'static str,
    body: String,
    headers: Vec<(&'static str, String)>,
    status: u16,
}

impl ErrorRow {
    fn new(name: &'static str, path: &'static str, body: impl Into<String>, status: u16) -> Self {
        Self {
            name,
            path,
            body: body.into(),
            headers: Vec::new(),
            status,
        }
    }

    fn headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers = headers;
        self
    }
}

/// SPEC §2's error rows over REST, each checked against the document: the
/// status the server gives is one the document declares for that operation
/// (no `default` catch-all to hide behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_error_status_is_declared_for_its_operation() {
    const ISSUE: &str = "/identity/v1/token/issue";
    const REFRESH: &str = "/identity/v1/token/refresh";
    const PUBLIC_KEY: &str = "/identity/v1/domain/get-public-key";
    let mut env = default_test_env();
    env.push((
        "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER".to_owned(),
        "3".to_owned(),
    ));
    let server = TestServer::start_with(ServerOptions {
        env,
        ..ServerOptions::default()
    });
    let doc = openapi_document(&server).await;
    let (status, tokens) = post_json(
        &server,
        ISSUE,
        login_body("alice@example.com", PASSWORD, serde_json::json!({})),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let token = |kind: &str| tokens[kind].as_str().expect("a token").to_owned();
    let (access, refresh) = (token("access_token"), token("refresh_token"));
    let alice = |extra: serde_json::Value| login_body("alice@example.com", PASSWORD, extra);
    let as_user = |user: &str, password: &str| login_body(user, password, serde_json::json!({}));
    let bearer = |token: &str| vec![("authorization", format!("Bearer {token}"))];
    let big = " ".repeat(70 * 1024);
    let mut rows = vec![
        ErrorRow::new(
            "missing credentials",
            ISSUE,
            r#"{"domain_id":"domain-a","user_id":"u"}"#,
            400,
        ),
        ErrorRow::new(
            "missing domain_id",
            ISSUE,
            r#"{"user_id":"u","credentials":{}}"#,
            400,
        ),
        ErrorRow::new("empty user_id", ISSUE, as_user("", PASSWORD), 400),
        ErrorRow::new(
            "bad user_type",
            ISSUE,
            alice(serde_json::json!({"user_type": "ROBOT"})),
            400,
        ),
        ErrorRow::new(
            "negative timeout",
            ISSUE,
            alice(serde_json::json!({"timeout": -1})),
            400,
        ),
        ErrorRow::new(
            "timeout above max",
            ISSUE,
            alice(serde_json::json!({"timeout": 86401})),
            400,
        ),
        ErrorRow::new(
            "negative refresh_count",
            ISSUE,
            alice(serde_json::json!({"refresh_count": -1})),
            400,
        ),
        ErrorRow::new(
            "refresh_count above max",
            ISSUE,
            alice(serde_json::json!({"refresh_count": 19})),
            401,
        ),
        ErrorRow::new(
            "unknown domain",
            ISSUE,
            r#"{"domain_id":"nope","user_id":"u","credentials":{}}"#,
            400,
        ),
        ErrorRow::new(
            "disabled domain",
            ISSUE,
            as_user("carol@example.com", PASSWORD).replace("domain-a", "domain-off"),
            401,
        ),
        ErrorRow::new(
            "wrong password",
            ISSUE,
            as_user("alice@example.com", "wrong"),
            401,
        ),
        ErrorRow::new(
            "no password key",
            ISSUE,
            r#"{"domain_id":"domain-a","user_id":"u","credentials":{}}"#,
            401,
        ),
        ErrorRow::new(
            "unknown user",
            ISSUE,
            as_user("nobody@example.com", PASSWORD),
            401,
        ),
        ErrorRow::new("api user", ISSUE, as_user("robot", PASSWORD), 401),
        ErrorRow::new(
            "disabled user",
            ISSUE,
            as_user("bob@example.com", PASSWORD),
            401,
        ),
        ErrorRow::new(
            "wrong type",
            ISSUE,
            r#"{"domain_id":"domain-a","timeout":"soon"}"#,
            400,
        ),
        ErrorRow::new("malformed JSON", ISSUE, r#"{"domain_id":"#, 400),
        ErrorRow::new("body too large", ISSUE, big.clone(), 413),
        ErrorRow::new("refresh: absent", REFRESH, "", 401),
        ErrorRow::new("refresh: not a jwt", REFRESH, "", 401).headers(bearer("not-a-jwt")),
        ErrorRow::new("refresh: empty token", REFRESH, "", 401)
            .headers(vec![("token", String::new())]),
        ErrorRow::new("refresh: access token", REFRESH, "", 401).headers(bearer(&access)),
        ErrorRow::new("refresh: unknown domain", REFRESH, "", 400)
            .headers(bearer(&token_of_unknown_domain())),
        ErrorRow::new("refresh: body not an object", REFRESH, "[]", 400).headers(bearer(&refresh)),
        ErrorRow::new("public key: missing domain_id", PUBLIC_KEY, "{}", 400),
        ErrorRow::new(
            "public key: unknown domain",
            PUBLIC_KEY,
            r#"{"domain_id":"nope"}"#,
            400,
        ),
        ErrorRow::new("public key: body too large", PUBLIC_KEY, big, 413),
    ];
    // A spent token: refreshed once, then replayed.
    let (status, _) = post_json(&server, REFRESH, "", &bearer(&refresh)).await;
    assert_eq!(status, 200);
    rows.push(ErrorRow::new("refresh: spent token", REFRESH, "", 401).headers(bearer(&refresh)));
    // Failed logins past the per-user limit (3): locked.
    for _ in 0..3 {
        rows.push(ErrorRow::new(
            "failed login",
            ISSUE,
            as_user("lock-me", "wrong"),
            401,
        ));
    }
    rows.push(ErrorRow::new(
        "locked",
        ISSUE,
        as_user("lock-me", "wrong"),
        429,
    ));
    for row in rows {
        let (got, answer) = post_json(&server, row.path, row.body, &row.headers).await;
        assert_eq!(got, row.status, "{}: {answer}", row.name);
        assert!(
            declared_statuses(&doc, row.path).contains(&got.to_string()),
            "{}: {got} is not declared for {}",
            row.name,
            row.path
        );
        assert!(
            answer["code"].is_i64() && answer["message"].is_string(),
            "{}: {answer}",
            row.name
        );
    }

    // What only a broken or overloaded deployment answers, one server each.
    let broken = |(key, value): (&str, &str), bcrypt_cost: u32| {
        let mut env = default_test_env();
        env.push((key.to_owned(), value.to_owned()));
        TestServer::start_with(ServerOptions {
            env,
            bcrypt_cost,
            ..ServerOptions::default()
        })
    };
    let good_login = as_user("alice@example.com", PASSWORD);
    for (name, server, path, body, status) in [
        // No keys and none generated: nothing to sign or publish with.
        (
            "no keys",
            broken(("TOKENGATE_KEYS_GENERATE_MISSING", "false"), 4),
            PUBLIC_KEY,
            r#"{"domain_id":"domain-a"}"#.to_owned(),
            500,
        ),
        // Nothing listens on port 1: the store is unreachable.
        (
            "store down",
            broken(("TOKENGATE_STORE_REDIS_URL", "redis://127.0.0.1:1/0"), 4),
            ISSUE,
            good_login.clone(),
            503,
        ),
        // A password check (bcrypt cost 12) outlives a 50 ms deadline.
        (
            "deadline",
            broken(("TOKENGATE_SERVER_DEFAULT_TIMEOUT_MS", "50"), 12),
            ISSUE,
            good_login.clone(),
            504,
        ),
    ] {
        let (got, answer) = post_json(&server, path, body, &[]).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert!(
            declared_statuses(&openapi_document(&server).await, path).contains(&got.to_string()),
            "{name}: {got} is not declared for {path}"
        );
    }
}

/// `google.protobuf.Empty` ignores unknown fields like every other request
/// message (SPEC §1): a refresh body with one is no refusal, whatever the
/// header says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ignores_unknown_body_fields() {
    let server = TestServer::start();
    let path = "/identity/v1/token/refresh";
    let body = login_body("alice@example.com", PASSWORD, serde_json::json!({}));
    let (status, tokens) = post_json(&server, "/identity/v1/token/issue", body, &[]).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let unknown = r#"{"x": 1, "nested": {"y": [1, {"z": null}]}}"#;
    let (status, answer) = post_json(
        &server,
        path,
        unknown,
        &[("authorization", format!("Bearer {refresh}"))],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["refresh_token"].is_string(), "{answer}");
    // Without a token: the same 401 as an empty body.
    let (empty_status, empty_answer) = post_json(&server, path, "", &[]).await;
    let (status, answer) = post_json(&server, path, r#"{"x":1}"#, &[]).await;
    assert_eq!((status, &answer), (401, &empty_answer));
    assert_eq!(empty_status, 401);
    assert_eq!(
        answer["details"][0]["reason"], "ERROR_INVALID_REFRESH_TOKEN",
        "{answer}"
    );
}
