//! One behaviour suite, run against every store: the in-memory reference,
//! a standalone Redis and a three-master Redis Cluster (both started by the
//! test binary itself, once, and shared by its tests). Any difference
//! between them is a bug. Each case is a test per store, named
//! `<case>::<store>`.

use std::sync::Arc;
use std::time::Duration;

use tokengate_store::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    MAX_LISTED_SESSIONS, MemoryStore, RedisStore, RedisStoreConfig, RefreshStore, RotateRequest,
    Rotation, SessionOrigin, SessionSelector,
};
use tokengate_test_support::ids::{now_ms, unique};
use tokengate_test_support::redis_server::{RedisCluster, RedisServer};

type Store = Arc<dyn RefreshStore>;

const HOUR_MS: u64 = 3_600_000;
const FP_A: [u8; 16] = [0xA1; 16];
const FP_B: [u8; 16] = [0xB2; 16];

/// One principal of one test case, with helpers to start families and
/// rotate keys; every id is unique so cases never see each other's data.
struct Principal {
    store: Store,
    domain_id: String,
    principal_id: String,
}

/// A family plus the key that is currently live.
struct Family {
    fam: FamilyRef,
    live: KeyId,
}

impl Principal {
    fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
            domain_id: unique("domain"),
            principal_id: unique("user"),
        }
    }

    fn family_ref(&self) -> FamilyRef {
        FamilyRef {
            family_id: unique("fam"),
            domain_id: self.domain_id.clone(),
            principal_id: self.principal_id.clone(),
        }
    }

    /// Starts a family issued at `issued_at_ms` that ends an hour later.
    async fn start_at(&self, issued_at_ms: u64) -> Family {
        self.start_with(issued_at_ms, issued_at_ms + HOUR_MS, HOUR_MS)
            .await
    }

    async fn start_with(&self, issued_at_ms: u64, expires_at_ms: u64, key_life_ms: u64) -> Family {
        let fam = self.family_ref();
        let live = key("k0");
        self.store
            .start_family(
                &FamilyRecord {
                    family: fam.clone(),
                    issued_at_ms,
                    expires_at_ms,
                    password_fingerprint: FP_A,
                    origin: SessionOrigin::new("grpc-web", "203.0.113.7"),
                },
                &live,
                issued_at_ms + key_life_ms,
            )
            .await
            .expect("start_family");
        Family { fam, live }
    }
}

fn key(label: &str) -> KeyId {
    KeyId(unique(label))
}

/// The generation each key was minted for, as the `gen` claim carries it:
/// a successor is one generation past the key it replaces, whatever the
/// outcome (tokens are minted before the store rotates). Keys that start a
/// family, and keys never minted, are generation 0.
fn generation_of(key: &KeyId) -> u64 {
    GENERATIONS.lock().unwrap().get(key).copied().unwrap_or(0)
}

static GENERATIONS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<KeyId, u64>>> =
    std::sync::LazyLock::new(Default::default);

fn request(fam: &FamilyRef, presented: &KeyId, successor: &KeyId, now_ms: u64) -> RotateRequest {
    let presented_generation = generation_of(presented);
    GENERATIONS
        .lock()
        .unwrap()
        .insert(successor.clone(), presented_generation + 1);
    RotateRequest {
        family: fam.clone(),
        presented: presented.clone(),
        presented_generation,
        presented_expires_at_ms: now_ms + HOUR_MS,
        successor: successor.clone(),
        successor_expires_at_ms: now_ms + HOUR_MS,
        password_fingerprint: FP_A,
        now_ms,
        grace_ms: 0,
        answer: Vec::new(),
    }
}

async fn rotate(store: &Store, req: &RotateRequest) -> Rotation {
    store.rotate(req).await.expect("rotate")
}

impl Family {
    /// Rotates the live key at `now`; on success the successor becomes live.
    async fn step(&mut self, store: &Store, now: u64) -> Rotation {
        let next = key("k");
        let outcome = rotate(store, &request(&self.fam, &self.live, &next, now)).await;
        if outcome == Rotation::Rotated {
            self.live = next;
        }
        outcome
    }
}

async fn start_and_rotate_chain(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    for i in 1..=5 {
        assert_eq!(f.step(store, t + i).await, Rotation::Rotated, "step {i}");
    }
}

async fn reuse_revokes_only_that_family(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    let mut other = p.start_at(t).await;
    let first = f.live.clone();
    assert_eq!(f.step(store, t + 1).await, Rotation::Rotated);
    let replay = request(&f.fam, &first, &key("k"), t + 2);
    assert_eq!(rotate(store, &replay).await, Rotation::ReuseDetected);
    // The family is revoked: the successor no longer refreshes.
    assert_eq!(f.step(store, t + 3).await, Rotation::Invalid);
    // A second replay finds the family revoked.
    assert_eq!(rotate(store, &replay).await, Rotation::Invalid);
    // The user's other family is untouched.
    assert_eq!(other.step(store, t + 4).await, Rotation::Rotated);
}

