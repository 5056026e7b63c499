//! Traces: with `telemetry.otlp_endpoint` set, every call becomes a server
//! span that joins the caller's W3C `traceparent` on all three protocols,
//! with child spans for the password check, signing and store calls,
//! exported over OTLP/HTTP to a collector this test runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokengate_test_support::prelude::*;

/// A minimal OTLP/HTTP collector: keeps every span it is sent.
async fn collector() -> (u16, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let sink = Arc::clone(&spans);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut all = sink.lock().expect("lock");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        all.extend(scope.spans);
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_is_joined_on_every_protocol_and_spans_are_exported() {
    let (port, spans) = collector().await;
    let server = TestServer::start_with(ServerOptions {
        extra_config: format!(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:{port}/v1/traces\"\nservice_name = \"tokengate-test\"\n"
        ),
        env: [
            default_test_env(),
            vec![("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned())],
        ]
        .concat(),
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let traces = [
        (
            Proto::Grpc,
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
        ),
        (
            Proto::WebBinaryH1,
            "5bf92f3577b34da6a3ce929d0e0e4737",
            "10f067aa0ba902b8",
        ),
        (
            Proto::Rest,
            "6bf92f3577b34da6a3ce929d0e0e4738",
            "20f067aa0ba902b9",
        ),
    ];
    for (proto, trace_id, parent) in traces {
        let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
        let mut call = issue_call(&req, json);
        call.headers
            .push(("traceparent", format!("00-{trace_id}-{parent}-01")));
        let outcome = clients.call(proto, &call).await;
        assert!(outcome.ok(), "{proto:?}: {outcome:?}");
    }

    // The batch exporter sends within ~100 ms; allow for a busy machine.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let have: Vec<Span> = spans.lock().expect("lock").clone();
        let done = traces.iter().all(|(_, trace_id, _)| {
            let names: Vec<&str> = have
                .iter()
                .filter(|s| hex(&s.trace_id) == *trace_id)
                .map(|s| s.name.as_str())
                .collect();
            ["call", "password_check", "sign", "store"]
                .iter()
                .all(|n| names.contains(n))
        });
        if done {
            for (proto, trace_id, parent) in traces {
                let call = have
                    .iter()
                    .find(|s| hex(&s.trace_id) == trace_id && s.name == "call")
                    .expect("server span");
                assert_eq!(
                    hex(&call.parent_span_id),
                    parent,
                    "{proto:?}: the call joins the caller's span"
                );
                for child in have
                    .iter()
                    .filter(|s| hex(&s.trace_id) == trace_id && s.name != "call")
                {
                    assert!(!child.parent_span_id.is_empty(), "{}", child.name);
                }
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spans not exported in time; got {:?}",
            have.iter()
                .map(|s| (&s.name, hex(&s.trace_id)))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
