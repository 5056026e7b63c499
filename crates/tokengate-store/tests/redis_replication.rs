//! Replication: rotations confirmed by replicas (`store.replica_acks`),
//! the retry of a rotation whose confirmation failed (rotation rule 9), and
//! a store behind Redis Sentinel following a failover without a restart.
//! Every server is a private process on a free port.

use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use tokengate_store::{
    FamilyRecord, FamilyRef, KeyId, RedisStore, RedisStoreConfig, RefreshStore, RotateRequest,
    Rotation, SentinelAuth, StoreError,
};
use tokengate_test_support::ids::{now_ms, unique};
use tokengate_test_support::redis_sentinel::SentinelGroup;
use tokengate_test_support::redis_server::{RedisCluster, RedisServer};

const HOUR_MS: u64 = 3_600_000;
const FP: [u8; 16] = [3; 16];
const TIMEOUT: Duration = Duration::from_millis(500);

fn family() -> FamilyRef {
    FamilyRef {
        family_id: unique("fam"),
        domain_id: "domain-r".to_owned(),
        principal_id: unique("user"),
    }
}

async fn start(store: &RedisStore, fam: &FamilyRef) -> KeyId {
    let key = KeyId(unique("key"));
    let now = now_ms();
    store
        .start_family(
            &FamilyRecord {
                family: fam.clone(),
                issued_at_ms: now,
                expires_at_ms: now + HOUR_MS,
                password_fingerprint: FP,
                origin: tokengate_store::SessionOrigin::default(),
            },
            &key,
            now + HOUR_MS,
        )
        .await
        .expect("start_family");
    key
}

/// A rotation of generation `generation`'s `presented` key, as the core
/// sends it when the store keeps answers: every call mints a fresh
/// successor and seals its own answer.
fn rotation(fam: &FamilyRef, presented: &KeyId, generation: u64, answer: &str) -> RotateRequest {
    let now = now_ms();
    RotateRequest {
        family: fam.clone(),
        presented: presented.clone(),
        presented_generation: generation,
        presented_expires_at_ms: now + HOUR_MS,
        successor: KeyId(unique("key")),
        successor_expires_at_ms: now + HOUR_MS,
        password_fingerprint: FP,
        now_ms: now,
        grace_ms: 0,
        answer: answer.as_bytes().to_vec(),
    }
}

