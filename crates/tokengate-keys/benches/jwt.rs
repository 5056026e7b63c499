//! Sign and verify through the path the service uses (parsed aws-lc-rs
//! keys behind `KeySet`), per algorithm. These are the crypto limits the
//! service's refresh throughput is judged against.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tokengate_keys::{Algorithm, KeySet, SigningKey};

fn claims() -> serde_json::Value {
    serde_json::json!({
        "cat": "REFRESH_TOKEN", "user_type": "USER", "did": "domain-1a2b3c",
        "aud": "alice@example.com", "iat": 1_800_000_000u64, "exp": 1_800_001_800u64,
        "iss": "tokengate", "key": "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAA", "ttl": 17,
        "fam": "bm90LWEtcmVhbC1mYW1pbHk", "fex": 1_800_086_400u64
    })
}

fn bench(c: &mut Criterion) {
    for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let der = SigningKey::generate_pkcs8(algorithm).expect("generate");
        let set = KeySet::new(vec![Arc::new(
            SigningKey::from_pkcs8("bench", &der).expect("parse"),
        )]);
        let claims = claims();
        let token = set.sign(&claims).expect("sign");
        c.bench_function(&format!("sign/{algorithm}"), |b| {
            b.iter(|| set.sign(black_box(&claims)).expect("sign"))
        });
        c.bench_function(&format!("verify/{algorithm}"), |b| {
            b.iter(|| {
                set.verify::<serde_json::Value>(black_box(&token))
                    .expect("verify")
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
