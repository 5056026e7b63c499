//! The command line: hash-password, check-config, keys generate/rotate,
//! revoke's refusal without a shared store, and helpful errors.

use std::io::Write as _;
use std::process::{Command, Stdio};

fn tokengate(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(args)
        .env_remove("TOKENGATE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hash_password_makes_verifiable_hashes() {
    let (ok, out, _) = tokengate(&["hash-password"], Some("s3cret\n"));
    assert!(ok);
    let hash = tokengate_directory::PasswordHash::parse(out.trim()).expect("argon2id PHC");
    assert!(out.starts_with("$argon2id$"));
    assert!(hash.verify("s3cret") && !hash.verify("s3cret\n"));
    let (ok, out, _) = tokengate(
        &["hash-password", "--bcrypt", "--cost", "4"],
        Some("s3cret"),
    );
    assert!(ok);
    assert!(out.starts_with("$2b$04$"));
    assert!(
        tokengate_directory::PasswordHash::parse(out.trim())
            .expect("bcrypt")
            .verify("s3cret")
    );
    let (ok, _, err) = tokengate(&["hash-password"], Some(""));
    assert!(!ok && err.contains("empty password"), "{err}");
}

#[test]
fn check_config_keys_and_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("users.toml"),
        tokengate_test_support::test_server::directory_toml(4),
    )
    .expect("users");
    let config = dir.path().join("tokengate.toml");
    std::fs::write(&config, "directory = \"users.toml\"\n[keys]\ndir = \"keys\"\ngenerate_missing = false\nalgorithm = \"ES256\"\n").expect("config");
    let config = config.to_str().expect("utf-8");

    let (ok, _, err) = tokengate(&["check-config", config], None);
    assert!(!ok && err.contains("no keys for domains"), "{err}");

    let (ok, out, err) = tokengate(&["keys", "generate", "--config", config], None);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("created")).count(),
        4,
        "{out}"
    );
    let (ok, out, _) = tokengate(&["check-config", config], None);
    assert!(ok && out.starts_with("config OK"), "{out}");

    let (ok, out, err) = tokengate(
        &[
            "keys",
            "rotate",
            "--config",
            config,
            "--domain",
            "domain-a",
            "--algorithm",
            "EdDSA",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("rotated")).count(),
        2,
        "{out}"
    );
    let ring = tokengate_keys::KeyDir::new(dir.path().join("keys"))
        .load()
        .expect("keys");
    let access = &ring.domain("domain-a").expect("domain").access;
    assert_eq!(access.keys().len(), 2, "old key kept for verification");
    assert_eq!(
        access.signing_key().expect("key").algorithm(),
        tokengate_keys::Algorithm::EdDSA
    );

    let (ok, out, err) = tokengate(
        &[
            "keys",
            "rotate",
            "--config",
            config,
            "--all",
            "--retire-keep",
            "1",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("retired domain-a access"), "{out}");

    let (ok, _, err) = tokengate(
        &[
            "revoke",
            "--config",
            config,
            "--domain",
            "domain-a",
            "--user",
            "alice@example.com",
        ],
        None,
    );
    assert!(!ok && err.contains("store.redis_url"), "{err}");

    // [introspection]: a client entry must be `<id>:<hex SHA-256>`; the
    // error names the entry's id, never the digest.
    let with_introspection = |entry: &str| {
        let text = std::fs::read_to_string(config).expect("config");
        let bad = dir.path().join("introspection.toml");
        std::fs::write(
            &bad,
            format!("{text}[introspection]\nclients = [\"{entry}\"]\n"),
        )
        .expect("write");
        tokengate(&["check-config", bad.to_str().expect("utf-8")], None)
    };
    let (ok, _, err) = with_introspection("gateway:not-a-digest-0123");
    assert!(
        !ok && err.contains("introspection.clients entry for \"gateway\"")
            && !err.contains("not-a-digest-0123"),
        "{err}"
    );
    let (ok, out, err) = with_introspection(&format!("gateway:{}", "ab".repeat(32)));
    assert!(ok && out.starts_with("config OK"), "{out}{err}");

    let (ok, _, err) = tokengate(&["check-config", "/nonexistent/tokengate.toml"], None);
    assert!(!ok && err.contains("/nonexistent/tokengate.toml"), "{err}");
    let (ok, _, err) = tokengate(&["keys", "generate"], None);
    assert!(!ok && err.contains("--config"), "{err}");
}

#[test]
fn help_explains_every_command() {
    let (ok, out, _) = tokengate(&["--help"], None);
    assert!(ok);
    for command in [
        "serve",
        "hash-password",
        "keys",
        "revoke",
        "check-config",
        "import",
    ] {
        assert!(out.contains(command), "{command} in help");
    }
    let (ok, out, _) = tokengate(&["serve", "--help"], None);
    assert!(
        ok && out.contains("--config")
            && out.contains("TOKENGATE_CONFIG")
            && out.contains("--listen")
    );
    let (ok, out, _) = tokengate(&["import", "spaceone", "--help"], None);
    assert!(
        ok && ["--from", "--to", "--keys", "--dry-run", "--force"]
            .iter()
            .all(|flag| out.contains(flag)),
        "{out}"
    );
}
