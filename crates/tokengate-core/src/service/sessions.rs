//! Sessions: a user ends their own (logout, one by id, all but the current
//! one), sees where they are signed in, a domain owner ends a user's, and
//! resource servers ask whether a token still holds (introspection).
//!
//! A session is a refresh family: it begins at login, its refresh tokens
//! carry its id in `fam`, its access tokens in `sid`. Ending one is what
//! reuse detection does to a family: its refresh tokens stop refreshing
//! (rotation rule 2), and introspection answers `active: false` for its
//! tokens from the next call on. Access tokens themselves are not recalled:
//! a verifier that does not introspect accepts them until their `exp`.
//!
//! Who may do what:
//!
//! - `revoke` (RFC 7009): whoever holds a refresh or access token ends its
//!   family. Any token that does not verify, has expired or whose family is
//!   already over changes nothing and is answered the same success, so the
//!   call tells nothing about a token.
//! - `list`, `end`, `end_others`: the holder of a verified, unexpired access
//!   token whose session is live, for their own sessions only (the store
//!   looks ids up under the caller's domain and principal).
//! - `revoke_user`: the same, with a `DOMAIN_OWNER` access token, for any
//!   user of the owner's domain.
//! - `introspect`: a configured client (id and secret) or a configured
//!   service account (its access token); anyone else is UNAUTHENTICATED.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokengate_keys::{KeyRing, UnverifiedToken};
use tokengate_store::{FamilyRef, SessionInfo, SessionSelector};

use super::revocation::sessions_ended;
use super::{TokenService, now_ms, shown, store_error};
use crate::claims::UnverifiedRouting;
use crate::{AccessClaims, RefreshClaims, TokenError};

/// A client allowed to introspect with a secret: `Authorization: Basic
/// base64(id:secret)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionClient {
    /// The client id.
    pub id: String,
    /// SHA-256 of the secret (secrets are long random strings, so a fast
    /// digest is enough, and a call costs no password hashing).
    pub secret_sha256: [u8; 32],
}

/// Who may call `introspect` (`[introspection]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntrospectionSettings {
    /// Clients with a secret.
    pub clients: Vec<IntrospectionClient>,
    /// Service accounts as (domain id, user id): a live access token of one
    /// of them, as `Authorization: Bearer`, may introspect.
    pub service_accounts: Vec<(String, String)>,
}

/// A session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// What the store keeps of it.
    pub info: SessionInfo,
    /// Whether it is the session of the access token that asked.
    pub current: bool,
}

/// What `introspect` answers (RFC 7662's shape).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Introspection {
    /// Whether the token verifies, has not expired and its session holds.
    /// Nothing else is filled in when it is false.
    pub active: bool,
    /// `access_token` or `refresh_token`.
    pub token_type: &'static str,
    /// The `did` claim.
    pub domain_id: String,
    /// The `aud` claim: the user or owner id.
    pub user_id: String,
    /// The `user_type` claim.
    pub user_type: String,
    /// The `iss` claim.
    pub issuer: String,
    /// The `jti` claim (access tokens).
    pub token_id: String,
    /// The session (family) id.
    pub session_id: String,
    /// The `iat` claim, unix seconds.
    pub issued_at: u64,
    /// The `exp` claim, unix seconds.
    pub expires_at: u64,
    /// The `permissions` claim, when the token carries one.
    pub permissions: Vec<String>,
}

/// How an introspection caller authenticates, as the transport found it
/// in the `authorization` metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerCredentials {
    /// None at all, or a scheme other than Basic and Bearer.
    Missing,
    /// `Basic base64(id:secret)`, the base64 still encoded.
    Basic(String),
    /// `Bearer <access token>`.
    Bearer(String),
}

/// The most characters of a session id a caller may send: ids are 22
/// characters; anything much longer is no id of ours.
const MAX_SESSION_ID_CHARS: usize = 64;

/// The most `end_sessions` calls one request makes (each ends up to a
/// thousand sessions on Redis).
const MAX_END_ROUNDS: usize = 64;

/// A verified, unexpired access token and its live session: who calls.
struct Caller {
    /// Its claims.
    claims: AccessClaims,
    /// Its session id (`sid`).
    session_id: String,
}

