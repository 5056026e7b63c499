//! Timing: an unknown user, a wrong password and a disabled user's wrong
//! password must cost the same (SPEC §2 issue rule 3). Prints the medians
//! and a Mann–Whitney U test per pair; fails only on a gross difference
//! (a skipped hash check would be thousands of times faster), so a busy CI
//! machine cannot make it flaky.

use std::sync::Arc;
use std::time::Instant;

use tokengate_core::{
    Credentials, IssueRequest, LoginLimits, PasswordPool, TokenService, TokenSettings,
};
use tokengate_directory::{Directory, hash_bcrypt};
use tokengate_keys::{Algorithm, KeyDir};
use tokengate_store::MemoryStore;
use tokengate_test_support::stats::{mann_whitney_z, median};

const SAMPLES: usize = 30;

fn login(user: &str, password: &str) -> IssueRequest {
    IssueRequest {
        user_id: user.to_owned(),
        credentials: Credentials::Password(password.to_owned()),
        user_type: String::new(),
        domain_id: "d".to_owned(),
        timeout: 0,
        refresh_count: 0,
        client_ip: None,
        protocol: "",
    }
}

#[tokio::test]
async fn unknown_user_wrong_password_and_disabled_user_cost_the_same() {
    let hash = hash_bcrypt("right", 6).expect("hash");
    let directory = Directory::from_toml(&format!(
        "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"alice\"\npassword_hash = \"{hash}\"\n[[domain.user]]\nuser_id = \"dave\"\npassword_hash = \"{hash}\"\nstate = \"DISABLED\"\n"
    ))
    .expect("directory");
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys = KeyDir::new(tmp.path());
    keys.generate_missing(["d"], Algorithm::EdDSA)
        .expect("keys");
    let svc = Arc::new(TokenService::new(
        directory,
        keys.load().expect("keys"),
        Arc::new(MemoryStore::new()),
        PasswordPool::new(1, 8),
        TokenSettings {
            login_limits: LoginLimits {
                per_user: 0,
                per_ip: 0,
                window_secs: 1,
                ..Default::default()
            },
            ..TokenSettings::default()
        },
    ));
    let cases = [
        ("unknown user", "nobody"),
        ("wrong password", "alice"),
        ("disabled user", "dave"),
    ];
    let mut timings: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    // Interleaved, so machine noise hits every case alike.
    for _ in 0..SAMPLES {
        for (i, (_, user)) in cases.iter().enumerate() {
            let started = Instant::now();
            let err = svc.issue(login(user, "wrong")).await.expect_err("refused");
            timings[i].push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(err.code(), "ERROR_AUTHENTICATION_FAILURE");
        }
    }
    let medians: Vec<f64> = timings.iter_mut().map(|t| median(t)).collect();
    for (i, (name, _)) in cases.iter().enumerate() {
        println!("{name:>15}: median {:.2} ms over {SAMPLES}", medians[i]);
    }
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let z = mann_whitney_z(&timings[i], &timings[j]);
        println!(
            "{} vs {}: Mann-Whitney z = {z:.2} (|z| < 3.3 ~ p > 0.001)",
            cases[i].0, cases[j].0
        );
        let ratio = medians[i] / medians[j];
        assert!(
            (0.5..2.0).contains(&ratio),
            "{} vs {}: medians {:.2} / {:.2} ms",
            cases[i].0,
            cases[j].0,
            medians[i],
            medians[j]
        );
    }
}
