//! The conformance matrix: every method and every error row of SPEC §2, and
//! of tokengate's own Session service, over native gRPC (tonic), gRPC-Web
//! binary and text on HTTP/1.1 and HTTP/2, and REST — the same call gives
//! the same code and message on every protocol.

use tokengate_test_support::prelude::*;

/// One row: a call and the expected (gRPC code, exact message).
struct Row {
    name: &'static str,
    call: Call<'static>,
    expect: Result<(), (i32, String)>,
}

const INVALID_ARGUMENT: i32 = 3;
const UNAUTHENTICATED: i32 = 16;

fn issue_row(
    name: &'static str,
    (req, json): (IssueTokenRequest, serde_json::Value),
    expect: Result<(), (i32, &str)>,
) -> Row {
    Row {
        name,
        call: issue_call(&req, json),
        expect: expect.map_err(|(c, m)| (c, m.to_owned())),
    }
}

fn issue_rows() -> Vec<Row> {
    let ok = Ok(());
    let pw = Some(PASSWORD);
    vec![
        issue_row(
            "issue ok",
            issue_request("domain-a", "alice@example.com", pw, "", 0, 0),
            ok,
        ),
        issue_row(
            "issue ok USER",
            issue_request("domain-a", "alice@example.com", pw, "USER", 60, 3),
            Ok(()),
        ),
        issue_row(
            "issue ok LOCAL",
            issue_request("domain-a", "alice@example.com", pw, "LOCAL", 0, 0),
            Ok(()),
        ),
        issue_row(
            "issue ok owner",
            issue_request("domain-a", "root", pw, "DOMAIN_OWNER", 0, 0),
            Ok(()),
        ),
        issue_row(
            "missing credentials",
            issue_request("domain-a", "alice@example.com", None, "", 0, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_REQUIRED_PARAMETER: Required parameter. (key = credentials)",
            )),
        ),
        issue_row(
            "missing everything: credentials first",
            issue_request("", "", None, "", 0, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_REQUIRED_PARAMETER: Required parameter. (key = credentials)",
            )),
        ),
        issue_row(
            "missing domain",
            issue_request("", "alice@example.com", pw, "", 0, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_REQUIRED_PARAMETER: Required parameter. (key = domain_id)",
            )),
        ),
        issue_row(
            "missing user",
            issue_request("domain-a", "", pw, "", 0, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_REQUIRED_PARAMETER: Required parameter. (key = user_id)",
            )),
        ),
        issue_row(
            "bad user_type",
            issue_request("domain-a", "alice@example.com", pw, "ROBOT", 0, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_INVALID_PARAMETER: Parameter is invalid. (key = user_type, reason = must be USER, LOCAL or DOMAIN_OWNER)",
            )),
        ),
        issue_row(
            "negative timeout",
            issue_request("domain-a", "alice@example.com", pw, "", -1, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_INVALID_PARAMETER: Parameter is invalid. (key = timeout, reason = must not be negative)",
            )),
        ),
        issue_row(
            "timeout above max",
            issue_request("domain-a", "alice@example.com", pw, "", 86401, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_INVALID_PARAMETER: Parameter is invalid. (key = timeout, reason = must not exceed 86400)",
            )),
        ),
        issue_row(
            "negative refresh_count",
            issue_request("domain-a", "alice@example.com", pw, "", 0, -2),
            Err((
                INVALID_ARGUMENT,
                "ERROR_INVALID_PARAMETER: Parameter is invalid. (key = refresh_count, reason = must not be negative)",
            )),
        ),
        issue_row(
            "refresh_count above max",
            issue_request("domain-a", "alice@example.com", pw, "", 0, 19),
            Err((
                UNAUTHENTICATED,
                "ERROR_MAX_REFRESH_COUNT: The maximum refresh count has been exceeded. (max_refresh_count = 18)",
            )),
        ),
        issue_row(
            "unknown domain",
            issue_request("domain-x", "alice@example.com", pw, "", 0, 0),
            Err((
                INVALID_ARGUMENT,
                "ERROR_NOT_FOUND: Value not found. (domain_id = domain-x)",
            )),
        ),
        issue_row(
            "disabled domain",
            issue_request("domain-off", "carol@example.com", pw, "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_DOMAIN_STATE: Domain is disabled (domain_id = domain-off)",
            )),
        ),
        issue_row(
            "no password, known user",
            issue_request("domain-a", "alice@example.com", Some("<none>"), "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_INVALID_CREDENTIALS: Invalid credentials provided.",
            )),
        ),
        issue_row(
            "no password, unknown user",
            issue_request("domain-a", "nobody", Some("<none>"), "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_INVALID_CREDENTIALS: Invalid credentials provided.",
            )),
        ),
        issue_row(
            "wrong password",
            issue_request("domain-a", "alice@example.com", Some("wrong"), "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_AUTHENTICATION_FAILURE: A user \"alice@example.com\" is not exist or password is not correct.",
            )),
        ),
        issue_row(
            "empty password",
            issue_request("domain-a", "alice@example.com", Some(""), "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_AUTHENTICATION_FAILURE: A user \"alice@example.com\" is not exist or password is not correct.",
            )),
        ),
        issue_row(
            "unknown user",
            issue_request("domain-a", "nobody", pw, "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_AUTHENTICATION_FAILURE: A user \"nobody\" is not exist or password is not correct.",
            )),
        ),
        issue_row(
            "unknown owner",
            issue_request("domain-a", "alice@example.com", pw, "DOMAIN_OWNER", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_AUTHENTICATION_FAILURE: A user \"alice@example.com\" is not exist or password is not correct.",
            )),
        ),
        issue_row(
            "api user",
            issue_request("domain-a", "robot", pw, "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER: API_USER are not allowed to issue tokens. (user_id = robot)",
            )),
        ),
        issue_row(
            "api user, wrong password",
            issue_request("domain-a", "robot", Some("x"), "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_AUTHENTICATION_FAILURE: A user \"robot\" is not exist or password is not correct.",
            )),
        ),
        issue_row(
            "disabled user",
            issue_request("domain-a", "bob@example.com", pw, "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_USER_STATUS_CHECK_FAILURE: A user \"bob@example.com\" status is not ENABLED.",
            )),
        ),
        issue_row(
            "disabled user, wrong password",
            issue_request("domain-a", "bob@example.com", Some("x"), "", 0, 0),
            Err((
                UNAUTHENTICATED,
                "ERROR_AUTHENTICATION_FAILURE: A user \"bob@example.com\" is not exist or password is not correct.",
            )),
        ),
    ]
}

