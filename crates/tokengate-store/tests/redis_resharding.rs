//! Resharding under load (issue #15): a Redis Cluster slot moves from one
//! master to another, key by key, while refresh chains of the families in
//! that slot (and of families elsewhere) keep rotating. No rotation may be
//! answered wrongly: every chain presents its live token, so the only right
//! answer is `Rotated`. Transient errors (`Unavailable`, `Timeout`) are
//! allowed and retried with the very same request, as a client keeps its
//! token after UNAVAILABLE (SPEC §3); a retry of a rotation that had in
//! fact won comes back `Rotated` through rotation rule 8 ("re-sent").
//!
//! While the slot is open, Redis runs a script only on a master that holds
//! every key it names: the source answers `TRYAGAIN` when it holds some of
//! them and `ASK` (to the target) when it holds none, and the target
//! answers `TRYAGAIN` when it lacks any. The rotation script names the
//! family's record and grace answer and the principal's revocation marker
//! and index. Most principals have no marker, so their families cannot
//! rotate at all while the slot is open: those refreshes fail transiently
//! (counted and printed), never wrongly. Half the principals of the slot
//! therefore carry a marker from a `revoke --user` before their families
//! began: all four keys exist, so their rotations do run mid-migration, on
//! the source before their keys move and on the target (after `ASK`) once
//! they all have.
//!
//! After each transient error the test reads the family's record past the
//! store: when it already holds the request's successor, the call had won
//! and lost only its reply, and the retry is answered by rule 8. The counts
//! are printed (`--nocapture`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use redis::cluster_async::ClusterConnection;
use tokengate_store::{
    FamilyRecord, FamilyRef, KeyId, RedisStore, RedisStoreConfig, RefreshStore, RotateRequest,
    Rotation, StoreError,
};
use tokengate_test_support::ids::{now_ms, unique};
use tokengate_test_support::redis_server::RedisCluster;
use tokengate_test_support::slot_migration::{self, Reply, key_slot};

const HOUR_MS: u64 = 3_600_000;
const FP: [u8; 16] = [0x5A; 16];
/// Principals whose families live in the migrated slot, and how many
/// families each starts.
const PRINCIPALS_IN_SLOT: usize = 8;
const FAMILIES_PER_PRINCIPAL_IN_SLOT: usize = 16;
/// Principals elsewhere, whose refreshes must carry on undisturbed.
const OTHER_PRINCIPALS: usize = 8;
const FAMILIES_PER_OTHER_PRINCIPAL: usize = 9;
/// Keys per `MIGRATE`, and the pause between two batches: long enough for
/// the slot's keys to stay split between the masters under load for a
/// while.
const MIGRATE_BATCH: usize = 8;
const MIGRATE_PAUSE: Duration = Duration::from_millis(30);
/// A chain's pause between two rotations, so 200 chains do not take every
/// core of a shared CI machine.
const CHAIN_PAUSE: Duration = Duration::from_millis(10);
/// Before retrying after a transient error.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Everything (load, migration, the chains' last rotations) ends within
/// this, or the test fails saying what did not.
const BOUND: Duration = Duration::from_secs(60);
/// The checks after the migration end within this.
const CHECK_BOUND: Duration = Duration::from_secs(30);

/// Where the migration is: chains note it at each call's start and end.
const BEFORE: u8 = 0;
const MIGRATING: u8 = 1;
const AFTER: u8 = 2;
const PHASES: [&str; 3] = ["before", "open", "after"];

/// The documented hash tag of a principal, computed independently of the
/// store: the first 16 hex digits of SHA-256(domain `\0` principal).
fn tag(domain: &str, principal: &str) -> String {
    let input = format!("{domain}\0{principal}");
    let hex: String = digest(&SHA256, input.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..16].to_owned()
}

/// The store's record of a family (default key prefix).
fn family_key(fam: &FamilyRef) -> String {
    format!(
        "tokengate:fam:{{{}}}:{}",
        tag(&fam.domain_id, &fam.principal_id),
        fam.family_id
    )
}

/// One refresh chain: a family and its live token.
struct Chain {
    fam: FamilyRef,
    /// The live token's key id and generation.
    live: KeyId,
    generation: u64,
    /// Whether the family lives in the migrated slot.
    in_slot: bool,
    /// Set once it got a wrong answer: it stops there.
    broken: bool,
}