async fn grace_window_returns_the_same_answer(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    let spent = f.live.clone();
    // Arbitrary bytes, not UTF-8, with NULs and CR/LF.
    let answer: Vec<u8> = vec![0, 255, 254, 13, 10, 0, 1, 2, 0xC3, 0x28, 0];
    let next = key("k");
    let mut winner = request(&f.fam, &spent, &next, t);
    winner.grace_ms = 10_000;
    winner.answer = answer.clone();
    assert_eq!(rotate(store, &winner).await, Rotation::Rotated);
    f.live = next;

    for (i, now) in [t, t + 1, t + 9_999].into_iter().enumerate() {
        let mut dup = request(&f.fam, &spent, &key("dup"), now);
        dup.grace_ms = 10_000;
        dup.answer = vec![9; 8];
        assert_eq!(
            rotate(store, &dup).await,
            Rotation::Duplicate(answer.clone()),
            "duplicate {i}"
        );
    }
    // Nothing was revoked: the winner's successor refreshes.
    assert_eq!(f.step(store, t + 10).await, Rotation::Rotated);
    // The window ends at t + grace (exclusive).
    let late = request(&f.fam, &spent, &key("late"), t + 10_000);
    assert_eq!(rotate(store, &late).await, Rotation::ReuseDetected);
    assert_eq!(f.step(store, t + 10_001).await, Rotation::Invalid);
}

async fn grace_without_answer_is_reuse(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let f = p.start_at(t).await;
    let mut winner = request(&f.fam, &f.live, &key("k"), t);
    winner.grace_ms = 10_000;
    assert_eq!(rotate(store, &winner).await, Rotation::Rotated);
    let dup = request(&f.fam, &f.live, &key("dup"), t + 1);
    assert_eq!(rotate(store, &dup).await, Rotation::ReuseDetected);
}

async fn password_change_revokes(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    let mut other = p.start_at(t).await;
    let next = key("k");
    let mut changed = request(&f.fam, &f.live, &next, t + 1);
    changed.password_fingerprint = FP_B;
    assert_eq!(rotate(store, &changed).await, Rotation::PasswordChanged);
    // Revoked: even the old fingerprint no longer works, and no successor
    // was recorded.
    assert_eq!(f.step(store, t + 2).await, Rotation::Invalid);
    let successor = request(&f.fam, &next, &key("k"), t + 3);
    assert_eq!(rotate(store, &successor).await, Rotation::Invalid);
    // The user's other family is not revoked by this: fingerprints are
    // compared per family, when that family refreshes.
    assert_eq!(other.step(store, t + 4).await, Rotation::Rotated);
}

async fn absolute_and_key_expiry(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    // Family ends at t + 60 s; keys would live an hour.
    let mut ending = p.start_with(t, t + 60_000, HOUR_MS).await;
    assert_eq!(ending.step(store, t + 59_999).await, Rotation::Rotated);
    assert_eq!(ending.step(store, t + 60_000).await, Rotation::Invalid);
    assert_eq!(ending.step(store, t + 60_001).await, Rotation::Invalid);

    // Key ends at t + 1 s, family lives an hour.
    let short = p.start_with(t, t + HOUR_MS, 1_000).await;
    let at_end = request(&short.fam, &short.live, &key("k"), t + 1_000);
    assert_eq!(rotate(store, &at_end).await, Rotation::Invalid);
    let before_end = request(&short.fam, &short.live, &key("k"), t + 999);
    assert_eq!(rotate(store, &before_end).await, Rotation::Rotated);
}

async fn revoke_family_ends_one_family(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    let mut other = p.start_at(t).await;
    // A ref naming another principal does not revoke it.
    let mut wrong = f.fam.clone();
    wrong.principal_id = unique("someone-else");
    store.revoke_family(&wrong).await.expect("revoke_family");
    assert_eq!(f.step(store, t + 1).await, Rotation::Rotated);

    store.revoke_family(&f.fam).await.expect("revoke_family");
    assert_eq!(f.step(store, t + 2).await, Rotation::Invalid);
    assert_eq!(other.step(store, t + 3).await, Rotation::Rotated);
    // Revoking an unknown family is fine and changes nothing.
    store
        .revoke_family(&p.family_ref())
        .await
        .expect("revoke unknown family");
}

async fn revoke_principal_ends_earlier_families(store: &Store) {
    let p = Principal::new(store);
    let bystander = Principal::new(store);
    let t = now_ms();
    let mut before = p.start_at(t).await;
    let mut same_ms = p.start_at(t + 1).await;
    let mut lapsing = p.start_at(t).await;
    let mut unrelated = bystander.start_at(t).await;

    store
        .revoke_principal(&p.domain_id, &p.principal_id, t + 1, 60_000)
        .await
        .expect("revoke_principal");
    assert_eq!(before.step(store, t + 2).await, Rotation::Invalid);
    // Issued in the very millisecond of the revocation: revoked too.
    assert_eq!(same_ms.step(store, t + 2).await, Rotation::Invalid);
    assert_eq!(unrelated.step(store, t + 2).await, Rotation::Rotated);

    // Started after the revocation: works.
    let mut after = p.start_at(t + 2).await;
    assert_eq!(after.step(store, t + 3).await, Rotation::Rotated);

    // The marker lasts `ttl_ms`; at its end it no longer applies.
    assert_eq!(lapsing.step(store, t + 1 + 60_000).await, Rotation::Rotated);
}

