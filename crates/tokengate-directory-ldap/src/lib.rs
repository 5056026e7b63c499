//! The LDAP directory: users (and owners) live in an LDAP server, which
//! checks their passwords itself — tokengate finds the entry with a
//! service account and a configured filter, then binds as it with the
//! given password. Nothing can be snapshotted, so the core asks per call
//! through [`tokengate_directory::RemotePrincipals`]; the domains (one LDAP
//! subtree each) come from the config and are a snapshot as usual.
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
//!   shared (LDAP multiplexes operations), reopened after an error; each
//!   user bind uses a connection of its own (a bind changes the identity
//!   of its connection);
//! - a refresh searches for the principal again (state, type, password
//!   fingerprint), its answer reused for that principal's refreshes within
//!   `refresh_cache` (1 s by default, the bound the PostgreSQL directory
//!   gives a change; 0 = every refresh searches); logins always bind;
//! - a health check every `health_interval` makes logins and refreshes
//!   answer UNAVAILABLE at once while the server is unreachable, and
//!   `/readyz` fail.
#![warn(missing_docs)]

mod directory;
mod settings;

pub use directory::{LdapDirectory, LdapDirectoryError, LdapFreshness};
pub use settings::{LdapDomain, LdapSettings};

/// Whether a `directory` setting names an LDAP server.
pub fn is_ldap_url(value: &str) -> bool {
    value.starts_with("ldap://") || value.starts_with("ldaps://")
}
