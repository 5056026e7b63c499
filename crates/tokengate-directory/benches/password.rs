//! Password verification per hash kind: the ceiling of `issue` throughput.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokengate_directory::{PasswordHash, hash_argon2id, hash_bcrypt};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("password_verify");
    group.sample_size(10);
    let cases = [
        ("argon2id-default", hash_argon2id("s3cret").expect("hash")),
        ("bcrypt-10", hash_bcrypt("s3cret", 10).expect("hash")),
        ("bcrypt-12", hash_bcrypt("s3cret", 12).expect("hash")),
    ];
    for (name, text) in cases {
        let hash = PasswordHash::parse(&text).expect("parse");
        group.bench_function(name, |b| {
            b.iter(|| assert!(hash.verify(black_box("s3cret"))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
