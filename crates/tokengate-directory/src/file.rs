//! The directory file's TOML schema, exactly as operators write it.

use serde::Deserialize;

use crate::{DomainState, PrincipalState, UserType};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectoryFile {
    #[serde(default)]
    pub domain: Vec<DomainEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DomainEntry {
    pub domain_id: String,
    #[serde(default = "enabled_domain")]
    pub state: DomainState,
    #[serde(default)]
    pub user: Vec<UserEntry>,
    #[serde(default)]
    pub owner: Vec<OwnerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserEntry {
    pub user_id: String,
    pub password_hash: String,
    #[serde(default = "enabled_principal")]
    pub state: PrincipalState,
    #[serde(default = "default_user_type")]
    pub user_type: UserType,
    #[serde(default)]
    pub required_actions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerEntry {
    pub owner_id: String,
    pub password_hash: String,
    #[serde(default = "enabled_principal")]
    pub state: PrincipalState,
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
