//! The in-memory store: one process only (a dev instance or tests), and
//! the plain reference implementation of the rotation rules documented on
//! [`Rotation`]: `State::judge` follows them rule by rule.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    RefreshStore, RotateRequest, Rotation, StoreError,
};

/// A family as issued, and whether it has ended early.
#[derive(Debug)]
struct Family {
    /// As recorded at issue.
    record: FamilyRecord,
    /// Ended by reuse, a password change or `revoke_family`.
    revoked: bool,
}

/// Where a one-time key is in its life.
#[derive(Debug)]
enum KeyState {
    /// Issued, not yet presented.
    Live,
    /// Presented once and won; kept until the token expires so that a
    /// second presentation is seen as reuse (or a duplicate in grace).
    Spent {
        /// The winner's encrypted answer (empty without a grace window).
        answer: Vec<u8>,
        /// Until when a duplicate gets `answer`, unix ms (exclusive).
        grace_until_ms: u64,
    },
}

/// A one-time key: which family it belongs to and until when it counts.
#[derive(Debug)]
struct KeyEntry {
    /// The family it was issued in.
    family_id: String,
    /// Live or spent.
    state: KeyState,
    /// When its token expires, unix ms: the key counts until then.
    expires_at_ms: u64,
}

/// One failed-login counter: the window's failures and the checks in flight.
#[derive(Debug, Default)]
struct Attempts {
    /// Failed checks in the current window.
    failures: u32,
    /// When the failures are forgotten, ms (0: no failure yet).
    window_end_ms: u64,
    /// Lease id → when it frees itself, ms.
    in_flight: HashMap<String, u64>,
}

impl Attempts {
    /// Forgets what has run out by `now_ms`.
    fn expire(&mut self, now_ms: u64) {
        if self.window_end_ms <= now_ms {
            self.failures = 0;
            self.window_end_ms = 0;
        }
        self.in_flight.retain(|_, until| *until > now_ms);
    }

    /// Whether it holds nothing worth keeping.
    fn is_empty(&self) -> bool {
        self.failures == 0 && self.in_flight.is_empty()
    }
}

/// How many writes pass between two sweeps of expired records: often
/// enough to bound memory, rarely enough that a sweep's full scan is paid
/// by few calls.
const SWEEP_EVERY: u32 = 4096;

/// Everything the store holds, behind one mutex.
#[derive(Debug, Default)]
struct State {
    /// Families by id.
    families: HashMap<String, Family>,
    /// One-time keys by their store id.
    keys: HashMap<KeyId, KeyEntry>,
    /// (domain, principal) → revoked-before (ms) and when the marker expires.
    principal_revocations: HashMap<(String, String), (u64, u64)>,
    /// Failed-login counters by id.
    attempts: HashMap<String, Attempts>,
    /// Writes since the last sweep of expired records.
    writes_since_sweep: u32,
}

impl State {
    /// Drops expired records now and then so memory stays bounded.
    fn maybe_sweep(&mut self, now_ms: u64) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep < SWEEP_EVERY {
            return;
        }
        self.writes_since_sweep = 0;
        self.keys.retain(|_, k| k.expires_at_ms > now_ms);
        self.families.retain(|_, f| f.record.expires_at_ms > now_ms);
        self.principal_revocations
            .retain(|_, (_, until)| *until > now_ms);
        self.attempts.retain(|_, a| {
            a.expire(now_ms);
            !a.is_empty()
        });
    }

    /// Whether `revoke_principal` ended the families of `family`'s
    /// principal issued at or before its time, with its marker still in
    /// force at `now_ms`.
    fn principal_revoked(&self, family: &FamilyRef, issued_at_ms: u64, now_ms: u64) -> bool {
        self.principal_revocations
            .get(&(family.domain_id.clone(), family.principal_id.clone()))
            .is_some_and(|&(before, until)| until > now_ms && issued_at_ms <= before)
    }

    /// The rotation rules documented on [`Rotation`], in their order and by
    /// their numbers. Only decides; `rotate` applies the outcome.
    fn judge(&self, req: &RotateRequest) -> Rotation {
        let now = req.now_ms;
        // Rotation rule 1, unknown family: none has this id, or it is another
        // domain's or principal's.
        let Some(family) = self
            .families
            .get(&req.family.family_id)
            .filter(|f| f.record.family == req.family)
        else {
            return Rotation::Invalid;
        };
        // Rotation rule 2, revoked: a revoked family never refreshes again.
        if family.revoked {
            return Rotation::Invalid;
        }
        // Rotation rule 3, past the family's end: no descendant outlives it.
        if family.record.expires_at_ms <= now {
            return Rotation::Invalid;
        }
        // Rotation rule 4, principal revoked: families issued at or before the
        // revocation are over.
        if self.principal_revoked(&req.family, family.record.issued_at_ms, now) {
            return Rotation::Invalid;
        }
        // Rotation rule 5, unknown key: never recorded, another family's, or expired.
        let Some(key) = self
            .keys
            .get(&req.presented)
            .filter(|k| k.family_id == req.family.family_id && k.expires_at_ms > now)
        else {
            return Rotation::Invalid;
        };
        // Rotation rule 6, password changed: ends the family whatever the key's
        // state, so a duplicate inside the grace window gets no answer
        // minted before the change.
        if family.record.password_fingerprint != req.password_fingerprint {
            return Rotation::PasswordChanged;
        }
        // Rotation rule 7, re-sent, never matches here: nothing re-sends a call to
        // this store.
        match &key.state {
            // Rotation rule 8, in grace: the winner's answer, nothing revoked.
            KeyState::Spent {
                answer,
                grace_until_ms,
            } if now < *grace_until_ms && !answer.is_empty() => Rotation::Duplicate(answer.clone()),
            // Rotation rule 9, reused: a spent key presented again ends the family.
            KeyState::Spent { .. } => Rotation::ReuseDetected,
            // Rotation rule 10, live: this call wins.
            KeyState::Live => Rotation::Rotated,
        }
    }
}

