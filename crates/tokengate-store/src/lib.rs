//! Refresh-token state behind one trait: families, one-time refresh keys,
//! reuse detection with a grace window, detection of lost writes,
//! revocation, and failed-login counters. Two implementations: [`MemoryStore`] (one process) and
//! [`RedisStore`] (standalone Redis or Redis Cluster), which behave the
//! same: `tests/behaviour.rs` runs one suite against both.
//!
//! A store keeps one record per live family, however often it is
//! refreshed: its current generation and key, the key it replaced, and the
//! last winner's answer for the grace window. The record lives as long as
//! the family's newest token (never past the family's end), so memory
//! grows with live families, not with refresh traffic, and an abandoned
//! session costs nothing once its last token has expired.
//!
//! Implementations must make [`RefreshStore::rotate`] atomic: among any
//! number of concurrent rotations of one key, exactly one sees
//! [`Rotation::Rotated`]. What a rotation decides is the numbered table of
//! rotation rules on [`Rotation`]; [`MemoryStore`] is its plain reference
//! implementation.

#![warn(missing_docs)]

mod instrumented;
mod memory;
mod model;
mod redis;

pub use instrumented::InstrumentedStore;
pub use memory::MemoryStore;
// `self::` because the module shares its name with the `redis` crate.
pub use self::redis::{
    RedisConfigError, RedisEndpoint, RedisStore, RedisStoreConfig, SentinelAuth,
};
pub use model::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    RotateRequest, Rotation, SessionInfo, SessionOrigin, SessionSelector,
};

/// The most sessions [`RefreshStore::list_sessions`] answers: a principal
/// with more live sessions sees the oldest ones (a list a person reads, not
/// an export).
pub const MAX_LISTED_SESSIONS: usize = 256;

/// A store failure. Callers fail closed: the request is answered
/// UNAVAILABLE and no token is handed out.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer within the configured timeout.
    #[error("store call timed out")]
    Timeout,
    /// The write was made on the primary, but fewer replicas than required
    /// acknowledged it in time (`store.replica_acks`): a failover now could
    /// lose it, so its answer is withheld. A retry with the same token gets
    /// that write's answer once it is confirmed (rotation rule 9).
    #[error("store write acknowledged by {acknowledged} of {wanted} replicas in time")]
    NotReplicated {
        /// Replicas that acknowledged the write.
        acknowledged: u32,
        /// Replicas required (`store.replica_acks`).
        wanted: u32,
    },
}

/// Where refresh-token state lives.
#[async_trait::async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Records a new family: its record at generation 0, holding its first
    /// refresh key, kept until that key's token expires (`key_expires_at_ms`)
    /// or the family ends, whichever is first.
    async fn start_family(
        &self,
        family: &FamilyRecord,
        first_key: &KeyId,
        key_expires_at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Atomically judges `request.presented` by the rotation rules on
    /// [`Rotation`] and, if it is the family's live token, advances the
    /// family to its successor.
    async fn rotate(&self, request: &RotateRequest) -> Result<Rotation, StoreError>;

    /// Rotation rule 0, then [`RefreshStore::rotate`], as one atomic step:
    /// `request.presented` is a refresh token minted by SpaceONE before the
    /// move, which belongs to no family yet. The first call for it starts
    /// `family` (whose id the caller derives from that token, so every
    /// copy names the same one) at generation 0 holding the presented key,
    /// and marks the token adopted until it expires
    /// (`request.presented_expires_at_ms`); then every call is judged by
    /// the rotation rules, so a second use is a duplicate or reuse. A
    /// `family` that is not `request.family` is [`Rotation::Invalid`].
    async fn adopt(
        &self,
        family: &FamilyRecord,
        request: &RotateRequest,
    ) -> Result<Rotation, StoreError>;

    /// Ends one family: its keys stop refreshing.
    async fn revoke_family(&self, family: &FamilyRef) -> Result<(), StoreError>;

    /// Ends every family of a principal issued at or before `now_ms`. The
    /// marker that does so lasts until the last of those families' records
    /// ends (none of them can refresh again), and at most `ttl_ms`; a
    /// principal without a family record needs none.
    async fn revoke_principal(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<(), StoreError>;

    /// The principal's live sessions at `now_ms` (not revoked, not lapsed,
    /// not ended by `revoke_principal`), oldest login first, at most
    /// [`MAX_LISTED_SESSIONS`].
    async fn list_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
    ) -> Result<Vec<SessionInfo>, StoreError>;

    /// One family as [`RefreshStore::list_sessions`] would show it, `None`
    /// unless it is live at `now_ms` (introspection asks this).
    async fn session(
        &self,
        family: &FamilyRef,
        now_ms: u64,
    ) -> Result<Option<SessionInfo>, StoreError>;

    /// Ends the principal's live sessions that `which` selects, each as
    /// [`RefreshStore::revoke_family`] does; answers the ids of those it
    /// ended (a session already over is not counted). A store may end a
    /// very large selection in parts (Redis reads at most a thousand index
    /// entries a call): callers repeat until a call ends nothing.
    async fn end_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        which: &SessionSelector,
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError>;

    /// Takes a slot of `counter` for a password check, atomically: refused
    /// with [`LoginAttempt::Locked`] when the window's failures reached the
    /// limit, [`LoginAttempt::Busy`] when the checks in flight hold every
    /// slot left (leases past `now_ms` no longer count).
    async fn acquire_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        now_ms: u64,
    ) -> Result<LoginAttempt, StoreError>;

    /// Frees the slot `lease` holds (harmless if it expired or was never
    /// taken) and, for a failed check, counts the failure.
    async fn release_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        outcome: CheckOutcome,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Checks the backend answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether [`RefreshStore::rotate`] keeps the winner's sealed answer
    /// even without a grace window, so callers must always pass
    /// [`RotateRequest::answer`]: a store that confirms replication keeps
    /// it until the write is confirmed, for the client's retry after an
    /// unconfirmed rotation (rotation rule 9).
    fn keeps_answers(&self) -> bool {
        false
    }

    /// A short description for start-up logs (never credentials).
    fn describe(&self) -> String;
}
