//! `tokengate.session.v1.Session` against the real binary, on every
//! protocol (native gRPC, gRPC-Web binary and text on HTTP/1.1 and HTTP/2,
//! REST): logout, the list of sessions, ending them, an owner ending a
//! user's, introspection, and two instances sharing one Redis. Its error
//! rows are in the conformance matrix (`tests/conformance.rs`).

use base64::Engine as _;
use tokengate_test_support::prelude::*;
use tokengate_test_support::redis_server::RedisServer;

const INVALID_REFRESH: &str = "ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired.";
const SESSION_ENDED: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Session has ended.)";

fn options() -> ServerOptions {
    ServerOptions {
        extra_config: introspection_config(),
        ..ServerOptions::default()
    }
}

/// A login of `user` ("root" logs in as the domain's owner) over `proto`.
async fn login_as(clients: &Clients, proto: Proto, user: &str) -> TokenInfo {
    let outcome = clients.call(proto, &login_call(user)).await;
    assert!(outcome.ok(), "login of {user} over {proto:?}: {outcome:?}");
    outcome.decode::<TokenInfo>()
}

async fn login(clients: &Clients, proto: Proto) -> TokenInfo {
    login_as(clients, proto, "alice@example.com").await
}

/// The claims of a token, unverified (the tests read what was minted).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

async fn refresh(clients: &Clients, proto: Proto, refresh_token: &str) -> Outcome {
    clients
        .call(
            proto,
            &refresh_call(vec![("token", refresh_token.to_owned())]),
        )
        .await
}

async fn list(clients: &Clients, proto: Proto, access: &str) -> Vec<SessionInfo> {
    let outcome = clients.call(proto, &list_sessions_call(access)).await;
    assert!(outcome.ok(), "list over {proto:?}: {outcome:?}");
    outcome.decode::<ListSessionsResponse>().sessions
}

async fn introspect(clients: &Clients, proto: Proto, token: &str) -> IntrospectResponse {
    let outcome = clients
        .call(proto, &introspect_call(&introspection_basic(), token))
        .await;
    assert!(outcome.ok(), "introspect over {proto:?}: {outcome:?}");
    outcome.decode::<IntrospectResponse>()
}

/// On every protocol: the list shows the caller's sessions with the
/// current one marked, end-others leaves exactly that one, and logout ends
/// it (its refresh token refused, introspection false at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_end_others_and_logout_on_every_protocol() {
    let server = TestServer::start_with(options());
    let clients = Clients::new(&server).await;
    for proto in ALL_PROTOCOLS {
        // A clean slate: earlier rounds' sessions ended by their owner.
        let root = login_as(&clients, Proto::Grpc, "root").await;
        let cleared = clients
            .call(
                proto,
                &revoke_user_call(&root.access_token, "alice@example.com"),
            )
            .await;
        assert!(cleared.ok(), "{cleared:?}");

        let here = login(&clients, proto).await;
        let elsewhere = login(&clients, Proto::Rest).await;
        let third = login(&clients, Proto::Grpc).await;
        let sid = claims(&here.access_token)["sid"]
            .as_str()
            .expect("access tokens carry sid")
            .to_owned();
        assert_eq!(claims(&here.refresh_token)["fam"], sid.as_str());

        let sessions = list(&clients, proto, &here.access_token).await;
        assert_eq!(sessions.len(), 3, "{proto:?}: {sessions:?}");
        let current: Vec<_> = sessions.iter().filter(|s| s.current).collect();
        assert_eq!(current.len(), 1, "{proto:?}: {sessions:?}");
        assert_eq!(current[0].session_id, sid);
        let label = match proto {
            Proto::Grpc => "grpc",
            Proto::Rest => "rest",
            _ => "grpc-web",
        };
        assert_eq!(current[0].protocol, label, "{proto:?}");
        assert_eq!(current[0].client_address, "127.0.0.1");
        assert!(current[0].started_at > 0 && current[0].expires_at > current[0].started_at);
        assert!(current[0].idle_expires_at <= current[0].expires_at);

        // Introspection sees the access and the refresh token live.
        let seen = introspect(&clients, proto, &elsewhere.access_token).await;
        assert!(seen.active, "{proto:?}: {seen:?}");
        assert_eq!(
            (
                seen.token_type.as_str(),
                seen.sub.as_str(),
                seen.domain_id.as_str()
            ),
            ("access_token", "alice@example.com", "domain-a")
        );
        assert!(
            introspect(&clients, proto, &elsewhere.refresh_token)
                .await
                .active
        );

        // End the others: exactly the current session is left.
        let outcome = clients
            .call(proto, &end_others_call(&here.access_token))
            .await;
        assert!(outcome.ok(), "{proto:?}: {outcome:?}");
        assert_eq!(outcome.decode::<EndSessionsResponse>().ended, 2);
        let left = list(&clients, proto, &here.access_token).await;
        assert_eq!(left.len(), 1, "{proto:?}: {left:?}");
        assert_eq!(left[0].session_id, sid);
        for gone in [&elsewhere, &third] {
            assert_eq!(
                refresh(&clients, proto, &gone.refresh_token).await.message,
                INVALID_REFRESH
            );
            assert!(!introspect(&clients, proto, &gone.access_token).await.active);
            let refused = clients
                .call(proto, &list_sessions_call(&gone.access_token))
                .await;
            assert_eq!(refused.message, SESSION_ENDED, "{proto:?}");
        }

        // The current session still refreshes; its newest tokens hold and
        // the spent refresh token does not.
        let next = refresh(&clients, proto, &here.refresh_token).await;
        assert!(next.ok(), "{proto:?}: {next:?}");
        let next = next.decode::<TokenInfo>();
        assert!(
            !introspect(&clients, proto, &here.refresh_token)
                .await
                .active
        );
        assert!(
            introspect(&clients, proto, &next.refresh_token)
                .await
                .active
        );
        let again = list(&clients, proto, &next.access_token).await;
        assert_eq!((again.len(), again[0].refreshes), (1, 1), "{proto:?}");

        // Logout: revoke with the refresh token; introspection turns false
        // with the very next call, and the refresh token is refused.
        let out = clients
            .call(
                proto,
                &revoke_call(vec![(
                    "authorization",
                    format!("Bearer {}", next.refresh_token),
                )]),
            )
            .await;
        assert!(out.ok(), "{proto:?}: {out:?}");
        assert!(!introspect(&clients, proto, &next.access_token).await.active);
        assert_eq!(
            refresh(&clients, proto, &next.refresh_token).await.message,
            INVALID_REFRESH
        );
        // Revoking again answers the same.
        let out = clients
            .call(
                proto,
                &revoke_call(vec![("token", next.refresh_token.clone())]),
            )
            .await;
        assert!(out.ok(), "{proto:?}: {out:?}");
    }
}

