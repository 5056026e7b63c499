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
    /// How the login came in, for the principal's list of sessions.
    pub origin: SessionOrigin,
}

/// How a session's login came in, as its principal's list of sessions
/// shows it. Both fields are bounded (see [`SessionOrigin::new`]), so a
/// family record stays a bounded number of bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOrigin {
    /// `grpc`, `grpc-web` or `rest` (empty when unknown).
    pub protocol: String,
    /// The client's address as the server saw it (empty when unknown).
    pub client_address: String,
}

impl SessionOrigin {
    /// Longest value kept of either field, in bytes: an IPv6 address with
    /// a zone fits; anything longer is cut (at a character boundary).
    pub const MAX_FIELD_BYTES: usize = 64;

    /// An origin from the protocol's name and the client's address, each
    /// cut to [`SessionOrigin::MAX_FIELD_BYTES`].
    pub fn new(protocol: &str, client_address: &str) -> Self {
        Self {
            protocol: bounded(protocol),
            client_address: bounded(client_address),
        }
    }
}

/// `value` cut to [`SessionOrigin::MAX_FIELD_BYTES`] at a char boundary.
fn bounded(value: &str) -> String {
    let mut end = value.len().min(SessionOrigin::MAX_FIELD_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// A live session (refresh family) of a principal, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The family id (the `fam` claim of its refresh tokens, `sid` of its
    /// access tokens).
    pub family_id: String,
    /// The login, unix ms.
    pub issued_at_ms: u64,
    /// The last refresh, unix ms (the login's time before the first).
    pub refreshed_at_ms: u64,
    /// The current generation: refreshes so far.
    pub generation: u64,
    /// When its newest refresh token expires, unix ms: unless refreshed by
    /// then, the session ends there.
    pub token_expires_at_ms: u64,
    /// The family's absolute end, unix ms.
    pub expires_at_ms: u64,
    /// How the login came in.
    pub origin: SessionOrigin,
}

/// Which of a principal's live sessions [`crate::RefreshStore::end_sessions`]
/// ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSelector {
    /// This one.
    One(String),
    /// Every one but this (the caller's own).
    AllBut(String),
    /// Every one.
    All,
}

