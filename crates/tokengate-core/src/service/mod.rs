//! The core service: `Token.issue`, `Token.refresh` and
//! `Domain.get_public_key`, SPEC §2 rule by rule. One module per concept:
//!
//! - [`issue`]: logging in, a new family (issue rules 1–6);
//! - [`refresh`]: one refresh, as named steps (refresh rules 1–4);
//! - [`adoption`]: refresh tokens SpaceONE minted before the move, read
//!   as the start of a family of their own;
//! - [`revocation`]: ending one family or all of a principal's;
//! - [`minting`]: the claims and signatures of a new pair;
//! - [`sessions`]: logout, the list of a user's sessions, ending them,
//!   and introspection.
//!
//! Failed-login limits live in [`crate::login_limits`].

mod adoption;
mod issue;
mod minting;
mod refresh;
mod revocation;
mod sessions;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokengate_directory::{
    Directory, DirectoryUnavailable, Freshness, PrincipalKind, RemotePrincipals,
};
use tokengate_keys::{DomainKeys, KeyRing};
use tokengate_store::{RefreshStore, StoreError};

pub use self::issue::{Credentials, IssueRequest};
pub use self::sessions::{
    CallerCredentials, Introspection, IntrospectionClient, IntrospectionSettings, Session,
};
use crate::{LoginLimits, PasswordPool, Shared, TokenError};

/// Token lifetimes and limits, from `[token]` (and `[limits]`).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// Access-token lifetime when the request says 0, seconds.
    pub access_timeout: u64,
    /// Largest access-token lifetime a request may ask for, seconds.
    pub max_access_timeout: u64,
    /// Refresh-token lifetime, seconds.
    pub refresh_timeout: u64,
    /// A count, not a time: the most refreshes one family may make (the
    /// largest `refresh_count` a request may ask for, and what 0 means).
    /// Named as its config key `token.refresh_ttl`; each refresh token
    /// carries what is left of it in its `ttl` claim.
    pub refresh_ttl: u32,
    /// A family's whole life from its issue, seconds: no refresh extends it.
    pub absolute_timeout: u64,
    /// Duplicate-refresh grace window, seconds (0 = any reuse revokes).
    pub reuse_grace: u64,
    /// The `iss` claim.
    pub issuer: String,
    /// Failed-login limits.
    pub login_limits: LoginLimits,
    /// Who may introspect tokens.
    pub introspection: IntrospectionSettings,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_timeout: 1200,
            max_access_timeout: 86400,
            refresh_timeout: 1800,
            refresh_ttl: 18,
            absolute_timeout: 86400,
            reuse_grace: 0,
            issuer: "tokengate".to_owned(),
            login_limits: LoginLimits::default(),
            introspection: IntrospectionSettings::default(),
        }
    }
}

/// The answer to issue and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

/// The answer to `get_public_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The domain.
    pub domain_id: String,
    /// The JSON text of the public JWK that signs the domain's access tokens.
    pub public_key: String,
}