impl Caller {
    /// The caller's session, as the store names it.
    fn family(&self) -> FamilyRef {
        FamilyRef {
            family_id: self.session_id.clone(),
            domain_id: self.claims.domain_id.clone(),
            principal_id: self.claims.principal_id.clone(),
        }
    }
}

/// Either kind of token, verified.
enum Verified {
    /// An access token.
    Access(AccessClaims),
    /// A refresh token.
    Refresh(RefreshClaims),
}

/// Verifies `token` by its own domain's keys, of either purpose, and
/// checks its expiry at `now_secs`: the claims, or `None` for anything
/// that is not a live token we signed.
fn verify_any(keys: &KeyRing, token: &str, now_secs: u64) -> Option<Verified> {
    let unverified = UnverifiedToken::parse(token).ok()?;
    let mut routing: UnverifiedRouting = unverified.claims().ok()?;
    let domain_id = routing.take_domain_id().ok()?;
    let domain_keys = keys.domain(&domain_id)?;
    let verified = if domain_keys.access.verify_token(&unverified).is_ok() {
        Verified::Access(unverified.claims().ok()?)
    } else if domain_keys.refresh.verify_token(&unverified).is_ok() {
        Verified::Refresh(unverified.claims().ok()?)
    } else {
        return None;
    };
    let (expires_at, domain_in_claims) = match &verified {
        Verified::Access(c) => (c.expires_at, &c.domain_id),
        Verified::Refresh(c) => (c.expires_at, &c.domain_id),
    };
    (expires_at > now_secs && *domain_in_claims == domain_id).then_some(verified)
}