async fn unknown_keys_and_families_are_invalid(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let f = p.start_at(t).await;
    // A key never issued, or another family's, under a live family is a
    // token its record never saw: `unseen_tokens_end_the_family`.
    // A family never started.
    let unknown_family = request(&p.family_ref(), &f.live, &key("k"), t + 1);
    assert_eq!(rotate(store, &unknown_family).await, Rotation::Invalid);
    // The right family id, but another domain.
    let mut elsewhere = f.fam.clone();
    elsewhere.domain_id = unique("other-domain");
    let wrong_domain = request(&elsewhere, &f.live, &key("k"), t + 1);
    assert_eq!(rotate(store, &wrong_domain).await, Rotation::Invalid);
    // None of that harmed the family.
    let fine = request(&f.fam, &f.live, &key("k"), t + 2);
    assert_eq!(rotate(store, &fine).await, Rotation::Rotated);
}

/// Tokens the family's record has never seen — a write lost in a failover
/// — end the family: a generation ahead of the record's, or the record's
/// generation (or the one before) with another key.
async fn unseen_tokens_end_the_family(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut other = p.start_at(t).await;

    // A generation the record never reached.
    let mut ahead = p.start_at(t).await;
    assert_eq!(ahead.step(store, t + 1).await, Rotation::Rotated);
    let mut lost = request(&ahead.fam, &key("lost"), &key("k"), t + 2);
    lost.presented_generation = 2;
    assert_eq!(rotate(store, &lost).await, Rotation::Diverged);
    // Ended: the live token no longer refreshes, nor does the unseen one.
    assert_eq!(ahead.step(store, t + 3).await, Rotation::Invalid);
    assert_eq!(rotate(store, &lost).await, Rotation::Invalid);

    // The current generation with a key never issued.
    let mut same = p.start_at(t).await;
    let never = request(&same.fam, &key("never"), &key("k"), t + 1);
    assert_eq!(never.presented_generation, 0);
    assert_eq!(rotate(store, &never).await, Rotation::Diverged);
    assert_eq!(same.step(store, t + 2).await, Rotation::Invalid);

    // Another family's real key presented under this family.
    let mut crossed = p.start_at(t).await;
    let mut bystander = p.start_at(t).await;
    let foreign = request(&crossed.fam, &bystander.live, &key("k"), t + 1);
    assert_eq!(rotate(store, &foreign).await, Rotation::Diverged);
    assert_eq!(crossed.step(store, t + 2).await, Rotation::Invalid);
    assert_eq!(bystander.step(store, t + 3).await, Rotation::Rotated);

    // The generation before the current one, with a key it never held.
    let mut behind = p.start_at(t).await;
    assert_eq!(behind.step(store, t + 1).await, Rotation::Rotated);
    let mut stale = request(&behind.fam, &key("stale"), &key("k"), t + 2);
    stale.presented_generation = 0;
    assert_eq!(rotate(store, &stale).await, Rotation::Diverged);
    assert_eq!(behind.step(store, t + 3).await, Rotation::Invalid);

    // None of that touched the principal's other family.
    assert_eq!(other.step(store, t + 4).await, Rotation::Rotated);
}

/// A token generations behind the record is reuse, not divergence: the
/// record only keeps the last key it replaced, so it cannot tell, and a
/// spent token ends the family either way.
async fn generations_behind_are_reuse(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    let first = f.live.clone();
    for i in 1..=3 {
        assert_eq!(f.step(store, t + i).await, Rotation::Rotated, "step {i}");
    }
    let replay = request(&f.fam, &first, &key("k"), t + 4);
    assert_eq!(replay.presented_generation, 0);
    assert_eq!(rotate(store, &replay).await, Rotation::ReuseDetected);
    assert_eq!(f.step(store, t + 5).await, Rotation::Invalid);
}

/// A token past its own expiry refreshes nothing and harms nothing.
async fn expired_tokens_are_invalid(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut f = p.start_at(t).await;
    let mut expired = request(&f.fam, &f.live, &key("k"), t + 1);
    expired.presented_expires_at_ms = t + 1;
    assert_eq!(rotate(store, &expired).await, Rotation::Invalid);
    assert_eq!(f.step(store, t + 2).await, Rotation::Rotated);
}

const RACERS: usize = 200;

/// `RACERS` tasks present the same key at once, each with its own
/// successor and answer (as concurrent refreshes would).
async fn race(
    store: &Store,
    fam: &FamilyRef,
    presented: &KeyId,
    now: u64,
    grace_ms: u64,
) -> Vec<(RotateRequest, Rotation)> {
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = store.clone();
            let mut req = request(fam, presented, &key("racer"), now);
            req.grace_ms = grace_ms;
            if grace_ms > 0 {
                req.answer = format!("answer of racer {i}\0\u{ff}").into_bytes();
            }
            tokio::spawn(async move {
                let outcome = store.rotate(&req).await.expect("rotate");
                (req, outcome)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACERS);
    for task in tasks {
        results.push(task.await.expect("racer task"));
    }
    results
}

async fn concurrent_rotations_have_one_winner(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let f = p.start_at(t).await;
    let results = race(store, &f.fam, &f.live, t + 1, 0).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, o)| *o == Rotation::Rotated)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one winner");
    for (_, outcome) in &results {
        assert!(
            matches!(
                outcome,
                Rotation::Rotated | Rotation::ReuseDetected | Rotation::Invalid
            ),
            "unexpected {outcome:?}"
        );
    }
    assert!(
        results.iter().any(|(_, o)| *o == Rotation::ReuseDetected),
        "losers detect reuse"
    );
    // Reuse revoked the family, the winner's successor included.
    let successor = &winners[0].0.successor;
    let next = request(&f.fam, successor, &key("k"), t + 2);
    assert_eq!(rotate(store, &next).await, Rotation::Invalid);
}

