//! The in-memory store: one process only (a dev instance or tests), and
//! the plain reference implementation of the rotation rules documented on
//! [`Rotation`]: `State::judge` follows them rule by rule.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    MAX_LISTED_SESSIONS, RefreshStore, RotateRequest, Rotation, SessionInfo, SessionSelector,
    StoreError,
};

/// A family: as issued, where its chain of refresh tokens stands, and
/// whether it has ended early. One per family, whatever the number of
/// refreshes: spent tokens leave no record of their own.
#[derive(Debug)]
struct Family {
    /// As recorded at issue.
    record: FamilyRecord,
    /// Ended by reuse, divergence, a password change or `revoke_family`.
    revoked: bool,
    /// The current generation: refreshes so far.
    generation: u64,
    /// The one-time key of the current generation (the live token).
    key: KeyId,
    /// The key of the generation before, spent by the last refresh (none
    /// before the first refresh).
    previous: Option<KeyId>,
    /// The latest expiry of any token of the family, unix ms: the record
    /// is kept until then (never past the family's end).
    newest_expires_at_ms: u64,
    /// The last winner's answer for duplicates of the previous generation.
    grace: Option<Grace>,
    /// The last refresh, unix ms (the issue time before the first).
    refreshed_at_ms: u64,
}

impl Family {
    /// When the record stops mattering, unix ms: its newest token's expiry,
    /// capped at the family's end.
    fn record_end_ms(&self) -> u64 {
        self.newest_expires_at_ms.min(self.record.expires_at_ms)
    }

    /// The family as a listed session.
    fn info(&self) -> SessionInfo {
        SessionInfo {
            family_id: self.record.family.family_id.clone(),
            issued_at_ms: self.record.issued_at_ms,
            refreshed_at_ms: self.refreshed_at_ms,
            generation: self.generation,
            token_expires_at_ms: self.newest_expires_at_ms,
            expires_at_ms: self.record.expires_at_ms,
            origin: self.record.origin.clone(),
        }
    }
}

/// The winner's answer to the last refresh, for duplicates inside the
/// grace window.
#[derive(Debug)]
struct Grace {
    /// The winner's encrypted answer (never empty).
    answer: Vec<u8>,
    /// Until when a duplicate gets `answer`, unix ms (exclusive).
    until_ms: u64,
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
    /// (domain, principal) → the ids of its families with a record: the
    /// session index.
    sessions: HashMap<(String, String), BTreeSet<String>>,
    /// (domain, principal) → revoked-before (ms) and when the marker expires.
    principal_revocations: HashMap<(String, String), (u64, u64)>,
    /// Family id → until when (ms) its adoption marker holds: the
    /// SpaceONE token it adopted was spent (rotation rule 0).
    adopted: HashMap<String, u64>,
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
        self.families.retain(|_, f| f.record_end_ms() > now_ms);
        let families = &self.families;
        self.sessions.retain(|_, ids| {
            ids.retain(|id| families.contains_key(id));
            !ids.is_empty()
        });
        self.principal_revocations
            .retain(|_, (_, until)| *until > now_ms);
        self.adopted.retain(|_, until| *until > now_ms);
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

    /// The family `family` names if it is live at `now_ms`: recorded for
    /// this principal, not revoked, not lapsed, not ended by
    /// `revoke_principal` (rotation rules 1–4).
    fn live(&self, family: &FamilyRef, now_ms: u64) -> Option<&Family> {
        self.families
            .get(&family.family_id)
            .filter(|f| f.record.family == *family)
            .filter(|f| !f.revoked && f.record_end_ms() > now_ms)
            .filter(|f| !self.principal_revoked(family, f.record.issued_at_ms, now_ms))
    }

    /// The live families of a principal, oldest login first (all of them:
    /// callers cut the list where they must).
    fn live_sessions(&self, domain_id: &str, principal_id: &str, now_ms: u64) -> Vec<&Family> {
        let Some(ids) = self
            .sessions
            .get(&(domain_id.to_owned(), principal_id.to_owned()))
        else {
            return Vec::new();
        };
        let mut live: Vec<&Family> = ids
            .iter()
            .filter_map(|id| {
                self.live(
                    &FamilyRef {
                        family_id: id.clone(),
                        domain_id: domain_id.to_owned(),
                        principal_id: principal_id.to_owned(),
                    },
                    now_ms,
                )
            })
            .collect();
        live.sort_by(|a, b| {
            (a.record.issued_at_ms, &a.record.family.family_id)
                .cmp(&(b.record.issued_at_ms, &b.record.family.family_id))
        });
        live
    }