impl TokenService {
    /// `Session.revoke` (logout, RFC 7009): ends the session of `token`, a
    /// refresh or access token. Answers `Ok` for every token that is
    /// present — one that does not verify, has expired, or whose session
    /// already ended changes nothing — so the answer tells nothing about
    /// the token. Only an absent token is refused (UNAUTHENTICATED, like
    /// every call without its credentials).
    pub async fn revoke_session(&self, token: Option<&str>) -> Result<(), TokenError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::EmptyToken)?;
        let now = now_ms();
        let keys = self.keys.load();
        let Some(verified) = verify_any(&keys, token, now / 1000) else {
            tracing::debug!("revoke: not a live token of ours; nothing to do");
            return Ok(());
        };
        let family = match verified {
            Verified::Access(c) => {
                let Some(family_id) = c.session_id else {
                    return Ok(());
                };
                FamilyRef {
                    family_id,
                    domain_id: c.domain_id,
                    principal_id: c.principal_id,
                }
            }
            Verified::Refresh(c) => FamilyRef {
                family_id: c.family_id,
                domain_id: c.domain_id,
                principal_id: c.principal_id,
            },
        };
        tracing::Span::current()
            .record("domain_id", family.domain_id.as_str())
            .record("user_id", family.principal_id.as_str());
        let ended = self
            .store
            .end_sessions(
                &family.domain_id,
                &family.principal_id,
                &SessionSelector::One(family.family_id.clone()),
                now,
            )
            .await
            .map_err(store_error)?;
        sessions_ended(
            "logout",
            &family.principal_id,
            &family.domain_id,
            &family.principal_id,
            ended.len(),
        );
        Ok(())
    }

    /// `Session.list`: the caller's live sessions, oldest login first, the
    /// caller's own marked.
    pub async fn list_sessions(&self, access: Option<&str>) -> Result<Vec<Session>, TokenError> {
        let caller = self.caller(access).await?;
        let sessions = self
            .store
            .list_sessions(
                &caller.claims.domain_id,
                &caller.claims.principal_id,
                now_ms(),
            )
            .await
            .map_err(store_error)?;
        Ok(sessions
            .into_iter()
            .map(|info| Session {
                current: info.family_id == caller.session_id,
                info,
            })
            .collect())
    }

    /// `Session.end`: ends one of the caller's sessions by id (its own
    /// included: that is a logout). An id that is not one of the caller's
    /// live sessions is `ERROR_NOT_FOUND`, whoever's it may be.
    pub async fn end_session(
        &self,
        access: Option<&str>,
        session_id: &str,
    ) -> Result<u32, TokenError> {
        if session_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "session_id" });
        }
        let caller = self.caller(access).await?;
        let not_found = || TokenError::NotFound {
            key: "session_id",
            value: shown(session_id),
        };
        if session_id.chars().count() > MAX_SESSION_ID_CHARS {
            return Err(not_found());
        }
        let ended = self
            .end(
                &caller,
                &caller.claims.principal_id,
                SessionSelector::One(session_id.to_owned()),
                "user",
            )
            .await?;
        if ended == 0 {
            return Err(not_found());
        }
        Ok(ended)
    }

    /// `Session.end_others`: ends every session of the caller but the one
    /// it calls from.
    pub async fn end_other_sessions(&self, access: Option<&str>) -> Result<u32, TokenError> {
        let caller = self.caller(access).await?;
        let keep = SessionSelector::AllBut(caller.session_id.clone());
        self.end(&caller, &caller.claims.principal_id, keep, "user")
            .await
    }

    /// `Session.revoke_user` (admin): a `DOMAIN_OWNER` of the domain ends
    /// every session of one of its users, as `tokengate revoke --domain D
    /// --user U` does.
    pub async fn revoke_user_sessions(
        &self,
        access: Option<&str>,
        user_id: &str,
    ) -> Result<u32, TokenError> {
        let caller = self.caller(access).await?;
        if caller.claims.user_type != "DOMAIN_OWNER" {
            return Err(TokenError::PermissionDenied);
        }
        if user_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "user_id" });
        }
        let ended = self
            .end(&caller, user_id, SessionSelector::All, "admin")
            .await?;
        // The marker also ends what the index does not name: families
        // started before it existed, or beyond what one call ends. It
        // reaches a millisecond back, so a login answered after this call
        // in the same millisecond is not caught by it (whatever started
        // before is in the index and ended above).
        self.store
            .revoke_principal(
                &caller.claims.domain_id,
                user_id,
                now_ms().saturating_sub(1),
                self.settings.absolute_timeout * 1000,
            )
            .await
            .map_err(store_error)?;
        Ok(ended)
    }

    /// `Session.introspect` (RFC 7662): whether `token` (access or
    /// refresh) verifies, has not expired and its session holds, with its
    /// claims if so. A spent refresh token is not active. The caller must
    /// authenticate as a configured client or service account.
    pub async fn introspect(
        &self,
        credentials: &CallerCredentials,
        token: &str,
    ) -> Result<Introspection, TokenError> {
        self.authorize_introspection(credentials).await?;
        if token.is_empty() {
            return Err(TokenError::RequiredParameter { key: "token" });
        }
        let now = now_ms();
        let keys = self.keys.load();
        let inactive = Introspection::default();
        let Some(verified) = verify_any(&keys, token, now / 1000) else {
            return Ok(inactive);
        };
        let answer = match verified {
            Verified::Access(c) => {
                let Some(session_id) = c.session_id.clone() else {
                    return Ok(inactive);
                };
                let family = FamilyRef {
                    family_id: session_id.clone(),
                    domain_id: c.domain_id.clone(),
                    principal_id: c.principal_id.clone(),
                };
                if self
                    .store
                    .session(&family, now)
                    .await
                    .map_err(store_error)?
                    .is_none()
                {
                    return Ok(inactive);
                }
                Introspection {
                    active: true,
                    token_type: "access_token",
                    domain_id: c.domain_id,
                    user_id: c.principal_id,
                    user_type: c.user_type,
                    issuer: c.issuer,
                    token_id: c.token_id,
                    session_id,
                    issued_at: c.issued_at,
                    expires_at: c.expires_at,
                    permissions: c.permissions.unwrap_or_default(),
                }
            }
            Verified::Refresh(c) => {
                let family = FamilyRef {
                    family_id: c.family_id.clone(),
                    domain_id: c.domain_id.clone(),
                    principal_id: c.principal_id.clone(),
                };
                // Only the family's current token is live: a spent one
                // would be reuse.
                let live = self
                    .store
                    .session(&family, now)
                    .await
                    .map_err(store_error)?
                    .is_some_and(|s| s.generation == c.generation);
                if !live {
                    return Ok(inactive);
                }
                Introspection {
                    active: true,
                    token_type: "refresh_token",
                    domain_id: c.domain_id,
                    user_id: c.principal_id,
                    user_type: c.user_type,
                    issuer: c.issuer,
                    token_id: String::new(),
                    session_id: c.family_id,
                    issued_at: c.issued_at,
                    expires_at: c.expires_at,
                    permissions: Vec::new(),
                }
            }
        };
        Ok(answer)
    }

    /// Ends the sessions `which` selects of `user_id` in the caller's
    /// domain, with an audit line naming the caller.
    async fn end(
        &self,
        caller: &Caller,
        user_id: &str,
        which: SessionSelector,
        reason: &'static str,
    ) -> Result<u32, TokenError> {
        let domain_id = &caller.claims.domain_id;
        let mut count = 0usize;
        // A store may end a large selection in parts: repeat until a call
        // ends nothing (bounded, so a store that misbehaves cannot spin).
        for _ in 0..MAX_END_ROUNDS {
            let ended = self
                .store
                .end_sessions(domain_id, user_id, &which, now_ms())
                .await
                .map_err(store_error)?;
            count += ended.len();
            if ended.is_empty() || matches!(which, SessionSelector::One(_)) {
                break;
            }
        }
        sessions_ended(
            reason,
            &caller.claims.principal_id,
            domain_id,
            user_id,
            count,
        );
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The caller of a session call: a verified, unexpired access token
    /// (from `token` or `authorization: Bearer`) whose session is live.
    async fn caller(&self, access: Option<&str>) -> Result<Caller, TokenError> {
        let token = access
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::EmptyToken)?;
        let claims = self.verify_access(token)?;
        tracing::Span::current()
            .record("domain_id", claims.domain_id.as_str())
            .record("user_id", claims.principal_id.as_str());
        let session_id = claims
            .session_id
            .clone()
            .ok_or(TokenError::TokenValidationFailed)?;
        let caller = Caller { claims, session_id };
        let live = self
            .store
            .session(&caller.family(), now_ms())
            .await
            .map_err(store_error)?;
        if live.is_none() {
            return Err(TokenError::SessionEnded);
        }
        Ok(caller)
    }

    /// An access token's claims, once its signature verified by its
    /// domain's access keys and its `exp` is still ahead.
    fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let unverified =
            UnverifiedToken::parse(token).map_err(|_| TokenError::CannotDecodeToken)?;
        let mut routing: UnverifiedRouting = unverified
            .claims()
            .map_err(|_| TokenError::CannotDecodeToken)?;
        let domain_id = routing.take_domain_id()?;
        let keys = self.keys.load();
        keys.domain(&domain_id)
            .ok_or(TokenError::TokenValidationFailed)?
            .access
            .verify_token(&unverified)
            .map_err(|_| TokenError::TokenValidationFailed)?;
        let claims: AccessClaims = unverified
            .claims()
            .map_err(|_| TokenError::TokenValidationFailed)?;
        if claims.expires_at <= now_ms() / 1000 || claims.domain_id != domain_id {
            return Err(TokenError::TokenValidationFailed);
        }
        Ok(claims)
    }

    /// Checks an introspection caller against `[introspection]`.
    async fn authorize_introspection(
        &self,
        credentials: &CallerCredentials,
    ) -> Result<(), TokenError> {
        let allowed = &self.settings.introspection;
        match credentials {
            CallerCredentials::Missing => Err(TokenError::IntrospectionUnauthenticated),
            CallerCredentials::Basic(encoded) => {
                let decoded = STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(TokenError::IntrospectionUnauthenticated)?;
                let (id, secret) = decoded
                    .split_once(':')
                    .ok_or(TokenError::IntrospectionUnauthenticated)?;
                let presented = digest(&SHA256, secret.as_bytes());
                let known = allowed.clients.iter().any(|c| {
                    c.id == id
                        && verify_slices_are_equal(&c.secret_sha256, presented.as_ref()).is_ok()
                });
                if known {
                    Ok(())
                } else {
                    Err(TokenError::IntrospectionUnauthenticated)
                }
            }
            CallerCredentials::Bearer(token) => {
                let caller = self.caller(Some(token)).await.map_err(|e| match e {
                    TokenError::StoreUnavailable => e,
                    _ => TokenError::IntrospectionUnauthenticated,
                })?;
                let is_account = allowed.service_accounts.iter().any(|(d, u)| {
                    *d == caller.claims.domain_id && *u == caller.claims.principal_id
                });
                if is_account {
                    Ok(())
                } else {
                    Err(TokenError::PermissionDenied)
                }
            }
        }
    }
}
