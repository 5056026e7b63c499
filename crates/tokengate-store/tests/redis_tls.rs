//! `rediss://` end to end: a TLS-only redis-server with a throwaway CA.
//!
//! A file of its own because the CA reaches the client through the
//! `SSL_CERT_FILE` environment variable (read by rustls-native-certs), which
//! must be set while no other test thread runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokengate_store::{
    FamilyRecord, FamilyRef, KeyId, RedisStore, RedisStoreConfig, RefreshStore, RotateRequest,
    Rotation, StoreError,
};
use tokengate_test_support::ids::{now_ms, unique};
use tokengate_test_support::redis_server::RedisServer;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("the TLS test needs the openssl CLI on PATH: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate for IP 127.0.0.1, in `dir`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tokengate test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

#[test]
fn rediss_url_connects_over_tls() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    // SAFETY: this binary holds this one test, and nothing has started a
    // thread that reads the environment yet (the runtime comes below).
    unsafe { std::env::set_var("SSL_CERT_FILE", certs.path().join("ca.pem")) };
    let server = RedisServer::start_tls(
        &certs.path().join("server.pem"),
        &certs.path().join("server.key"),
        &certs.path().join("ca.pem"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = format!("rediss://127.0.0.1:{}", server.port);
        let config = RedisStoreConfig::new(url).with_timeout(Duration::from_secs(2));
        let store = RedisStore::connect(config).await.expect("connect");
        assert_eq!(
            store.describe(),
            format!(
                "redis standalone 127.0.0.1:{} (tls) (prefix tokengate:)",
                server.port
            )
        );
        store.ping().await.expect("ping over TLS");

        let fam = FamilyRef {
            family_id: unique("fam"),
            domain_id: unique("d"),
            principal_id: unique("u"),
        };
        let t = now_ms();
        let k0 = KeyId(unique("k"));
        let record = FamilyRecord {
            family: fam.clone(),
            issued_at_ms: t,
            expires_at_ms: t + 60_000,
            password_fingerprint: [1; 16],
            origin: tokengate_store::SessionOrigin::default(),
        };
        store.start_family(&record, &k0, t + 60_000).await.unwrap();
        let req = RotateRequest {
            family: fam,
            presented: k0,
            presented_generation: 0,
            presented_expires_at_ms: t + 60_000,
            successor: KeyId(unique("k")),
            successor_expires_at_ms: t + 60_000,
            password_fingerprint: [1; 16],
            now_ms: t + 1,
            grace_ms: 0,
            answer: Vec::new(),
        };
        assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);

        // Plain text to the TLS port gets nowhere (and fails cleanly).
        let plain = format!("redis://127.0.0.1:{}", server.port);
        let config = RedisStoreConfig::new(plain).with_timeout(Duration::from_millis(500));
        let store = RedisStore::connect(config).await.expect("connect");
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Unavailable(_) | StoreError::Timeout)
        ));
    });
}
