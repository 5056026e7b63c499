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
use tokengate_test_support::test_server::{ServerOptions, TestServer};

fn import(from: &Path, to: &Path, dry_run: bool) -> String {
    let mut command = Command::new(tokengate_binary());
    command
        .args(["import", "spaceone", "--from"])
        .arg(from)
        .arg("--to")
        .arg(to.join("users.toml"))
        .arg("--keys")
        .arg(to.join("keys"));
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command.output().expect("run tokengate import");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "import failed: {stdout}{stderr}");
    for secret in ["$2b$", "PRIVATE KEY", "\"d\"", "eyJ"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "the report shows {secret:?}: {stdout}{stderr}"
        );
    }
    stdout
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
    let made = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/spaceone-fixtures.sh"
        ))
        .arg(&fixtures)
        .status()
        .expect("run tools/spaceone-fixtures.sh");
    assert!(made.success(), "tools/spaceone-fixtures.sh failed");
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("expected.json")).expect("expected.json"),
    )
    .expect("expected JSON");
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
