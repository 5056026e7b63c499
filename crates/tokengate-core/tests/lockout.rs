//! Failed-login limits (SPEC §3): per (domain, user) and per client IP. Only
//! failed password checks count; at most limit − failures checks are in
//! flight at once and further attempts wait for a slot; past the limit the
//! answer is ERROR_LOGIN_LOCKED with the time left in the window.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokengate_core::{
    Credentials, ErrorClass, IssueRequest, LoginLimits, PasswordPool, TokenError, TokenService,
    TokenSettings,
};
use tokengate_directory::{Directory, hash_bcrypt};
use tokengate_keys::{Algorithm, KeyDir};
use tokengate_store::MemoryStore;

const PASSWORD: &str = "right";

fn service(limits: LoginLimits, keys: &std::path::Path) -> Arc<TokenService> {
    service_with_cost(limits, keys, 4)
}

/// With the directory's bcrypt cost: 10 makes a check take tens of ms, long
/// enough to cancel one mid-way.
fn service_with_cost(limits: LoginLimits, keys: &std::path::Path, cost: u32) -> Arc<TokenService> {
    let hash = hash_bcrypt(PASSWORD, cost).expect("hash");
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
        protocol: "",
    }
}

fn is_locked(result: &Result<tokengate_core::TokenPair, TokenError>) -> bool {
    matches!(result, Err(e @ TokenError::LoginLocked { .. }) if e.status() == ErrorClass::ResourceExhausted)
}

#[tokio::test]
async fn user_lockout_after_the_limit_with_retry_delay() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 3,
            per_ip: 0,
            window_secs: 60,
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
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

/// Parallel logins with the right password only ever wait for a slot: a
/// user opening many tabs or a batch job is never locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_parallel_right_passwords_all_succeed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 10,
            per_ip: 10,
            window_secs: 300,
            ..Default::default()
        },
        tmp.path(),
    );
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let svc = Arc::clone(&svc);
            tokio::spawn(async move { svc.issue(login("alice", PASSWORD, "10.0.0.1")).await })
        })
        .collect();
    for task in tasks {
        let answer = task.await.expect("join");
        assert!(answer.is_ok(), "a right password was refused: {answer:?}");
    }
    // And nothing was counted: ten wrong guesses still get to the check.
    for _ in 0..10 {
        let err = svc
            .issue(login("alice", "wrong", "10.0.0.1"))
            .await
            .expect_err("wrong password");
        assert_eq!(err.code(), "ERROR_AUTHENTICATION_FAILURE");
    }
    assert!(is_locked(
        &svc.issue(login("alice", "wrong", "10.0.0.1")).await
    ));
}

/// With F failures so far, the L − F slots left serve right passwords in
/// turns: all of them succeed, and the failures stay F.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_passwords_share_the_slots_failures_left() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 10,
            per_ip: 0,
            window_secs: 300,
            ..Default::default()
        },
        tmp.path(),
    );
    for _ in 0..8 {
        svc.issue(login("alice", "wrong", "10.0.0.1"))
            .await
            .expect_err("wrong password");
    }
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let svc = Arc::clone(&svc);
            tokio::spawn(async move { svc.issue(login("alice", PASSWORD, "10.0.0.1")).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("join").is_ok());
    }
    for _ in 0..2 {
        svc.issue(login("alice", "wrong", "10.0.0.1"))
            .await
            .expect_err("wrong password");
    }
    assert!(is_locked(
        &svc.issue(login("alice", PASSWORD, "10.0.0.1")).await
    ));
}

/// A locked answer tells the truth: once the failures' window has passed,
/// the right password logs in (the retry delay named is that window).
#[tokio::test]
async fn the_retry_delay_is_the_failures_window() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service(
        LoginLimits {
            per_user: 2,
            per_ip: 0,
            window_secs: 2,
            ..Default::default()
        },
        tmp.path(),
    );
    for _ in 0..2 {
        svc.issue(login("alice", "wrong", "10.0.0.1"))
            .await
            .expect_err("wrong");
    }
    let err = svc
        .issue(login("alice", PASSWORD, "10.0.0.1"))
        .await
        .expect_err("locked");
    let delay = err.retry_after_secs().expect("a retry delay");
    assert!((1..=2).contains(&delay), "{err}");
    tokio::time::sleep(Duration::from_secs(delay) + Duration::from_millis(100)).await;
    assert!(
        svc.issue(login("alice", PASSWORD, "10.0.0.1"))
            .await
            .is_ok()
    );
}

/// A call cancelled mid-check (its deadline passed) frees its slot at once
/// and counts nothing, rather than holding the slot for the whole lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_check_frees_its_slot() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svc = service_with_cost(
        LoginLimits {
            per_user: 1,
            per_ip: 0,
            window_secs: 300,
            check_lease_secs: 60,
        },
        tmp.path(),
        10,
    );
    for _ in 0..3 {
        let cancelled = tokio::time::timeout(
            Duration::from_millis(5),
            svc.issue(login("alice", "wrong", "10.0.0.1")),
        )
        .await;
        assert!(cancelled.is_err(), "the check should still be running");
    }
    // The one slot is free again well before the 60 s lease: the next
    // login waits at most for the background release.
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        svc.issue(login("alice", PASSWORD, "10.0.0.1")),
    )
    .await
    .expect("the slot was freed");
    assert!(next.is_ok(), "{next:?}");
}