async fn concurrent_rotations_in_grace_share_the_answer(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let f = p.start_at(t).await;
    let results = race(store, &f.fam, &f.live, t + 1, 10_000).await;
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, o)| *o == Rotation::Rotated)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one winner");
    let (winner, _) = winners[0];
    let duplicates = results
        .iter()
        .filter(|(_, o)| *o == Rotation::Duplicate(winner.answer.clone()))
        .count();
    assert_eq!(
        duplicates,
        RACERS - 1,
        "every loser gets the winner's bytes"
    );
    // Nothing revoked: the winner's successor refreshes.
    let next = request(&f.fam, &winner.successor, &key("k"), t + 2);
    assert_eq!(rotate(store, &next).await, Rotation::Rotated);
}

async fn password_change_inside_grace_gets_no_answer(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let f = p.start_at(t).await;
    let mut winner = request(&f.fam, &f.live, &key("k"), t);
    winner.grace_ms = 10_000;
    winner.answer = vec![1, 2, 3];
    assert_eq!(rotate(store, &winner).await, Rotation::Rotated);
    // The password changes; a duplicate inside the window must not get the
    // pre-change answer: the family ends.
    let mut dup = request(&f.fam, &f.live, &key("dup"), t + 1);
    dup.password_fingerprint = FP_B;
    assert_eq!(rotate(store, &dup).await, Rotation::PasswordChanged);
    let again = request(&f.fam, &f.live, &key("again"), t + 2);
    assert_eq!(rotate(store, &again).await, Rotation::Invalid);
}

/// A SpaceONE refresh token to adopt: the family it would start (its id
/// derived from the token, as callers derive it) and its one-time key,
/// generation 0.
fn spaceone_token(p: &Principal, issued_at_ms: u64, expires_at_ms: u64) -> (FamilyRecord, KeyId) {
    let spaceone_key = key("spaceone");
    let record = FamilyRecord {
        family: FamilyRef {
            family_id: format!("so-{}", spaceone_key.0),
            domain_id: p.domain_id.clone(),
            principal_id: p.principal_id.clone(),
        },
        issued_at_ms,
        expires_at_ms,
        password_fingerprint: FP_A,
        origin: SessionOrigin::new("rest", "198.51.100.1"),
    };
    (record, spaceone_key)
}

async fn adopt(store: &Store, family: &FamilyRecord, req: &RotateRequest) -> Rotation {
    store.adopt(family, req).await.expect("adopt")
}

/// Rotation rule 0: the first refresh of a SpaceONE token starts its
/// family and wins; the family then refreshes as any other, and a replay of
/// the SpaceONE token is reuse that ends it.
async fn adoption_starts_one_family(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let (record, spaceone_key) = spaceone_token(&p, t - 1_000, t + HOUR_MS);
    let first = key("k");
    let req = request(&record.family, &spaceone_key, &first, t);
    assert_eq!(adopt(store, &record, &req).await, Rotation::Rotated);
    let listed = p
        .store
        .session(&record.family, t + 1)
        .await
        .expect("session")
        .expect("the adopted family is a live session");
    assert_eq!((listed.generation, listed.issued_at_ms), (1, t - 1_000));
    let mut f = Family {
        fam: record.family.clone(),
        live: first,
    };
    assert_eq!(f.step(store, t + 2).await, Rotation::Rotated);
    // The SpaceONE token again: reuse, the whole family ends.
    let replay = request(&record.family, &spaceone_key, &key("k"), t + 3);
    assert_eq!(
        adopt(store, &record, &replay).await,
        Rotation::ReuseDetected
    );
    assert_eq!(f.step(store, t + 4).await, Rotation::Invalid);
    assert_eq!(adopt(store, &record, &replay).await, Rotation::Invalid);
    // Another principal's request for that family is no adoption.
    let stranger = Principal::new(store);
    let (mut other, _) = spaceone_token(&stranger, t, t + HOUR_MS);
    other.family.family_id = record.family.family_id.clone();
    assert_eq!(adopt(store, &other, &replay).await, Rotation::Invalid);
}

