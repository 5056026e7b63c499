//! No secret in logs: a full session (logins over every protocol, refresh,
//! replay, wrong passwords, lockout, revoke, the Session calls with an
//! introspection client's secret) with the server logging at TRACE, then a
//! search of everything it wrote for passwords, hashes, tokens, one-time
//! keys, key material, the introspection secret and the Redis password.

use base64::Engine as _;
use tokengate_test_support::prelude::*;
use tokengate_test_support::redis_server::RedisServer;

/// The test server's environment with every log target at TRACE: the
/// level that would show a secret if any code path logged one.
fn trace_env() -> Vec<(String, String)> {
    let mut env = default_test_env();
    env.push(("RUST_LOG".to_owned(), "trace".to_owned()));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_logged_at_trace_reveals_no_secret() {
    let redis_password = "redis-Secret-4242";
    let redis = RedisServer::start_with(&["--requirepass", redis_password]);
    let url = format!("redis://:{redis_password}@127.0.0.1:{}/0", redis.port);
    // An introspection client; the digest is what the config holds.
    let client_secret = "introspection-Secret-9191";
    let digest = "1e5be5bc141d60bc85e7b22387e3fb3e9ffcfcfb342917733bb355992bd4e0f2";
    let server = TestServer::start_with(ServerOptions {
        extra_config: format!(
            "[store]\nredis_url = \"{url}\"\n[introspection]\nclients = [\"gw:{digest}\"]\n"
        ),
        env: trace_env(),
        ..ServerOptions::default()
    });
    let clients = Clients::new(&server).await;
    let mut secrets: Vec<String> = vec![
        PASSWORD.to_owned(),
        "wrong-guess-77".to_owned(),
        redis_password.to_owned(),
        client_secret.to_owned(),
    ];

    let mut tokens = Vec::new();
    for proto in ALL_PROTOCOLS {
        let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
        let outcome = clients.call(proto, &issue_call(&req, json)).await;
        assert!(outcome.ok(), "{proto:?}: {outcome:?}");
        let pair = outcome.decode::<TokenInfo>();
        let refreshed = clients
            .call(
                proto,
                &refresh_call(vec![(
                    "authorization",
                    format!("Bearer {}", pair.refresh_token),
                )]),
            )
            .await;
        assert!(refreshed.ok(), "{refreshed:?}");
        // Replay: reuse detection (an audit line) must not echo the token.
        clients
            .call(
                proto,
                &refresh_call(vec![("token", pair.refresh_token.clone())]),
            )
            .await;
        tokens.push(pair);
        tokens.push(refreshed.decode::<TokenInfo>());
    }
    for _ in 0..3 {
        let (req, json) = issue_request(
            "domain-a",
            "bob@example.com",
            Some("wrong-guess-77"),
            "",
            0,
            0,
        );
        clients.call(Proto::Rest, &issue_call(&req, json)).await;
    }
    // The Session calls: list, introspect with the client's secret (and a
    // wrong one), end the others, log out.
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("gw:{secret}"))
        )
    };
    secrets.push(basic(client_secret)["Basic ".len()..].to_owned());
    // A live session (every one above met reuse detection).
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    let last = clients
        .call(Proto::Grpc, &issue_call(&req, json))
        .await
        .decode::<TokenInfo>();
    tokens.push(last.clone());
    for proto in ALL_PROTOCOLS {
        let listed = clients
            .call(proto, &list_sessions_call(&last.access_token))
            .await;
        assert!(listed.ok(), "{proto:?}: {listed:?}");
        let seen = clients
            .call(
                proto,
                &introspect_call(&basic(client_secret), &last.access_token),
            )
            .await;
        assert!(seen.ok(), "{proto:?}: {seen:?}");
        assert!(seen.decode::<IntrospectResponse>().active, "{proto:?}");
        let refused = clients
            .call(
                proto,
                &introspect_call(&basic("wrong-guess-77"), &last.refresh_token),
            )
            .await;
        assert_eq!(refused.code, 16, "{proto:?}");
    }
    let ended = clients
        .call(Proto::Grpc, &end_others_call(&last.access_token))
        .await;
    assert!(ended.ok(), "{ended:?}");
    let out = clients
        .call(
            Proto::Rest,
            &revoke_call(vec![("token", last.refresh_token.clone())]),
        )
        .await;
    assert!(out.ok(), "{out:?}");

    // The revoke command logs too.
    let revoke = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(["revoke", "--config"])
        .arg(server.config_path())
        .args(["--token", &tokens[2].refresh_token])
        .env("RUST_LOG", "trace")
        .env_remove("TOKENGATE_CONFIG")
        .output()
        .expect("revoke");
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );

    for pair in &tokens {
        for token in [&pair.access_token, &pair.refresh_token] {
            secrets.push(token.clone());
            // Each part on its own: a signature or claims segment is enough to leak.
            secrets.extend(token.split('.').skip(1).map(str::to_owned));
        }
        // The refresh token's one-time key.
        let claims = pair.refresh_token.split('.').nth(1).expect("claims");
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .expect("base64"),
        )
        .expect("json");
        secrets.push(claims["key"].as_str().expect("key claim").to_owned());
    }
    let directory = std::fs::read_to_string(server.path("users.toml")).expect("directory");
    for line in directory.lines().filter(|l| l.starts_with("password_hash")) {
        let hash = line.split('"').nth(1).expect("hash");
        secrets.push(hash.to_owned());
        secrets.push(hash[hash.len() - 31..].to_owned());
    }
    for entry in walk(&server.keys_dir()) {
        let pem = std::fs::read_to_string(&entry).expect("pem");
        // A 40-character run from the middle of each private key.
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        secrets.push(body[body.len() / 2..body.len() / 2 + 40].to_owned());
    }

    server.signal("TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let logs = format!(
        "{}\n{}",
        server.logs(),
        String::from_utf8_lossy(&revoke.stderr)
    );
    assert!(
        logs.lines().count() > 50,
        "TRACE logging was on: {} lines",
        logs.lines().count()
    );
    assert!(
        logs.contains("reuse_detected")
            && logs.contains("revoke_command")
            && logs.contains("session_revoked"),
        "audit lines present"
    );
    // One access line per call, with the request id and, for token calls,
    // the domain and user.
    let access: Vec<serde_json::Value> = server
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["target"] == "tokengate::access")
        .collect();
    assert!(access.len() >= 18, "{} access lines", access.len());
    let issue_line = access
        .iter()
        .find(|j| j["method"] == "/identity/v1/token/issue" && j["code"] == "200")
        .expect("an access line for a REST login");
    assert!(
        issue_line["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{issue_line}"
    );
    assert_eq!(issue_line["span"]["domain_id"], "domain-a", "{issue_line}");
    assert_eq!(
        issue_line["span"]["user_id"], "alice@example.com",
        "{issue_line}"
    );
    for secret in &secrets {
        assert!(!secret.is_empty());
        if let Some(at) = logs.find(secret.as_str()) {
            let start = at.saturating_sub(200);
            panic!(
                "a secret appears in the logs: ...{}...",
                &logs[start..(at + secret.len()).min(logs.len())]
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs the tokengate binary at TRACE with `stdin`; its output.
fn traced_command(args: &[&str], config: &std::path::Path, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "trace")
        .env_remove("TOKENGATE_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tokengate");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("output")
}

/// The PostgreSQL directory at TRACE: the database password (from the
/// environment, a password file or the URL), the users' passwords given
/// to the commands on stdin and their hashes never reach a log, also when
/// the connection is lost or the password is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_directory_session_at_trace_reveals_no_secret() {
    use tokengate_test_support::postgres_server;
    let postgres = PostgresServer::start();
    let server = TestServer::start_postgres(
        &postgres,
        ServerOptions {
            env: trace_env(),
            ..ServerOptions::default()
        },
    );
    let clients = Clients::new(&server).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = postgres_cli_config(dir.path(), &postgres);
    let command_password = "cmd-Secret-pw-31";
    let mut logs = String::new();
    for args in [
        &[
            "user", "add", "--domain", "domain-a", "--user", "dave", "--bcrypt", "--cost", "4",
        ][..],
        &[
            "user",
            "set-password",
            "--domain",
            "domain-a",
            "--user",
            "dave",
        ][..],
    ] {
        let out = traced_command(args, &config, &format!("{command_password}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The password in the URL, right and wrong.
    let url_secret = "Wrong-Url-Secret-9";
    for (password, ok) in [(postgres_server::PASSWORD, true), (url_secret, false)] {
        let path = dir.path().join("url.toml");
        std::fs::write(
            &path,
            format!(
                "directory = \"postgres://tokengate:{password}@127.0.0.1:{}/postgres?sslmode=disable\"\n[keys]\ndir = \"keys\"\n",
                postgres.port
            ),
        )
        .expect("config");
        let out = traced_command(
            &["user", "enable", "--domain", "domain-a", "--user", "dave"],
            &path,
            "",
        );
        assert_eq!(
            out.status.success(),
            ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for password in [PASSWORD, "wrong-guess-77"] {
        let (req, json) = issue_request("domain-a", "alice@example.com", Some(password), "", 0, 0);
        clients.call(Proto::Rest, &issue_call(&req, json)).await;
    }
    let (req, json) = issue_request("domain-a", "dave", Some(command_password), "", 0, 0);
    let dave = clients.call(Proto::Grpc, &issue_call(&req, json)).await;
    assert!(dave.ok(), "{dave:?}");
    postgres.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tokengate'",
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let mut secrets = vec![
        PASSWORD.to_owned(),
        "wrong-guess-77".to_owned(),
        command_password.to_owned(),
        postgres_server::PASSWORD.to_owned(),
        url_secret.to_owned(),
    ];
    for hash in postgres
        .psql("SELECT password_hash FROM tokengate.users UNION SELECT password_hash FROM tokengate.owners")
        .lines()
    {
        secrets.push(hash.to_owned());
        secrets.push(hash[hash.len() - 31..].to_owned());
    }
    server.signal("TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    logs.push_str(&server.logs());
    assert!(
        logs.contains("postgres directory")
            && logs.contains("password authentication failed")
            && logs.contains("terminating connection"),
        "the directory logged its work, the failed login and the lost connection: {}",
        logs.lines()
            .filter(|l| l.contains("postgres") || l.contains("Error"))
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for secret in &secrets {
        if let Some(at) = logs.find(secret.as_str()) {
            let start = at.saturating_sub(200);
            panic!(
                "a secret appears in the logs: ...{}...",
                &logs[start..(at + secret.len()).min(logs.len())]
            );
        }
    }
}

/// The LDAP directory at TRACE: the service account's bind password and
/// the users' passwords (sent to the server in binds) never reach a log,
/// also when the server goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_directory_session_at_trace_reveals_no_secret() {
    use tokengate_test_support::ldap_server::SERVICE_PASSWORD;
    let mut ldap = LdapServer::start(PASSWORD);
    let server = TestServer::start_ldap(
        &ldap,
        ServerOptions {
            env: trace_env(),
            ..ServerOptions::default()
        },
    );
    let clients = Clients::new(&server).await;
    let mut tokens = Vec::new();
    for (user, password) in [
        ("alice@example.com", PASSWORD),
        ("alice@example.com", "wrong-guess-77"),
        ("nobody@example.com", "wrong-guess-78"),
    ] {
        let (req, json) = issue_request("domain-a", user, Some(password), "", 0, 0);
        let outcome = clients.call(Proto::Rest, &issue_call(&req, json)).await;
        if outcome.ok() {
            tokens.push(outcome.decode::<TokenInfo>().refresh_token);
        }
    }
    assert_eq!(tokens.len(), 1);
    let refreshed = clients
        .call(
            Proto::Grpc,
            &refresh_call(vec![("token", tokens[0].clone())]),
        )
        .await;
    assert!(refreshed.ok(), "{refreshed:?}");
    ldap.stop();
    let (req, json) = issue_request("domain-a", "alice@example.com", Some(PASSWORD), "", 0, 0);
    clients.call(Proto::Rest, &issue_call(&req, json)).await;
    ldap.restart();
    std::thread::sleep(std::time::Duration::from_millis(800));
    server.signal("TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let logs = server.logs();
    assert!(
        logs.lines().count() > 20 && logs.contains("ldap directory unreachable"),
        "TRACE logging was on and the outage was logged"
    );
    for secret in [
        PASSWORD,
        "wrong-guess-77",
        "wrong-guess-78",
        SERVICE_PASSWORD,
    ] {
        if let Some(at) = logs.find(secret) {
            let start = at.saturating_sub(200);
            panic!(
                "a secret appears in the logs: ...{}...",
                &logs[start..(at + secret.len()).min(logs.len())]
            );
        }
    }
}
