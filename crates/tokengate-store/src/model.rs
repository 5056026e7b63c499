//! The records the store keeps.

/// The store's name for a one-time refresh key: a SHA-256 of the secret
/// `key` claim, so the store never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(pub String);

/// Which family, and whose (principal ids scope revocation and, on Redis,
/// the hash tag that keeps a family's keys on one slot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRef {
    /// The family id (`fam` claim).
    pub family_id: String,
    /// The domain.
    pub domain_id: String,
    /// The user or owner id.
    pub principal_id: String,
}

/// What is recorded when a family starts (at issue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    /// Which family.
    pub family: FamilyRef,
    /// Issue time, unix milliseconds.
    pub issued_at_ms: u64,
    /// The family's absolute end, unix milliseconds.
    pub expires_at_ms: u64,
    /// Fingerprint of the password hash at issue; a refresh after the
    /// password changed revokes the family.
    pub password_fingerprint: [u8; 16],
}

/// One refresh: spend `presented`, record `successor`.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// Which family.
    pub family: FamilyRef,
    /// The key being spent.
    pub presented: KeyId,
    /// When the presented token expires (bounds how long its spent record
    /// is kept for reuse detection), unix milliseconds.
    pub presented_expires_at_ms: u64,
    /// The successor key.
    pub successor: KeyId,
    /// When the successor expires, unix milliseconds.
    pub successor_expires_at_ms: u64,
    /// The principal's current password fingerprint.
    pub password_fingerprint: [u8; 16],
    /// Now, unix milliseconds.
    pub now_ms: u64,
    /// How long a duplicate of this refresh still gets `answer`, ms (0: never).
    pub grace_ms: u64,
    /// The winner's answer, encrypted, kept for `grace_ms` (empty if no grace).
    pub answer: Vec<u8>,
}

/// The outcome of a rotation, decided by the rotation rules below.
///
/// # The rotation rules
///
/// [`crate::RefreshStore::rotate`] applies these rules in this order; the
/// first that matches decides, and nothing after it is looked at. "Now" is
/// always the caller's [`RotateRequest::now_ms`], never a server's clock,
/// so every store decides alike. [`crate::MemoryStore`] is the plain
/// reference implementation (its code follows these numbers);
/// `redis/scripts/rotate.lua` does the same in one atomic script.
///
/// | rule | name | when | outcome | the family |
/// | --- | --- | --- | --- | --- |
/// | 1 | unknown family | no family has this id, or it belongs to another domain or principal | [`Invalid`](Rotation::Invalid) | untouched |
/// | 2 | revoked | the family was revoked (reuse, password change, `revoke_family`) | [`Invalid`](Rotation::Invalid) | stays revoked |
/// | 3 | past the family's end | now ≥ the family's `expires_at_ms` | [`Invalid`](Rotation::Invalid) | untouched |
/// | 4 | principal revoked | `revoke_principal` ran at or after the family's issue, and its marker still holds | [`Invalid`](Rotation::Invalid) | untouched |
/// | 5 | unknown key | the presented key was never recorded, belongs to another family, or its token has expired (now ≥ its expiry) | [`Invalid`](Rotation::Invalid) | untouched |
/// | 6 | password changed | the request's password fingerprint differs from the one recorded at issue, whatever the key's state | [`PasswordChanged`](Rotation::PasswordChanged) | revoked |
/// | 7 | re-sent | the key was spent by this very request (same successor id), re-sent after its reply was lost | [`Rotated`](Rotation::Rotated) | untouched |
/// | 8 | in grace | the key is spent, now < the winner's `now_ms + grace_ms`, and the winner left an answer | [`Duplicate`](Rotation::Duplicate) with that answer | untouched |
/// | 9 | reused | the key is spent (any other case) | [`ReuseDetected`](Rotation::ReuseDetected) | revoked |
/// | 10 | live | the key is live: it becomes spent (keeping the request's answer for its grace window) and the successor is recorded as live | [`Rotated`](Rotation::Rotated) | continues |
///
/// They are how the store carries out SPEC §2's refresh rule 2 ("the
/// refresh key is consumed atomically … already consumed or revoked →
/// reuse detection, unless inside `token.reuse_grace`"), the password part
/// of refresh rule 3 and the family's absolute end of refresh rule 4.
///
/// Why each rule stands where it does:
///
/// - Rules 1–5 refuse without changing anything: a token that names no
///   live family or key proves nothing about its holder, so it cannot be
///   allowed to end someone's family.
/// - Rule 6 comes before the key's state, so a duplicate inside the grace
///   window gets no answer minted before the password changed.
/// - Rule 7 only ever matches on Redis: its cluster client re-sends a
///   command whose connection dropped before the reply came, and without
///   this rule a rotation that won would revoke its own family. Callers
///   draw a fresh random successor for every refresh, so no other request
///   carries that id. Nothing re-sends a call to the memory store.
/// - Rule 8 lets tabs of one browser that refresh together all keep the
///   session (SPEC §2, refresh rule 2); rule 9 is reuse detection: a spent
///   key presented again means the token leaked, so the whole family ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This call won (rule 10, or rule 7 for its own re-sent call): the
    /// successor is recorded.
    Rotated,
    /// The key was spent moments ago, inside the grace window (rule 8):
    /// here is the winner's encrypted answer. Nothing is revoked.
    Duplicate(Vec<u8>),
    /// The key was spent before, outside the grace window (rule 9): the
    /// whole family is now revoked.
    ReuseDetected,
    /// The password changed since the family began (rule 6): the family is
    /// now revoked.
    PasswordChanged,
    /// The family is unknown, revoked or past its end, its principal was
    /// revoked, or the key is unknown or expired (rules 1–5). Nothing
    /// changed.
    Invalid,
}

/// One failed-login counter: per (domain, user) or per client IP. The id is
/// opaque to the store (a digest, so user ids and addresses do not appear
/// in key names).
///
/// A counter holds the failed password checks of its window and the checks
/// in flight. With `limit` L and F failures, at most L − F checks may be in
/// flight, so parallel guesses cannot slip past the limit; correct passwords
/// only ever wait for a slot, they are never counted (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptCounter {
    /// Which counter.
    pub id: String,
    /// Failed checks allowed per window.
    pub limit: u32,
}

/// A password check in flight, holding one slot of each of its counters
/// until it is released or its lease runs out (so a process that died
/// mid-check frees its slots by itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckLease {
    /// A random id, unique per check.
    pub id: String,
    /// When the slot frees itself if never released, unix milliseconds.
    pub expires_at_ms: u64,
}

/// The answer to [`crate::RefreshStore::acquire_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// A slot is held for the lease: check the password, then release it.
    Allowed,
    /// Every slot left is held by a check in flight: try again shortly
    /// (nothing was counted or held).
    Busy,
    /// The counter's failures reached the limit; retry after this many
    /// milliseconds (nothing was counted or held).
    Locked {
        /// Time left in the failure window.
        retry_after_ms: u64,
    },
}

/// How a password check that held a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The password was wrong: count a failure. The window (and the
    /// counter's TTL) starts with its first failure.
    Failed {
        /// The failure window, ms.
        window_ms: u64,
    },
    /// Anything else (right password, refused later, cancelled): the slot
    /// is freed and nothing is counted.
    NotFailed,
}
