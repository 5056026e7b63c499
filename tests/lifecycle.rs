//! Process lifecycle: SIGTERM drains in-flight calls and exits 0; the
//! directory reloads on change and on SIGHUP, keeping the old one when the
//! new file is broken.

use std::time::{Duration, Instant};

use tokengate_test_support::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_calls_then_exits_zero() {
    // bcrypt cost 13 makes a login take long enough to signal mid-call.
    let mut server = TestServer::start_with(ServerOptions {
        bcrypt_cost: 13,
        extra_config: "[server]\ndrain_timeout_ms = 10000\n".to_owned(),
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let call = issue_call(&req, json);
    let started = Instant::now();
    let in_flight = {
        let channel = clients.channel.clone();
        tokio::spawn(async move { grpc(channel, &call).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.signal("TERM");
    let outcome = in_flight.await.expect("join");
    assert!(outcome.ok(), "the in-flight login completes: {outcome:?}");
    assert!(started.elapsed() > Duration::from_millis(150));

    // New connections are refused once the listener closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        std::net::TcpStream::connect(server.addr).is_err(),
        "listener closed"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "exited within the drain timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_reloads_on_change_and_sighup_and_survives_a_broken_file() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    let login = |user: &'static str| {
        let (req, json) = issue_request("domain-a", user, Some(PASSWORD), "", 0, 0);
        issue_call(&req, json)
    };
    assert_eq!(
        clients
            .call(Proto::Rest, &login("dana@example.com"))
            .await
            .code,
        16
    );

    // A new user appears after the file changes (polled).
    let hash = tokengate_directory::hash_bcrypt(PASSWORD, 4).expect("hash");
    let with_dana = format!(
        "{}\n[[domain]]\ndomain_id = \"domain-new\"\n\n[[domain.user]]\nuser_id = \"dana@example.com\"\npassword_hash = \"{hash}\"\n",
        directory_toml(4)
    )
    .replacen(
        "[[domain.user]]\nuser_id = \"bob@example.com\"",
        &format!("[[domain.user]]\nuser_id = \"dana@example.com\"\npassword_hash = \"{hash}\"\n\n[[domain.user]]\nuser_id = \"bob@example.com\""),
        1,
    );
    std::fs::write(server.path("users.toml"), &with_dana).expect("write");
    wait_for(|| async {
        clients
            .call(Proto::Rest, &login("dana@example.com"))
            .await
            .ok()
    })
    .await;
    // A new domain got keys generated.
    wait_for(|| async {
        clients
            .call(Proto::Rest, &public_key_call("domain-new"))
            .await
            .ok()
    })
    .await;

    // A broken file keeps the previous directory, and says why in the log.
    std::fs::write(server.path("users.toml"), "[[domain]\nthis is not toml").expect("write");
    server.signal("HUP");
    wait_for(|| async { server.logs().contains("directory reload failed") }).await;
    assert!(
        clients
            .call(Proto::Rest, &login("dana@example.com"))
            .await
            .ok(),
        "old directory kept"
    );

    // SIGHUP picks up a repaired file at once.
    std::fs::write(server.path("users.toml"), directory_toml(4)).expect("write");
    server.signal("HUP");
    wait_for(|| async {
        clients
            .call(Proto::Rest, &login("dana@example.com"))
            .await
            .code
            == 16
    })
    .await;
}

async fn wait_for<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
