//! The in-memory store: one process only (a dev instance or tests).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    RefreshStore, RotateRequest, Rotation, StoreError,
};

#[derive(Debug)]
struct Family {
    record: FamilyRecord,
    revoked: bool,
}

#[derive(Debug)]
enum KeyState {
    Live,
    Spent {
        answer: Vec<u8>,
        grace_until_ms: u64,
    },
}

#[derive(Debug)]
struct KeyEntry {
    family_id: String,
    state: KeyState,
    expires_at_ms: u64,
}

/// One failed-login counter: the window's failures and the checks in flight.
#[derive(Debug, Default)]
struct Attempts {
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

    fn is_empty(&self) -> bool {
        self.failures == 0 && self.in_flight.is_empty()
    }
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<String, Family>,
    keys: HashMap<KeyId, KeyEntry>,
    /// (domain, principal) → revoked-before (ms) and when the marker expires.
    principal_revocations: HashMap<(String, String), (u64, u64)>,
    /// Failed-login counters by id.
    attempts: HashMap<String, Attempts>,
    writes_since_sweep: u32,
}

impl State {
    /// Drops expired records now and then so memory stays bounded.
    fn maybe_sweep(&mut self, now_ms: u64) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep < 4096 {
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

    fn family_alive(&self, family: &FamilyRef, now_ms: u64) -> Option<&Family> {
        let f = self.families.get(&family.family_id)?;
        let revoked_before = self
            .principal_revocations
            .get(&(family.domain_id.clone(), family.principal_id.clone()))
            .filter(|(_, until)| *until > now_ms)
            .map(|(before, _)| *before);
        let alive = !f.revoked
            && f.record.expires_at_ms > now_ms
            && f.record.family == *family
            && revoked_before.is_none_or(|before| f.record.issued_at_ms > before);
        alive.then_some(f)
    }
}

/// Refresh state in this process's memory. Atomicity comes from one mutex;
/// no await happens while it is held.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

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
        let Some(family) = state.family_alive(&req.family, req.now_ms) else {
            return Ok(Rotation::Invalid);
        };
        let password_changed = family.record.password_fingerprint != req.password_fingerprint;
        let key = state
            .keys
            .get(&req.presented)
            .filter(|k| k.family_id == req.family.family_id && k.expires_at_ms > req.now_ms);
        let outcome = match key.map(|k| &k.state) {
            None => return Ok(Rotation::Invalid),
            // A password change ends the family whatever the key's state: a
            // duplicate inside the grace window gets no pre-change answer.
            Some(_) if password_changed => Rotation::PasswordChanged,
            Some(KeyState::Spent {
                answer,
                grace_until_ms,
                ..
            }) => {
                if req.now_ms < *grace_until_ms && !answer.is_empty() {
                    return Ok(Rotation::Duplicate(answer.clone()));
                }
                Rotation::ReuseDetected
            }
            Some(KeyState::Live) => Rotation::Rotated,
        };
        match outcome {
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
            _ => {
                if let Some(f) = state.families.get_mut(&req.family.family_id) {
                    f.revoked = true;
                }
            }
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
