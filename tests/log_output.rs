//! What the server writes to its log, as an operator's collector sees it:
//! stderr is a file here (in Kubernetes, a pipe), so there are no colour
//! escape codes in either format, and at the default level each call writes
//! exactly one line (the access line), whatever the call did.

use std::time::{Duration, Instant};

use tokengate_test_support::prelude::*;

/// Starts a server logging at the default level in `format`.
fn server(format: &str) -> TestServer {
    TestServer::start_with(ServerOptions {
        env: [
            default_test_env(),
            vec![
                ("TOKENGATE_LOG_FORMAT".to_owned(), format.to_owned()),
                ("TOKENGATE_LOG_LEVEL".to_owned(), "info".to_owned()),
            ],
        ]
        .concat(),
        ..ServerOptions::default()
    })
}

/// The log lines that mention `needle` (lower case: gRPC and REST name the
/// method in different cases), once the background writer has
/// written at least `at_least` of them and then nothing more for a while.
async fn settled_lines(server: &TestServer, needle: &str, at_least: usize) -> Vec<String> {
    let matching = || -> Vec<String> {
        server
            .logs()
            .lines()
            .filter(|l| l.to_lowercase().contains(needle))
            .map(str::to_owned)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while matching().len() < at_least && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything still queued would show up within this pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    matching()
}

async fn one_line_per_call_without_colour(format: &str) {
    let server = server(format);
    let clients = Clients::new(&server).await;
    let mut refresh_token = String::new();
    for proto in [Proto::Grpc, Proto::WebBinaryH1, Proto::Rest] {
        let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
        let issued = clients.call(proto, &issue_call(&req, json)).await;
        assert!(issued.ok(), "{format} {proto:?}: {issued:?}");
        let pair = issued.decode::<TokenInfo>();
        let refreshed = clients
            .call(
                proto,
                &refresh_call(vec![("token", pair.refresh_token.clone())]),
            )
            .await;
        assert!(refreshed.ok(), "{format} {proto:?}: {refreshed:?}");
        refresh_token = pair.refresh_token;
    }
    // A failed call is one line too: a wrong password, and a replay that
    // ends a family.
    let (req, json) = issue_request("domain-a", "alice@example.com", Some("wrong"), "", 0, 0);
    assert!(
        !clients
            .call(Proto::Rest, &issue_call(&req, json))
            .await
            .ok()
    );
    assert!(
        !clients
            .call(Proto::Rest, &refresh_call(vec![("token", refresh_token)]))
            .await
            .ok()
    );

    let issue_lines = settled_lines(&server, "token/issue", 4).await;
    assert_eq!(issue_lines.len(), 4, "{format}: {issue_lines:#?}");
    let refresh_lines = settled_lines(&server, "token/refresh", 4).await;
    // The replay's audit line (a warning, not per call) names the reuse.
    let per_call: Vec<_> = refresh_lines
        .iter()
        .filter(|l| !l.contains("reuse"))
        .collect();
    assert_eq!(per_call.len(), 4, "{format}: {refresh_lines:#?}");
    let logs = server.logs();
    assert!(
        !logs.contains('\u{1b}'),
        "{format}: colour escape codes in a log file:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_log_has_one_line_per_call_and_no_colour() {
    one_line_per_call_without_colour("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_has_one_line_per_call_and_no_colour() {
    one_line_per_call_without_colour("json").await;
}

/// The background writer's drop counter is exported (zero here: nothing
/// was dropped), so an operator can alert on lost lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_log_lines_are_counted() {
    let server = server("json");
    let clients = Clients::new(&server).await;
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    assert!(
        clients
            .call(Proto::Grpc, &issue_call(&req, json))
            .await
            .ok()
    );
    let metrics = server.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tokengate_log_lines_dropped_total 0"),
        "{metrics}"
    );
}