/// Concurrent first refreshes of one SpaceONE token: exactly one wins;
/// the others are reuse (no grace), or get the winner's answer (grace).
async fn concurrent_adoptions_have_one_winner(store: &Store) {
    for grace_ms in [0, 10_000] {
        let p = Principal::new(store);
        let t = now_ms();
        let (record, spaceone_key) = spaceone_token(&p, t, t + HOUR_MS);
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                let store = store.clone();
                let record = record.clone();
                let mut req = request(&record.family, &spaceone_key, &key("racer"), t + 1);
                req.grace_ms = grace_ms;
                if grace_ms > 0 {
                    req.answer = format!("answer of racer {i}").into_bytes();
                }
                tokio::spawn(async move {
                    let outcome = store.adopt(&record, &req).await.expect("adopt");
                    (req, outcome)
                })
            })
            .collect();
        let mut results = Vec::with_capacity(RACERS);
        for task in tasks {
            results.push(task.await.expect("racer task"));
        }
        let winners: Vec<_> = results
            .iter()
            .filter(|(_, o)| *o == Rotation::Rotated)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one winner (grace {grace_ms})");
        let answer = winners[0].0.answer.clone();
        for (_, outcome) in &results {
            match grace_ms {
                0 => assert!(
                    matches!(
                        outcome,
                        Rotation::Rotated | Rotation::ReuseDetected | Rotation::Invalid
                    ),
                    "unexpected {outcome:?}"
                ),
                _ => assert!(
                    *outcome == Rotation::Rotated
                        || *outcome == Rotation::Duplicate(answer.clone()),
                    "unexpected {outcome:?}"
                ),
            }
        }
        let successor = &winners[0].0.successor;
        let next = request(&record.family, successor, &key("k"), t + 2);
        let expected = if grace_ms == 0 {
            Rotation::Invalid
        } else {
            Rotation::Rotated
        };
        assert_eq!(rotate(store, &next).await, expected, "grace {grace_ms}");
    }
}

/// A SpaceONE token is adopted once, however soon its family ends: its
/// marker lives until the token expires, so a replay after the family's
/// end (its record gone, on Redis) starts nothing.
async fn adoption_is_once_even_after_its_family(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    // A family that ends before it could be used: the record lapses at
    // once (Redis drops it), but the token is marked adopted.
    let (mut record, spaceone_key) = spaceone_token(&p, t - HOUR_MS, t);
    let req = request(&record.family, &spaceone_key, &key("k"), t + 1);
    assert_eq!(adopt(store, &record, &req).await, Rotation::Invalid);
    // The same token again, now with a family end in the future (another
    // configuration): still no family.
    record.expires_at_ms = t + HOUR_MS;
    let again = request(&record.family, &spaceone_key, &key("k"), t + 2);
    assert_eq!(adopt(store, &record, &again).await, Rotation::Invalid);
    assert!(
        p.store
            .session(&record.family, t + 3)
            .await
            .expect("session")
            .is_none()
    );
}

fn lease(label: &str, expires_at_ms: u64) -> CheckLease {
    CheckLease {
        id: unique(label),
        expires_at_ms,
    }
}

const FAILED: CheckOutcome = CheckOutcome::Failed { window_ms: 60_000 };

async fn acquire(
    store: &Store,
    counter: &AttemptCounter,
    lease: &CheckLease,
    now: u64,
) -> LoginAttempt {
    store
        .acquire_attempt(counter, lease, now)
        .await
        .expect("acquire")
}

async fn release(
    store: &Store,
    counter: &AttemptCounter,
    lease: &CheckLease,
    outcome: CheckOutcome,
    now: u64,
) {
    store
        .release_attempt(counter, lease, outcome, now)
        .await
        .expect("release");
}

/// L failed checks lock the counter, with the window's time left; checks
/// that did not fail count nothing.
async fn login_failures_lock_at_the_limit(store: &Store) {
    let counter = AttemptCounter {
        id: unique("user"),
        limit: 3,
    };
    let t = now_ms();
    for i in 0..3 {
        let l = lease("check", t + 60_000);
        assert_eq!(
            acquire(store, &counter, &l, t).await,
            LoginAttempt::Allowed,
            "check {i}"
        );
        release(store, &counter, &l, FAILED, t).await;
    }
    match acquire(store, &counter, &lease("late", t + 60_000), t + 1).await {
        LoginAttempt::Locked { retry_after_ms } => {
            assert!(
                retry_after_ms > 0 && retry_after_ms <= 60_000,
                "{retry_after_ms}"
            )
        }
        other => panic!("expected a lock, got {other:?}"),
    }
    // Another counter is independent; releasing an unknown lease is harmless.
    let other = AttemptCounter {
        id: unique("ip"),
        limit: 1,
    };
    let stray = lease("stray", t + 60_000);
    release(store, &other, &stray, CheckOutcome::NotFailed, t).await;
    assert_eq!(
        acquire(store, &other, &stray, t).await,
        LoginAttempt::Allowed
    );
}

/// Checks that do not fail never lock, however many: they only take turns.
async fn right_passwords_never_lock(store: &Store) {
    let counter = AttemptCounter {
        id: unique("user"),
        limit: 2,
    };
    let t = now_ms();
    for round in 0..5 {
        let a = lease("a", t + 60_000);
        let b = lease("b", t + 60_000);
        assert_eq!(
            acquire(store, &counter, &a, t).await,
            LoginAttempt::Allowed,
            "round {round}"
        );
        assert_eq!(
            acquire(store, &counter, &b, t).await,
            LoginAttempt::Allowed,
            "round {round}"
        );
        // Both slots are in flight: a third waits, it is not locked.
        assert_eq!(
            acquire(store, &counter, &lease("c", t + 60_000), t).await,
            LoginAttempt::Busy,
            "round {round}"
        );
        release(store, &counter, &a, CheckOutcome::NotFailed, t).await;
        release(store, &counter, &b, CheckOutcome::NotFailed, t).await;
    }
}

