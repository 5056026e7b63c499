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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptCounter {
    /// Which counter.
    pub id: String,
    /// Attempts allowed per window.
    pub limit: u32,
}

/// The answer to [`crate::RefreshStore::acquire_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Counted; go ahead and check the password.
    Allowed,
    /// The counter is at its limit; retry after this many milliseconds.
    Locked {
        /// Time left in the window.
        retry_after_ms: u64,
    },
}
