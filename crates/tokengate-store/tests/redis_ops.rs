//! Redis-only properties: key layout and TTLs, timeouts on a hung server,
//! recovery after restarts and outages, and credentials kept out of text.

use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use redis::AsyncCommands as _;
use tokengate_store::{
    FamilyRecord, FamilyRef, KeyId, RedisConfigError, RedisStore, RedisStoreConfig, RefreshStore,
    RotateRequest, Rotation, StoreError,
};
use tokengate_test_support::ids::{now_ms, unique};
use tokengate_test_support::ports::free_port;
use tokengate_test_support::redis_server::RedisServer;

const HOUR_MS: u64 = 3_600_000;
const FP: [u8; 16] = [7; 16];

fn family(domain: &str, principal: &str) -> FamilyRef {
    FamilyRef {
        family_id: unique("fam"),
        domain_id: domain.to_owned(),
        principal_id: principal.to_owned(),
    }
}

async fn start(store: &RedisStore, fam: &FamilyRef, now: u64, life_ms: u64) -> KeyId {
    let key = KeyId(unique("key"));
    store
        .start_family(
            &FamilyRecord {
                family: fam.clone(),
                issued_at_ms: now,
                expires_at_ms: now + life_ms,
                password_fingerprint: FP,
                origin: tokengate_store::SessionOrigin::default(),
            },
            &key,
            now + life_ms,
        )
        .await
        .expect("start_family");
    key
}

fn request(fam: &FamilyRef, presented: &KeyId, successor: &KeyId, now: u64) -> RotateRequest {
    RotateRequest {
        family: fam.clone(),
        presented: presented.clone(),
        presented_generation: 0,
        presented_expires_at_ms: now + HOUR_MS,
        successor: successor.clone(),
        successor_expires_at_ms: now + HOUR_MS,
        password_fingerprint: FP,
        now_ms: now,
        grace_ms: 0,
        answer: Vec::new(),
    }
}