/// Failures shrink the slots: with limit L and F failures, L − F checks may
/// be in flight.
async fn failures_leave_limit_minus_failures_slots(store: &Store) {
    let counter = AttemptCounter {
        id: unique("user"),
        limit: 4,
    };
    let t = now_ms();
    let first = lease("first", t + 60_000);
    assert_eq!(
        acquire(store, &counter, &first, t).await,
        LoginAttempt::Allowed
    );
    release(store, &counter, &first, FAILED, t).await;
    let held: Vec<_> = (0..3).map(|_| lease("held", t + 60_000)).collect();
    for l in &held {
        assert_eq!(acquire(store, &counter, l, t).await, LoginAttempt::Allowed);
    }
    assert_eq!(
        acquire(store, &counter, &lease("more", t + 60_000), t).await,
        LoginAttempt::Busy
    );
    // Two of the three fail: 3 failures, the last one still in flight.
    release(store, &counter, &held[0], FAILED, t).await;
    release(store, &counter, &held[1], FAILED, t).await;
    assert_eq!(
        acquire(store, &counter, &lease("more", t + 60_000), t).await,
        LoginAttempt::Busy
    );
    release(store, &counter, &held[2], FAILED, t).await;
    assert!(matches!(
        acquire(store, &counter, &lease("more", t + 60_000), t).await,
        LoginAttempt::Locked { .. }
    ));
}

/// A lease that was never released (its process died) frees its slot when
/// it runs out.
async fn abandoned_checks_free_their_slot(store: &Store) {
    let counter = AttemptCounter {
        id: unique("user"),
        limit: 1,
    };
    let t = now_ms();
    assert_eq!(
        acquire(store, &counter, &lease("dead", t + 200), t).await,
        LoginAttempt::Allowed
    );
    assert_eq!(
        acquire(store, &counter, &lease("next", t + 60_000), t + 100).await,
        LoginAttempt::Busy
    );
    assert_eq!(
        acquire(store, &counter, &lease("next", t + 60_000), t + 201).await,
        LoginAttempt::Allowed
    );
}

async fn login_failures_window_passes(store: &Store) {
    let counter = AttemptCounter {
        id: unique("user"),
        limit: 1,
    };
    let t = now_ms();
    let l = lease("check", t + 60_000);
    assert_eq!(acquire(store, &counter, &l, t).await, LoginAttempt::Allowed);
    release(
        store,
        &counter,
        &l,
        CheckOutcome::Failed { window_ms: 300 },
        t,
    )
    .await;
    assert!(matches!(
        acquire(store, &counter, &lease("locked", t + 60_000), t).await,
        LoginAttempt::Locked { .. }
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let now = now_ms();
    assert_eq!(
        acquire(store, &counter, &lease("after", now + 60_000), now).await,
        LoginAttempt::Allowed
    );
}

/// However many attempts race, at most the limit hold a slot at once.
async fn parallel_checks_cannot_slip_past(store: &Store) {
    let counter = AttemptCounter {
        id: unique("user"),
        limit: 10,
    };
    let t = now_ms();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(store);
            let counter = counter.clone();
            tokio::spawn(
                async move { acquire(&store, &counter, &lease("racer", t + 60_000), t).await },
            )
        })
        .collect();
    let (mut allowed, mut busy) = (0, 0);
    for task in tasks {
        match task.await.expect("join") {
            LoginAttempt::Allowed => allowed += 1,
            LoginAttempt::Busy => busy += 1,
            locked => panic!("no failure was counted, yet {locked:?}"),
        }
    }
    assert_eq!((allowed, busy), (10, 40));
}

/// Generous: the machine is shared and slow; the timeout tests live in
/// `redis_ops.rs`.
const SUITE_TIMEOUT: Duration = Duration::from_secs(5);

fn memory() -> Store {
    Arc::new(MemoryStore::new())
}

/// A store on the standalone Redis this test binary shares (its own key
/// prefix; every case names its data with `unique` anyway).
async fn redis_standalone() -> Store {
    let server = RedisServer::shared();
    let config = RedisStoreConfig::new(server.url())
        .with_key_prefix(format!("{}:", unique("suite")))
        .with_timeout(SUITE_TIMEOUT);
    let store = RedisStore::connect(config).await.expect("connect");
    store.ping().await.expect("ping");
    Arc::new(store)
}

/// A store on the Redis Cluster this test binary shares, named by a
/// `redis+cluster://` URL.
async fn redis_cluster() -> Store {
    let url = RedisCluster::shared().url();
    assert!(url.starts_with("redis+cluster://127.0.0.1:"));
    let config = RedisStoreConfig::new(url).with_timeout(SUITE_TIMEOUT);
    let store = RedisStore::connect(config).await.expect("connect");
    assert!(store.describe().starts_with("redis cluster 127.0.0.1:"));
    store.ping().await.expect("ping");
    Arc::new(store)
}

