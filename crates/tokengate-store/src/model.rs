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

/// The outcome of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This call won: the successor is recorded.
    Rotated,
    /// The key was spent moments ago (inside the grace window): here is the
    /// winner's encrypted answer. Nothing is revoked.
    Duplicate(Vec<u8>),
    /// The key was spent before, outside the grace window: the whole family
    /// is now revoked.
    ReuseDetected,
    /// The password changed since the family began: the family is now revoked.
    PasswordChanged,
    /// The family is unknown, revoked, expired, or its key was never issued.
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