impl Chain {
    /// The request a client holding the live token sends, with a fresh
    /// successor and, like the service, a grace answer.
    fn request(&self, now: u64) -> RotateRequest {
        RotateRequest {
            family: self.fam.clone(),
            presented: self.live.clone(),
            presented_generation: self.generation,
            presented_expires_at_ms: now + HOUR_MS,
            successor: KeyId(unique("k")),
            successor_expires_at_ms: now + HOUR_MS,
            password_fingerprint: FP,
            now_ms: now,
            grace_ms: 30_000,
            answer: format!("answer-{}", self.generation + 1).into_bytes(),
        }
    }
}

/// What the chains saw, counted as they go.
#[derive(Default)]
struct Tally {
    /// Where the migration is (`BEFORE`, `MIGRATING`, `AFTER`).
    phase: AtomicU8,
    /// Chains that have rotated at least once (the migration waits for all).
    warm: AtomicUsize,
    rotated: AtomicU64,
    /// Rotations whose call started and ended while the slot was open.
    rotated_during: AtomicU64,
    rotated_during_in_slot: AtomicU64,
    /// Calls on the slot's families that started while it was open.
    attempts_during_in_slot: AtomicU64,
    /// Transient errors, each followed by a retry of the same request.
    retries: AtomicU64,
    retries_in_slot: AtomicU64,
    /// Rotations answered `Rotated` after at least one retry.
    rotated_after_retry: AtomicU64,
    /// Transient errors after which the family's record already held the
    /// request's successor: the call had won, and its retry is answered by
    /// rotation rule 8 ("re-sent").
    won_before_retry: AtomicU64,
    /// Transient errors after which that record could not be read.
    unread: AtomicU64,
    /// The transient errors by text, where the migration was when the call
    /// started and ended, and whose family it was.
    errors: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Every wrong answer, described.
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Rotates `chain` with its live token until the migration is over and the
/// chain has rotated once more after it (so a family of the moved slot
/// meets its new owner), retrying a transiently failed rotation with the
/// same request.
async fn run_chain(
    store: Arc<RedisStore>,
    cluster: Arc<RedisCluster>,
    mut chain: Chain,
    tally: Arc<Tally>,
) -> Chain {
    let mut warm = false;
    loop {
        let req = chain.request(now_ms());
        let mut retried = false;
        let started_in = loop {
            let started = tally.phase();
            if started == MIGRATING && chain.in_slot {
                Tally::count(&tally.attempts_during_in_slot);
            }
            match store.rotate(&req).await {
                Ok(Rotation::Rotated) => {
                    let ended = tally.phase();
                    Tally::count(&tally.rotated);
                    if started == MIGRATING && ended == MIGRATING {
                        Tally::count(&tally.rotated_during);
                        if chain.in_slot {
                            Tally::count(&tally.rotated_during_in_slot);
                        }
                    }
                    if retried {
                        Tally::count(&tally.rotated_after_retry);
                    }
                    break started;
                }
                Ok(other) => {
                    tally.wrong.lock().unwrap().push(format!(
                        "family {} (in slot: {}) presenting its live generation {} got {other:?} \
                         (retried: {retried}, call started in phase {started}, now phase {})",
                        chain.fam.family_id,
                        chain.in_slot,
                        chain.generation,
                        tally.phase()
                    ));
                    chain.broken = true;
                    return chain;
                }
                // (NotReplicated needs `store.replica_acks` ≥ 1; it is
                // transient like the others.)
                Err(
                    error @ (StoreError::Unavailable(_)
                    | StoreError::Timeout
                    | StoreError::NotReplicated { .. }),
                ) => {
                    // Grouped by kind, where the migration was and whose
                    // family it was; numbers (slots, ports) left out.
                    let text: String = format!(
                        "{} -> {}, {}: {error}",
                        PHASES[usize::from(started)],
                        PHASES[usize::from(tally.phase())],
                        if chain.in_slot {
                            "slot's family"
                        } else {
                            "other family"
                        }
                    )
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect();
                    *tally.errors.lock().unwrap().entry(text).or_default() += 1;
                    Tally::count(&tally.retries);
                    match current_key(&cluster, &chain.fam).await {
                        Some(key) if key == req.successor.0 => {
                            Tally::count(&tally.won_before_retry);
                        }
                        Some(_) => {}
                        None => Tally::count(&tally.unread),
                    }
                    if chain.in_slot {
                        Tally::count(&tally.retries_in_slot);
                    }
                    retried = true;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        };
        chain.live = req.successor;
        chain.generation += 1;
        if !warm {
            warm = true;
            tally.warm.fetch_add(1, Ordering::SeqCst);
        }
        if started_in == AFTER {
            return chain;
        }
        tokio::time::sleep(CHAIN_PAUSE).await;
    }
}

/// A cluster connection past the store, to read records directly.
async fn raw_connection(cluster: &RedisCluster) -> ClusterConnection {
    redis::cluster::ClusterClient::new(cluster.node_urls())
        .expect("client")
        .get_async_connection()
        .await
        .expect("raw cluster connection")
}

/// The key id a family's record holds now, read past the store on a new
/// connection (one that had seen the migration could hang: see
/// `slot_migration_leaves_other_slots_undisturbed`); `None` if that fails
/// or takes longer than a second.
async fn current_key(cluster: &RedisCluster, fam: &FamilyRef) -> Option<String> {
    let read = async {
        let mut raw = raw_connection(cluster).await;
        let mut cmd = redis::cmd("HGET");
        cmd.arg(family_key(fam)).arg("key");
        cmd.query_async::<Option<String>>(&mut raw).await
    };
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .ok()?
        .ok()?
}

/// A family record's `gen`, `key` and `rev` fields, read on a fresh
/// connection after the migration; panics if that fails twice.
async fn record(cluster: &RedisCluster, raw: &mut ClusterConnection, fam: &FamilyRef) -> Record {
    for _ in 0..2 {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(family_key(fam)).arg("gen").arg("key").arg("rev");
        let read = cmd.query_async::<Record>(raw);
        match tokio::time::timeout(Duration::from_secs(2), read).await {
            Ok(Ok(fields)) => return fields,
            Ok(Err(e)) => eprintln!("reading {}: {e}; on a new connection", fam.family_id),
            Err(_) => eprintln!("reading {} hung; on a new connection", fam.family_id),
        }
        *raw = raw_connection(cluster).await;
    }
    panic!("could not read the record of family {}", fam.family_id);
}

/// `gen`, `key`, `rev` of a family record.
type Record = (Option<u64>, Option<String>, Option<String>);

/// `rotate`, retried with the same request on transient errors for a few
/// seconds.
async fn rotate_retrying(store: &RedisStore, req: &RotateRequest) -> Rotation {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.rotate(req).await {
            Ok(rotation) => return rotation,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying a rotation after: {e}");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => panic!("rotate kept failing: {e}"),
        }
    }
}

/// Principals of `domain` (`user-<n>`, in order) whose tag is or is not in
/// `slot`, `count` of them.
fn principals(domain: &str, count: usize, in_slot: bool, slot: u16) -> Vec<String> {
    (0..5_000_000u32)
        .map(|n| format!("user-{n}"))
        .filter(|p| (key_slot(&tag(domain, p)) == slot) == in_slot)
        .take(count)
        .collect()
}

/// The lines of `INFO errorstats` (ASK, MOVED, TRYAGAIN … counts).
fn error_stats(port: u16) -> Vec<String> {
    match slot_migration::command(port, &["INFO", "errorstats"]) {
        Reply::Bulk(Some(text)) => text
            .lines()
            .filter(|l| l.starts_with("errorstat_"))
            .map(str::to_owned)
            .collect(),
        other => vec![format!("{other:?}")],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slot_migration_under_load_answers_every_rotation_rightly() {
    migrate_under_load().await;
}

/// A slot migration should disturb only the families of that slot. Today
/// it does not: once the slot is assigned, the cluster client's slot
/// refresh (after a `MOVED`) sometimes never completes, every call on that
/// connection then waits until the store's timeout, and only the store's
/// strikes (three timeouts in a row) replace the connection, so families
/// of every slot get timeouts for a moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "fails in most runs: a stuck slot refresh of redis-rs' cluster client times out every slot's calls"]
async fn slot_migration_leaves_other_slots_undisturbed() {
    let retries_elsewhere = migrate_under_load().await;
    assert_eq!(
        retries_elsewhere, 0,
        "families outside the migrated slot got transient errors"
    );
}

/// Runs the migration under load and checks every answer (see the module
/// docs); returns how many transient errors families outside the slot got.
async fn migrate_under_load() -> u64 {
    let started = Instant::now();
    let cluster = Arc::new(RedisCluster::start());
    let store = Arc::new(
        RedisStore::connect(RedisStoreConfig::new(cluster.url()))
            .await
            .expect("connect"),
    );
    store.ping().await.expect("ping");

    // The slot to move: the first principal's; then more principals that
    // share it, and some that do not.
    let domain = unique("domain");
    let slot = key_slot(&tag(&domain, "user-0"));
    let from = cluster.slot_owner(slot);
    let to = (from + 1) % cluster.nodes.len();
    let in_slot = principals(&domain, PRINCIPALS_IN_SLOT, true, slot);
    let others = principals(&domain, OTHER_PRINCIPALS, false, slot);
    assert_eq!(
        in_slot.len(),
        PRINCIPALS_IN_SLOT,
        "too few principals in slot {slot}"
    );

    let t = now_ms();
    // Half the slot's principals were revoked (`revoke --user`) before
    // their families began: each gets a revocation marker, which guards
    // their earlier family only.
    for principal in in_slot.iter().step_by(2) {
        let earlier = FamilyRecord {
            family: FamilyRef {
                family_id: unique("revoked-fam"),
                domain_id: domain.clone(),
                principal_id: principal.clone(),
            },
            issued_at_ms: t - 2_000,
            expires_at_ms: t - 2_000 + HOUR_MS,
            password_fingerprint: FP,
            origin: tokengate_store::SessionOrigin::default(),
        };
        store
            .start_family(&earlier, &KeyId(unique("k0")), t - 2_000 + HOUR_MS)
            .await
            .expect("start_family");
        store
            .revoke_principal(&domain, principal, t - 1_000, HOUR_MS)
            .await
            .expect("revoke_principal");
    }
    let mut chains = Vec::new();
    for (principals, per, is_in_slot) in [
        (&in_slot, FAMILIES_PER_PRINCIPAL_IN_SLOT, true),
        (&others, FAMILIES_PER_OTHER_PRINCIPAL, false),
    ] {
        for principal in principals {
            for _ in 0..per {
                let fam = FamilyRef {
                    family_id: unique("fam"),
                    domain_id: domain.clone(),
                    principal_id: principal.clone(),
                };
                let live = KeyId(unique("k0"));
                let record = FamilyRecord {
                    family: fam.clone(),
                    issued_at_ms: t,
                    expires_at_ms: t + HOUR_MS,
                    password_fingerprint: FP,
                    origin: tokengate_store::SessionOrigin::default(),
                };
                store
                    .start_family(&record, &live, t + HOUR_MS)
                    .await
                    .expect("start_family");
                chains.push(Chain {
                    fam,
                    live,
                    generation: 0,
                    in_slot: is_in_slot,
                    broken: false,
                });
            }
        }
    }
    // The slot computed here is the one Redis computes for the store's keys.
    for chain in chains.iter().filter(|c| c.in_slot).take(3) {
        let key = family_key(&chain.fam);
        let reply = slot_migration::command(cluster.nodes[0].port, &["CLUSTER", "KEYSLOT", &key]);
        assert_eq!(reply, Reply::Integer(i64::from(slot)), "{key}");
    }
    let families = chains.len();
    let families_in_slot = chains.iter().filter(|c| c.in_slot).count();
    let keys_before = cluster.keys_in_slot(from, slot);
    assert!(
        keys_before > families_in_slot,
        "{keys_before} keys in slot {slot}"
    );

    let tally = Arc::new(Tally::default());
    let load: Vec<_> = chains
        .into_iter()
        .map(|chain| {
            tokio::spawn(run_chain(
                store.clone(),
                cluster.clone(),
                chain,
                tally.clone(),
            ))
        })
        .collect();

    // The migration, on a blocking thread: it waits until every chain has
    // rotated, then moves the slot's keys in small batches with pauses, so
    // the keys stay split between the two masters under load for a while.
    let migration = tokio::task::spawn_blocking({
        let (cluster, tally) = (cluster.clone(), tally.clone());
        move || {
            while tally.warm.load(Ordering::SeqCst) < families {
                assert!(
                    started.elapsed() < BOUND,
                    "only {} of {families} chains rotated before the migration",
                    tally.warm.load(Ordering::SeqCst)
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let opened = Instant::now();
            assert_eq!(tally.phase.swap(MIGRATING, Ordering::SeqCst), BEFORE);
            let mut migration = cluster.begin_migration(slot, to);
            let mut batches = 0;
            while migration.move_keys(MIGRATE_BATCH) > 0 {
                batches += 1;
                std::thread::sleep(MIGRATE_PAUSE);
            }
            let moved = migration.moved();
            migration.finish(BOUND.saturating_sub(started.elapsed()));
            tally.phase.store(AFTER, Ordering::SeqCst);
            (moved, batches, opened.elapsed())
        }
    });

    let outcome = tokio::time::timeout(BOUND.saturating_sub(started.elapsed()), async {
        let migrated = migration.await.expect("the migration panicked");
        let mut chains = Vec::new();
        for task in load {
            chains.push(task.await.expect("a chain panicked"));
        }
        (migrated, chains)
    })
    .await;
    let ((moved, batches, window), chains) = outcome.unwrap_or_else(|_| {
        panic!(
            "the migration or the load did not finish within {BOUND:?}: phase {}, {} of \
             {families} chains warm, {} rotations, {} retries",
            tally.phase(),
            tally.warm.load(Ordering::SeqCst),
            Tally::get(&tally.rotated),
            Tally::get(&tally.retries)
        )
    });

    let retries = Tally::get(&tally.retries);
    let retries_in_slot = Tally::get(&tally.retries_in_slot);
    println!(
        "slot {slot}: master {from} -> {to}, {moved} keys moved in {batches} MIGRATEs of up to \
         {MIGRATE_BATCH}, slot open for {window:?}, test {:?}",
        started.elapsed()
    );
    println!(
        "families: {families} ({families_in_slot} in the slot); rotations: {} in all, {} while \
         the slot was open ({} of the slot's families, which tried {} times then)",
        Tally::get(&tally.rotated),
        Tally::get(&tally.rotated_during),
        Tally::get(&tally.rotated_during_in_slot),
        Tally::get(&tally.attempts_during_in_slot),
    );
    println!(
        "transient errors, each retried with the same request: {retries} ({retries_in_slot} of \
         the slot's families, {} of others); rotations that needed a retry: {}, of which \
         {} had won before their retry (answered by rule 8; records unread after {} errors)",
        retries - retries_in_slot,
        Tally::get(&tally.rotated_after_retry),
        Tally::get(&tally.won_before_retry),
        Tally::get(&tally.unread),
    );
    for (text, n) in tally.errors.lock().unwrap().iter() {
        println!("  {n:>4} x {text}");
    }
    for (n, node) in cluster.nodes.iter().enumerate() {
        println!("master {n} {}", error_stats(node.port).join(" "));
    }

    let wrong = tally.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "{} rotations answered wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(chains.iter().all(|c| !c.broken));
    assert!(
        Tally::get(&tally.rotated_during) > 0,
        "no rotation completed while the slot was open: the migration did not overlap the load"
    );
    assert!(
        Tally::get(&tally.rotated_during_in_slot) > 0,
        "no family of the slot rotated while it was open: the migration did not overlap \
         their refreshes"
    );

    // The slot now belongs to the target, in every master's view, with all
    // of its keys.
    for viewer in 0..cluster.nodes.len() {
        assert_eq!(cluster.slot_owner_seen_by(viewer, slot), Some(to));
        assert!(!cluster.slot_is_open_on(viewer, slot));
    }
    assert_eq!(cluster.keys_in_slot(from, slot), 0);
    assert!(cluster.keys_in_slot(to, slot) > families_in_slot);

    // Every family is live at exactly the generation its chain reached,
    // holding the chain's token: its record says so, and that token
    // rotates once more.
    let check = async {
        let mut raw = raw_connection(&cluster).await;
        for chain in &chains {
            let (generation, key, revoked) = record(&cluster, &mut raw, &chain.fam).await;
            assert_eq!(
                (generation, key.as_deref(), revoked.as_deref()),
                (
                    Some(chain.generation),
                    Some(chain.live.0.as_str()),
                    Some("0")
                ),
                "family {} (in slot: {})",
                chain.fam.family_id,
                chain.in_slot
            );
            assert!(chain.generation >= 2, "{}", chain.generation);
            let last = chain.request(now_ms());
            assert_eq!(
                rotate_retrying(&store, &last).await,
                Rotation::Rotated,
                "family {}",
                chain.fam.family_id
            );
        }
    };
    tokio::time::timeout(CHECK_BOUND, check)
        .await
        .unwrap_or_else(|_| panic!("checking the families took longer than {CHECK_BOUND:?}"));
    retries - retries_in_slot
}
