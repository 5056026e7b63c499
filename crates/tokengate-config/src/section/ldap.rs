//! `[ldap]`: the LDAP directory, when `directory` is an `ldap://` or
//! `ldaps://` URL (ignored otherwise).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokengate_directory_ldap::LdapSettings;

/// One `[[ldap.domain]]`: a domain and the subtree of its principals.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LdapDomainConfig {
    /// The domain id.
    pub domain_id: String,
    /// The search base of its users and owners.
    pub base_dn: String,
    /// `ENABLED` (default) or `DISABLED`.
    #[serde(default = "enabled")]
    pub state: String,
}

fn enabled() -> String {
    "ENABLED".to_owned()
}

/// `[ldap]`. Its defaults are the directory's ([`LdapSettings::new`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// The service account that searches.
    pub bind_dn: String,
    /// A file holding its password, relative to the config file.
    pub bind_password_file: Option<PathBuf>,
    /// Its password: meant for `TOKENGATE_LDAP_BIND_PASSWORD`.
    #[serde(skip_serializing)]
    pub bind_password: Option<String>,
    /// Extra PEM CA certificates for TLS, relative to the config file.
    pub ca_file: Option<PathBuf>,
    /// Bound on connecting and every operation, milliseconds.
    pub timeout_ms: u64,
    /// How often the server is checked, milliseconds.
    pub health_interval_ms: u64,
    /// Connections for user binds kept open between logins (0: none).
    pub bind_pool_size: usize,
    /// Finds a user; `{user}` is the escaped user id.
    pub user_filter: String,
    /// Finds an owner; unset: no owners.
    pub owner_filter: Option<String>,
    /// An attribute that marks a principal disabled.
    pub disabled_attribute: Option<String>,
    /// Its values that mean disabled; empty: present means disabled.
    pub disabled_values: Vec<String>,
    /// A group DN whose `member`s are API users.
    pub api_user_group: Option<String>,
    /// Attributes that change with the password, first present wins.
    pub password_changed_attributes: Vec<String>,
    /// How often the principals' snapshot reads the changed entries,
    /// milliseconds (0: no snapshot, every refresh searches).
    pub sync_interval_ms: u64,
    /// How often the snapshot is read whole (catches deleted entries),
    /// milliseconds.
    pub full_sync_interval_ms: u64,
    /// The domains.
    pub domain: Vec<LdapDomainConfig>,
}

impl Default for LdapConfig {
    fn default() -> Self {
        let d = LdapSettings::new("");
        Self {
            starttls: d.starttls,
            bind_dn: d.bind_dn,
            bind_password_file: None,
            bind_password: None,
            ca_file: None,
            timeout_ms: d.timeout.as_millis() as u64,
            health_interval_ms: d.health_interval.as_millis() as u64,
            bind_pool_size: d.bind_pool_size,
            user_filter: d.user_filter,
            owner_filter: d.owner_filter,
            disabled_attribute: d.disabled_attribute,
            disabled_values: d.disabled_values,
            api_user_group: d.api_user_group,
            password_changed_attributes: d.password_changed_attributes,
            sync_interval_ms: d.sync_interval.as_millis() as u64,
            full_sync_interval_ms: d.full_sync_interval.as_millis() as u64,
            domain: Vec::new(),
        }
    }
}

/// Debug output never shows the bind password.
impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &if self.bind_password.is_some() {
                    "<redacted>"
                } else {
                    "<unset>"
                },
            )
            .field("user_filter", &self.user_filter)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}
