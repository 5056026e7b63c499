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

/// A future of a remote directory's answer.
pub type RemoteAnswer<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Option<crate::Principal>, DirectoryUnavailable>>
            + Send
            + 'a,
    >,
>;

/// A directory whose principals cannot be snapshotted: an LDAP server
/// checks the password itself (the client binds as the user). Its domains
/// are still a [`Directory`](crate::Directory) snapshot (from the config);
/// its users and owners are asked for per call.
pub trait RemotePrincipals: Send + Sync + std::fmt::Debug {
    /// Checks `password` for the principal: `Some` only when it exists and
    /// the password is right. An unknown principal and a wrong password are
    /// both `None` and must cost the same (the implementation's duty).
    fn authenticate<'a>(
        &'a self,
        domain_id: &'a str,
        kind: crate::PrincipalKind,
        id: &'a str,
        password: &'a str,
    ) -> RemoteAnswer<'a>;

    /// The principal as it is now (state, type, password fingerprint), for
    /// a refresh; `None` when it is gone.
    fn lookup<'a>(
        &'a self,
        domain_id: &'a str,
        kind: crate::PrincipalKind,
        id: &'a str,
    ) -> RemoteAnswer<'a>;
}
