//! Failed-login limits (SPEC §3): per (domain, user) and per client IP,
//! counted atomically before the password check, with a retry delay.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokengate_core::{
    Credentials, IssueRequest, LoginLimits, PasswordPool, StatusCode, TokenError, TokenService,
    TokenSettings,
};
use tokengate_directory::{Directory, hash_bcrypt};
use tokengate_keys::{Algorithm, KeyDir};
use tokengate_store::MemoryStore;

const PASSWORD: &str = "right";

fn service(limits: LoginLimits, keys: &std::path::Path) -> Arc<TokenService> {
    let hash = hash_bcrypt(PASSWORD, 4).expect("hash");
    let directory = Directory::from_toml(&format!(
        "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"alice\"\npassword_hash = \"{hash}\"\n[[domain.user]]\nuser_id = \"bob\"\npassword_hash = \"{hash}\"\n"
    ))
    .expect("directory");
    let dir = KeyDir::new(keys);
    dir.generate_missing(["d"], Algorithm::EdDSA).expect("keys");
    Arc::new(TokenService::new(
        directory,
        dir.load().expect("keys"),
        Arc::new(MemoryStore::new()),
        PasswordPool::new(2, 256),
        TokenSettings {
            login_limits: limits,
            ..TokenSettings::default()
        },
    ))
}

fn login(user: &str, password: &str, ip: &str) -> IssueRequest {
    IssueRequest {
        user_id: user.to_owned(),
        credentials: Credentials::Password(password.to_owned()),
        user_type: String::new(),
        domain_id: "d".to_owned(),
        timeout: 0,
        refresh_count: 0,
        client_ip: Some(ip.parse::<IpAddr>().expect("ip")),
    }
}

fn is_locked(result: &Result<tokengate_core::TokenPair, TokenError>) -> bool {
    matches!(result, Err(e @ TokenError::LoginLocked { .. }) if e.status() == StatusCode::ResourceExhausted)
}

#[tokio::test]
async fn user_lockout_after_the_limit_with_retry_delay() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 3,
            per_ip: 0,
            window_secs: 60,
        },
        tmp.path(),
    );
    for _ in 0..3 {
        let err = svc
            .issue(login("alice", "wrong", "10.0.0.1"))
            .await
            .expect_err("wrong password");
        assert_eq!(err.code(), "ERROR_AUTHENTICATION_FAILURE");
    }
    // Even the right password is refused now, with a delay to wait.
    let locked = svc.issue(login("alice", PASSWORD, "10.0.0.2")).await;
    assert!(is_locked(&locked), "{locked:?}");
    let err = locked.expect_err("locked");
    assert!(matches!(err.retry_after_secs(), Some(s) if (1..=60).contains(&s)));
    assert!(
        err.to_string()
            .starts_with("ERROR_LOGIN_LOCKED: Too many failed logins. Try again in "),
        "{err}"
    );
    // Another user is not affected.
    assert!(svc.issue(login("bob", PASSWORD, "10.0.0.1")).await.is_ok());
}

#[tokio::test]
async fn right_passwords_do_not_count() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 2,
            per_ip: 2,
            window_secs: 60,
        },
        tmp.path(),
    );
    for _ in 0..6 {
        svc.issue(login("alice", PASSWORD, "10.0.0.1"))
            .await
            .expect("login");
    }
}

#[tokio::test]
async fn ip_lockout_spans_users() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 100,
            per_ip: 4,
            window_secs: 60,
        },
        tmp.path(),
    );
    for user in ["alice", "bob", "carol", "dave"] {
        let err = svc
            .issue(login(user, "wrong", "192.0.2.7"))
            .await
            .expect_err("wrong");
        assert_eq!(err.code(), "ERROR_AUTHENTICATION_FAILURE");
    }
    assert!(is_locked(
        &svc.issue(login("alice", PASSWORD, "192.0.2.7")).await
    ));
    assert!(
        svc.issue(login("alice", PASSWORD, "192.0.2.8"))
            .await
            .is_ok(),
        "another address still logs in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_guesses_cannot_slip_past_the_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 10,
            per_ip: 0,
            window_secs: 60,
        },
        tmp.path(),
    );
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let svc = Arc::clone(&svc);
            tokio::spawn(async move {
                svc.issue(login("alice", &format!("guess-{i}"), "10.0.0.1"))
                    .await
            })
        })
        .collect();
    let (mut failed, mut locked) = (0, 0);
    for task in tasks {
        match task.await.expect("join") {
            Err(TokenError::AuthenticationFailure { .. }) => failed += 1,
            Err(TokenError::LoginLocked { .. }) => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (failed, locked),
        (10, 40),
        "exactly the limit reached the password check"
    );
}

#[tokio::test]
async fn the_window_passes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 1,
            per_ip: 0,
            window_secs: 1,
        },
        tmp.path(),
    );
    assert!(
        svc.issue(login("alice", "wrong", "10.0.0.1"))
            .await
            .is_err()
    );
    assert!(is_locked(
        &svc.issue(login("alice", PASSWORD, "10.0.0.1")).await
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        svc.issue(login("alice", PASSWORD, "10.0.0.1"))
            .await
            .is_ok()
    );
}
