//! `issue`, `refresh` and `public_key`: SPEC §2, rule by rule.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokengate_directory::{
    Directory, DomainState, Principal, PrincipalKind, PrincipalState, UserType,
};
use tokengate_keys::{DomainKeys, KeyRing, UnverifiedToken, decode_unverified_claims};
use tokengate_store::{
    CheckOutcome, FamilyRecord, FamilyRef, RefreshStore, RotateRequest, Rotation, StoreError,
};

use tracing::Instrument as _;

use crate::LoginLimits;
use crate::claims::UnverifiedRouting;
use crate::secrets;
use crate::{AccessClaims, PasswordPool, RefreshClaims, Shared, TokenCategory, TokenError};

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
        }
    }
}

/// What the client sent as `credentials`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `credentials` field at all.
    Missing,
    /// A `credentials` object without a usable `password` string.
    NoPassword,
    /// The password.
    Password(String),
}

/// A login request (IssueTokenRequest, transport-free).
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// `user_id` (or the owner id when `user_type` is DOMAIN_OWNER).
    pub user_id: String,
    /// The credentials.
    pub credentials: Credentials,
    /// "", USER, LOCAL or DOMAIN_OWNER.
    pub user_type: String,
    /// The domain.
    pub domain_id: String,
    /// Access-token lifetime, seconds (0 = default).
    pub timeout: i32,
    /// Refreshes allowed (0 = maximum).
    pub refresh_count: i32,
    /// The caller's address, for the per-IP failed-login limit.
    pub client_ip: Option<IpAddr>,
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
    directory: Shared<Directory>,
    keys: Shared<KeyRing>,
    store: Arc<dyn RefreshStore>,
    passwords: PasswordPool,
    settings: TokenSettings,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An input value as error texts echo it: SpaceONE's texts name the user
/// or domain, but an attacker-sized value must not become a 60 KiB
/// `grpc-message` header (clients refuse those).
fn shown(value: &str) -> String {
    const MAX: usize = 128;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

pub(crate) fn store_error(err: StoreError) -> TokenError {
    tracing::warn!(error = %err, "refresh store call failed; answering UNAVAILABLE");
    TokenError::StoreUnavailable
}

/// Which principal a token's `user_type` names.
fn principal_kind(user_type: &str) -> Option<PrincipalKind> {
    match user_type {
        "" | "USER" | "LOCAL" => Some(PrincipalKind::User),
        "DOMAIN_OWNER" => Some(PrincipalKind::DomainOwner),
        _ => None,
    }
}

fn user_type_claim(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "USER",
        PrincipalKind::DomainOwner => "DOMAIN_OWNER",
    }
}

