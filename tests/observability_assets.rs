//! The Grafana dashboard and the Prometheus alert rules in
//! `deploy/observability/` parse, and every metric they query is one the
//! binary really exports (scraped from a server after real traffic, and
//! from one whose LDAP directory went away).

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};

use tokengate_test_support::prelude::*;

fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("tokengate_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &expr[start..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_owned());
        i = end;
    }
    names
}

fn queried_metrics() -> BTreeSet<String> {
    let root = repo_root().join("deploy/observability");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana-dashboard.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            names.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("prometheus-rules.yaml")).expect("rules"),
    )
    .expect("rules YAML");
    let groups = rules["groups"].as_sequence().expect("groups");
    for group in groups {
        for rule in group["rules"].as_sequence().expect("rules") {
            assert!(
                rule["alert"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("Tokengate")),
                "{rule:?}"
            );
            assert!(rule["labels"]["severity"].as_str().is_some(), "{rule:?}");
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{rule:?}"
            );
            names.extend(metric_names(rule["expr"].as_str().expect("expr")));
        }
    }
    names
}

/// The metrics an LDAP directory exports after a login, a refresh and its
/// server going away: the directory panel and alerts query them.
async fn ldap_outage_metrics() -> BTreeSet<String> {
    let mut ldap = LdapServer::start(PASSWORD);
    let server = TestServer::start_ldap(&ldap, ServerOptions::default());
    let clients = Clients::new(&server).await;
    let login = clients
        .issue(Proto::Grpc, "domain-a", "alice@example.com", PASSWORD)
        .await;
    assert!(login.ok(), "{login:?}");
    let refresh_token = login.decode::<TokenInfo>().refresh_token;
    let refreshed = clients.refresh(Proto::Grpc, &refresh_token).await;
    assert!(refreshed.ok(), "{refreshed:?}");
    ldap.stop();
    // Past a health check (500 ms) and a few snapshot reads (250 ms).
    within(
        std::time::Duration::from_secs(5),
        "down, reads failing",
        || async {
            server.metric("tokengate_directory_sync_errors_total").await >= 1.0
                && server.metric("tokengate_directory_up").await == 0.0
        },
    )
    .await;
    let scraped = server.metrics_text().await;
    metric_names(&scraped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_query_metrics_the_binary_exports() {
    let queried = queried_metrics();
    assert!(queried.len() >= 10, "{queried:?}");

    // Traffic that makes every metric appear: logins (good and bad),
    // refresh, replay (reuse, revocation), a lockout, a broken directory.
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            (
                "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER".to_owned(),
                "2".to_owned(),
            ),
            (
                "TOKENGATE_TOKEN_PASSWORD_WORKERS".to_owned(),
                "1".to_owned(),
            ),
            ("TOKENGATE_TOKEN_PASSWORD_QUEUE".to_owned(), "1".to_owned()),
            // One protocol fault throttles its address.
            ("TOKENGATE_LIMITS_SOURCE_FAULTS".to_owned(), "1".to_owned()),
        ],
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let pair = clients
        .call(Proto::Grpc, &issue_call(&req, json))
        .await
        .decode::<TokenInfo>();
    assert!(
        clients
            .call(
                Proto::Rest,
                &refresh_call(vec![("token", pair.refresh_token.clone())])
            )
            .await
            .ok()
    );
    clients
        .call(
            Proto::Rest,
            &refresh_call(vec![("token", pair.refresh_token)]),
        )
        .await;
    for _ in 0..3 {
        let (req, json) = issue_request("domain-a", "bob@example.com", Some("wrong"), "", 0, 0);
        clients.call(Proto::Rest, &issue_call(&req, json)).await;
    }
    // Saturate the one-worker, one-slot password pool.
    let burst = futures::future::join_all((0..8).map(|i| {
        let clients = &clients;
        async move {
            let (req, json) = issue_request("domain-a", &format!("user-{i}"), Some("x"), "", 0, 0);
            clients.call(Proto::Grpc, &issue_call(&req, json)).await
        }
    }))
    .await;
    assert!(
        burst.iter().any(|o| o.code == 8),
        "some logins were refused by the full pool"
    );
    // A malformed request from another loopback address (the honest
    // clients above keep theirs): a client fault, a throttled address, and
    // its next connection refused.
    let attacker = std::net::IpAddr::from([127, 0, 0, 2]);
    for request in [
        &b"\x00\x01 not http\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\n\r\n",
    ] {
        let mut stream = connect_from(attacker, server.addr);
        let _ = stream.write_all(request);
        let _ = stream.read_to_end(&mut Vec::new());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    std::fs::write(server.path("users.toml"), "not [ toml").expect("write");
    server.signal("HUP");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;

    let scraped = server.metrics_text().await;
    let mut exported = metric_names(&scraped);
    exported.extend(ldap_outage_metrics().await);
    // Only an outage produces store errors; tests/redis_state.rs covers it.
    let outage_only: BTreeSet<String> = ["tokengate_store_errors_total".to_owned()].into();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|m| !exported.contains(*m) && !outage_only.contains(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\nexported: {exported:?}"
    );
}