async fn assert_row(clients: &Clients, row: &Row) {
    for proto in ALL_PROTOCOLS {
        let outcome = clients.call(proto, &row.call).await;
        match &row.expect {
            Ok(()) => assert!(outcome.ok(), "{} over {proto:?}: {outcome:?}", row.name),
            Err((code, message)) => {
                assert_eq!(
                    (outcome.code, outcome.message.as_str()),
                    (*code, message.as_str()),
                    "{} over {proto:?}",
                    row.name
                );
                let reason = message.split(':').next().unwrap_or_default();
                assert_eq!(
                    outcome.reason.as_deref(),
                    Some(reason),
                    "{} over {proto:?}: ErrorInfo reason",
                    row.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_matrix() {
    issue_matrix_on(&TestServer::start()).await;
}

/// The same rows with the directory in PostgreSQL (the same users, seeded
/// with SQL): every rule of SPEC §2 holds whatever the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_matrix_postgres() {
    let postgres = PostgresServer::start();
    issue_matrix_on(&TestServer::start_postgres(
        &postgres,
        ServerOptions::default(),
    ))
    .await;
}

/// The same rows with the directory in LDAP (slapd, the same users).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_matrix_ldap() {
    let ldap = LdapServer::start(PASSWORD);
    issue_matrix_on(&TestServer::start_ldap(&ldap, ServerOptions::default())).await;
}

async fn issue_matrix_on(server: &TestServer) {
    let clients = Clients::new(server).await;
    for row in issue_rows() {
        assert_row(&clients, &row).await;
    }
}

async fn fresh_refresh_token(clients: &Clients) -> String {
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let outcome = clients.call(Proto::Grpc, &issue_call(&req, json)).await;
    assert!(outcome.ok(), "{outcome:?}");
    outcome.decode::<TokenInfo>().refresh_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_matrix() {
    refresh_matrix_on(&TestServer::start()).await;
}

/// The refresh rows with the directory in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_matrix_postgres() {
    let postgres = PostgresServer::start();
    refresh_matrix_on(&TestServer::start_postgres(
        &postgres,
        ServerOptions::default(),
    ))
    .await;
}

/// The refresh rows with the directory in LDAP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_matrix_ldap() {
    let ldap = LdapServer::start(PASSWORD);
    refresh_matrix_on(&TestServer::start_ldap(&ldap, ServerOptions::default())).await;
}

async fn refresh_matrix_on(server: &TestServer) {
    let clients = Clients::new(server).await;
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let access = clients
        .call(Proto::Grpc, &issue_call(&req, json))
        .await
        .decode::<TokenInfo>()
        .access_token;
    let decode =
        "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Cannot decode token.)";
    let invalid = "ERROR_INVALID_REFRESH_TOKEN: Refresh token is invalid or expired.";
    let rows = vec![
        ("absent", vec![], (UNAUTHENTICATED, invalid.to_owned())),
        ("empty token header", vec![("token", String::new())], (UNAUTHENTICATED, decode.to_owned())),
        ("not a jwt", vec![("authorization", "Bearer not-a-jwt".to_owned())], (UNAUTHENTICATED, decode.to_owned())),
        ("access token", vec![("authorization", format!("Bearer {access}"))],
            (UNAUTHENTICATED, "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Token validation failed.)".to_owned())),
    ];
    for (name, headers, (code, message)) in rows {
        let row = Row {
            name,
            call: refresh_call(headers),
            expect: Err((code, message)),
        };
        assert_row(&clients, &row).await;
    }
    // Success and one-time use, on every protocol: each refreshes a fresh
    // token via both header spellings, then a replay is refused.
    for proto in ALL_PROTOCOLS {
        for header in ["token", "authorization"] {
            let token = fresh_refresh_token(&clients).await;
            let value = if header == "token" {
                token.clone()
            } else {
                format!("Bearer {token}")
            };
            let first = clients
                .call(proto, &refresh_call(vec![(header, value.clone())]))
                .await;
            assert!(first.ok(), "refresh over {proto:?} via {header}: {first:?}");
            let pair = first.decode::<TokenInfo>();
            assert!(!pair.access_token.is_empty() && pair.refresh_token != token);
            let replay = clients
                .call(proto, &refresh_call(vec![(header, value)]))
                .await;
            assert_eq!(
                (replay.code, replay.message.as_str()),
                (UNAUTHENTICATED, invalid),
                "replay over {proto:?}"
            );
            // Reuse detection revoked the family: the successor fails too.
            let successor = clients
                .call(proto, &refresh_call(vec![("token", pair.refresh_token)]))
                .await;
            assert_eq!(
                successor.code, UNAUTHENTICATED,
                "successor after replay over {proto:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_public_key_matrix() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    let rows = vec![
        Row {
            name: "empty domain",
            call: public_key_call(""),
            expect: Err((
                INVALID_ARGUMENT,
                "ERROR_REQUIRED_PARAMETER: Required parameter. (key = domain_id)".to_owned(),
            )),
        },
        Row {
            name: "unknown domain",
            call: public_key_call("nope"),
            expect: Err((
                INVALID_ARGUMENT,
                "ERROR_NOT_FOUND: Value not found. (domain_id = nope)".to_owned(),
            )),
        },
        Row {
            name: "ok",
            call: public_key_call("domain-a"),
            expect: Ok(()),
        },
        Row {
            name: "disabled domain still answers",
            call: public_key_call("domain-off"),
            expect: Ok(()),
        },
    ];
    for row in &rows {
        assert_row(&clients, row).await;
    }
    // Identical answers on every protocol, and the key is in the JWKS.
    let mut answers = Vec::new();
    for proto in ALL_PROTOCOLS {
        answers.push(
            clients
                .call(proto, &public_key_call("domain-a"))
                .await
                .decode::<AuthenticationResponse>(),
        );
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let jwk: serde_json::Value = serde_json::from_str(&answers[0].public_key).expect("JWK JSON");
    let jwks: serde_json::Value = clients
        .h1
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert!(jwks["keys"].as_array().expect("keys").contains(&jwk));
    assert!(jwk["kid"].is_string() && jwk.get("d").is_none());
}

const PERMISSION_DENIED: i32 = 7;
const EMPTY_TOKEN: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Empty token provided.)";
const CANNOT_DECODE: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Cannot decode token.)";
const VALIDATION_FAILED: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Token validation failed.)";
const SESSION_ENDED: &str =
    "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Session has ended.)";
const INTROSPECTION_UNAUTHENTICATED: &str = "ERROR_AUTHENTICATE_FAILURE: Authenticate failure. (message = Introspection needs a configured client or service account.)";
const PERMISSION: &str = "ERROR_PERMISSION_DENIED: Permission denied.";

/// Every error row of the Session service, alike on every protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_matrix() {
    let server = TestServer::start_with(ServerOptions {
        extra_config: introspection_config(),
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let login = |user: &'static str| {
        let clients = &clients;
        async move {
            let outcome = clients.call(Proto::Grpc, &login_call(user)).await;
            assert!(outcome.ok(), "login of {user}: {outcome:?}");
            outcome.decode::<TokenInfo>()
        }
    };
    let alice = login("alice@example.com").await;
    let root = login("root").await;
    let ended = login("alice@example.com").await;
    let done = clients
        .call(
            Proto::Grpc,
            &revoke_call(vec![("token", ended.refresh_token.clone())]),
        )
        .await;
    assert!(done.ok(), "{done:?}");

    let rows: Vec<(&str, Call<'static>, i32, String)> = vec![
        (
            "list without a token",
            list_sessions_call(""),
            UNAUTHENTICATED,
            EMPTY_TOKEN.into(),
        ),
        (
            "list with garbage",
            list_sessions_call("garbage"),
            UNAUTHENTICATED,
            CANNOT_DECODE.into(),
        ),
        (
            "list with a refresh token",
            list_sessions_call(&alice.refresh_token),
            UNAUTHENTICATED,
            VALIDATION_FAILED.into(),
        ),
        (
            "list after logout",
            list_sessions_call(&ended.access_token),
            UNAUTHENTICATED,
            SESSION_ENDED.into(),
        ),
        (
            "end without an id",
            end_session_call(&alice.access_token, ""),
            INVALID_ARGUMENT,
            "ERROR_REQUIRED_PARAMETER: Required parameter. (key = session_id)".into(),
        ),
        (
            "end of an unknown id",
            end_session_call(&alice.access_token, "no-such-session"),
            INVALID_ARGUMENT,
            "ERROR_NOT_FOUND: Value not found. (session_id = no-such-session)".into(),
        ),
        (
            "end without a token",
            end_session_call("", "x"),
            UNAUTHENTICATED,
            EMPTY_TOKEN.into(),
        ),
        (
            "end others without a token",
            end_others_call(""),
            UNAUTHENTICATED,
            EMPTY_TOKEN.into(),
        ),
        (
            "revoke without a token",
            revoke_call(vec![]),
            UNAUTHENTICATED,
            EMPTY_TOKEN.into(),
        ),
        (
            "revoke user by a user",
            revoke_user_call(&alice.access_token, "alice@example.com"),
            PERMISSION_DENIED,
            PERMISSION.into(),
        ),
        (
            "revoke user without a user id",
            revoke_user_call(&root.access_token, ""),
            INVALID_ARGUMENT,
            "ERROR_REQUIRED_PARAMETER: Required parameter. (key = user_id)".into(),
        ),
        (
            "introspect without credentials",
            introspect_call("", &alice.access_token),
            UNAUTHENTICATED,
            INTROSPECTION_UNAUTHENTICATED.into(),
        ),
        (
            "introspect with a wrong secret",
            introspect_call(
                &basic_auth(INTROSPECTION_CLIENT.0, "wrong"),
                &alice.access_token,
            ),
            UNAUTHENTICATED,
            INTROSPECTION_UNAUTHENTICATED.into(),
        ),
        (
            "introspect by a user who is no service account",
            introspect_call(
                &format!("Bearer {}", alice.access_token),
                &alice.access_token,
            ),
            PERMISSION_DENIED,
            PERMISSION.into(),
        ),
        (
            "introspect without a token",
            introspect_call(&introspection_basic(), ""),
            INVALID_ARGUMENT,
            "ERROR_REQUIRED_PARAMETER: Required parameter. (key = token)".into(),
        ),
    ];
    for (name, call, code, message) in rows {
        let row = Row {
            name,
            call,
            expect: Err((code, message)),
        };
        assert_row(&clients, &row).await;
    }
    // The successes answer alike too.
    for proto in ALL_PROTOCOLS {
        let listed = clients
            .call(proto, &list_sessions_call(&alice.access_token))
            .await;
        assert!(listed.ok(), "list over {proto:?}: {listed:?}");
        let sessions = listed.decode::<ListSessionsResponse>().sessions;
        assert_eq!(sessions.len(), 1, "{proto:?}");
        assert!(sessions[0].current, "{proto:?}");
        let by_account = clients
            .call(
                proto,
                &introspect_call(
                    &format!("Bearer {}", root.access_token),
                    &alice.access_token,
                ),
            )
            .await;
        assert!(
            by_account.ok(),
            "service account over {proto:?}: {by_account:?}"
        );
        assert!(by_account.decode::<IntrospectResponse>().active);
    }
}
