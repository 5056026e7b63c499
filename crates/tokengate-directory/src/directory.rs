//! The validated, in-memory directory.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::file::{DirectoryFile, DomainRecord};
use crate::{HashProfile, PasswordError, PasswordHash};

/// Errors loading a directory file.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The file could not be read.
    #[error("cannot read directory {path}: {source}")]
    Io {
        /// The directory file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not match the schema.
    #[error("invalid directory: {0}")]
    Syntax(String),
    /// A value is wrong (duplicate id, bad hash, ...).
    #[error("invalid directory: {0}")]
    Invalid(String),
}

/// Whether a domain may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainState {
    /// Logins allowed.
    Enabled,
    /// Every login refused with `ERROR_DOMAIN_STATE`.
    Disabled,
}

impl DomainState {
    /// The state as stored (`ENABLED`, `DISABLED`).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::Enabled => "ENABLED",
            DomainState::Disabled => "DISABLED",
        }
    }
}

impl std::str::FromStr for DomainState {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ENABLED" => Ok(DomainState::Enabled),
            "DISABLED" => Ok(DomainState::Disabled),
            other => Err(DirectoryError::Invalid(format!(
                "domain state {other:?}: expected ENABLED or DISABLED"
            ))),
        }
    }
}

/// A user's or owner's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrincipalState {
    /// May log in.
    Enabled,
    /// Refused.
    Disabled,
    /// Not yet activated; refused.
    Pending,
}

impl PrincipalState {
    /// The state as stored (`ENABLED`, `DISABLED`, `PENDING`).
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalState::Enabled => "ENABLED",
            PrincipalState::Disabled => "DISABLED",
            PrincipalState::Pending => "PENDING",
        }
    }
}

impl std::str::FromStr for PrincipalState {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ENABLED" => Ok(PrincipalState::Enabled),
            "DISABLED" => Ok(PrincipalState::Disabled),
            "PENDING" => Ok(PrincipalState::Pending),
            other => Err(DirectoryError::Invalid(format!(
                "state {other:?}: expected ENABLED, DISABLED or PENDING"
            ))),
        }
    }
}

/// A directory user's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserType {
    /// A person.
    User,
    /// A machine account: may not log in with a password.
    ApiUser,
}

impl UserType {
    /// The type as stored (`USER`, `API_USER`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::User => "USER",
            UserType::ApiUser => "API_USER",
        }
    }
}

impl std::str::FromStr for UserType {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "USER" => Ok(UserType::User),
            "API_USER" => Ok(UserType::ApiUser),
            other => Err(DirectoryError::Invalid(format!(
                "user_type {other:?}: expected USER or API_USER"
            ))),
        }
    }
}

/// Where a user's password is checked (SpaceONE's `backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Backend {
    /// Here, against its `password_hash`.
    #[default]
    Local,
    /// By the domain's auth plugin in SpaceONE. tokengate calls no plugin:
    /// a password login answers `ERROR_AUTHENTICATION_FAILURE`, as SpaceONE
    /// 1.x does for an EXTERNAL user of a domain without a plugin, after
    /// the same dummy-hash check an unknown user costs. Its sessions
    /// carried over from SpaceONE still refresh.
    External,
}

impl Backend {
    /// The backend as stored (`LOCAL`, `EXTERNAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "LOCAL",
            Backend::External => "EXTERNAL",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "LOCAL" => Ok(Backend::Local),
            "EXTERNAL" => Ok(Backend::External),
            other => Err(DirectoryError::Invalid(format!(
                "backend {other:?}: expected LOCAL or EXTERNAL"
            ))),
        }
    }
}

/// Whether a principal is a directory user or the domain's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A directory user (`user_type` USER or empty in requests).
    User,
    /// The domain owner (`user_type` DOMAIN_OWNER).
    DomainOwner,
}

