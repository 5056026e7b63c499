//! Failed-login limits (SPEC §3): per (domain, user) and per client IP.
//!
//! The rules, as the store enforces them for each counter:
//!
//! 1. Only a failed password check counts. A right password, or an attempt
//!    refused before its check (locked, pool full, cancelled), counts nothing.
//! 2. With limit L and F failures in the window, at most L − F password
//!    checks may be in flight at once, so parallel guesses cannot slip past
//!    the limit. An attempt that finds every slot taken *waits* for one
//!    (bounded by the call's deadline) instead of failing: 64 parallel right
//!    passwords all succeed.
//! 3. F ≥ L refuses the attempt with `ERROR_LOGIN_LOCKED` and the true time
//!    left in the window, which starts with the first failure.
//!
//! A check holds its slots under a lease, so a process that dies mid-check
//! frees them by itself when the lease runs out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokengate_store::{AttemptCounter, CheckLease, CheckOutcome, LoginAttempt, RefreshStore};

use crate::{TokenError, secrets};

/// Failed logins allowed per window (SPEC §3); 0 disables a counter.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Per (domain, user).
    pub per_user: u32,
    /// Per client IP.
    pub per_ip: u32,
    /// The window, seconds.
    pub window_secs: u64,
    /// How long a password check may hold its slots, seconds: the longest
    /// call the server allows, after which a check abandoned by a dead
    /// process frees them. Also bounds how long an attempt waits for a slot.
    pub check_lease_secs: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_user: 10,
            per_ip: 100,
            window_secs: 300,
            check_lease_secs: 60,
        }
    }
}

/// Which limit a counter enforces (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    User,
    Ip,
}

impl Scope {
    fn label(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Ip => "ip",
        }
    }
}

/// The first wait for a free slot; doubled up to [`MAX_POLL`]. Short next
/// to the quickest password check, so a slot freed by one is taken soon.
const FIRST_POLL: Duration = Duration::from_millis(2);
/// The longest wait between two tries: a fraction of the slowest password
/// check, so waiting attempts notice a free slot in time without polling
/// the store in a tight loop.
const MAX_POLL: Duration = Duration::from_millis(50);

impl LoginLimits {
    /// The counters a login attempt is charged to. Ids are digests, so
    /// neither user ids nor addresses appear in store keys.
    fn counters(
        &self,
        domain_id: &str,
        user_id: &str,
        client_ip: Option<IpAddr>,
    ) -> Vec<(Scope, AttemptCounter)> {
        let mut counters = Vec::with_capacity(2);
        if self.per_user > 0 {
            let counter = AttemptCounter {
                id: secrets::digest_id(&["user", domain_id, user_id]),
                limit: self.per_user,
            };
            counters.push((Scope::User, counter));
        }
        if let (Some(ip), true) = (client_ip, self.per_ip > 0) {
            let counter = AttemptCounter {
                id: secrets::digest_id(&["ip", &ip.to_string()]),
                limit: self.per_ip,
            };
            counters.push((Scope::Ip, counter));
        }
        counters
    }

