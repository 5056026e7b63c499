//! The directory file's TOML schema, exactly as operators write it; the
//! same records are what other sources (database rows) build a
//! [`Directory`](crate::Directory) from.

use serde::Deserialize;

use crate::{Backend, DomainState, PrincipalState, UserType};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectoryFile {
    #[serde(default)]
    pub domain: Vec<DomainRecord>,
}

/// One domain with its users and owners, as a source read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainRecord {
    /// Its id.
    pub domain_id: String,
    /// Enabled or disabled.
    #[serde(default = "enabled_domain")]
    pub state: DomainState,
    /// Its users.
    #[serde(default)]
    pub user: Vec<UserRecord>,
    /// Its owners.
    #[serde(default)]
    pub owner: Vec<OwnerRecord>,
}

/// One user, as a source read it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// Its id.
    pub user_id: String,
    /// bcrypt or argon2id PHC text. None for an `EXTERNAL` user, and may
    /// be none for an `API_USER` (neither logs in with a password here).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Where its password is checked: `LOCAL` (here, the default) or
    /// `EXTERNAL` (SpaceONE's auth plugin, which tokengate does not call).
    #[serde(default)]
    pub backend: Backend,
    /// Its state.
    #[serde(default = "enabled_principal")]
    pub state: PrincipalState,
    /// USER or API_USER.
    #[serde(default = "default_user_type")]
    pub user_type: UserType,
    /// Pending actions such as `UPDATE_PASSWORD`.
    #[serde(default)]
    pub required_actions: Vec<String>,
}

/// Debug output never shows the hash.
impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("user_id", &self.user_id)
            .field("state", &self.state)
            .field("user_type", &self.user_type)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// One owner, as a source read it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerRecord {
    /// Its id.
    pub owner_id: String,
    /// bcrypt or argon2id PHC text.
    pub password_hash: String,
    /// Its state.
    #[serde(default = "enabled_principal")]
    pub state: PrincipalState,
}

/// Debug output never shows the hash.
impl std::fmt::Debug for OwnerRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerRecord")
            .field("owner_id", &self.owner_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn enabled_domain() -> DomainState {
    DomainState::Enabled
}

fn enabled_principal() -> PrincipalState {
    PrincipalState::Enabled
}

fn default_user_type() -> UserType {
    UserType::User
}
