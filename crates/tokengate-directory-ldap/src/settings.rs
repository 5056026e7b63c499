//! How to reach the LDAP server and read principals from it.

use std::path::PathBuf;
use std::time::Duration;

use tokengate_directory::DomainState;

/// One domain: the subtree its principals are searched in.
#[derive(Debug, Clone)]
pub struct LdapDomain {
    /// The domain id.
    pub domain_id: String,
    /// The search base of its users and owners.
    pub base_dn: String,
    /// Enabled or disabled.
    pub state: DomainState,
}

/// The LDAP directory's settings (the config's `directory` URL and its
/// `[ldap]` section).
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// The service account that searches.
    pub bind_dn: String,
    /// Its password (`ldap.bind_password_file` or
    /// `TOKENGATE_LDAP_BIND_PASSWORD`).
    pub bind_password: Option<String>,
    /// Extra PEM CA certificates for TLS (beside the system's).
    pub ca_file: Option<PathBuf>,
    /// Bound on connecting and on every operation.
    pub timeout: Duration,
    /// How many connections for user binds are kept open between logins
    /// (0: each login opens and closes its own).
    pub bind_pool_size: usize,
    /// How often the server is checked.
    pub health_interval: Duration,
    /// Finds a user; `{user}` is replaced by the escaped user id.
    pub user_filter: String,
    /// Finds a domain owner the same way; `None`: no owners.
    pub owner_filter: Option<String>,
    /// An attribute that marks a principal disabled.
    pub disabled_attribute: Option<String>,
    /// The values of `disabled_attribute` that mean disabled; empty: any.
    pub disabled_values: Vec<String>,
    /// A group (DN) whose `member`s are API users.
    pub api_user_group: Option<String>,
    /// The attributes that change with the password, first present wins.
    pub password_changed_attributes: Vec<String>,
    /// How often the in-memory snapshot of the principals reads the
    /// entries changed since its last read (zero: no snapshot, every
    /// refresh searches). A disable or password change reaches refreshes
    /// within about this long; logins always search and bind.
    pub sync_interval: Duration,
    /// How often the snapshot is read whole: what catches entries deleted
    /// or moved out of the filters' scope (the changes' search cannot see
    /// them).
    pub full_sync_interval: Duration,
    /// The domains.
    pub domains: Vec<LdapDomain>,
}

impl LdapSettings {
    /// Settings with the defaults for everything but the URL and domains.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            starttls: false,
            bind_dn: String::new(),
            bind_password: None,
            ca_file: None,
            timeout: Duration::from_secs(2),
            health_interval: Duration::from_secs(1),
            bind_pool_size: 4,
            user_filter: "(&(objectClass=inetOrgPerson)(uid={user}))".to_owned(),
            owner_filter: None,
            disabled_attribute: None,
            disabled_values: Vec::new(),
            api_user_group: None,
            password_changed_attributes: vec![
                "pwdChangedTime".to_owned(),
                "modifyTimestamp".to_owned(),
            ],
            sync_interval: Duration::from_secs(1),
            full_sync_interval: Duration::from_secs(60),
            domains: Vec::new(),
        }
    }
}

/// Debug output never shows the bind password.
impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &if self.bind_password.is_some() {
                    "<redacted>"
                } else {
                    "<unset>"
                },
            )
            .field("timeout", &self.timeout)
            .field("user_filter", &self.user_filter)
            .field("sync_interval", &self.sync_interval)
            .field("domains", &self.domains.len())
            .finish_non_exhaustive()
    }
}
