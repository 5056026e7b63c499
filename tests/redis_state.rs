//! Refresh state in a real Redis, through the real binary: instances
//! sharing one Redis, outages (killed and hung Redis), TTL hygiene, lockout
//! under parallel guessing, and one winner among parallel refreshes.

use std::time::{Duration, Instant};

use tokengate_test_support::prelude::*;
use tokengate_test_support::redis_server::RedisServer;

/// Options for a server on `redis`. The store timeout is generous: 200
/// parallel calls on a busy 2-core CI machine must not time out (the
/// outage tests set a short one).
fn with_redis(redis: &RedisServer, prefix: &str, extra: &str) -> ServerOptions {
    with_redis_timeout(redis, prefix, extra, 2000)
}

fn with_redis_timeout(
    redis: &RedisServer,
    prefix: &str,
    extra: &str,
    timeout_ms: u64,
) -> ServerOptions {
    ServerOptions {
        extra_config: format!(
            "[store]\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\ntimeout_ms = {timeout_ms}\n{extra}",
            redis.url()
        ),
        ..ServerOptions::default()
    }
}

async fn login(clients: &Clients) -> TokenInfo {
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let outcome = clients.call(Proto::Rest, &issue_call(&req, json)).await;
    assert!(outcome.ok(), "{outcome:?}");
    outcome.decode::<TokenInfo>()
}

async fn refresh(clients: &Clients, proto: Proto, token: &str) -> Outcome {
    clients
        .call(proto, &refresh_call(vec![("token", token.to_owned())]))
        .await
}

