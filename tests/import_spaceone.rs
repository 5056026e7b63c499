//! `tokengate import spaceone` end to end: fixtures made the way SpaceONE
//! makes them (tools/spaceone-fixtures.sh: Python's bcrypt at cost 12,
//! jwcrypto RSA-2048 JWKs, pymongo's bson.json_util in canonical and
//! relaxed mode), imported by the real binary, then served: every imported
//! user logs in with its SpaceONE password, `get_public_key` answers the
//! `pub_jwk` SpaceONE served, and an access token and API key SpaceONE
//! signed verify with it. A re-run, and the other export mode, change
//! nothing. Refresh tokens SpaceONE minted before the move refresh once
//! (over REST and gRPC), starting a family; their replay ends it.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use tokengate_test_support::calls::{TokenInfo, refresh_call};
use tokengate_test_support::clients::{Clients, Outcome, Proto};
use tokengate_test_support::locate::tokengate_binary;
use tokengate_test_support::postgres_server::{self, PostgresServer};
use tokengate_test_support::test_server::{
    ServerOptions, TestServer, default_test_env, postgres_cli_config, tokengate_cli,
};

/// Makes the fixtures into `dir` (tools/spaceone-fixtures.sh) and answers
/// their expected.json. One at a time: the first run sets up the script's
/// virtualenv, which two runs at once would both remove and rebuild.
fn make_fixtures(dir: &Path, bcrypt_cost: Option<&str>) -> Value {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut command = Command::new("bash");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/spaceone-fixtures.sh"
        ))
        .arg(dir);
    if let Some(cost) = bcrypt_cost {
        command.env("BCRYPT_COST", cost);
    }
    let made = command.status().expect("run tools/spaceone-fixtures.sh");
    assert!(made.success(), "tools/spaceone-fixtures.sh failed");
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("expected.json"))
        .expect("expected JSON")
}

/// Runs `tokengate import spaceone` with `args` after `--from`; its stdout
/// (the report), checked to hold no secret.
fn run_import(from: &Path, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(tokengate_binary())
        .args(["import", "spaceone", "--from"])
        .arg(from)
        .args(args)
        .output()
        .expect("run tokengate import");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "import failed: {stdout}{stderr}");
    for secret in [
        "$2b$",
        "PRIVATE KEY",
        "\"d\"",
        "eyJ",
        postgres_server::PASSWORD,
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "the report shows {secret:?}: {stdout}{stderr}"
        );
    }
    stdout
}