/// Waits until `replica` reports its link to the master up.
fn wait_in_sync(replica: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if replica
            .command(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the replica did not sync");
}

/// A master, one replica in sync with it, and a store on the master that
/// waits for that replica's acknowledgement of every rotation.
async fn replicated_store() -> (RedisServer, RedisServer, RedisStore) {
    let master = RedisServer::start();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    wait_in_sync(&replica);
    let store = RedisStore::connect(
        RedisStoreConfig::new(master.url())
            .with_timeout(TIMEOUT)
            .with_replica_acks(1),
    )
    .await
    .expect("connect");
    (master, replica, store)
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

#[tokio::test]
async fn a_confirmed_rotation_waits_for_replicas_and_its_retry_gets_its_answer() {
    let (master, replica, store) = replicated_store().await;
    assert!(store.keeps_answers());
    assert!(
        store.describe().contains("confirmed by 1 replica"),
        "{}",
        store.describe()
    );

    // A healthy replica: the rotation is confirmed and answered.
    let fam = family();
    let first = start(&store, &fam).await;
    let live = rotation(&fam, &first, 0, "answer-1");
    assert_eq!(
        store.rotate(&live).await.expect("rotate"),
        Rotation::Rotated
    );

    // The replica stops answering: the next rotation is made on the master
    // but not confirmed, so its tokens are withheld (UNAVAILABLE).
    replica.freeze();
    let unconfirmed = rotation(&fam, &live.successor, 1, "answer-2");
    let refused = store.rotate(&unconfirmed).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::NotReplicated {
                acknowledged: 0,
                wanted: 1
            })
        ),
        "{refused:?}"
    );
    // The client keeps its token and retries (with a fresh successor, as
    // the core mints anew): still unconfirmed, still no tokens, and no
    // reuse either.
    let retry = rotation(&fam, &live.successor, 1, "answer-3");
    let refused = store.rotate(&retry).await;
    assert!(
        matches!(refused, Err(StoreError::NotReplicated { .. })),
        "{refused:?}"
    );

    // The replica catches up: the retry gets the first attempt's answer,
    // once, and the family goes on from the tokens in it.
    replica.thaw();
    wait_in_sync(&replica);
    let retry = rotation(&fam, &live.successor, 1, "answer-4");
    assert_eq!(
        store.rotate(&retry).await.expect("retry"),
        Rotation::Retried(b"answer-2".to_vec())
    );
    // The confirmation is settled off the request's path; then the spent
    // token is plain reuse again.
    let family_key = format!("tokengate:fam:{{{}}}:{}", tag(&fam), fam.family_id);
    let mut conn = raw(&master.url()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while conn
        .hexists::<_, _, bool>(&family_key, "pu")
        .await
        .expect("hexists")
    {
        assert!(Instant::now() < deadline, "the answer was never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = rotation(&fam, &unconfirmed.successor, 2, "answer-5");
    assert_eq!(
        store.rotate(&next).await.expect("rotate"),
        Rotation::Rotated
    );
    let replay = rotation(&fam, &live.successor, 1, "answer-6");
    assert_eq!(
        store.rotate(&replay).await.expect("replay"),
        Rotation::ReuseDetected
    );
}

/// The family's hash tag, as the store's module docs define it.
fn tag(fam: &FamilyRef) -> String {
    use aws_lc_rs::digest::{SHA256, digest};
    let input = format!("{}\0{}", fam.domain_id, fam.principal_id);
    let hex: String = digest(&SHA256, input.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..16].to_owned()
}

#[tokio::test]
async fn waiting_for_replicas_does_not_hold_up_other_calls() {
    let (_master, replica, store) = replicated_store().await;
    let fam = family();
    let first = start(&store, &fam).await;
    replica.freeze();
    // A rotation waits (up to the timeout) for the frozen replica; calls on
    // the shared connection meanwhile are answered before it gives up.
    let request = rotation(&fam, &first, 0, "answer");
    let waiting = store.rotate(&request);
    let others = async {
        store.ping().await.expect("ping");
        let other = family();
        start(&store, &other).await;
    };
    tokio::pin!(waiting);
    tokio::select! {
        biased;
        () = others => {}
        outcome = &mut waiting => panic!("the rotation ended before the other calls: {outcome:?}"),
    }
    assert!(matches!(
        waiting.await,
        Err(StoreError::NotReplicated { .. })
    ));
    replica.thaw();
}

#[tokio::test]
async fn on_a_cluster_the_wait_goes_to_the_familys_master() {
    // The test cluster's masters have no replicas: `WAIT 1` reaches the
    // family's master and answers 0 (a wrongly routed `WAIT` would count
    // another node's writes, or fail).
    let cluster = RedisCluster::shared();
    let store = RedisStore::connect(
        RedisStoreConfig::new(cluster.url())
            .with_key_prefix(unique("tg-wait:"))
            .with_timeout(Duration::from_millis(300))
            .with_replica_acks(1),
    )
    .await
    .expect("connect");
    for _ in 0..5 {
        let fam = family();
        let first = start(&store, &fam).await;
        let refused = store.rotate(&rotation(&fam, &first, 0, "answer")).await;
        assert!(
            matches!(
                refused,
                Err(StoreError::NotReplicated {
                    acknowledged: 0,
                    wanted: 1
                })
            ),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn behind_sentinel_a_failover_is_followed_without_a_restart() {
    let mut group = SentinelGroup::start(2, 3);
    let store = RedisStore::connect(RedisStoreConfig::new(group.url()).with_timeout(TIMEOUT))
        .await
        .expect("connect");
    assert!(
        store.describe().starts_with("redis sentinel "),
        "{}",
        store.describe()
    );
    let fam = family();
    let first = start(&store, &fam).await;
    let live = rotation(&fam, &first, 0, "");
    assert_eq!(
        store.rotate(&live).await.expect("rotate"),
        Rotation::Rotated
    );
    // Replicated before the master dies, so nothing is lost here.
    let old = group.master_port().expect("a master");
    let mut conn = raw(&format!("redis://127.0.0.1:{old}")).await;
    let acked: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query_async(&mut conn)
        .await
        .expect("WAIT");
    assert_eq!(acked, 2);

    group.node_mut(old).kill();
    let (new, _) = group.wait_for_new_master(old, Duration::from_secs(30));
    assert_ne!(new, old);
    // The store finds the new master by itself: calls fail (UNAVAILABLE)
    // until it does, then the family goes on where it was.
    let next = rotation(&fam, &live.successor, 1, "");
    let started = Instant::now();
    let outcome = loop {
        match store.rotate(&next).await {
            Ok(outcome) => break outcome,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(30),
                "the store did not follow the failover: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(outcome, Rotation::Rotated);
}

#[tokio::test]
async fn behind_sentinel_data_nodes_and_sentinels_have_their_own_passwords() {
    let group = SentinelGroup::start_with_auth(1, 3, Some("data-secret"), Some("watch-secret"));
    let url = group.url().replacen("://", "://:data-secret@", 1);
    let sentinel_auth = SentinelAuth::Password {
        username: None,
        password: "watch-secret".into(),
    };
    let store = RedisStore::connect(
        RedisStoreConfig::new(url.clone())
            .with_timeout(TIMEOUT)
            .with_sentinel_auth(sentinel_auth),
    )
    .await
    .expect("connect");
    let fam = family();
    let first = start(&store, &fam).await;
    let live = rotation(&fam, &first, 0, "");
    assert_eq!(
        store.rotate(&live).await.expect("rotate"),
        Rotation::Rotated
    );

    // The sentinels refuse the data nodes' password: every call fails
    // (UNAVAILABLE), and no error text names either password.
    let wrong = RedisStore::connect(RedisStoreConfig::new(url).with_timeout(TIMEOUT))
        .await
        .expect("a wrong password is no config error");
    let error = wrong.ping().await.expect_err("the sentinels refuse");
    let text = error.to_string();
    assert!(
        !text.contains("data-secret") && !text.contains("watch-secret"),
        "{text}"
    );
}
