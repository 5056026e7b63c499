//! The LDAP directory: users (and owners) live in an LDAP server, which
//! checks their passwords itself — tokengate finds the entry with a
//! service account and a configured filter, then binds as it with the
//! given password. Passwords cannot be read ahead, so the core asks per
//! call through [`tokengate_directory::RemotePrincipals`]; what a refresh
//! needs to know of a principal is read ahead (below); the domains (one
//! LDAP subtree each) come from the config and are a snapshot as usual.
//!
//! - an unknown user costs what a wrong password costs: the same
//!   connection and bind, against a DN that does not exist;
//! - state: `disabled_attribute` (present, or holding one of
//!   `disabled_values`) makes the principal DISABLED; membership of
//!   `api_user_group` (its `member` attribute) makes a user an API_USER;
//! - a password change ends families at their next refresh where the
//!   server exposes it: the fingerprint is a digest of the entry's DN and
//!   the first of `password_changed_attributes` it has (`pwdChangedTime`
//!   with the ppolicy overlay, else `modifyTimestamp`, which changes with
//!   any modification of the entry — then any change ends the families);
//! - every operation is bounded by `timeout`; one service connection is
//!   shared (LDAP multiplexes operations), reopened after an error; user
//!   binds use connections of their own (a bind changes the identity of
//!   its connection), up to `bind_pool_size` of them kept open between
//!   logins;
//! - a refresh reads an in-memory snapshot of the principals' state (DN,
//!   disabled, group, password fingerprint), read whole at start and every
//!   `full_sync_interval` (60 s) and, every `sync_interval` (1 s) between,
//!   by a search for the entries changed since (their `modifyTimestamp`):
//!   a refresh pays no LDAP round trip, and a disable or password change
//!   reaches refreshes within about a second; a principal the snapshot
//!   does not hold is searched for (`sync_interval = 0`: every refresh
//!   searches). Logins always search and bind;
//! - a health check every `health_interval` makes logins and refreshes
//!   answer UNAVAILABLE at once while the server is unreachable, and
//!   `/readyz` fail.
#![warn(missing_docs)]

mod bind_pool;
mod directory;
mod filter;
mod health;
mod settings;
mod snapshot;
mod sync;

pub use directory::{LdapDirectory, LdapDirectoryError};
pub use health::LdapFreshness;
pub use settings::{LdapDomain, LdapSettings};

/// Whether a `directory` setting names an LDAP server.
pub fn is_ldap_url(value: &str) -> bool {
    value.starts_with("ldap://") || value.starts_with("ldaps://")
}