fn import(from: &Path, to: &Path, dry_run: bool) -> String {
    let (file, keys) = (to.join("users.toml"), to.join("keys"));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--to".as_ref(),
        file.as_os_str(),
        "--keys".as_ref(),
        keys.as_os_str(),
    ];
    if dry_run {
        args.push("--dry-run".as_ref());
    }
    run_import(from, &args)
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string();
                out.push((name, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

async fn issue(server: &TestServer, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/identity/v1/token/issue"))
        .body(body.to_string())
        .send()
        .await
        .expect("issue");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

/// The claims of an RS256 JWT verified with an RSA JWK's `n` and `e`, as a
/// SpaceONE service verifies with `get_public_key`'s answer.
fn verify_rs256(jwt: &str, jwk: &Value, check_exp: bool) -> Result<Value, String> {
    let (Some(n), Some(e)) = (jwk["n"].as_str(), jwk["e"].as_str()) else {
        return Err(format!("not an RSA JWK: {jwk}"));
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    validation.validate_exp = check_exp;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaceone_export_imports_logs_in_and_keeps_keys() {
    let started = std::time::Instant::now();
    let work = tempfile::tempdir().expect("tempdir");
    let fixtures = work.path().join("export");
    let expected = make_fixtures(&fixtures, None);
    eprintln!("fixtures made in {:?}", started.elapsed());

    // A dry run writes nothing.
    let target = work.path().join("tokengate");
    let dry = import(&fixtures.join("canonical"), &target, true);
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    assert!(!target.exists(), "a dry run wrote {}", target.display());

    let first = import(&fixtures.join("canonical"), &target, false);
    let users = expected["users"].as_array().expect("users");
    let owners = expected["owners"].as_array().expect("owners");
    assert!(first.contains("domains: 4 imported, 1 skipped"), "{first}");
    assert!(
        first.contains(&format!("users: {} imported, 2 skipped", users.len())),
        "{first}"
    );
    assert!(
        first.contains(&format!("owners: {} imported, 1 skipped", owners.len())),
        "{first}"
    );
    assert!(
        first.contains("domain keys: 3 imported, 2 skipped"),
        "{first}"
    );
    // A domain_secret whose pub_jwk is not the public half of its prv_jwk:
    // its domain is imported, its keys skipped with the reason and a
    // warning, and no key of it is written (the import itself succeeds).
    let mismatched = expected["mismatched_secret"].as_str().expect("mismatched");
    for line in [
        format!("skipped domain_secret {mismatched}: pub_jwk is not the public half of prv_jwk"),
        format!("warning: domain {mismatched} has no keys in the export"),
    ] {
        assert!(first.contains(&line), "no {line:?} in {first}");
    }
    assert!(
        !first.contains(&format!("key {mismatched} ")),
        "a key of {mismatched} was written: {first}"
    );
    assert!(
        !target.join("keys").join(mismatched).exists(),
        "keys written for {mismatched}"
    );
    for reason in [
        "skipped domain domain-gone: state DELETED",
        "skipped user domain-gone/zed@example.com: its domain domain-gone is DELETED",
        "malformed: not JSON",
    ] {
        assert!(first.contains(reason), "no {reason:?} in {first}");
    }
    assert!(
        !first.contains("sso@example.com") && !first.contains("apikey-only"),
        "the EXTERNAL user and the password-less API user are kept: {first}"
    );
    let written = tree(&target);

    // Re-running, over either export mode, changes nothing.
    let again = import(&fixtures.join("canonical"), &target, false);
    assert!(again.contains("nothing changed"), "{again}");
    let relaxed = import(&fixtures.join("relaxed"), &target, false);
    assert!(relaxed.contains("nothing changed"), "{relaxed}");
    assert_eq!(tree(&target), written, "a re-run changed files");

    let server = TestServer::start_with(ServerOptions {
        directory: Some(
            std::fs::read_to_string(target.join("users.toml")).expect("imported directory"),
        ),
        keys_dir: Some(target.join("keys")),
        algorithm: "RS256",
        ..ServerOptions::default()
    });

    for user in users {
        let (domain_id, user_id) = (&user["domain_id"], &user["user_id"]);
        let (status, answer) = issue(
            &server,
            json!({"domain_id": domain_id, "user_id": user_id,
                   "credentials": {"password": user["password"].as_str().unwrap_or("any password")}}),
        )
        .await;
        let message = answer["message"].as_str().unwrap_or_default();
        let expect_reason = if domain_id == "domain-off" {
            Some("ERROR_DOMAIN_STATE")
        } else if user["password"].is_null() {
            // No password here: an EXTERNAL user (SpaceONE 1.x's answer
            // without an auth plugin) or an API user with API keys only.
            Some("ERROR_AUTHENTICATION_FAILURE")
        } else if user["user_type"] == "API_USER" {
            Some("ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER")
        } else if user["state"] != "ENABLED" {
            Some("ERROR_USER_STATUS_CHECK_FAILURE")
        } else {
            None
        };
        match expect_reason {
            None => {
                assert_eq!(status, 200, "{domain_id} {user_id}: {answer}");
                let token = answer["access_token"].as_str().expect("access token");
                let access = claims(token);
                assert_eq!(access["aud"], *user_id);
                // Signed with SpaceONE's own key: its verifiers (and SpaceONE
                // itself, after a roll back) accept it.
                let pub_jwk = &expected["keys"][domain_id.as_str().expect("id")]["pub_jwk"];
                verify_rs256(token, pub_jwk, true)
                    .unwrap_or_else(|e| panic!("{domain_id} {user_id}: {e}"));
                let wants_update = user["required_actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "UPDATE_PASSWORD"));
                assert_eq!(
                    access.get("permissions").is_some(),
                    wants_update,
                    "{access}"
                );
            }
            Some(reason) => {
                assert_eq!(status, 401, "{domain_id} {user_id}: {answer}");
                assert!(
                    message.starts_with(reason),
                    "{domain_id} {user_id}: {answer}"
                );
            }
        }
        // The password, not the mere presence of the user, let it in.
        let (status, answer) = issue(
            &server,
            json!({"domain_id": domain_id, "user_id": user_id, "credentials": {"password": "wrong"}}),
        )
        .await;
        if domain_id != "domain-off" {
            assert_eq!(status, 401);
            assert!(
                answer["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("ERROR_AUTHENTICATION_FAILURE")),
                "{answer}"
            );
        }
    }
    for owner in owners.iter().filter(|o| o["domain_id"] != "domain-off") {
        let (status, answer) = issue(
            &server,
            json!({"domain_id": owner["domain_id"], "user_id": owner["owner_id"], "user_type": "DOMAIN_OWNER",
                   "credentials": {"password": owner["password"]}}),
        )
        .await;
        assert_eq!(status, 200, "{owner}: {answer}");
    }

    let client = reqwest::Client::new();
    for (domain_id, keys) in expected["keys"].as_object().expect("keys") {
        let response = client
            .post(server.url("/identity/v1/domain/get-public-key"))
            .body(json!({"domain_id": domain_id}).to_string())
            .send()
            .await
            .expect("get-public-key");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("JSON");
        if keys["state"] == "DELETED" {
            assert_ne!(status, 200, "{domain_id}: {answer}");
            continue;
        }
        assert_eq!(status, 200, "{domain_id}: {answer}");
        let served: Value =
            serde_json::from_str(answer["public_key"].as_str().expect("public_key")).expect("JWK");
        for member in ["kty", "n", "e"] {
            assert_eq!(
                served[member], keys["pub_jwk"][member],
                "{domain_id} {member}"
            );
        }
        // Tokens SpaceONE signed before the move verify with the served key.
        for (token, exp) in [("access_token", true), ("api_key", false)] {
            let Some(jwt) = keys[token].as_str() else {
                continue;
            };
            let claims = verify_rs256(jwt, &served, exp)
                .unwrap_or_else(|e| panic!("{domain_id} {token}: {e}"));
            assert_eq!(claims["did"], *domain_id);
        }
    }
    adopts_spaceone_refresh_tokens(&server, &expected["keys"]["domain-alpha"]).await;
    eprintln!("whole test: {:?}", started.elapsed());
}

async fn refresh(clients: &Clients, proto: Proto, token: &str) -> Outcome {
    let call = refresh_call(vec![("authorization", format!("Bearer {token}"))]);
    clients.call(proto, &call).await
}

fn assert_refused(outcome: &Outcome, reason: &str, what: &str) {
    assert!(!outcome.ok(), "{what}: refreshed");
    assert!(
        outcome.message.starts_with(reason),
        "{what}: {outcome:?}, not {reason}"
    );
}

/// Refresh tokens SpaceONE minted before the move (RS256 with the imported
/// `refresh_prv_jwk`, no `kid`, SpaceONE's claims): each refreshes once,
/// into a family of tokengate's own; a replay is reuse and ends that
/// family; a kid-less token signed by any other key is refused.
async fn adopts_spaceone_refresh_tokens(server: &TestServer, keys: &Value) {
    let clients = Clients::new(server).await;
    let token = |name: &str| keys[name].as_str().expect(name).to_owned();
    let adopted_before = server.metric("tokengate_families_adopted_total").await;
    for (proto, name, user_type) in [
        (Proto::Rest, "refresh_token", "USER"),
        (Proto::Grpc, "refresh_token_2", "USER"),
        (Proto::Grpc, "owner_refresh_token", "DOMAIN_OWNER"),
    ] {
        let spaceone = token(name);
        let first = refresh(&clients, proto, &spaceone).await;
        assert!(first.ok(), "{name} over {proto:?}: {first:?}");
        let pair: TokenInfo = first.decode();
        let new_refresh = claims(&pair.refresh_token);
        assert!(new_refresh["fam"].is_string(), "{new_refresh}");
        assert_eq!(new_refresh["gen"], 1, "{new_refresh}");
        assert_eq!(new_refresh["user_type"], user_type);
        assert_eq!(claims(&pair.access_token)["cat"], "ACCESS_TOKEN");
        // The successor refreshes as any token of ours.
        let second = refresh(&clients, proto, &pair.refresh_token).await;
        assert!(second.ok(), "{name} successor: {second:?}");
        let successor: TokenInfo = second.decode();
        // The SpaceONE token again: reuse, the adopted family ends.
        let replay = refresh(&clients, proto, &spaceone).await;
        assert_refused(&replay, "ERROR_INVALID_REFRESH_TOKEN", name);
        let after = refresh(&clients, proto, &successor.refresh_token).await;
        assert_refused(
            &after,
            "ERROR_INVALID_REFRESH_TOKEN",
            "the successor after reuse",
        );
        // Still no second family from it, over the other protocol too.
        let other = if proto == Proto::Rest {
            Proto::Grpc
        } else {
            Proto::Rest
        };
        let again = refresh(&clients, other, &spaceone).await;
        assert_refused(&again, "ERROR_INVALID_REFRESH_TOKEN", "a later replay");
    }
    assert_eq!(
        server.metric("tokengate_families_adopted_total").await - adopted_before,
        3.0
    );
    // Kid-less, SpaceONE's claims, but signed by a key SpaceONE never had,
    // or by the domain's access key: no imported refresh key verifies them.
    for name in ["forged_refresh_token", "access_signed_refresh_token"] {
        for proto in [Proto::Rest, Proto::Grpc] {
            let outcome = refresh(&clients, proto, &token(name)).await;
            assert_refused(&outcome, "ERROR_AUTHENTICATE_FAILURE", name);
            assert!(
                outcome.message.contains("Token validation failed"),
                "{outcome:?}"
            );
        }
    }
    // Tampered: alice's SpaceONE token with another `aud`, signature kept.
    let original = token("refresh_token");
    let mut parts: Vec<String> = original.split('.').map(str::to_owned).collect();
    let mut body = claims(&original);
    body["aud"] = json!("dave@example.com");
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string());
    let outcome = refresh(&clients, Proto::Rest, &parts.join(".")).await;
    assert_refused(&outcome, "ERROR_AUTHENTICATE_FAILURE", "tampered");
}

/// `--to postgres://…`: the same export into a private PostgreSQL
/// directory. A dry run commits nothing and writes no key; the import
/// creates every row; a re-run changes none; tokengate serving the database
/// logs the imported users in (the EXTERNAL user gets SpaceONE's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaceone_export_imports_into_postgres() {
    let work = tempfile::tempdir().expect("tempdir");
    let fixtures = work.path().join("export");
    // Cost 4: this test is about rows, not bcrypt.
    let expected = make_fixtures(&fixtures, Some("4"));
    let postgres = PostgresServer::start();
    let config = postgres_cli_config(work.path(), &postgres);
    let migrated = tokengate_cli(Some(&config), &["directory", "migrate"], "");
    assert!(migrated.status.success(), "migrate: {migrated:?}");
    let keys = work.path().join("keys");
    let password_file = work.path().join("pgpass");
    let url = postgres.url();
    let args = |dry_run: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--to".as_ref(),
            url.as_ref(),
            "--password-file".as_ref(),
            password_file.as_os_str(),
            "--keys".as_ref(),
            keys.as_os_str(),
        ];
        if dry_run {
            args.push("--dry-run".as_ref());
        }
        args
    };
    let canonical = fixtures.join("canonical");
    let users = expected["users"].as_array().expect("users");
    let owners = expected["owners"].as_array().expect("owners");

    let dry = run_import(&canonical, &args(true));
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    assert!(
        dry.contains(&format!("database users: {} would be created", users.len())),
        "{dry}"
    );
    assert_eq!(postgres.psql("SELECT count(*) FROM tokengate.users"), "0");
    assert!(!keys.exists(), "a dry run wrote keys");

    let first = run_import(&canonical, &args(false));
    for line in [
        "domains: 4 imported, 1 skipped".to_owned(),
        format!("users: {} imported, 2 skipped", users.len()),
        format!("owners: {} imported, 1 skipped", owners.len()),
        "domain keys: 3 imported, 2 skipped".to_owned(),
        "database domains: 4 created, 0 updated, 0 unchanged".to_owned(),
        format!(
            "database users: {} created, 0 updated, 0 unchanged",
            users.len()
        ),
        format!(
            "database owners: {} created, 0 updated, 0 unchanged",
            owners.len()
        ),
    ] {
        assert!(first.contains(&line), "no {line:?} in {first}");
    }
    assert_eq!(
        postgres.psql(
            "SELECT backend || ':' || coalesce(password_hash, 'none') FROM tokengate.users \
             WHERE user_id = 'sso@example.com'"
        ),
        "EXTERNAL:none"
    );
    assert_eq!(
        postgres.psql(
            "SELECT array_to_string(required_actions, ',') FROM tokengate.users \
             WHERE user_id = 'dave@example.com'"
        ),
        "UPDATE_PASSWORD"
    );
    let keys_written = tree(&keys);

    // Again, from the other export mode: nothing changes.
    let again = run_import(&fixtures.join("relaxed"), &args(false));
    assert!(again.contains("nothing changed"), "{again}");
    assert!(
        again.contains(&format!(
            "database users: 0 created, 0 updated, {} unchanged",
            users.len()
        )),
        "{again}"
    );
    assert_eq!(tree(&keys), keys_written, "a re-run changed keys");

    let server = TestServer::start_with(ServerOptions {
        env: {
            let mut env = default_test_env();
            env.extend(postgres.server_env());
            env
        },
        keys_dir: Some(keys.clone()),
        algorithm: "RS256",
        ..ServerOptions::default()
    });
    let alice = users
        .iter()
        .find(|u| u["domain_id"] == "domain-alpha" && u["user_id"] == "alice@example.com")
        .expect("alice");
    for (user_id, user_type, password, reason) in [
        (
            "alice@example.com",
            "USER",
            alice["password"].as_str().expect("pw"),
            None,
        ),
        ("root", "DOMAIN_OWNER", "root-domain-alpha-pw", None),
        (
            "sso@example.com",
            "USER",
            "any password",
            Some("ERROR_AUTHENTICATION_FAILURE"),
        ),
        (
            "apikey-only",
            "USER",
            "any password",
            Some("ERROR_AUTHENTICATION_FAILURE"),
        ),
        (
            "bob@example.com",
            "USER",
            "bob-pw-2",
            Some("ERROR_USER_STATUS_CHECK_FAILURE"),
        ),
    ] {
        let (status, answer) = issue(
            &server,
            json!({"domain_id": "domain-alpha", "user_id": user_id, "user_type": user_type,
                   "credentials": {"password": password}}),
        )
        .await;
        match reason {
            None => {
                assert_eq!(status, 200, "{user_id}: {answer}");
                let token = answer["access_token"].as_str().expect("access token");
                let pub_jwk = &expected["keys"]["domain-alpha"]["pub_jwk"];
                verify_rs256(token, pub_jwk, true).unwrap_or_else(|e| panic!("{user_id}: {e}"));
            }
            Some(reason) => {
                assert_eq!(status, 401, "{user_id}: {answer}");
                assert!(
                    answer["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with(reason)),
                    "{user_id}: {answer}"
                );
            }
        }
    }
}