const INVALID: &str = "ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis() {
    let redis = RedisServer::start();
    let a = TestServer::start_with(with_redis(&redis, "tg:", ""));
    let b = TestServer::start_with(ServerOptions {
        // The same keys and the same directory (password hashes) as A.
        keys_dir: Some(a.keys_dir()),
        directory: Some(std::fs::read_to_string(a.path("users.toml")).expect("A's directory")),
        ..with_redis(&redis, "tg:", "")
    });
    let (ca, cb) = (Clients::new(&a).await, Clients::new(&b).await);
    let first = login(&ca).await;
    // Issued on A, refreshed on B.
    let on_b = refresh(&cb, Proto::Grpc, &first.refresh_token).await;
    assert!(on_b.ok(), "{on_b:?}\nA: {}\nB: {}", a.logs(), b.logs());
    let successor = on_b.decode::<TokenInfo>().refresh_token;
    // Replayed on A: detected, and the family (B's successor too) is revoked.
    let replay = refresh(&ca, Proto::Rest, &first.refresh_token).await;
    assert_eq!(replay.message, INVALID);
    let after = refresh(&cb, Proto::WebBinaryH1, &successor).await;
    assert_eq!(after.message, INVALID, "family revoked everywhere");
    // Another family of the same user is untouched.
    let other = login(&cb).await;
    assert!(refresh(&ca, Proto::Grpc, &other.refresh_token).await.ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_with_503_and_recovers() {
    let mut redis = RedisServer::start();
    let server = TestServer::start_with(with_redis_timeout(&redis, "tg:", "", 300));
    let clients = Clients::new(&server).await;
    let before = login(&clients).await;
    let ready = || async {
        clients
            .h1
            .get(server.url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 200);

    redis.kill();
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let issue = issue_call(&req, json);
    for proto in [Proto::Grpc, Proto::WebBinaryH2, Proto::Rest] {
        let outcome = clients.call(proto, &issue).await;
        assert_eq!(outcome.code, 14, "UNAVAILABLE over {proto:?}: {outcome:?}");
        assert!(
            outcome.message.starts_with("ERROR_UNAVAILABLE"),
            "{outcome:?}"
        );
        assert!(
            !outcome.message.to_lowercase().contains("redis"),
            "no backend detail leaks: {outcome:?}"
        );
        let refreshed = refresh(&clients, proto, &before.refresh_token).await;
        assert_eq!(
            refreshed.code, 14,
            "refresh during an outage is 503, never 401: {refreshed:?}"
        );
    }
    let (status, _) = rest(&clients.h1, &clients.base, &issue).await;
    assert_eq!(status.as_u16(), 503);
    assert_eq!(ready().await, 503);
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("tokengate_store_errors_total{"),
        "store errors are counted"
    );
    // grpc.health.v1 turns NOT_SERVING for the Token service.
    let health = tonic_health::pb::health_client::HealthClient::new(clients.channel.clone());
    let token_health = |mut h: tonic_health::pb::health_client::HealthClient<
        tonic::transport::Channel,
    >| async move {
        h.check(tonic_health::pb::HealthCheckRequest {
            service: "spaceone.api.identity.v1.Token".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while token_health(health.clone()).await
        != tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    {
        assert!(Instant::now() < deadline, "health turned NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Still alive (liveness), and get_public_key needs no store.
    assert_eq!(
        clients
            .h1
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status()
            .as_u16(),
        200
    );
    assert!(
        clients
            .call(Proto::Grpc, &public_key_call("domain-a"))
            .await
            .ok()
    );

    // Redis comes back (empty): tokengate recovers without a restart.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !clients.call(Proto::Rest, &issue).await.ok() {
        assert!(Instant::now() < deadline, "recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ready().await, 200);
    let fresh = login(&clients).await;
    assert!(
        refresh(&clients, Proto::Grpc, &fresh.refresh_token)
            .await
            .ok()
    );
    while token_health(health.clone()).await
        != tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    {
        assert!(Instant::now() < deadline, "health SERVING again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_redis_answers_503_within_the_timeout() {
    let redis = RedisServer::start();
    let server = TestServer::start_with(with_redis_timeout(&redis, "tg:", "", 300));
    let clients = Clients::new(&server).await;
    let token = login(&clients).await.refresh_token;
    redis.freeze();
    let started = Instant::now();
    let outcome = refresh(&clients, Proto::Rest, &token).await;
    let elapsed = started.elapsed();
    redis.thaw();
    assert_eq!(outcome.code, 14, "{outcome:?}");
    assert!(
        elapsed < Duration::from_secs(3),
        "bounded by store.timeout_ms: {elapsed:?}"
    );
    // Once it answers again, the same token still refreshes: nothing was spent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = refresh(&clients, Proto::Grpc, &token).await;
        if outcome.ok() {
            break;
        }
        assert_eq!(
            outcome.code, 14,
            "only UNAVAILABLE while recovering: {outcome:?}"
        );
        assert!(Instant::now() < deadline, "recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_refreshes_of_one_token() {
    let redis = RedisServer::start();
    // reuse_grace 0: exactly one winner.
    let strict = TestServer::start_with(with_redis(&redis, "strict:", ""));
    let clients = Clients::new(&strict).await;
    let token = login(&clients).await.refresh_token;
    let results = futures::future::join_all((0..200).map(|i| {
        let proto = if i % 2 == 0 { Proto::Grpc } else { Proto::Rest };
        let clients = &clients;
        let token = token.clone();
        async move { refresh(clients, proto, &token).await }
    }))
    .await;
    assert_eq!(results.iter().filter(|o| o.ok()).count(), 1, "one winner");
    let odd: Vec<_> = results
        .iter()
        .filter(|o| !o.ok() && o.message != INVALID)
        .collect();
    assert!(odd.is_empty(), "{odd:?}\n{}", strict.logs());

    // reuse_grace 10 s: every duplicate gets the winner's answer.
    let lenient = TestServer::start_with(ServerOptions {
        env: [
            default_test_env(),
            vec![("TOKENGATE_TOKEN_REUSE_GRACE".to_owned(), "10".to_owned())],
        ]
        .concat(),
        ..with_redis(&redis, "lenient:", "")
    });
    let clients = Clients::new(&lenient).await;
    let first = login(&clients).await;
    let results = futures::future::join_all(
        (0..200).map(|_| refresh(&clients, Proto::Grpc, &first.refresh_token)),
    )
    .await;
    assert!(
        results.iter().all(Outcome::ok),
        "{:?}",
        results.iter().find(|o| !o.ok())
    );
    let pairs: Vec<TokenInfo> = results.iter().map(|o| o.decode::<TokenInfo>()).collect();
    assert!(pairs.windows(2).all(|w| w[0] == w[1]), "identical pairs");
    // Nothing was revoked: the shared successor refreshes.
    assert!(
        refresh(&clients, Proto::Rest, &pairs[0].refresh_token)
            .await
            .ok()
    );
}

/// Many parallel logins with the right password (a user opening many tabs,
/// a batch job) all succeed with the shipped limits, on both stores, and
/// count nothing toward a lock: correct logins only take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_parallel_right_logins_all_succeed() {
    let redis = RedisServer::start();
    for (store, options) in [
        ("memory", ServerOptions::default()),
        ("redis", with_redis(&redis, "tg:", "")),
    ] {
        let server = TestServer::start_with(options);
        let clients = Clients::new(&server).await;
        let logins = futures::future::join_all((0..64).map(|i| {
            let clients = &clients;
            async move {
                let (req, json) =
                    issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
                let proto = if i % 2 == 0 { Proto::Grpc } else { Proto::Rest };
                clients.call(proto, &issue_call(&req, json)).await
            }
        }))
        .await;
        let refused: Vec<_> = logins.iter().filter(|o| !o.ok()).collect();
        assert!(refused.is_empty(), "{store}: {refused:?}");
        // Nothing was counted: the limit's ten wrong guesses still reach
        // the password check.
        for _ in 0..10 {
            let (req, json) =
                issue_request("domain-a", "alice@example.com", Some("wrong"), "", 0, 0);
            let outcome = clients.call(Proto::Rest, &issue_call(&req, json)).await;
            assert_eq!(
                outcome.reason.as_deref(),
                Some("ERROR_AUTHENTICATION_FAILURE"),
                "{store}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_holds_under_fifty_parallel_guesses() {
    let redis = RedisServer::start();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            (
                "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_USER".to_owned(),
                "10".to_owned(),
            ),
            (
                "TOKENGATE_LIMITS_LOGIN_FAILURES_PER_IP".to_owned(),
                "1000".to_owned(),
            ),
            (
                "TOKENGATE_TOKEN_PASSWORD_QUEUE".to_owned(),
                "100".to_owned(),
            ),
        ],
        ..with_redis(&redis, "tg:", "")
    });
    let clients = Clients::new(&server).await;
    let guesses = futures::future::join_all((0..50).map(|i| {
        let clients = &clients;
        async move {
            let (req, json) = issue_request(
                "domain-a",
                "alice@example.com",
                Some(&format!("guess-{i}")),
                "",
                0,
                0,
            );
            rest(&clients.h1, &clients.base, &issue_call(&req, json)).await
        }
    }))
    .await;
    let unauthorized = guesses.iter().filter(|(s, _)| s.as_u16() == 401).count();
    let locked: Vec<_> = guesses.iter().filter(|(s, _)| s.as_u16() == 429).collect();
    assert_eq!((unauthorized, locked.len()), (10, 40), "{guesses:?}");
    assert!(
        locked
            .iter()
            .all(|(_, j)| j["details"][0]["reason"] == "ERROR_LOGIN_LOCKED")
    );
    // The right password is locked out too, with Retry-After.
    let response = clients
        .h1
        .post(server.url("/identity/v1/token/issue"))
        .json(&serde_json::json!({"domain_id":"domain-a","user_id":"alice@example.com","credentials":{"password": PASSWORD}}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=300).contains(&retry));
    // Over gRPC: RESOURCE_EXHAUSTED.
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    assert_eq!(
        clients
            .call(Proto::Grpc, &issue_call(&req, json))
            .await
            .code,
        8
    );
}

/// The failover of issue 15, with the lost write played by hand: the
/// family's record is put back as a replica that missed the last refresh
/// would have it. The replayed spent token gets one pair; the legitimate
/// holder's newer token then ends the family (the replayer's chain too),
/// and the divergence is counted and audited without any token in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_write_ends_the_family_and_is_counted() {
    let redis = RedisServer::start();
    let server = TestServer::start_with(with_redis(&redis, "lost:", ""));
    let clients = Clients::new(&server).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (apt: redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = login(&clients).await;
    let spent = refresh(&clients, Proto::Grpc, &first.refresh_token)
        .await
        .decode::<TokenInfo>();
    let record = cli(&["--scan", "--pattern", "lost:fam:*"]);
    let record = record.trim();
    assert!(!record.is_empty() && !record.contains('\n'), "{record}");
    // What a replica had when the master died: the record before the next
    // refresh.
    let fields = cli(&["HGETALL", record]);
    let newest = refresh(&clients, Proto::Grpc, &spent.refresh_token)
        .await
        .decode::<TokenInfo>();
    let mut restore = vec!["HSET", record];
    restore.extend(fields.lines());
    cli(&["DEL", record]);
    assert_eq!(
        cli(&restore).trim(),
        (fields.lines().count() / 2).to_string()
    );
    cli(&["PEXPIRE", record, "600000"]);

    // A thief replays the spent token: the record takes it for live.
    let stolen = refresh(&clients, Proto::Rest, &spent.refresh_token).await;
    assert!(stolen.ok(), "{stolen:?}");
    let stolen = stolen.decode::<TokenInfo>();
    // The holder's newer token is one the record never saw: the family ends.
    let holder = refresh(&clients, Proto::Rest, &newest.refresh_token).await;
    assert_eq!(holder.message, INVALID);
    let thief = refresh(&clients, Proto::Grpc, &stolen.refresh_token).await;
    assert_eq!(thief.message, INVALID, "the replayed chain ended too");

    let metrics = server.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tokengate_families_revoked_total{")
                && l.contains("reason=\"diverged\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    let logs = server.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("family_revoked") && l.contains("diverged")),
        "audited: {logs}"
    );
    for token in [&first, &spent, &newest, &stolen] {
        assert!(!logs.contains(&token.refresh_token));
        assert!(!logs.contains(&token.access_token));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_has_a_ttl_after_a_full_session() {
    let redis = RedisServer::start();
    let server = TestServer::start_with(with_redis(&redis, "hygiene:", ""));
    let clients = Clients::new(&server).await;
    // Issue, refresh, replay, wrong passwords, owner login.
    let first = login(&clients).await;
    let next = refresh(&clients, Proto::Grpc, &first.refresh_token)
        .await
        .decode::<TokenInfo>();
    assert_eq!(
        refresh(&clients, Proto::Rest, &first.refresh_token)
            .await
            .message,
        INVALID
    );
    assert_eq!(
        refresh(&clients, Proto::Rest, &next.refresh_token)
            .await
            .message,
        INVALID
    );
    for _ in 0..3 {
        let (req, json) = issue_request("domain-a", "alice@example.com", Some("wrong"), "", 0, 0);
        clients.call(Proto::Rest, &issue_call(&req, json)).await;
    }
    let (req, json) = issue_request("domain-a", "root", Some(PASSWORD), "DOMAIN_OWNER", 0, 0);
    assert!(
        clients
            .call(Proto::Grpc, &issue_call(&req, json))
            .await
            .ok()
    );

    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (apt: redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let keys = cli(&["--scan", "--pattern", "*"]);
    let names: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    assert!(names.len() >= 5, "{keys}");
    for name in names {
        assert!(name.starts_with("hygiene:"), "prefixed: {name}");
        let ms: i64 = cli(&["PTTL", name]).trim().parse().expect("integer reply");
        assert!(ms > 0, "{name} has a TTL ({ms})");
        assert!(
            ms <= 86_400_000,
            "{name}: no longer than the family's absolute lifetime"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_command_ends_families_of_a_running_server() {
    let redis = RedisServer::start();
    let server = TestServer::start_with(with_redis(&redis, "tg:", ""));
    let clients = Clients::new(&server).await;
    let revoke = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
            .arg("revoke")
            .arg("--config")
            .arg(server.config_path())
            .args(args)
            .env_remove("TOKENGATE_CONFIG")
            .output()
            .expect("run revoke");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // --token ends one family only.
    let (one, two) = (login(&clients).await, login(&clients).await);
    let said = revoke(&["--token", &one.refresh_token]);
    assert!(said.contains("alice@example.com"), "{said}");
    assert_eq!(
        refresh(&clients, Proto::Grpc, &one.refresh_token)
            .await
            .message,
        INVALID
    );
    let two = refresh(&clients, Proto::Grpc, &two.refresh_token)
        .await
        .decode::<TokenInfo>();
    // --domain/--user ends every family of the user issued before it.
    let three = login(&clients).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    revoke(&["--domain", "domain-a", "--user", "alice@example.com"]);
    for token in [&two.refresh_token, &three.refresh_token] {
        assert_eq!(refresh(&clients, Proto::Rest, token).await.message, INVALID);
    }
    // A login after the revocation works.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = login(&clients).await;
    assert!(
        refresh(&clients, Proto::Grpc, &fresh.refresh_token)
            .await
            .ok()
    );
}
