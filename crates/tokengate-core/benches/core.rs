//! The core issue and refresh paths on the in-memory store, per algorithm:
//! everything but the transport.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tokengate_core::{Credentials, IssueRequest, PasswordPool, TokenService, TokenSettings};
use tokengate_directory::{Directory, hash_bcrypt};
use tokengate_keys::{Algorithm, KeyDir};
use tokengate_store::MemoryStore;

fn service(algorithm: Algorithm, keys: &std::path::Path) -> Arc<TokenService> {
    let hash = hash_bcrypt("pw", 4).expect("hash");
    let directory = Directory::from_toml(&format!(
        "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"u\"\npassword_hash = \"{hash}\"\n"
    ))
    .expect("directory");
    let dir = KeyDir::new(keys);
    dir.generate_missing(["d"], algorithm).expect("keys");
    Arc::new(TokenService::new(
        directory,
        dir.load().expect("load"),
        Arc::new(MemoryStore::new()),
        PasswordPool::new(1, 64),
        TokenSettings {
            refresh_ttl: i32::MAX as u32,
            // Benchmarks log in far more often than any limit allows.
            login_limits: tokengate_core::LoginLimits {
                per_user: 0,
                per_ip: 0,
                window_secs: 1,
                ..Default::default()
            },
            ..TokenSettings::default()
        },
    ))
}

fn login() -> IssueRequest {
    IssueRequest {
        user_id: "u".into(),
        credentials: Credentials::Password("pw".into()),
        user_type: String::new(),
        domain_id: "d".into(),
        timeout: 0,
        refresh_count: 0,
        client_ip: None,
        protocol: "",
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let svc = service(algorithm, tmp.path());
        c.bench_function(&format!("core/issue-bcrypt4/{algorithm}"), |b| {
            b.iter(|| runtime.block_on(svc.issue(login())).expect("issue"))
        });
        let mut token = runtime
            .block_on(svc.issue(login()))
            .expect("issue")
            .refresh_token;
        c.bench_function(&format!("core/refresh/{algorithm}"), |b| {
            b.iter(|| {
                let pair = runtime
                    .block_on(svc.refresh(Some(&token)))
                    .expect("refresh");
                token = pair.refresh_token;
            })
        });
        c.bench_function(&format!("core/get_public_key/{algorithm}"), |b| {
            b.iter(|| svc.public_key("d").expect("key"))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