/// Signs `claims` with domain-a's key of `purpose` from the server's key
/// folder: tokens the server would accept but for what the test changed.
fn sign(server: &TestServer, purpose: &str, claims: &serde_json::Value) -> String {
    let ring = tokengate_keys::KeyDir::new(server.keys_dir())
        .load()
        .expect("keys");
    let keys = ring.domain("domain-a").expect("domain-a keys");
    let set = if purpose == "access" {
        &keys.access
    } else {
        &keys.refresh
    };
    set.sign(claims).expect("sign")
}

/// RFC 7009: revoking garbage, an expired token, a token of another
/// domain's keys or an access token from before `sid` answers success and
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_of_tokens_that_do_not_hold_changes_nothing() {
    let server = TestServer::start_with(options());
    let clients = Clients::new(&server).await;
    let alice = login(&clients, Proto::Grpc).await;
    let live = claims(&alice.refresh_token);
    let mut expired = live.clone();
    expired["exp"] = serde_json::json!(live["iat"].as_u64().expect("iat") - 1);
    expired["iat"] = serde_json::json!(live["iat"].as_u64().expect("iat") - 100);
    let mut foreign = live.clone();
    foreign["did"] = serde_json::json!("domain-off");
    let mut no_sid = claims(&alice.access_token);
    no_sid.as_object_mut().expect("object").remove("sid");
    let tokens = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        sign(&server, "refresh", &expired),
        // Signed by domain-a's key but naming domain-off: no key of
        // domain-off verifies it.
        sign(&server, "refresh", &foreign),
        sign(&server, "access", &no_sid),
    ];
    for proto in ALL_PROTOCOLS {
        for token in &tokens {
            let outcome = clients
                .call(proto, &revoke_call(vec![("token", token.clone())]))
                .await;
            assert!(outcome.ok(), "{proto:?}: {outcome:?}");
        }
    }
    // Nothing changed: the session is listed, introspects and refreshes.
    assert_eq!(
        list(&clients, Proto::Grpc, &alice.access_token).await.len(),
        1
    );
    assert!(
        introspect(&clients, Proto::Rest, &alice.refresh_token)
            .await
            .active
    );
    assert!(
        refresh(&clients, Proto::Grpc, &alice.refresh_token)
            .await
            .ok()
    );
    // And no audit line was written for them.
    assert!(
        !server.logs().contains("session_revoked"),
        "{}",
        server.logs()
    );
}