/// Everything needed to mint one token pair.
struct Mint<'a> {
    keys: &'a DomainKeys,
    domain_id: &'a str,
    principal: &'a Principal,
    now_secs: u64,
    access_lifetime: u64,
    refresh_ttl: u32,
    family_id: String,
    family_end_secs: u64,
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

    /// Ready to serve: every domain has keys and the store answers.
    pub async fn readiness(&self) -> Result<(), String> {
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
    /// domain's access tokens (also for a disabled domain, as SpaceONE).
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

    /// `Token.issue`: SPEC §2 issue rules 1–6.
    pub async fn issue(&self, req: IssueRequest) -> Result<TokenPair, TokenError> {
        // Rule 1: required parameters, in SpaceONE's order.
        if req.credentials == Credentials::Missing {
            return Err(TokenError::RequiredParameter { key: "credentials" });
        }
        if req.domain_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "domain_id" });
        }
        if req.user_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "user_id" });
        }
        let kind = principal_kind(&req.user_type).ok_or_else(|| TokenError::InvalidParameter {
            key: "user_type",
            reason: "must be USER, LOCAL or DOMAIN_OWNER".to_owned(),
        })?;
        // Rule 5: lifetimes.
        let access_lifetime = match req.timeout {
            0 => self.settings.access_timeout,
            t if t < 0 => {
                return Err(TokenError::InvalidParameter {
                    key: "timeout",
                    reason: "must not be negative".to_owned(),
                });
            }
            t if t as u64 > self.settings.max_access_timeout => {
                return Err(TokenError::InvalidParameter {
                    key: "timeout",
                    reason: format!("must not exceed {}", self.settings.max_access_timeout),
                });
            }
            t => t as u64,
        };
        let refresh_ttl = match req.refresh_count {
            0 => self.settings.refresh_ttl,
            c if c < 0 => {
                return Err(TokenError::InvalidParameter {
                    key: "refresh_count",
                    reason: "must not be negative".to_owned(),
                });
            }
            c if c as u32 > self.settings.refresh_ttl => {
                return Err(TokenError::MaxRefreshCount {
                    max: self.settings.refresh_ttl,
                });
            }
            c => c as u32,
        };
        // For the access line and traces (fields of the transport's call span).
        tracing::Span::current()
            .record("domain_id", req.domain_id.as_str())
            .record("user_id", req.user_id.as_str());
        // Rule 2: the domain.
        let directory = self.directory.load();
        let domain = directory
            .domain(&req.domain_id)
            .ok_or_else(|| TokenError::NotFound {
                key: "domain_id",
                value: shown(&req.domain_id),
            })?;
        if domain.state == DomainState::Disabled {
            return Err(TokenError::DomainState {
                domain_id: shown(&req.domain_id),
            });
        }
        // Rule 5: no password is the same answer for every user id.
        let Credentials::Password(password) = &req.credentials else {
            return Err(TokenError::InvalidCredentials);
        };
        // Rule 3: the password first; an unknown user verifies a dummy hash
        // of the same cost, so timing does not tell users apart.
        let principal = domain.principal(kind, &req.user_id);
        let hash = principal
            .map(|p| p.password_hash.clone())
            .unwrap_or_else(|| directory.dummy_hash().clone());
        // SPEC §3: a slot of each failed-login counter first, so parallel
        // guesses cannot slip past the limit; only a wrong password counts.
        let slots = self
            .settings
            .login_limits
            .take_slots(&self.store, &req.domain_id, &req.user_id, req.client_ip)
            .await?;
        let password_ok = match self
            .passwords
            .verify(hash, password.clone())
            .instrument(tracing::info_span!("password_check"))
            .await
        {
            Ok(ok) => ok,
            Err(_busy) => {
                metrics::counter!("tokengate_password_pool_rejections_total").increment(1);
                slots.release(CheckOutcome::NotFailed).await;
                return Err(TokenError::Busy);
            }
        };
        let outcome = if password_ok {
            CheckOutcome::NotFailed
        } else {
            slots.failed()
        };
        slots.release(outcome).await;
        let principal = match principal {
            Some(p) if password_ok => p,
            _ => {
                tracing::debug!(domain_id = %req.domain_id, user_id = %req.user_id, "login failed");
                metrics::counter!("tokengate_logins_failed_total").increment(1);
                return Err(TokenError::AuthenticationFailure {
                    user_id: shown(&req.user_id),
                });
            }
        };
        // Rule 4: what a correct password may still not do.
        if principal.user_type == UserType::ApiUser {
            return Err(TokenError::ApiUserNotAllowed {
                user_id: shown(&req.user_id),
            });
        }
        if principal.state != PrincipalState::Enabled {
            return Err(TokenError::UserStatus {
                user_id: shown(&req.user_id),
            });
        }
        // Rule 6: a new family.
        let keys = self.keys.load();
        let domain_keys = keys.domain(&req.domain_id).ok_or(TokenError::Internal {
            detail: "domain has no signing keys",
        })?;
        let now = now_ms();
        let now_secs = now / 1000;
        let family_end_secs = now_secs + self.settings.absolute_timeout;
        let mint = Mint {
            keys: domain_keys,
            domain_id: &req.domain_id,
            principal,
            now_secs,
            access_lifetime,
            refresh_ttl,
            family_id: secrets::new_id(),
            family_end_secs,
        };
        let (pair, refresh) = self.mint(&mint)?;
        let family = FamilyRecord {
            family: FamilyRef {
                family_id: refresh.family_id.clone(),
                domain_id: req.domain_id.clone(),
                principal_id: principal.id.clone(),
            },
            issued_at_ms: now,
            expires_at_ms: family_end_secs * 1000,
            password_fingerprint: principal.password_hash.fingerprint(),
        };
        // The token is handed out only once its key is recorded.
        self.store
            .start_family(
                &family,
                &secrets::key_id(&refresh.one_time_key),
                refresh.expires_at * 1000,
            )
            .await
            .map_err(store_error)?;
        tracing::debug!(domain_id = %req.domain_id, user_id = %principal.id, "token issued");
        metrics::counter!("tokengate_tokens_issued_total").increment(1);
        Ok(pair)
    }

    /// `Token.refresh`: SPEC §2 refresh rules 1–4. `token` is the refresh
    /// token from metadata or headers, `None` when absent.
    pub async fn refresh(&self, token: Option<&str>) -> Result<TokenPair, TokenError> {
        // Rule 1: decode, pick the domain, verify.
        let token = token.ok_or(TokenError::InvalidRefreshToken)?;
        // Decoded once; the claims pick the keys but are trusted only after
        // the signature verifies.
        let unverified =
            UnverifiedToken::parse(token).map_err(|_| TokenError::CannotDecodeToken)?;
        let routing: UnverifiedRouting = unverified
            .claims()
            .map_err(|_| TokenError::CannotDecodeToken)?;
        let domain_id = match routing.domain_id {
            Some(serde_json::Value::String(d)) if !d.is_empty() => d,
            _ => return Err(TokenError::EmptyDomainId),
        };
        let directory = self.directory.load();
        let domain = directory
            .domain(&domain_id)
            .ok_or_else(|| TokenError::NotFound {
                key: "domain_id",
                value: shown(&domain_id),
            })?;
        let keys = self.keys.load();
        let domain_keys = keys
            .domain(&domain_id)
            .ok_or(TokenError::TokenValidationFailed)?;
        // Access tokens fail here: no refresh key verifies them.
        domain_keys
            .refresh
            .verify_token(&unverified)
            .map_err(|_| TokenError::TokenValidationFailed)?;
        let now = now_ms();
        let now_secs = now / 1000;
        if routing
            .expires_at
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            .is_none_or(|exp| exp <= now_secs)
        {
            return Err(TokenError::TokenValidationFailed);
        }
        if routing
            .category
            .as_ref()
            .and_then(serde_json::Value::as_str)
            != Some("REFRESH_TOKEN")
        {
            return Err(TokenError::InvalidRefreshToken);
        }
        let claims: RefreshClaims = unverified
            .claims()
            .map_err(|_| TokenError::InvalidRefreshToken)?;
        tracing::Span::current()
            .record("domain_id", domain_id.as_str())
            .record("user_id", claims.principal_id.as_str());
        let family = FamilyRef {
            family_id: claims.family_id.clone(),
            domain_id: domain_id.clone(),
            principal_id: claims.principal_id.clone(),
        };
        // Rule 3: refreshes left, and the principal as it is now.
        if claims.refreshes_left == 0 {
            return Err(TokenError::RefreshCountExhausted);
        }
        if domain.state == DomainState::Disabled {
            return Err(TokenError::DomainState { domain_id });
        }
        let kind = principal_kind(&claims.user_type).ok_or(TokenError::InvalidRefreshToken)?;
        let Some(principal) = domain.principal(kind, &claims.principal_id) else {
            self.revoke(&family, "principal_removed").await?;
            return Err(TokenError::NotFound {
                key: "user_id",
                value: shown(&claims.principal_id),
            });
        };
        if principal.state != PrincipalState::Enabled || principal.user_type == UserType::ApiUser {
            self.revoke(&family, "principal_disabled").await?;
            return Err(TokenError::UserStatus {
                user_id: shown(&claims.principal_id),
            });
        }
        // Rule 4: mint the successor, then spend the presented key
        // atomically; the pair is returned only if this call won.
        let mint = Mint {
            keys: domain_keys,
            domain_id: &domain_id,
            principal,
            now_secs,
            access_lifetime: self.settings.access_timeout,
            refresh_ttl: claims.refreshes_left - 1,
            family_id: claims.family_id.clone(),
            family_end_secs: claims.family_end,
        };
        if now_secs >= claims.family_end {
            return Err(TokenError::InvalidRefreshToken);
        }
        let (pair, successor) = self.mint(&mint)?;
        let grace_ms = self.settings.reuse_grace * 1000;
        let answer = if grace_ms > 0 {
            let plain = serde_json::to_vec(&pair).map_err(|_| TokenError::Internal {
                detail: "cannot encode answer",
            })?;
            secrets::seal(&claims.one_time_key, &plain).ok_or(TokenError::Internal {
                detail: "cannot seal answer",
            })?
        } else {
            Vec::new()
        };
        let request = RotateRequest {
            family: family.clone(),
            presented: secrets::key_id(&claims.one_time_key),
            presented_expires_at_ms: claims.expires_at * 1000,
            successor: secrets::key_id(&successor.one_time_key),
            successor_expires_at_ms: successor.expires_at * 1000,
            password_fingerprint: principal.password_hash.fingerprint(),
            now_ms: now,
            grace_ms,
            answer,
        };
        match self.store.rotate(&request).await.map_err(store_error)? {
            Rotation::Rotated => {
                tracing::debug!(domain_id = %domain_id, user_id = %claims.principal_id, "token refreshed");
                metrics::counter!("tokengate_tokens_refreshed_total").increment(1);
                Ok(pair)
            }
            Rotation::Duplicate(sealed) => {
                metrics::counter!("tokengate_refresh_duplicates_in_grace_total").increment(1);
                let plain = secrets::open(&claims.one_time_key, &sealed)
                    .ok_or(TokenError::InvalidRefreshToken)?;
                serde_json::from_slice(&plain).map_err(|_| TokenError::InvalidRefreshToken)
            }
            Rotation::ReuseDetected => {
                tracing::warn!(
                    audit = "reuse_detected",
                    domain_id = %domain_id,
                    user_id = %claims.principal_id,
                    "refresh token reused: family revoked"
                );
                metrics::counter!("tokengate_refresh_reuse_detected_total").increment(1);
                metrics::counter!("tokengate_families_revoked_total", "reason" => "reuse")
                    .increment(1);
                Err(TokenError::InvalidRefreshToken)
            }
            Rotation::PasswordChanged => {
                tracing::warn!(
                    audit = "family_revoked",
                    reason = "password_changed",
                    domain_id = %domain_id,
                    user_id = %claims.principal_id,
                    "password changed since issue: family revoked"
                );
                metrics::counter!("tokengate_families_revoked_total", "reason" => "password_changed").increment(1);
                Err(TokenError::InvalidRefreshToken)
            }
            Rotation::Invalid => Err(TokenError::InvalidRefreshToken),
        }
    }

    async fn revoke(&self, family: &FamilyRef, reason: &'static str) -> Result<(), TokenError> {
        tracing::warn!(
            audit = "family_revoked",
            reason,
            domain_id = %family.domain_id,
            user_id = %family.principal_id,
            "refresh family revoked"
        );
        metrics::counter!("tokengate_families_revoked_total", "reason" => reason).increment(1);
        self.store.revoke_family(family).await.map_err(store_error)
    }

    /// Ends every refresh family of a principal (`tokengate revoke --user`).
    pub async fn revoke_principal(
        &self,
        domain_id: &str,
        principal_id: &str,
    ) -> Result<(), TokenError> {
        self.store
            .revoke_principal(
                domain_id,
                principal_id,
                now_ms(),
                self.settings.absolute_timeout * 1000,
            )
            .await
            .map_err(store_error)
    }

    /// Ends the family of a refresh token (`tokengate revoke --token`). The
    /// token must verify (it may be expired or spent).
    pub async fn revoke_token(&self, token: &str) -> Result<FamilyRef, TokenError> {
        let routing: UnverifiedRouting =
            decode_unverified_claims(token).map_err(|_| TokenError::CannotDecodeToken)?;
        let domain_id = match routing.domain_id {
            Some(serde_json::Value::String(d)) if !d.is_empty() => d,
            _ => return Err(TokenError::EmptyDomainId),
        };
        let keys = self.keys.load();
        let claims: RefreshClaims = keys
            .domain(&domain_id)
            .ok_or(TokenError::TokenValidationFailed)?
            .refresh
            .verify(token)
            .map_err(|_| TokenError::TokenValidationFailed)?;
        let family = FamilyRef {
            family_id: claims.family_id,
            domain_id,
            principal_id: claims.principal_id,
        };
        self.store
            .revoke_family(&family)
            .await
            .map_err(store_error)?;
        Ok(family)
    }

    fn mint(&self, m: &Mint<'_>) -> Result<(TokenPair, RefreshClaims), TokenError> {
        let _span = tracing::info_span!("sign").entered();
        let user_type = user_type_claim(m.principal.kind).to_owned();
        let must_update_password = m
            .principal
            .required_actions
            .iter()
            .any(|a| a == "UPDATE_PASSWORD");
        let access = AccessClaims {
            category: TokenCategory::Access,
            user_type: user_type.clone(),
            domain_id: m.domain_id.to_owned(),
            principal_id: m.principal.id.clone(),
            issued_at: m.now_secs,
            expires_at: (m.now_secs + m.access_lifetime).min(m.family_end_secs),
            issuer: self.settings.issuer.clone(),
            token_id: secrets::new_id(),
            permissions: must_update_password.then(|| {
                vec![
                    "identity.User.get".to_owned(),
                    "identity.User.update".to_owned(),
                ]
            }),
        };
        let refresh = RefreshClaims {
            category: TokenCategory::Refresh,
            user_type,
            domain_id: m.domain_id.to_owned(),
            principal_id: m.principal.id.clone(),
            issued_at: m.now_secs,
            expires_at: (m.now_secs + self.settings.refresh_timeout).min(m.family_end_secs),
            issuer: self.settings.issuer.clone(),
            one_time_key: secrets::new_refresh_key(),
            refreshes_left: m.refresh_ttl,
            family_id: m.family_id.clone(),
            family_end: m.family_end_secs,
        };
        let signing_failed = |_| TokenError::Internal {
            detail: "signing failed",
        };
        let pair = TokenPair {
            access_token: m.keys.access.sign(&access).map_err(signing_failed)?,
            refresh_token: m.keys.refresh.sign(&refresh).map_err(signing_failed)?,
        };
        Ok((pair, refresh))
    }
}