/// Refresh state in this process's memory. Atomicity comes from one mutex;
/// no await happens while it is held.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// All state; every call holds the lock for its whole decision.
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, locked.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change
        // (every change is a few map operations), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl RefreshStore for MemoryStore {
    async fn start_family(
        &self,
        family: &FamilyRecord,
        first_key: &KeyId,
        key_expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.maybe_sweep(family.issued_at_ms);
        state.families.insert(
            family.family.family_id.clone(),
            Family {
                record: family.clone(),
                revoked: false,
            },
        );
        state.keys.insert(
            first_key.clone(),
            KeyEntry {
                family_id: family.family.family_id.clone(),
                state: KeyState::Live,
                expires_at_ms: key_expires_at_ms,
            },
        );
        Ok(())
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError> {
        let mut state = self.lock();
        state.maybe_sweep(req.now_ms);
        let outcome = state.judge(req);
        match outcome {
            // Rotation rule 10: spend the presented key (keeping the answer for its
            // grace window) and record the successor.
            Rotation::Rotated => {
                if let Some(k) = state.keys.get_mut(&req.presented) {
                    k.state = KeyState::Spent {
                        answer: req.answer.clone(),
                        grace_until_ms: req.now_ms + req.grace_ms,
                    };
                }
                state.keys.insert(
                    req.successor.clone(),
                    KeyEntry {
                        family_id: req.family.family_id.clone(),
                        state: KeyState::Live,
                        expires_at_ms: req.successor_expires_at_ms,
                    },
                );
            }
            // Rotation rules 6 and 9 end the family.
            Rotation::PasswordChanged | Rotation::ReuseDetected => {
                if let Some(f) = state.families.get_mut(&req.family.family_id) {
                    f.revoked = true;
                }
            }
            // Rotation rules 1–5 and 8 change nothing.
            Rotation::Duplicate(_) | Rotation::Invalid => {}
        }
        Ok(outcome)
    }

    async fn revoke_family(&self, family: &FamilyRef) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(f) = state
            .families
            .get_mut(&family.family_id)
            .filter(|f| f.record.family == *family)
        {
            f.revoked = true;
        }
        Ok(())
    }

    async fn revoke_principal(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.principal_revocations.insert(
            (domain_id.to_owned(), principal_id.to_owned()),
            (now_ms, now_ms + ttl_ms),
        );
        Ok(())
    }

    async fn acquire_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        now_ms: u64,
    ) -> Result<LoginAttempt, StoreError> {
        let mut state = self.lock();
        state.maybe_sweep(now_ms);
        let attempts = state.attempts.entry(counter.id.clone()).or_default();
        attempts.expire(now_ms);
        if attempts.failures >= counter.limit {
            return Ok(LoginAttempt::Locked {
                retry_after_ms: attempts.window_end_ms.saturating_sub(now_ms),
            });
        }
        let in_flight = u32::try_from(attempts.in_flight.len()).unwrap_or(u32::MAX);
        if attempts.failures.saturating_add(in_flight) >= counter.limit {
            return Ok(LoginAttempt::Busy);
        }
        attempts
            .in_flight
            .insert(lease.id.clone(), lease.expires_at_ms);
        Ok(LoginAttempt::Allowed)
    }

    async fn release_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        outcome: CheckOutcome,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let attempts = state.attempts.entry(counter.id.clone()).or_default();
        attempts.in_flight.remove(&lease.id);
        attempts.expire(now_ms);
        if let CheckOutcome::Failed { window_ms } = outcome {
            if attempts.failures == 0 {
                attempts.window_end_ms = now_ms.saturating_add(window_ms);
            }
            attempts.failures += 1;
        }
        if attempts.is_empty() {
            state.attempts.remove(&counter.id);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "in-memory (single instance only; state is lost on restart)".to_owned()
    }
}