    /// Records a new family at generation 0 holding `first_key`, kept
    /// until that key's token expires (`start_family`, and rotation rule 0).
    fn insert_family(&mut self, family: &FamilyRecord, first_key: &KeyId, key_expires_at_ms: u64) {
        self.families.insert(
            family.family.family_id.clone(),
            Family {
                record: family.clone(),
                revoked: false,
                generation: 0,
                key: first_key.clone(),
                previous: None,
                newest_expires_at_ms: key_expires_at_ms,
                grace: None,
                refreshed_at_ms: family.issued_at_ms,
            },
        );
        let f = &family.family;
        self.sessions
            .entry((f.domain_id.clone(), f.principal_id.clone()))
            .or_default()
            .insert(f.family_id.clone());
    }

    /// Rotation rule 0, adopted: a token never adopted (no marker in force,
    /// no record under the family's id) starts its family at generation 0
    /// holding the presented key, and the marker holds until that token
    /// expires. Anything else is left to rules 1–12.
    fn adopt(&mut self, family: &FamilyRecord, req: &RotateRequest) {
        let id = &family.family.family_id;
        let marked = self
            .adopted
            .get(id)
            .is_some_and(|&until| until > req.now_ms);
        if marked || self.families.contains_key(id) {
            return;
        }
        self.adopted.insert(id.clone(), req.presented_expires_at_ms);
        self.insert_family(family, &req.presented, req.presented_expires_at_ms);
    }