/// Someone who can log in: a user or an owner.
#[derive(Debug, Clone)]
pub struct Principal {
    /// user_id or owner_id.
    pub id: String,
    /// User or owner.
    pub kind: PrincipalKind,
    /// Current state.
    pub state: PrincipalState,
    /// For users: USER or API_USER; owners are always `User`.
    pub user_type: UserType,
    /// Pending actions such as `UPDATE_PASSWORD`.
    pub required_actions: Vec<String>,
    /// The stored hash.
    pub password_hash: PasswordHash,
}

/// One domain.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Its id.
    pub domain_id: String,
    /// Enabled or disabled.
    pub state: DomainState,
    users: HashMap<String, Principal>,
    owners: HashMap<String, Principal>,
}

impl Domain {
    /// A user or owner by id.
    pub fn principal(&self, kind: PrincipalKind, id: &str) -> Option<&Principal> {
        match kind {
            PrincipalKind::User => self.users.get(id),
            PrincipalKind::DomainOwner => self.owners.get(id),
        }
    }
}

/// Every domain, user and owner, validated.
#[derive(Debug, Clone)]
pub struct Directory {
    domains: HashMap<String, Domain>,
    dummy_hash: PasswordHash,
}

impl Directory {
    /// Reads and validates a directory file.
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses and validates directory TOML. Computes a dummy hash with the
    /// profile most of the directory's hashes use.
    pub fn from_toml(text: &str) -> Result<Self, DirectoryError> {
        let file: DirectoryFile = toml::from_str(text)
            .map_err(|e| DirectoryError::Syntax(describe_toml_error(text, &e)))?;
        Self::from_records(file.domain, None)
    }

    /// Validates domains, users and owners however they were read (a file,
    /// database rows) into a directory. The dummy hash is computed for the
    /// profile most hashes use, unless `previous` (the directory this one
    /// replaces) already has one of that profile: a reload then costs no
    /// hash computation.
    pub fn from_records(
        records: Vec<DomainRecord>,
        previous: Option<&Directory>,
    ) -> Result<Self, DirectoryError> {
        let mut domains = HashMap::new();
        let mut profiles: HashMap<HashProfile, usize> = HashMap::new();
        for entry in records {
            if entry.domain_id.trim().is_empty() {
                return Err(DirectoryError::Invalid(
                    "a domain has an empty domain_id".into(),
                ));
            }
            let hash = |owner: &str, text: &str| -> Result<PasswordHash, DirectoryError> {
                PasswordHash::parse(text).map_err(|e: PasswordError| {
                    DirectoryError::Invalid(format!("domain {:?}, {owner}: {e}", entry.domain_id))
                })
            };
            let mut users = HashMap::new();
            for u in &entry.user {
                let password_hash = match (u.backend, &u.password_hash) {
                    (Backend::Local, Some(text)) => {
                        let parsed = hash(&format!("user {:?}", u.user_id), text)?;
                        *profiles.entry(parsed.profile().clone()).or_default() += 1;
                        parsed
                    }
                    // No password here: it never verifies, and a login
                    // runs the dummy hash instead (issue rule 3). Not
                    // counted for the dummy hash's profile.
                    (Backend::External, None) => PasswordHash::external(&format!(
                        "EXTERNAL\n{}\n{}",
                        entry.domain_id, u.user_id
                    )),
                    (Backend::Local, None) if u.user_type == UserType::ApiUser => {
                        PasswordHash::external(&format!(
                            "API_USER\n{}\n{}",
                            entry.domain_id, u.user_id
                        ))
                    }
                    (Backend::Local, None) => {
                        return Err(DirectoryError::Invalid(format!(
                            "domain {:?}, user {:?}: no password_hash (only an EXTERNAL user \
                             or an API_USER may have none)",
                            entry.domain_id, u.user_id
                        )));
                    }
                    (Backend::External, Some(_)) => {
                        return Err(DirectoryError::Invalid(format!(
                            "domain {:?}, user {:?}: an EXTERNAL user has no password_hash \
                             (its password is checked by an auth plugin)",
                            entry.domain_id, u.user_id
                        )));
                    }
                };
                let principal = Principal {
                    id: u.user_id.clone(),
                    kind: PrincipalKind::User,
                    state: u.state,
                    user_type: u.user_type,
                    required_actions: u.required_actions.clone(),
                    password_hash,
                };
                if users.insert(u.user_id.clone(), principal).is_some() {
                    return Err(DirectoryError::Invalid(format!(
                        "domain {:?}: user {:?} appears twice",
                        entry.domain_id, u.user_id
                    )));
                }
            }
            let mut owners = HashMap::new();
            for o in &entry.owner {
                let password_hash = hash(&format!("owner {:?}", o.owner_id), &o.password_hash)?;
                *profiles.entry(password_hash.profile().clone()).or_default() += 1;
                let principal = Principal {
                    id: o.owner_id.clone(),
                    kind: PrincipalKind::DomainOwner,
                    state: o.state,
                    user_type: UserType::User,
                    required_actions: Vec::new(),
                    password_hash,
                };
                if owners.insert(o.owner_id.clone(), principal).is_some() {
                    return Err(DirectoryError::Invalid(format!(
                        "domain {:?}: owner {:?} appears twice",
                        entry.domain_id, o.owner_id
                    )));
                }
            }
            let domain = Domain {
                domain_id: entry.domain_id.clone(),
                state: entry.state,
                users,
                owners,
            };
            if domains.insert(entry.domain_id.clone(), domain).is_some() {
                return Err(DirectoryError::Invalid(format!(
                    "domain {:?} appears twice",
                    entry.domain_id
                )));
            }
        }
        let profile = profiles
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .map(|(p, _)| p)
            .unwrap_or(HashProfile::Argon2id {
                m_cost: argon2::Params::DEFAULT_M_COST,
                t_cost: argon2::Params::DEFAULT_T_COST,
                p_cost: argon2::Params::DEFAULT_P_COST,
            });
        let dummy_hash = match previous.map(|p| &p.dummy_hash) {
            Some(kept) if kept.profile() == &profile => kept.clone(),
            _ => {
                PasswordHash::dummy(&profile).map_err(|e| DirectoryError::Invalid(e.to_string()))?
            }
        };
        Ok(Self {
            domains,
            dummy_hash,
        })
    }

