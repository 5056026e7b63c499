//! Whether the in-memory directory can be trusted right now.
//!
//! Every directory is served from an in-memory snapshot
//! ([`Directory`](crate::Directory)): the password check, the dummy hash of
//! unknown users and the order of SPEC §2's rules run on it, whatever the
//! source. A file's snapshot is always current (a reload that fails keeps
//! the previous file, which is still what the operator wrote). A snapshot
//! kept current by a change feed (PostgreSQL's LISTEN/NOTIFY) is current
//! only while the feed is live: [`Freshness`] is how the core asks.

/// Why the directory cannot answer now (a secret-free text for logs and
/// `/readyz`; clients see only UNAVAILABLE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directory unavailable: {0}")]
pub struct DirectoryUnavailable(pub String);

/// Whether the snapshot is current enough for a login or a refresh.
pub trait Freshness: Send + Sync + std::fmt::Debug {
    /// Logins need a current snapshot: a user disabled or a password
    /// changed a moment ago must not log in with the old one.
    fn check_login(&self) -> Result<(), DirectoryUnavailable>;
    /// Refreshes may be allowed on a slightly stale snapshot (the source
    /// decides how stale; see its docs).
    fn check_refresh(&self) -> Result<(), DirectoryUnavailable>;
}