    /// Takes a slot of every counter of this attempt for one password
    /// check, waiting while they are all in flight (rule 2); refuses a
    /// locked attempt (rule 3).
    pub(crate) async fn take_slots(
        &self,
        store: &Arc<dyn RefreshStore>,
        domain_id: &str,
        user_id: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<CheckSlots, TokenError> {
        let lease_ms = self.check_lease_secs.max(1) * 1000;
        let started = crate::service::now_ms();
        let mut slots = CheckSlots {
            store: Arc::clone(store),
            counters: self.counters(domain_id, user_id, client_ip),
            taken: 0,
            lease: CheckLease {
                id: secrets::new_id(),
                expires_at_ms: started + lease_ms,
            },
            window_ms: self.window_secs * 1000,
        };
        let mut poll = FIRST_POLL;
        let mut waited = false;
        loop {
            match slots.try_take_all().await? {
                None => return Ok(slots),
                Some((scope, LoginAttempt::Locked { retry_after_ms })) => {
                    tracing::warn!(
                        audit = "lockout",
                        scope = scope.label(),
                        "login refused: too many failed attempts"
                    );
                    metrics::counter!("tokengate_login_lockouts_total", "scope" => scope.label())
                        .increment(1);
                    return Err(TokenError::LoginLocked {
                        retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
                    });
                }
                Some((scope, _busy)) => {
                    if !waited {
                        waited = true;
                        metrics::counter!("tokengate_login_slot_waits_total", "scope" => scope.label())
                            .increment(1);
                    }
                    // A backstop only: the call's deadline (at most the
                    // lease) ends the wait first.
                    if crate::service::now_ms() >= started + lease_ms {
                        return Err(TokenError::Busy);
                    }
                    tokio::time::sleep(jittered(poll)).await;
                    poll = (poll * 2).min(MAX_POLL);
                }
            }
        }
    }
}

/// `base` plus up to half of it again, so waiting attempts spread out.
fn jittered(base: Duration) -> Duration {
    let extra = rand::random_range(0..=base.as_micros() as u64 / 2);
    base + Duration::from_micros(extra)
}

/// The slots one password check holds. Release them with
/// [`CheckSlots::release`]; dropped unreleased (the call was cancelled), they
/// are freed in the background and count nothing.
pub(crate) struct CheckSlots {
    store: Arc<dyn RefreshStore>,
    counters: Vec<(Scope, AttemptCounter)>,
    /// How many of `counters` (a prefix) hold a slot.
    taken: usize,
    lease: CheckLease,
    window_ms: u64,
}

impl CheckSlots {
    /// Takes every counter's slot in order. `None`: all taken. Otherwise
    /// the refusing counter's answer, with the slots taken so far given
    /// back, so an attempt never holds one slot while waiting for another.
    async fn try_take_all(&mut self) -> Result<Option<(Scope, LoginAttempt)>, TokenError> {
        while self.taken < self.counters.len() {
            let (scope, counter) = &self.counters[self.taken];
            let answer = self
                .store
                .acquire_attempt(counter, &self.lease, crate::service::now_ms())
                .await;
            match answer {
                Ok(LoginAttempt::Allowed) => self.taken += 1,
                Ok(refused) => {
                    let scope = *scope;
                    self.give_back(CheckOutcome::NotFailed).await;
                    return Ok(Some((scope, refused)));
                }
                Err(e) => {
                    self.give_back(CheckOutcome::NotFailed).await;
                    return Err(crate::service::store_error(e));
                }
            }
        }
        Ok(None)
    }

    /// Frees the slots after the check; a failed check is counted.
    pub(crate) async fn release(mut self, outcome: CheckOutcome) {
        self.give_back(outcome).await;
    }

    async fn give_back(&mut self, outcome: CheckOutcome) {
        let taken = std::mem::take(&mut self.taken);
        for (_, counter) in &self.counters[..taken] {
            if let Err(e) = self
                .store
                .release_attempt(counter, &self.lease, outcome, crate::service::now_ms())
                .await
            {
                // The lease frees the slot in time. A failure that cannot be
                // counted is lost, but so is the store: attempts fail closed
                // at `take_slots` until it answers again.
                tracing::warn!(error = %e, "cannot release a login check slot");
            }
        }
    }

    /// The failure to count for a wrong password.
    pub(crate) fn failed(&self) -> CheckOutcome {
        CheckOutcome::Failed {
            window_ms: self.window_ms,
        }
    }
}

impl Drop for CheckSlots {
    fn drop(&mut self) {
        if self.taken == 0 {
            return;
        }
        // Cancelled mid-check (the deadline passed): nothing was learned,
        // nothing is counted; free the slots now rather than at lease end.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut orphan = CheckSlots {
            store: Arc::clone(&self.store),
            counters: std::mem::take(&mut self.counters),
            taken: std::mem::take(&mut self.taken),
            lease: self.lease.clone(),
            window_ms: self.window_ms,
        };
        runtime.spawn(async move { orphan.give_back(CheckOutcome::NotFailed).await });
    }
}