/// One refresh: spend `presented`, record `successor`.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// Which family.
    pub family: FamilyRef,
    /// The key being spent.
    pub presented: KeyId,
    /// The presented token's generation (its `gen` claim): 0 for the token
    /// issued with the family, one more for each refresh since. The
    /// successor is of the next generation.
    pub presented_generation: u64,
    /// When the presented token expires (its signed `exp`), unix
    /// milliseconds: an expired token refreshes nothing (rule 5), and the
    /// grace answer is kept no longer.
    pub presented_expires_at_ms: u64,
    /// The successor key.
    pub successor: KeyId,
    /// When the successor expires, unix milliseconds: the family's record
    /// is kept until then (never past the family's end).
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
/// A store keeps one record per live family, not one per token: the
/// family's current *generation* `G` (how many times it has been
/// refreshed), the store id of the current one-time key (generation `G`)
/// and of the one it replaced (generation `G − 1`), the expiry of its
/// newest token, and the winner's answer of the last refresh for its grace
/// window. A presented token carries its generation `g` (the `gen` claim),
/// so the record alone tells a live token (`g = G`), a spent one (`g < G`)
/// and one the record has never seen (`g > G`, or a key the record does
/// not hold for its generation).
///
/// [`crate::RefreshStore::rotate`] applies these rules in this order; the
/// first that matches decides, and nothing after it is looked at.
/// [`crate::RefreshStore::adopt`] applies rule 0 first, in the same atomic
/// step, then the same rules. "Now" is
/// always the caller's [`RotateRequest::now_ms`], never a server's clock,
/// so every store decides alike. [`crate::MemoryStore`] is the plain
/// reference implementation (its code follows these numbers);
/// `redis/scripts/rotate.lua` does the same in one atomic script.
///
/// | rule | name | when | outcome | the family |
/// | --- | --- | --- | --- | --- |
/// | 0 | adopted | only in [`adopt`](crate::RefreshStore::adopt): the presented token (one SpaceONE minted before the move) was never adopted (no adoption marker, no record under its family id) | none yet: the family's record is created at generation 0 holding the presented key, the marker is set until the presented token expires, and the rules go on from rule 1 (rule 12 then rotates it) | started |
/// | 1 | unknown family | no record has this family id for this domain and principal (never started, or the record expired with its newest token) | [`Invalid`](Rotation::Invalid) | untouched |
/// | 2 | revoked | the family was revoked (reuse, divergence, password change, `revoke_family`) | [`Invalid`](Rotation::Invalid) | stays revoked |
/// | 3 | lapsed | now ≥ the family's `expires_at_ms`, or ≥ the expiry of its newest token | [`Invalid`](Rotation::Invalid) | untouched |
/// | 4 | principal revoked | `revoke_principal` ran at or after the family's issue, and its marker still holds | [`Invalid`](Rotation::Invalid) | untouched |
/// | 5 | expired token | now ≥ the presented token's expiry | [`Invalid`](Rotation::Invalid) | untouched |
/// | 6 | diverged | `g > G`, or `g = G` with a key other than the current one, or `g = G − 1` with a key other than the one it replaced: a token the record has never seen | [`Diverged`](Rotation::Diverged) | revoked |
/// | 7 | password changed | the request's password fingerprint differs from the one recorded at issue, whatever the generation | [`PasswordChanged`](Rotation::PasswordChanged) | revoked |
/// | 8 | re-sent | `g = G − 1`, and this very request made generation `G` (its successor is the current key), re-sent after its reply was lost | [`Rotated`](Rotation::Rotated) | untouched |
/// | 9 | unconfirmed | `g = G − 1`, and the rotation that made generation `G` is not yet confirmed as replicated (only with `store.replica_acks` ≥ 1), so its client never got its answer | [`Retried`](Rotation::Retried) with that answer | untouched |
/// | 10 | in grace | `g = G − 1`, now < the last winner's `now_ms + grace_ms`, and the winner left an answer | [`Duplicate`](Rotation::Duplicate) with that answer | untouched |
/// | 11 | reused | `g < G` (any other case) | [`ReuseDetected`](Rotation::ReuseDetected) | revoked |
/// | 12 | live | `g = G` with the current key: the successor becomes generation `G + 1`, the presented key is kept as the one it replaced, the request's answer is kept for its grace window (and, with replica acknowledgements, until its replication is confirmed), and the record lives until the successor expires (never past the family's end) | [`Rotated`](Rotation::Rotated) | continues |
///
/// They are how the store carries out SPEC §2's refresh rule 2 ("the
/// refresh key is consumed atomically … already consumed or revoked →
/// reuse detection, unless inside `token.reuse_grace`"), the password part
/// of refresh rule 3, the family's absolute end of refresh rule 4, and
/// SPEC §3's "a token the store has never seen for a live family (a write
/// lost in a Redis failover) ends that family, fail closed".
///
/// Why each rule stands where it does:
///
/// - Rule 0: a refresh token minted by SpaceONE before the move belongs to
///   no family. Its family id is derived from the token itself, so every
///   copy of the token names the same family, and the record and marker
///   are written in the same atomic step that spends the key: of two
///   concurrent first refreshes exactly one wins (rule 12), the other is a
///   duplicate or a reuse (rules 10, 11). The marker lives as long as the
///   SpaceONE token, however soon the family ends: a replay after the
///   record is gone meets rule 1, never a second family.
/// - Rules 1–5 refuse without changing anything: a token of no live family
///   proves nothing about the family's holder, and an expired token is
///   refused by its own `exp` before anything is judged.
/// - Rule 6: tokens are signed, so a token the record has never seen was
///   handed out by this service and its store then lost the write (a
///   failover to a replica that had not caught up). The record cannot be
///   trusted to tell the legitimate chain from a replayed one, so the
///   family ends. A replayed token that the lost write had spent and the
///   record still takes for live wins once (rule 12): the legitimate
///   holder's newer token then meets rule 6, so no second chain lives on
///   undetected. It comes before rule 7 so that a divergence is always
///   counted as one.
/// - Rule 7 comes before the key's state, so a duplicate inside the grace
///   window gets no answer minted before the password changed.
/// - Rule 8 only ever matches on Redis: its cluster client re-sends a
///   command whose connection dropped before the reply came, and without
///   this rule a rotation that won would revoke its own family. Callers
///   draw a fresh random successor for every refresh, so no other request
///   carries that id. Nothing re-sends a call to the memory store.
/// - Rule 9 only ever matches on Redis with `store.replica_acks` ≥ 1: a
///   rotation whose write the replicas did not acknowledge in time is
///   answered UNAVAILABLE, and the client keeps its token and retries
///   (SPEC §3). The retry is not a reuse: it gets the answer the rotation
///   minted once the write is confirmed. The answer stays until the store
///   confirms it or the presented token expires; a copy of the spent token
///   presented meanwhile gets the same pair, never a second chain (the two
///   holders meet at the next refresh, rule 11). The memory store has no
///   replicas, so it never leaves a rotation unconfirmed.
/// - Rule 10 lets tabs of one browser that refresh together all keep the
///   session (SPEC §2, refresh rule 2). Only the last refresh keeps an
///   answer: a token two or more generations behind is reuse, grace or
///   not. Rule 11 is reuse detection: a spent token presented again means
///   it leaked, so the whole family ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This call won (rule 12, or rule 8 for its own re-sent call): the
    /// successor is recorded.
    Rotated,
    /// The key was spent by a rotation whose replication is now confirmed
    /// but whose client never got the answer (rule 9): here is that
    /// rotation's encrypted answer. Nothing is revoked.
    Retried(Vec<u8>),
    /// The key was spent moments ago, inside the grace window (rule 10):
    /// here is the winner's encrypted answer. Nothing is revoked.
    Duplicate(Vec<u8>),
    /// The key was spent before, outside the grace window (rule 11): the
    /// whole family is now revoked.
    ReuseDetected,
    /// The token's generation or key is one the family's record has never
    /// seen (rule 6): a write was lost, so the whole family is now revoked.
    Diverged,
    /// The password changed since the family began (rule 7): the family is
    /// now revoked.
    PasswordChanged,
    /// The family is unknown, revoked or lapsed, its principal was revoked,
    /// or the token has expired (rules 1–5). Nothing changed.
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