/// The documented hash tag, computed independently of the store.
fn tag(domain: &str, principal: &str) -> String {
    let input = format!("{domain}\0{principal}");
    let hex: String = digest(&SHA256, input.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..16].to_owned()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

async fn store(server: &RedisServer, prefix: &str, timeout: Duration) -> RedisStore {
    let config = RedisStoreConfig::new(server.url())
        .with_key_prefix(prefix)
        .with_timeout(timeout);
    RedisStore::connect(config).await.expect("connect")
}

/// Polls `ping` until it succeeds; returns how long that took.
async fn wait_until_up(store: &RedisStore, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match store.ping().await {
            Ok(()) => return started.elapsed(),
            Err(e) => assert!(
                started.elapsed() < within,
                "store did not recover within {within:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_key_is_prefixed_tagged_and_expires() {
    let server = RedisServer::start();
    let prefix = format!("{}:", unique("ttl"));
    let store = store(&server, &prefix, Duration::from_secs(5)).await;
    let (domain, user) = (unique("domain"), unique("user"));
    let t = now_ms();

    // A family rotated with a grace answer, and one rotated then reused
    // (revoked).
    let graced = family(&domain, &user);
    let g0 = start(&store, &graced, t, 10 * 60_000).await;
    let mut winner = request(&graced, &g0, &KeyId(unique("key")), t);
    winner.grace_ms = 30_000;
    winner.answer = vec![1, 2, 3];
    assert_eq!(store.rotate(&winner).await.unwrap(), Rotation::Rotated);
    let reused = family(&domain, &user);
    let k0 = start(&store, &reused, t, 10 * 60_000).await;
    let mut winner = request(&reused, &k0, &KeyId(unique("key")), t);
    winner.grace_ms = 30_000;
    winner.answer = vec![4, 5, 6];
    assert_eq!(store.rotate(&winner).await.unwrap(), Rotation::Rotated);
    let replay = request(&reused, &k0, &KeyId(unique("key")), t + 40_000);
    assert_eq!(
        store.rotate(&replay).await.unwrap(),
        Rotation::ReuseDetected
    );

    // A family whose password changed, one revoked, and a principal marker.
    let changed = family(&domain, &user);
    let c0 = start(&store, &changed, t, HOUR_MS).await;
    let mut req = request(&changed, &c0, &KeyId(unique("key")), t);
    req.password_fingerprint = [9; 16];
    assert_eq!(store.rotate(&req).await.unwrap(), Rotation::PasswordChanged);
    let revoked = family(&domain, &user);
    start(&store, &revoked, t, HOUR_MS).await;
    store.revoke_family(&revoked).await.unwrap();
    store
        .revoke_principal(&domain, &user, t, 120_000)
        .await
        .unwrap();

    // Calls on things that do not exist must not create keys; a principal
    // without families needs no marker.
    let ghost = family(&domain, &user);
    store.revoke_family(&ghost).await.unwrap();
    let unknown = request(&ghost, &KeyId(unique("key")), &KeyId(unique("key")), t);
    assert_eq!(store.rotate(&unknown).await.unwrap(), Rotation::Invalid);
    let nobody = unique("nobody");
    store
        .revoke_principal(&domain, &nobody, t, 120_000)
        .await
        .unwrap();

    let mut con = raw(&server).await;
    let keys: Vec<String> = con.keys(format!("{prefix}*")).await.unwrap();
    let tag = tag(&domain, &user);
    // One record per family, whatever was refreshed; the one grace answer
    // still in its window; the principal's marker and index. No record per
    // spent token, none for the ghost or for the principal without families.
    let expected = [
        format!("{prefix}fam:{{{tag}}}:{}", graced.family_id),
        format!("{prefix}ans:{{{tag}}}:{}", graced.family_id),
        format!("{prefix}fam:{{{tag}}}:{}", reused.family_id),
        format!("{prefix}fam:{{{tag}}}:{}", changed.family_id),
        format!("{prefix}fam:{{{tag}}}:{}", revoked.family_id),
        format!("{prefix}rev:{{{tag}}}"),
        format!("{prefix}ses:{{{tag}}}"),
    ];
    for name in &expected {
        assert!(keys.contains(name), "missing {name} in {keys:#?}");
    }
    assert_eq!(keys.len(), expected.len(), "{keys:#?}");

    let now = now_ms();
    for name in &keys {
        assert!(name.contains(&format!("{{{tag}}}")), "untagged {name}");
        let ttl: i64 = con.pttl(name).await.unwrap();
        assert!(ttl > 0, "{name} has no TTL ({ttl})");
        // No key outlives what it guards.
        let bound = if name.contains(":ans:") {
            (t + 30_000).saturating_sub(now)
        } else if name.contains(":rev:") {
            (t + 120_000).saturating_sub(now)
        } else if name.contains(&reused.family_id) || name.contains(&graced.family_id) {
            (t + 10 * 60_000).saturating_sub(now)
        } else {
            (t + HOUR_MS).saturating_sub(now)
        };
        assert!(ttl as u64 <= bound + 5, "{name}: ttl {ttl} > {bound}");
    }
    let answer: Vec<u8> = con
        .get(format!("{prefix}ans:{{{tag}}}:{}", graced.family_id))
        .await
        .unwrap();
    assert_eq!(answer, vec![1, 2, 3]);
}

/// The family record and the principal's index live as long as the newest
/// token; the revocation marker no longer than the records it guards.
#[tokio::test]
async fn records_live_as_long_as_their_newest_token() {
    let server = RedisServer::start();
    let prefix = format!("{}:", unique("life"));
    let store = store(&server, &prefix, Duration::from_secs(5)).await;
    let (domain, user) = (unique("domain"), unique("user"));
    let tag = tag(&domain, &user);
    let mut con = raw(&server).await;
    let pexpiretime = |name: String| {
        let mut con = con.clone();
        async move {
            redis::cmd("PEXPIRETIME")
                .arg(name)
                .query_async::<i64>(&mut con)
                .await
                .unwrap() as u64
        }
    };
    let t = now_ms();
    let fam = family(&domain, &user);
    let first = KeyId(unique("key"));
    let record = FamilyRecord {
        family: fam.clone(),
        issued_at_ms: t,
        expires_at_ms: t + HOUR_MS,
        password_fingerprint: FP,
        origin: tokengate_store::SessionOrigin::default(),
    };
    store
        .start_family(&record, &first, t + 60_000)
        .await
        .unwrap();
    let fam_key = format!("{prefix}fam:{{{tag}}}:{}", fam.family_id);
    let index_key = format!("{prefix}ses:{{{tag}}}");
    assert_eq!(pexpiretime(fam_key.clone()).await, t + 60_000);
    assert_eq!(pexpiretime(index_key.clone()).await, t + 60_000);

    // Each refresh moves the record's end to its newest token's expiry.
    let mut presented = first;
    for i in 1..=5u64 {
        let successor = KeyId(unique("key"));
        let mut req = request(&fam, &presented, &successor, t + i);
        req.presented_generation = i - 1;
        req.successor_expires_at_ms = t + 60_000 + i * 1_000;
        assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
        presented = successor;
        assert_eq!(pexpiretime(fam_key.clone()).await, t + 60_000 + i * 1_000);
        assert_eq!(pexpiretime(index_key.clone()).await, t + 60_000 + i * 1_000);
    }
    // Never past the family's end.
    let mut req = request(&fam, &presented, &KeyId(unique("key")), t + 6);
    req.presented_generation = 5;
    req.successor_expires_at_ms = t + 2 * HOUR_MS;
    assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
    assert_eq!(pexpiretime(fam_key.clone()).await, t + HOUR_MS);

    // The marker guards only what exists: it ends with the last record.
    let short = family(&domain, &user);
    start(&store, &short, t, 1_000).await;
    store
        .revoke_principal(&domain, &user, t + 7, 24 * HOUR_MS)
        .await
        .unwrap();
    let marker = format!("{prefix}rev:{{{tag}}}");
    assert_eq!(pexpiretime(marker).await, t + HOUR_MS);
    // Only keys of the one principal, one record per family.
    let keys: Vec<String> = con.keys(format!("{prefix}*")).await.unwrap();
    assert_eq!(keys.len(), 4, "{keys:#?}");
}

/// A failover that loses the last rotation (simulated by restoring the
/// record as a replica had it): the spent token the record still takes for
/// live wins once, and the legitimate holder's newer token then ends the
/// family. Whichever comes first, no second chain lives on.
#[tokio::test]
async fn a_lost_write_is_detected_not_trusted() {
    let server = RedisServer::start();
    let prefix = format!("{}:", unique("lost"));
    let store = store(&server, &prefix, Duration::from_secs(5)).await;
    let mut con = raw(&server).await;
    for thief_first in [true, false] {
        let (domain, user) = (unique("domain"), unique("user"));
        let fam = family(&domain, &user);
        let fam_key = format!("{prefix}fam:{{{}}}:{}", tag(&domain, &user), fam.family_id);
        let t = now_ms();
        let k0 = start(&store, &fam, t, HOUR_MS).await;
        let k1 = KeyId(unique("key"));
        assert_eq!(
            store.rotate(&request(&fam, &k0, &k1, t + 1)).await.unwrap(),
            Rotation::Rotated
        );
        // What the replica had when the master died.
        let replica: Vec<u8> = redis::cmd("DUMP")
            .arg(&fam_key)
            .query_async(&mut con)
            .await
            .unwrap();
        let k2 = KeyId(unique("key"));
        let mut legit = request(&fam, &k1, &k2, t + 2);
        legit.presented_generation = 1;
        assert_eq!(store.rotate(&legit).await.unwrap(), Rotation::Rotated);
        // Failover: the promoted replica never saw generation 2.
        let _: () = redis::cmd("RESTORE")
            .arg(&fam_key)
            .arg(0)
            .arg(replica)
            .arg("REPLACE")
            .query_async(&mut con)
            .await
            .unwrap();

        // The legitimate client holds k2 (generation 2); a thief replays k1.
        let mut holder = request(&fam, &k2, &KeyId(unique("key")), t + 3);
        holder.presented_generation = 2;
        let mut thief = request(&fam, &k1, &KeyId(unique("key")), t + 3);
        thief.presented_generation = 1;
        if thief_first {
            // The record takes k1 for live: the thief gets one pair…
            assert_eq!(store.rotate(&thief).await.unwrap(), Rotation::Rotated);
            // …and the holder's k2 is a generation-2 key the record never
            // issued: the family ends, the thief's chain with it.
            assert_eq!(store.rotate(&holder).await.unwrap(), Rotation::Diverged);
            let mut next = request(&fam, &thief.successor, &KeyId(unique("key")), t + 4);
            next.presented_generation = 2;
            assert_eq!(store.rotate(&next).await.unwrap(), Rotation::Invalid);
        } else {
            // The holder comes first: generation 2 is ahead of the record.
            assert_eq!(store.rotate(&holder).await.unwrap(), Rotation::Diverged);
            assert_eq!(store.rotate(&thief).await.unwrap(), Rotation::Invalid);
        }
    }
}

/// A refresh costs one command, one round trip: the rotate script. Redis'
/// MONITOR lists what clients send, and a script's own calls as `[… lua]`.
#[tokio::test]
async fn a_refresh_is_one_round_trip() {
    use std::io::{BufRead as _, BufReader, Write as _};

    const REFRESHES: u64 = 20;
    let server = RedisServer::start();
    let store = store(&server, "trip:", Duration::from_secs(5)).await;
    let fam = family(&unique("d"), &unique("u"));
    let t = now_ms();
    let mut key = start(&store, &fam, t, HOUR_MS).await;
    // The first call on a server loads the script (NOSCRIPT, SCRIPT LOAD,
    // EVALSHA again); that happens once per server, not per refresh.
    let warm = KeyId(unique("key"));
    assert_eq!(
        store.rotate(&request(&fam, &key, &warm, t)).await.unwrap(),
        Rotation::Rotated
    );
    key = warm;

    let mut monitor =
        std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("monitor connection");
    monitor
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    monitor.write_all(b"*1\r\n$7\r\nMONITOR\r\n").unwrap();
    let mut lines = BufReader::new(monitor);
    let mut ok = String::new();
    lines.read_line(&mut ok).unwrap();
    assert_eq!(ok, "+OK\r\n");

    for generation in 1..=REFRESHES {
        let successor = KeyId(unique("key"));
        let mut req = request(&fam, &key, &successor, t + generation);
        req.presented_generation = generation;
        req.grace_ms = 10_000;
        req.answer = vec![1, 2, 3];
        assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
        key = successor;
    }
    tokengate_test_support::redis_server::raw_command(
        server.port,
        &["ECHO", "end-of-refreshes"],
        Duration::from_secs(5),
    )
    .expect("marker");

    let mut sent = Vec::new();
    loop {
        let mut line = String::new();
        lines.read_line(&mut line).expect("MONITOR line");
        if line.contains("end-of-refreshes") {
            break;
        }
        // `+<time> [<db> <client>] "COMMAND" …`
        let client = line.split(['[', ']']).nth(1).unwrap_or_default();
        if !client.ends_with(" lua") {
            sent.push(line.split('"').nth(1).unwrap_or_default().to_uppercase());
        }
    }
    assert_eq!(sent.len() as u64, REFRESHES, "{sent:?}");
    assert!(sent.iter().all(|c| c == "EVALSHA"), "{sent:?}");
}

#[tokio::test]
async fn flushed_script_cache_is_reloaded() {
    let server = RedisServer::start();
    let store = store(&server, "flush:", Duration::from_secs(5)).await;
    let fam = family(&unique("d"), &unique("u"));
    let t = now_ms();
    let k0 = start(&store, &fam, t, HOUR_MS).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw(&server).await)
        .await
        .unwrap();
    let req = request(&fam, &k0, &KeyId(unique("key")), t + 1);
    assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_redis_times_out_then_recovers() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(300);
    let store = store(&server, "hung:", timeout).await;
    let fam = family(&unique("d"), &unique("u"));
    let t = now_ms();
    let k0 = start(&store, &fam, t, HOUR_MS).await;

    server.freeze();
    // Several calls, enough to make the store drop and re-dial its
    // connection; each still fails within about the timeout.
    for i in 0..5 {
        let started = Instant::now();
        let result = if i % 2 == 0 {
            store.ping().await
        } else {
            store
                .rotate(&request(&fam, &KeyId(unique("x")), &KeyId(unique("y")), t))
                .await
                .map(drop)
        };
        let took = started.elapsed();
        assert!(
            matches!(result, Err(StoreError::Timeout)),
            "call {i}: {result:?}"
        );
        assert!(
            took >= timeout - Duration::from_millis(20),
            "call {i} took {took:?}"
        );
        assert!(
            took < timeout + Duration::from_millis(400),
            "call {i} took {took:?}"
        );
    }
    server.thaw();
    wait_until_up(&store, Duration::from_secs(5)).await;
    // State survived (the server only paused).
    let req = request(&fam, &k0, &KeyId(unique("key")), t + 1);
    assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
}

#[tokio::test]
async fn restarted_redis_is_unavailable_then_recovers() {
    let mut server = RedisServer::start();
    let store = store(&server, "restart:", Duration::from_millis(500)).await;
    let (domain, user) = (unique("d"), unique("u"));
    start(&store, &family(&domain, &user), now_ms(), HOUR_MS).await;

    server.kill();
    for i in 0..5 {
        let started = Instant::now();
        let result = store.ping().await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "call {i} while down: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "call {i} was slow"
        );
        let fam = family(&domain, &user);
        let record = FamilyRecord {
            family: fam,
            issued_at_ms: now_ms(),
            expires_at_ms: now_ms() + HOUR_MS,
            password_fingerprint: FP,
            origin: tokengate_store::SessionOrigin::default(),
        };
        let result = store
            .start_family(&record, &KeyId(unique("k")), now_ms() + HOUR_MS)
            .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
    }

    server.restart();
    wait_until_up(&store, Duration::from_secs(5)).await;
    // The same store object works again (the restarted Redis is empty).
    let fam = family(&domain, &user);
    let t = now_ms();
    let k0 = start(&store, &fam, t, HOUR_MS).await;
    let req = request(&fam, &k0, &KeyId(unique("key")), t + 1);
    assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
}

#[tokio::test]
async fn redis_down_at_start_is_tolerated() {
    let port = free_port();
    let config = RedisStoreConfig::new(format!("redis://127.0.0.1:{port}"))
        .with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let store = RedisStore::connect(config)
        .await
        .expect("connect without Redis");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    let _server = RedisServer::start_on(port);
    wait_until_up(&store, Duration::from_secs(5)).await;
    let fam = family(&unique("d"), &unique("u"));
    let t = now_ms();
    let k0 = start(&store, &fam, t, HOUR_MS).await;
    let req = request(&fam, &k0, &KeyId(unique("key")), t + 1);
    assert_eq!(store.rotate(&req).await.unwrap(), Rotation::Rotated);
}

#[tokio::test]
async fn passwords_never_appear_in_text() {
    let server = RedisServer::start_with(&["--requirepass", "right-Pa55word"]);
    let wrong = format!("redis://:wrong-Pa55word@127.0.0.1:{}", server.port);
    let config = RedisStoreConfig::new(&wrong).with_timeout(Duration::from_secs(2));
    assert!(!format!("{config:?}").contains("wrong-Pa55word"));
    let store = RedisStore::connect(config).await.expect("connect");
    let error = store.ping().await.expect_err("wrong password");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    for text in [
        error.to_string(),
        format!("{error:?}"),
        store.describe(),
        format!("{store:?}"),
    ] {
        assert!(!text.contains("wrong-Pa55word"), "leaked: {text}");
    }
    assert_eq!(
        store.describe(),
        format!(
            "redis standalone 127.0.0.1:{} (prefix tokengate:)",
            server.port
        )
    );

    let right = format!("redis://default:right-Pa55word@127.0.0.1:{}", server.port);
    let store = RedisStore::connect(RedisStoreConfig::new(right))
        .await
        .expect("connect");
    store.ping().await.expect("right password");
    assert!(!store.describe().contains("right-Pa55word"));
}

#[tokio::test]
async fn unusable_configs_are_rejected() {
    let url = "redis://127.0.0.1:1";
    let bad_prefix = RedisStoreConfig::new(url).with_key_prefix("tg{x}:");
    assert!(matches!(
        RedisStore::connect(bad_prefix).await,
        Err(RedisConfigError::InvalidPrefix)
    ));
    let zero = RedisStoreConfig::new(url).with_timeout(Duration::ZERO);
    assert!(matches!(
        RedisStore::connect(zero).await,
        Err(RedisConfigError::ZeroTimeout)
    ));
    for url in [
        "http://:secret-x@127.0.0.1:1",
        "redis+cluster://:secret-x@",
        "127.0.0.1:6379",
    ] {
        match RedisStore::connect(RedisStoreConfig::new(url)).await {
            Err(RedisConfigError::InvalidUrl(reason)) => {
                assert!(!reason.contains("secret-x"), "{reason}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    let empty = RedisStoreConfig::cluster(Vec::<String>::new());
    assert!(RedisStore::connect(empty).await.is_err());
}