/// A user cannot end someone else's sessions; the domain owner ends all of
/// a user's; logging out with an access token ends its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_the_callers_own_and_the_owner_ends_a_users() {
    let server = TestServer::start_with(options());
    let clients = Clients::new(&server).await;
    let alice = login(&clients, Proto::Grpc).await;
    let alice_two = login(&clients, Proto::WebTextH1).await;
    let root = login_as(&clients, Proto::Rest, "root").await;
    let alice_sid = claims(&alice.access_token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    // The owner's list is the owner's own; alice's id is not found for it.
    let roots = list(&clients, Proto::Grpc, &root.access_token).await;
    assert_eq!(roots.len(), 1);
    assert!(roots[0].current);
    for proto in ALL_PROTOCOLS {
        let refused = clients
            .call(proto, &end_session_call(&root.access_token, &alice_sid))
            .await;
        assert_eq!(
            refused.message,
            format!("ERROR_NOT_FOUND: Value not found. (session_id = {alice_sid})"),
            "{proto:?}"
        );
    }
    assert_eq!(
        list(&clients, Proto::Grpc, &alice.access_token).await.len(),
        2
    );

    // alice ends her second session by id.
    let second_sid = claims(&alice_two.access_token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let ended = clients
        .call(
            Proto::WebBinaryH2,
            &end_session_call(&alice.access_token, &second_sid),
        )
        .await;
    assert!(ended.ok(), "{ended:?}");
    assert_eq!(ended.decode::<EndSessionsResponse>().ended, 1);
    assert_eq!(
        refresh(&clients, Proto::Grpc, &alice_two.refresh_token)
            .await
            .message,
        INVALID_REFRESH
    );

    // The owner ends every session of alice.
    let third = login(&clients, Proto::Rest).await;
    let revoked = clients
        .call(
            Proto::Rest,
            &revoke_user_call(&root.access_token, "alice@example.com"),
        )
        .await;
    assert!(revoked.ok(), "{revoked:?}");
    assert_eq!(revoked.decode::<EndSessionsResponse>().ended, 2);
    for gone in [&alice, &third] {
        assert_eq!(
            refresh(&clients, Proto::Grpc, &gone.refresh_token)
                .await
                .message,
            INVALID_REFRESH
        );
    }
    let logs = server.logs();
    assert!(
        logs.lines().any(|l| l.contains("session_revoked")
            && l.contains("\"by\":\"root\"")
            && l.contains("admin")),
        "{logs}"
    );
    assert!(!logs.contains(&alice.refresh_token) && !logs.contains(&root.access_token));

    // A new login after that works; logging out with its access token ends it.
    let fresh = login(&clients, Proto::Grpc).await;
    let out = clients
        .call(
            Proto::Grpc,
            &revoke_call(vec![("token", fresh.access_token.clone())]),
        )
        .await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(
        refresh(&clients, Proto::Grpc, &fresh.refresh_token)
            .await
            .message,
        INVALID_REFRESH
    );
    // The owner's own session is untouched.
    assert_eq!(
        list(&clients, Proto::Rest, &root.access_token).await.len(),
        1
    );
}

/// Two instances sharing one Redis: logout on A, refresh on B refused and
/// introspection on B false at once; end-others on B seen on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis() {
    let redis = RedisServer::start();
    let store = format!(
        "[store]\nredis_url = \"{}\"\nkey_prefix = \"tg:\"\ntimeout_ms = 2000\n",
        redis.url()
    );
    let a = TestServer::start_with(ServerOptions {
        extra_config: format!("{}{store}", introspection_config()),
        ..ServerOptions::default()
    });
    let b = TestServer::start_with(ServerOptions {
        extra_config: format!("{}{store}", introspection_config()),
        keys_dir: Some(a.keys_dir()),
        directory: Some(std::fs::read_to_string(a.path("users.toml")).expect("A's directory")),
        ..ServerOptions::default()
    });
    let (ca, cb) = (Clients::new(&a).await, Clients::new(&b).await);

    let first = login(&ca, Proto::Grpc).await;
    assert!(
        introspect(&cb, Proto::Grpc, &first.access_token)
            .await
            .active
    );
    let out = ca
        .call(
            Proto::Rest,
            &revoke_call(vec![("token", first.refresh_token.clone())]),
        )
        .await;
    assert!(out.ok(), "{out:?}");
    assert!(
        !introspect(&cb, Proto::WebBinaryH1, &first.access_token)
            .await
            .active
    );
    assert_eq!(
        refresh(&cb, Proto::Grpc, &first.refresh_token)
            .await
            .message,
        INVALID_REFRESH
    );

    // Sessions started on either instance are listed on both; end-others
    // on B ends A's.
    let on_a = login(&ca, Proto::Grpc).await;
    let on_b = login(&cb, Proto::Rest).await;
    assert_eq!(list(&ca, Proto::Grpc, &on_b.access_token).await.len(), 2);
    let ended = cb
        .call(Proto::Grpc, &end_others_call(&on_b.access_token))
        .await;
    assert_eq!(ended.decode::<EndSessionsResponse>().ended, 1);
    assert_eq!(
        refresh(&ca, Proto::Rest, &on_a.refresh_token).await.message,
        INVALID_REFRESH
    );
    let left = list(&ca, Proto::WebTextH2, &on_b.access_token).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].current);
}