/// The core service. Cheap to share (`Arc`); reloads swap its directory and
/// keys without blocking calls.
pub struct TokenService {
    /// Domains, users and owners; replaced on reload.
    directory: Shared<Directory>,
    /// Every domain's signing keys; replaced on rotation.
    keys: Shared<KeyRing>,
    /// Refresh families, one-time keys and failed-login counters.
    store: Arc<dyn RefreshStore>,
    /// Runs password checks off the async workers, bounded.
    passwords: PasswordPool,
    /// Lifetimes and limits.
    settings: TokenSettings,
    /// Whether the directory snapshot is current (a database directory's
    /// change feed); `None`: always (a file).
    freshness: Option<Arc<dyn Freshness>>,
    /// Users and owners asked for per call (LDAP); `None`: the snapshot's.
    remote: Option<Arc<dyn RemotePrincipals>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Now, unix milliseconds (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An input value as error texts echo it: SpaceONE's texts name the user
/// or domain, but an attacker-sized value must not become a `grpc-message`
/// header larger than clients accept.
fn shown(value: &str) -> String {
    const MAX: usize = 128;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

/// A store failure as the client sees it: UNAVAILABLE, so it keeps its
/// refresh token and retries (SPEC §3: "never 401 for an outage"). The
/// cause is logged, never answered.
pub(crate) fn store_error(err: StoreError) -> TokenError {
    tracing::warn!(error = %err, "refresh store call failed; answering UNAVAILABLE");
    TokenError::StoreUnavailable
}

/// A directory outage as the client sees it: UNAVAILABLE, the client
/// retries. The cause is logged at debug (the feed logs the outage once).
pub(crate) fn directory_error(err: DirectoryUnavailable) -> TokenError {
    tracing::debug!(error = %err, "answering UNAVAILABLE");
    metrics::counter!("tokengate_directory_unavailable_answers_total").increment(1);
    TokenError::DirectoryUnavailable
}

/// Which kind of principal a request's or token's `user_type` names:
/// "empty, `USER` or `LOCAL` → a directory user; `DOMAIN_OWNER` → the
/// domain's owner"; anything else is no principal.
fn principal_kind(user_type: &str) -> Option<PrincipalKind> {
    match user_type {
        "" | "USER" | "LOCAL" => Some(PrincipalKind::User),
        "DOMAIN_OWNER" => Some(PrincipalKind::DomainOwner),
        _ => None,
    }
}

impl TokenService {
    /// Builds the service.
    pub fn new(
        directory: Directory,
        keys: KeyRing,
        store: Arc<dyn RefreshStore>,
        passwords: PasswordPool,
        settings: TokenSettings,
    ) -> Self {
        Self {
            directory: Shared::new(directory),
            keys: Shared::new(keys),
            store,
            passwords,
            settings,
            freshness: None,
            remote: None,
        }
    }

    /// Checks passwords and looks principals up with `remote` (an LDAP
    /// directory) instead of the snapshot; the snapshot still holds the
    /// domains.
    pub fn with_remote_principals(mut self, remote: Arc<dyn RemotePrincipals>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Makes logins and refreshes ask `freshness` first: a directory kept
    /// current by a change feed answers UNAVAILABLE while the feed is down
    /// (see the source's docs for how refreshes fare).
    pub fn with_freshness(mut self, freshness: Arc<dyn Freshness>) -> Self {
        self.freshness = Some(freshness);
        self
    }

    /// Logins need a current directory.
    fn directory_for_login(&self) -> Result<(), TokenError> {
        match &self.freshness {
            Some(f) => f.check_login().map_err(directory_error),
            None => Ok(()),
        }
    }

    /// Refreshes may run on a snapshot its source still accepts.
    fn directory_for_refresh(&self) -> Result<(), TokenError> {
        match &self.freshness {
            Some(f) => f.check_refresh().map_err(directory_error),
            None => Ok(()),
        }
    }

    /// Swaps in a reloaded directory.
    pub fn replace_directory(&self, directory: Directory) {
        self.directory.store(directory);
    }

    /// Swaps in a reloaded key ring.
    pub fn replace_keys(&self, keys: KeyRing) {
        self.keys.store(keys);
    }

    /// The current key ring.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.load()
    }

    /// Ready to serve: the directory is current, every domain has keys and
    /// the store answers.
    pub async fn readiness(&self) -> Result<(), String> {
        if let Some(f) = &self.freshness {
            f.check_login().map_err(|e| e.to_string())?;
        }
        let directory = self.directory.load();
        let keys = self.keys.load();
        if let Some(missing) = directory
            .domain_ids()
            .find(|d| !keys.domain(d).is_some_and(DomainKeys::is_complete))
        {
            return Err(format!("domain {missing:?} has no signing keys"));
        }
        self.store.ping().await.map_err(|e| e.to_string())
    }

    /// The JWKS document (every domain's access-token public keys).
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.load().jwks()
    }

    /// `Domain.get_public_key`: the JWK of the key that now signs the
    /// domain's access tokens, "also for a disabled domain (as SpaceONE);
    /// an unknown domain is the same INVALID_ARGUMENT ERROR_NOT_FOUND as in
    /// issue; no `domain_id` → ERROR_REQUIRED_PARAMETER".
    pub fn public_key(&self, domain_id: &str) -> Result<PublicKey, TokenError> {
        if domain_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "domain_id" });
        }
        if self.directory.load().domain(domain_id).is_none() {
            return Err(TokenError::NotFound {
                key: "domain_id",
                value: shown(domain_id),
            });
        }
        let keys = self.keys.load();
        let key = keys
            .domain(domain_id)
            .and_then(|d| d.access.signing_key())
            .ok_or(TokenError::Internal {
                detail: "domain has no signing key",
            })?;
        Ok(PublicKey {
            domain_id: domain_id.to_owned(),
            public_key: key.public_jwk_text().to_owned(),
        })
    }
}