    /// A domain by id.
    pub fn domain(&self, domain_id: &str) -> Option<&Domain> {
        self.domains.get(domain_id)
    }

    /// Every domain id.
    pub fn domain_ids(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// The hash to verify against when the principal does not exist, or
    /// has no password here (EXTERNAL, a password-less API_USER), so that
    /// it costs the same time as a wrong password.
    pub fn dummy_hash(&self) -> &PasswordHash {
        &self.dummy_hash
    }

    /// How many users and owners are loaded (for logs).
    pub fn principal_count(&self) -> usize {
        self.domains
            .values()
            .map(|d| d.users.len() + d.owners.len())
            .sum()
    }

    /// How many domains are loaded (for logs).
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }
}

/// The parser's message and line, without the snippet of the file that
/// toml's `Display` includes: that line may hold a password hash.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_bcrypt;

    fn sample() -> String {
        let h = hash_bcrypt("pw", 4).expect("hash");
        format!(
            r#"
[[domain]]
domain_id = "d1"

[[domain.user]]
user_id = "alice"
password_hash = "{h}"
required_actions = ["UPDATE_PASSWORD"]

[[domain.user]]
user_id = "robot"
password_hash = "{h}"
user_type = "API_USER"
state = "DISABLED"

[[domain.owner]]
owner_id = "root"
password_hash = "{h}"

[[domain]]
domain_id = "d2"
state = "DISABLED"
"#
        )
    }

    #[test]
    fn parses_users_owners_and_states() {
        let dir = Directory::from_toml(&sample()).expect("parse");
        let d1 = dir.domain("d1").expect("d1");
        assert_eq!(d1.state, DomainState::Enabled);
        let alice = d1.principal(PrincipalKind::User, "alice").expect("alice");
        assert_eq!(alice.state, PrincipalState::Enabled);
        assert_eq!(alice.required_actions, vec!["UPDATE_PASSWORD"]);
        let robot = d1.principal(PrincipalKind::User, "robot").expect("robot");
        assert_eq!(
            (robot.user_type, robot.state),
            (UserType::ApiUser, PrincipalState::Disabled)
        );
        assert!(d1.principal(PrincipalKind::DomainOwner, "root").is_some());
        assert!(
            d1.principal(PrincipalKind::User, "root").is_none(),
            "owners are not users"
        );
        assert_eq!(dir.domain("d2").expect("d2").state, DomainState::Disabled);
        assert_eq!(dir.dummy_hash().profile(), &HashProfile::Bcrypt { cost: 4 });
    }

    #[test]
    fn external_users_and_passwordless_api_users_have_no_usable_hash() {
        let h = hash_bcrypt("pw", 4).expect("hash");
        let text = format!(
            r#"
[[domain]]
domain_id = "d1"

[[domain.user]]
user_id = "sso"
backend = "EXTERNAL"

[[domain.user]]
user_id = "robot"
user_type = "API_USER"

[[domain.user]]
user_id = "alice"
password_hash = "{h}"
backend = "LOCAL"
"#
        );
        let dir = Directory::from_toml(&text).expect("parse");
        let d1 = dir.domain("d1").expect("d1");
        for id in ["sso", "robot"] {
            let p = d1.principal(PrincipalKind::User, id).expect(id);
            assert_eq!(p.password_hash.profile(), &HashProfile::External, "{id}");
            assert!(!p.password_hash.verify(""), "{id}");
        }
        // The dummy hash follows the real hashes, not the password-less rows.
        assert_eq!(dir.dummy_hash().profile(), &HashProfile::Bcrypt { cost: 4 });

        let external_with_hash = format!(
            "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"u\"\nbackend = \"EXTERNAL\"\npassword_hash = \"{h}\"\n"
        );
        let err = Directory::from_toml(&external_with_hash).expect_err("EXTERNAL with a hash");
        assert!(
            err.to_string()
                .contains("EXTERNAL user has no password_hash"),
            "{err}"
        );
        let user_without = "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"u\"\n";
        let err = Directory::from_toml(user_without).expect_err("USER without a hash");
        assert!(err.to_string().contains("no password_hash"), "{err}");
        let bogus =
            "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"u\"\nbackend = \"LDAP\"\n";
        assert!(matches!(
            Directory::from_toml(bogus),
            Err(DirectoryError::Syntax(_))
        ));
    }

    #[test]
    fn rejects_broken_files() {
        assert!(matches!(
            Directory::from_toml("[[domain]"),
            Err(DirectoryError::Syntax(_))
        ));
        assert!(matches!(
            Directory::from_toml("[[domain]]\ndomain_id = \"d\"\nbogus = 1\n"),
            Err(DirectoryError::Syntax(_))
        ));
        let bad_hash = "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"u\"\npassword_hash = \"plain\"\n";
        let err = Directory::from_toml(bad_hash).expect_err("bad hash");
        assert!(err.to_string().contains("user \"u\""), "{err}");
        assert!(
            !err.to_string().contains("plain"),
            "the hash text is not echoed"
        );
        let leaky = "[[domain]]\ndomain_id = \"d\"\n[[domain.user]]\nuser_id = \"u\"\npassword_hash = \"$2b$04$secretsecret\" oops\n";
        let err = Directory::from_toml(leaky).expect_err("syntax");
        assert!(err.to_string().contains("line 5"), "{err}");
        assert!(!err.to_string().contains("secretsecret"), "{err}");
        let dup = "[[domain]]\ndomain_id = \"d\"\n[[domain]]\ndomain_id = \"d\"\n";
        assert!(matches!(
            Directory::from_toml(dup),
            Err(DirectoryError::Invalid(_))
        ));
    }
}