    /// Judges `req` by the rotation rules and applies the outcome.
    fn rotate(&mut self, req: &RotateRequest) -> Rotation {
        let outcome = self.judge(req);
        let Some(family) = self.families.get_mut(&req.family.family_id) else {
            return outcome;
        };
        match outcome {
            // Rotation rule 12: the successor becomes the current generation,
            // the presented key the one it replaced; the answer is kept for
            // its grace window (no longer than the presented token lives).
            Rotation::Rotated => {
                family.generation += 1;
                family.refreshed_at_ms = req.now_ms;
                family.previous = Some(std::mem::replace(&mut family.key, req.successor.clone()));
                family.newest_expires_at_ms =
                    family.newest_expires_at_ms.max(req.successor_expires_at_ms);
                let until_ms = req
                    .now_ms
                    .saturating_add(req.grace_ms)
                    .min(req.presented_expires_at_ms);
                family.grace = (!req.answer.is_empty() && until_ms > req.now_ms).then(|| Grace {
                    answer: req.answer.clone(),
                    until_ms,
                });
            }
            // Rotation rules 6, 7 and 11 end the family.
            Rotation::Diverged | Rotation::PasswordChanged | Rotation::ReuseDetected => {
                family.revoked = true;
                family.grace = None;
            }
            // Rotation rules 1–5, 9 and 10 change nothing (9 never
            // matches here).
            Rotation::Retried(_) | Rotation::Duplicate(_) | Rotation::Invalid => {}
        }
        outcome
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
        // Rotation rule 3, lapsed: no descendant outlives the family's end,
        // and a family whose newest token has expired is over.
        if family.record_end_ms() <= now {
            return Rotation::Invalid;
        }
        // Rotation rule 4, principal revoked: families issued at or before the
        // revocation are over.
        if self.principal_revoked(&req.family, family.record.issued_at_ms, now) {
            return Rotation::Invalid;
        }
        // Rotation rule 5, expired token: refused by its own expiry.
        if req.presented_expires_at_ms <= now {
            return Rotation::Invalid;
        }
        // Rotation rule 6, diverged: a generation the record never reached,
        // or a key it does not hold for the token's generation.
        let (g, current) = (req.presented_generation, family.generation);
        let unseen = g > current
            || (g == current && req.presented != family.key)
            || (g + 1 == current && family.previous.as_ref() != Some(&req.presented));
        if unseen {
            return Rotation::Diverged;
        }
        // Rotation rule 7, password changed: ends the family whatever the
        // generation, so a duplicate inside the grace window gets no answer
        // minted before the change.
        if family.record.password_fingerprint != req.password_fingerprint {
            return Rotation::PasswordChanged;
        }
        if g < current {
            // Rotation rule 8, re-sent, never matches here: nothing re-sends
            // a call to this store. Nor does rule 9, unconfirmed: this store
            // has no replicas, so every rotation is confirmed when made.
            // Rotation rule 10, in grace: the previous generation, inside the
            // last winner's window: its answer, nothing revoked.
            if g + 1 == current
                && let Some(grace) = family.grace.as_ref().filter(|g| now < g.until_ms)
            {
                return Rotation::Duplicate(grace.answer.clone());
            }
            // Rotation rule 11, reused: a spent token presented again ends the
            // family.
            return Rotation::ReuseDetected;
        }
        // Rotation rule 12, live: this call wins.
        Rotation::Rotated
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
        state.insert_family(family, first_key, key_expires_at_ms);
        Ok(())
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<Rotation, StoreError> {
        let mut state = self.lock();
        state.maybe_sweep(req.now_ms);
        Ok(state.rotate(req))
    }

    async fn adopt(
        &self,
        family: &FamilyRecord,
        req: &RotateRequest,
    ) -> Result<Rotation, StoreError> {
        if family.family != req.family {
            return Ok(Rotation::Invalid);
        }
        let mut state = self.lock();
        state.maybe_sweep(req.now_ms);
        // Rotation rule 0, then rules 1–12, under one lock.
        state.adopt(family, req);
        Ok(state.rotate(req))
    }

    async fn revoke_family(&self, family: &FamilyRef) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(f) = state
            .families
            .get_mut(&family.family_id)
            .filter(|f| f.record.family == *family)
        {
            f.revoked = true;
            f.grace = None;
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
        // The marker guards the principal's families that still have a
        // record: it lasts until the last of those records ends (at most
        // `ttl_ms`), and without any there is nothing to mark.
        let last_record_end = state
            .families
            .values()
            .filter(|f| f.record.family.domain_id == domain_id)
            .filter(|f| f.record.family.principal_id == principal_id)
            .map(Family::record_end_ms)
            .max();
        let until = last_record_end.map_or(0, |end| end.min(now_ms.saturating_add(ttl_ms)));
        if until > now_ms {
            state.principal_revocations.insert(
                (domain_id.to_owned(), principal_id.to_owned()),
                (now_ms, until),
            );
        }
        Ok(())
    }

    async fn list_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let state = self.lock();
        Ok(state
            .live_sessions(domain_id, principal_id, now_ms)
            .into_iter()
            .take(MAX_LISTED_SESSIONS)
            .map(Family::info)
            .collect())
    }

    async fn session(
        &self,
        family: &FamilyRef,
        now_ms: u64,
    ) -> Result<Option<SessionInfo>, StoreError> {
        Ok(self.lock().live(family, now_ms).map(Family::info))
    }

    async fn end_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        which: &SessionSelector,
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let mut state = self.lock();
        let ended: Vec<String> = match which {
            SessionSelector::One(id) => {
                let family = FamilyRef {
                    family_id: id.clone(),
                    domain_id: domain_id.to_owned(),
                    principal_id: principal_id.to_owned(),
                };
                state
                    .live(&family, now_ms)
                    .map(|_| vec![id.clone()])
                    .unwrap_or_default()
            }
            SessionSelector::AllBut(_) | SessionSelector::All => state
                .live_sessions(domain_id, principal_id, now_ms)
                .into_iter()
                .map(|f| f.record.family.family_id.clone())
                .filter(|id| !matches!(which, SessionSelector::AllBut(kept) if kept == id))
                .collect(),
        };
        for id in &ended {
            if let Some(f) = state.families.get_mut(id) {
                f.revoked = true;
                f.grace = None;
            }
        }
        Ok(ended)
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