/// The same cluster named by an explicit node list.
async fn redis_cluster_node_list() -> Store {
    let config =
        RedisStoreConfig::cluster(RedisCluster::shared().node_urls()).with_timeout(SUITE_TIMEOUT);
    Arc::new(RedisStore::connect(config).await.expect("connect"))
}

/// For each case, a module of that name with one test per store, so a
/// failure names both: `grace_window_returns_the_same_answer::redis_cluster`.
/// The ids of a principal's listed sessions at `now`.
async fn listed(p: &Principal, now: u64) -> Vec<String> {
    p.store
        .list_sessions(&p.domain_id, &p.principal_id, now)
        .await
        .expect("list_sessions")
        .into_iter()
        .map(|s| s.family_id)
        .collect()
}

async fn sessions_list_live_families_oldest_first(store: &Store) {
    let p = Principal::new(store);
    let other = Principal::new(store);
    let t = now_ms();
    let mut second = p.start_at(t + 5).await;
    let first = p.start_at(t).await;
    let _foreign = other.start_at(t).await;
    assert_eq!(
        listed(&p, t + 10).await,
        vec![first.fam.family_id.clone(), second.fam.family_id.clone()]
    );
    // What a session shows: times, generation and origin.
    assert_eq!(second.step(store, t + 20).await, Rotation::Rotated);
    let sessions = store
        .list_sessions(&p.domain_id, &p.principal_id, t + 21)
        .await
        .expect("list");
    let shown = &sessions[1];
    assert_eq!(shown.issued_at_ms, t + 5);
    assert_eq!(shown.refreshed_at_ms, t + 20);
    assert_eq!(shown.generation, 1);
    assert_eq!(shown.expires_at_ms, t + 5 + HOUR_MS);
    assert_eq!(shown.token_expires_at_ms, t + 20 + HOUR_MS);
    assert_eq!(shown.origin, SessionOrigin::new("grpc-web", "203.0.113.7"));
    assert_eq!(sessions[0].refreshed_at_ms, t, "never refreshed: the login");
    assert_eq!(
        store.session(&second.fam, t + 21).await.expect("session"),
        Some(shown.clone())
    );
    // Another principal's list is its own.
    assert_eq!(listed(&other, t + 10).await.len(), 1);
}

async fn sessions_leave_the_list_when_over(store: &Store) {
    let p = Principal::new(store);
    let t = now_ms();
    let mut reused = p.start_at(t).await;
    let revoked = p.start_at(t).await;
    let short = p.start_with(t, t + HOUR_MS, 1_000).await;
    let kept = p.start_at(t).await;
    let spent = reused.live.clone();
    assert_eq!(reused.step(store, t + 1).await, Rotation::Rotated);
    let replay = request(&reused.fam, &spent, &key("k"), t + 2);
    assert_eq!(rotate(store, &replay).await, Rotation::ReuseDetected);
    store.revoke_family(&revoked.fam).await.expect("revoke");
    // `short`'s token expires at t + 1000.
    assert_eq!(
        listed(&p, t + 1_000).await,
        vec![kept.fam.family_id.clone()]
    );
    for gone in [&reused.fam, &revoked.fam, &short.fam] {
        assert_eq!(store.session(gone, t + 1_000).await.expect("session"), None);
    }
    // The principal's revocation ends the rest.
    store
        .revoke_principal(&p.domain_id, &p.principal_id, t + 2_000, HOUR_MS)
        .await
        .expect("revoke_principal");
    assert!(listed(&p, t + 2_001).await.is_empty());
    assert_eq!(
        store.session(&kept.fam, t + 2_001).await.expect("session"),
        None
    );
    // A family started after it is listed.
    let later = p.start_at(t + 3_000).await;
    assert_eq!(
        listed(&p, t + 3_001).await,
        vec![later.fam.family_id.clone()]
    );
}

async fn end_others_leaves_exactly_the_current_session(store: &Store) {
    let p = Principal::new(store);
    let other = Principal::new(store);
    let t = now_ms();
    let mut current = p.start_at(t).await;
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(p.start_at(t).await);
    }
    let mut foreign = other.start_at(t).await;
    let keep = SessionSelector::AllBut(current.fam.family_id.clone());
    let mut ended = store
        .end_sessions(&p.domain_id, &p.principal_id, &keep, t + 1)
        .await
        .expect("end_sessions");
    ended.sort();
    let mut expected: Vec<String> = others.iter().map(|f| f.fam.family_id.clone()).collect();
    expected.sort();
    assert_eq!(ended, expected);
    assert_eq!(listed(&p, t + 2).await, vec![current.fam.family_id.clone()]);
    for f in &mut others {
        assert_eq!(f.step(store, t + 3).await, Rotation::Invalid);
    }
    assert_eq!(current.step(store, t + 4).await, Rotation::Rotated);
    assert_eq!(foreign.step(store, t + 5).await, Rotation::Rotated);
    // Again: nothing left to end.
    let again = store
        .end_sessions(&p.domain_id, &p.principal_id, &keep, t + 6)
        .await
        .expect("end_sessions");
    assert!(again.is_empty(), "{again:?}");
}

async fn end_one_session_by_id(store: &Store) {
    let p = Principal::new(store);
    let other = Principal::new(store);
    let t = now_ms();
    let mut target = p.start_at(t).await;
    let mut kept = p.start_at(t).await;
    let mut foreign = other.start_at(t).await;
    // Another principal cannot name it: its ids are looked up under its own.
    let theirs = SessionSelector::One(target.fam.family_id.clone());
    let none = store
        .end_sessions(&other.domain_id, &other.principal_id, &theirs, t + 1)
        .await
        .expect("end_sessions");
    assert!(none.is_empty());
    let foreign_one = SessionSelector::One(foreign.fam.family_id.clone());
    let none = store
        .end_sessions(&p.domain_id, &p.principal_id, &foreign_one, t + 1)
        .await
        .expect("end_sessions");
    assert!(none.is_empty());
    assert_eq!(foreign.step(store, t + 2).await, Rotation::Rotated);
    // Its owner can.
    let ended = store
        .end_sessions(&p.domain_id, &p.principal_id, &theirs, t + 3)
        .await
        .expect("end_sessions");
    assert_eq!(ended, vec![target.fam.family_id.clone()]);
    assert_eq!(target.step(store, t + 4).await, Rotation::Invalid);
    assert_eq!(kept.step(store, t + 5).await, Rotation::Rotated);
    let unknown = SessionSelector::One("no-such-family".to_owned());
    let none = store
        .end_sessions(&p.domain_id, &p.principal_id, &unknown, t + 6)
        .await
        .expect("end_sessions");
    assert!(none.is_empty());
    // Ending every session.
    let all = store
        .end_sessions(&p.domain_id, &p.principal_id, &SessionSelector::All, t + 7)
        .await
        .expect("end_sessions");
    assert_eq!(all, vec![kept.fam.family_id.clone()]);
    assert!(listed(&p, t + 8).await.is_empty());
}

async fn many_sessions_list_in_part_and_all_end(store: &Store) {
    // More than one Redis index read (a thousand entries) and more than a
    // list shows.
    const SESSIONS: usize = 1_100;
    let p = Principal::new(store);
    let t = now_ms();
    let current = p.start_at(t).await;
    // Started by a few tasks at once (one by one takes long on a Cluster).
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let p = Principal {
                store: p.store.clone(),
                domain_id: p.domain_id.clone(),
                principal_id: p.principal_id.clone(),
            };
            tokio::spawn(async move {
                for i in (1 + task..SESSIONS as u64).step_by(8) {
                    p.start_at(t + 1 + i % 7).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join");
    }
    let shown = listed(&p, t + 10).await;
    assert_eq!(shown.len(), MAX_LISTED_SESSIONS);
    assert_eq!(shown[0], current.fam.family_id, "oldest login first");
    // Ended in parts, as the core repeats the call until nothing ends.
    let keep = SessionSelector::AllBut(current.fam.family_id.clone());
    let mut ended = 0;
    for _ in 0..16 {
        let part = store
            .end_sessions(&p.domain_id, &p.principal_id, &keep, t + 11)
            .await
            .expect("end_sessions");
        if part.is_empty() {
            break;
        }
        ended += part.len();
    }
    assert_eq!(ended, SESSIONS - 1);
    assert_eq!(
        listed(&p, t + 12).await,
        vec![current.fam.family_id.clone()]
    );
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$case(&super::memory()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_standalone() {
                super::$case(&super::redis_standalone().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis_cluster() {
                super::$case(&super::redis_cluster().await).await;
            }
        }
    )*};
}

cases!(
    start_and_rotate_chain,
    reuse_revokes_only_that_family,
    grace_window_returns_the_same_answer,
    grace_without_answer_is_reuse,
    password_change_revokes,
    password_change_inside_grace_gets_no_answer,
    absolute_and_key_expiry,
    revoke_family_ends_one_family,
    revoke_principal_ends_earlier_families,
    unknown_keys_and_families_are_invalid,
    unseen_tokens_end_the_family,
    generations_behind_are_reuse,
    expired_tokens_are_invalid,
    concurrent_rotations_have_one_winner,
    concurrent_rotations_in_grace_share_the_answer,
    adoption_starts_one_family,
    concurrent_adoptions_have_one_winner,
    adoption_is_once_even_after_its_family,
    login_failures_lock_at_the_limit,
    right_passwords_never_lock,
    failures_leave_limit_minus_failures_slots,
    abandoned_checks_free_their_slot,
    login_failures_window_passes,
    parallel_checks_cannot_slip_past,
    sessions_list_live_families_oldest_first,
    sessions_leave_the_list_when_over,
    end_others_leaves_exactly_the_current_session,
    end_one_session_by_id,
    many_sessions_list_in_part_and_all_end,
);

/// Two cases on the cluster named by its node list rather than a URL.
mod redis_cluster_node_list {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn start_and_rotate_chain() {
        super::start_and_rotate_chain(&super::redis_cluster_node_list().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grace_window_returns_the_same_answer() {
        super::grace_window_returns_the_same_answer(&super::redis_cluster_node_list().await).await;
    }
}
