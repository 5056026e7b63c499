//! `Token.refresh`: SPEC §2 refresh rules 1–4, as four named steps.
//!
//! 1. [`verify_presented`]: the token is a refresh token we signed (or
//!    SpaceONE did, before the move: see `adoption`), for a known domain,
//!    not expired (refresh rule 1);
//! 2. `check_principal`: refreshes are left and the principal may still
//!    log in (refresh rule 3), else its family ends;
//! 3. `rotate`: mint the successor pair, then spend the presented key in
//!    the store, atomically (refresh rules 2 and 4);
//! 4. [`record_outcome`]: answer what the store decided, and leave an
//!    audit line and a metric for it.
//!
//! The steps run in this order and each stops at its first refusal, so the
//! error a client sees for a token with several faults is fixed: the rules
//! tests (`tests/rules.rs`) pin that precedence.

use std::borrow::Cow;

use tokengate_directory::{Directory, Domain, DomainState, Principal, PrincipalState, UserType};
use tokengate_keys::{DomainKeys, KeyRing, UnverifiedToken};
use tokengate_store::{FamilyRecord, FamilyRef, RotateRequest, Rotation, SessionOrigin};

use super::adoption::adopted_claims;
use super::minting::Mint;
use super::revocation::family_ended;
use super::{TokenPair, TokenService, TokenSettings, now_ms, principal_kind, shown, store_error};
use crate::claims::UnverifiedRouting;
use crate::{RefreshClaims, TokenError, secrets};

/// A refresh token that passed refresh rule 1, with what the later steps
/// need from it.
struct Presented<'a> {
    /// The domain it names, as the directory has it now.
    domain: &'a Domain,
    /// That domain's keys: they verified this token and sign its successor.
    keys: &'a DomainKeys,
    /// The domain id, from the claim that chose the keys.
    domain_id: String,
    /// The claims, trusted: the signature verified.
    claims: RefreshClaims,
    /// When the token was verified, unix ms: the one "now" of this refresh.
    now_ms: u64,
    /// For a refresh token SpaceONE minted (no `kid`, verified by a key
    /// imported from SpaceONE): when the family it adopts counts as
    /// issued, unix ms. `None` for our own tokens.
    adopted_at_ms: Option<u64>,
}

impl Presented<'_> {
    /// The family this token belongs to, as the store names it.
    fn family(&self) -> FamilyRef {
        FamilyRef {
            family_id: self.claims.family_id.clone(),
            domain_id: self.domain_id.clone(),
            principal_id: self.claims.principal_id.clone(),
        }
    }
}

impl TokenService {
    /// `Token.refresh`: SPEC §2 refresh rules 1–4. `token` is the refresh
    /// token from metadata or headers, `None` when absent.
    pub async fn refresh(&self, token: Option<&str>) -> Result<TokenPair, TokenError> {
        // Refresh rule 1: "Absent → UNAUTHENTICATED ERROR_INVALID_REFRESH_TOKEN".
        let token = token.ok_or(TokenError::InvalidRefreshToken)?;
        // A database directory's snapshot may be too stale to judge the
        // principal (its source decides: README, "Directories").
        self.directory_for_refresh()?;
        let directory = self.directory.load();
        let keys = self.keys.load();
        let presented = verify_presented(token, &directory, &keys, &self.settings)?;
        let principal = self.check_principal(&presented).await?;
        let (pair, rotation) = self.rotate(&presented, &principal).await?;
        record_outcome(&presented, pair, rotation)
    }

    /// Step 2, refresh rule 3: refreshes are left, and the principal, looked
    /// up again, may still log in; a principal gone or disabled ends the
    /// family before the refusal is answered.
    async fn check_principal<'a>(
        &self,
        presented: &Presented<'a>,
    ) -> Result<Cow<'a, Principal>, TokenError> {
        let claims = &presented.claims;
        // Refresh rule 3: "`ttl` 0 → ERROR_REFRESH_COUNT".
        if claims.refreshes_left == 0 {
            return Err(TokenError::RefreshCountExhausted);
        }
        // Issue rule 2 holds for the whole session: "disabled domain →
        // UNAUTHENTICATED ERROR_DOMAIN_STATE".
        if presented.domain.state == DomainState::Disabled {
            return Err(TokenError::DomainState {
                domain_id: presented.domain_id.clone(),
            });
        }
        let kind = principal_kind(&claims.user_type).ok_or(TokenError::InvalidRefreshToken)?;
        // Refresh rule 3: "the family is revoked when: it is gone
        // (INVALID_ARGUMENT ERROR_NOT_FOUND, as SpaceONE)".
        // A remote directory (LDAP) is asked again; a snapshot answers here.
        let found = match &self.remote {
            Some(remote) => remote
                .lookup(&presented.domain_id, kind, &claims.principal_id)
                .await
                .map_err(super::directory_error)?
                .map(Cow::Owned),
            None => presented
                .domain
                .principal(kind, &claims.principal_id)
                .map(Cow::Borrowed),
        };
        let Some(principal) = found else {
            self.revoke(&presented.family(), "principal_removed")
                .await?;
            return Err(TokenError::NotFound {
                key: "user_id",
                value: shown(&claims.principal_id),
            });
        };
        // Refresh rule 3: "… no longer ENABLED (UNAUTHENTICATED
        // ERROR_USER_STATUS_CHECK_FAILURE)"; an API user may not hold a
        // session either (issue rule 4).
        if principal.state != PrincipalState::Enabled || principal.user_type == UserType::ApiUser {
            self.revoke(&presented.family(), "principal_disabled")
                .await?;
            return Err(TokenError::UserStatus {
                user_id: shown(&claims.principal_id),
            });
        }
        Ok(principal)
    }

    /// Step 3, refresh rules 2 and 4: mints the successor pair, then has
    /// the store spend the presented key atomically. The pair is minted
    /// first because the store keeps it (sealed) for duplicates in the same
    /// atomic step that spends the key, and because a signing failure must
    /// not cost the client a token that is still unspent. It is handed out
    /// only if the store says this call won.
    async fn rotate(
        &self,
        presented: &Presented<'_>,
        principal: &Principal,
    ) -> Result<(TokenPair, Rotation), TokenError> {
        let claims = &presented.claims;
        let now_secs = presented.now_ms / 1000;
        // Refresh rule 4: "A family never outlives `token.absolute_timeout`
        // from its issue, however often it is refreshed."
        if now_secs >= claims.family_end {
            return Err(TokenError::InvalidRefreshToken);
        }
        // Refresh rule 4: "the new refresh token has `ttl - 1`, the same
        // family; the access token lives `access_timeout` … both cut at the
        // family's absolute end".
        let (pair, successor) = self.mint(&Mint {
            keys: presented.keys,
            domain_id: &presented.domain_id,
            principal,
            now_secs,
            access_lifetime: self.settings.access_timeout,
            refreshes_left: claims.refreshes_left - 1,
            family_id: &claims.family_id,
            family_end: claims.family_end,
            // The successor is the family's next generation; the store
            // advances its record to it only if this call wins.
            generation: claims.generation.saturating_add(1),
        })?;
        let grace_ms = self.settings.reuse_grace * 1000;
        // The store keeps the answer for the grace window, and, when it
        // confirms replication, for the client's retry after an
        // unconfirmed rotation (SPEC §3: the client keeps its token after
        // UNAVAILABLE).
        let keep_answer = grace_ms > 0 || self.store.keeps_answers();
        let request = RotateRequest {
            family: presented.family(),
            presented: secrets::key_id(&claims.one_time_key),
            presented_generation: claims.generation,
            presented_expires_at_ms: claims.expires_at * 1000,
            successor: secrets::key_id(&successor.one_time_key),
            successor_expires_at_ms: successor.expires_at * 1000,
            // Refresh rule 3: "… or its password changed since the family
            // was issued": the store compares and revokes atomically.
            password_fingerprint: principal.password_hash.fingerprint(),
            now_ms: presented.now_ms,
            grace_ms,
            answer: sealed_answer(&claims.one_time_key, &pair, keep_answer)?,
        };
        let rotation = match presented.adopted_at_ms {
            None => self.store.rotate(&request).await,
            // A SpaceONE token: its family starts in the same atomic step
            // that spends it (rotation rule 0), so one round trip still.
            Some(issued_at_ms) => {
                let family = FamilyRecord {
                    family: presented.family(),
                    issued_at_ms,
                    expires_at_ms: claims.family_end * 1000,
                    password_fingerprint: request.password_fingerprint,
                    origin: SessionOrigin::default(),
                };
                self.store.adopt(&family, &request).await
            }
        }
        .map_err(store_error)?;
        Ok((pair, rotation))
    }
}

/// Step 1, refresh rule 1: decodes the token, picks its domain's keys by
/// the unverified `did`, verifies the signature, then judges `exp` and
/// `cat`. The claims are trusted only once the signature verified.
fn verify_presented<'a>(
    token: &str,
    directory: &'a Directory,
    keys: &'a KeyRing,
    settings: &TokenSettings,
) -> Result<Presented<'a>, TokenError> {
    // "empty or not a JWT → ERROR_AUTHENTICATE_FAILURE (Cannot decode
    // token.)". Decoded once: the same parse serves every claim read below.
    let unverified = UnverifiedToken::parse(token).map_err(|_| TokenError::CannotDecodeToken)?;
    let mut routing: UnverifiedRouting = unverified
        .claims()
        .map_err(|_| TokenError::CannotDecodeToken)?;
    // "no `did` → (Empty domain_id provided.)"
    let domain_id = routing.take_domain_id()?;
    // "a `did` naming an unknown domain → INVALID_ARGUMENT ERROR_NOT_FOUND"
    let domain = directory
        .domain(&domain_id)
        .ok_or_else(|| TokenError::NotFound {
            key: "domain_id",
            value: shown(&domain_id),
        })?;
    // "bad signature, wrong `alg`, unknown `kid` or expired →
    // ERROR_AUTHENTICATE_FAILURE (Token validation failed) — an access
    // token lands here too, as in SpaceONE, since no refresh key verifies
    // it".
    let domain_keys = keys
        .domain(&domain_id)
        .ok_or(TokenError::TokenValidationFailed)?;
    // A token without a `kid` is one SpaceONE minted before the move: only
    // the keys imported from SpaceONE may verify it, never one tokengate
    // generated; a token with a `kid` is verified by the key it names.
    let spaceone = unverified.kid().is_none();
    if spaceone {
        domain_keys.refresh.verify_spaceone_token(&unverified)
    } else {
        domain_keys.refresh.verify_token(&unverified)
    }
    .map_err(|_| TokenError::TokenValidationFailed)?;
    let now_ms = now_ms();
    if routing
        .expires_at
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .is_none_or(|exp| exp <= now_ms / 1000)
    {
        return Err(TokenError::TokenValidationFailed);
    }
    // "a verified token whose `cat` is not `REFRESH_TOKEN` →
    // ERROR_INVALID_REFRESH_TOKEN"
    if routing
        .category
        .as_ref()
        .and_then(serde_json::Value::as_str)
        != Some("REFRESH_TOKEN")
    {
        return Err(TokenError::InvalidRefreshToken);
    }
    let (claims, adopted_at_ms) = if spaceone {
        let adopted = adopted_claims(&unverified, &domain_id, now_ms / 1000, settings)?;
        (adopted.claims, Some(adopted.issued_at_ms))
    } else {
        let claims: RefreshClaims = unverified
            .claims()
            .map_err(|_| TokenError::InvalidRefreshToken)?;
        (claims, None)
    };
    // For the access line and traces (fields of the transport's call span).
    tracing::Span::current()
        .record("domain_id", domain_id.as_str())
        .record("user_id", claims.principal_id.as_str());
    Ok(Presented {
        domain,
        keys: domain_keys,
        domain_id,
        claims,
        now_ms,
        adopted_at_ms,
    })
}

/// The winner's answer as the store keeps it for duplicates inside the
/// grace window (refresh rule 2) and for a retry of an unconfirmed
/// rotation: sealed with the presented token's one-time key, so only a
/// holder of that token can read it back (SPEC §3: "stored encrypted").
/// Empty when the store keeps none.
fn sealed_answer(one_time_key: &str, pair: &TokenPair, keep: bool) -> Result<Vec<u8>, TokenError> {
    if !keep {
        return Ok(Vec::new());
    }
    let plain = serde_json::to_vec(pair).map_err(|_| TokenError::Internal {
        detail: "cannot encode answer",
    })?;
    secrets::seal(one_time_key, &plain).ok_or(TokenError::Internal {
        detail: "cannot seal answer",
    })
}

/// A kept answer, opened with the presented token's one-time key.
fn open_answer(presented: &Presented<'_>, sealed: &[u8]) -> Result<TokenPair, TokenError> {
    let plain = secrets::open(&presented.claims.one_time_key, sealed)
        .ok_or(TokenError::InvalidRefreshToken)?;
    serde_json::from_slice(&plain).map_err(|_| TokenError::InvalidRefreshToken)
}

/// Step 4, refresh rule 2's outcomes: this call's pair if it won, the
/// winner's pair for a duplicate inside the grace window, and
/// `ERROR_INVALID_REFRESH_TOKEN` for anything else, with an audit line
/// whenever the store ended the family.
fn record_outcome(
    presented: &Presented<'_>,
    pair: TokenPair,
    rotation: Rotation,
) -> Result<TokenPair, TokenError> {
    let (domain_id, user_id) = (&presented.domain_id, &presented.claims.principal_id);
    match rotation {
        Rotation::Rotated => {
            if presented.adopted_at_ms.is_some() {
                // Rotation rule 0: a SpaceONE token started its family.
                tracing::info!(audit = "family_adopted", domain_id = %domain_id, user_id = %user_id, "family adopted");
                metrics::counter!("tokengate_families_adopted_total").increment(1);
            }
            tracing::debug!(domain_id = %domain_id, user_id = %user_id, "token refreshed");
            metrics::counter!("tokengate_tokens_refreshed_total").increment(1);
            Ok(pair)
        }
        // "unless the reuse falls inside `token.reuse_grace` of the winning
        // refresh, in which case the caller gets the same answer the winner
        // got".
        Rotation::Duplicate(sealed) => {
            metrics::counter!("tokengate_refresh_duplicates_in_grace_total").increment(1);
            open_answer(presented, &sealed)
        }
        // SPEC §3: the client kept its token after an UNAVAILABLE; its
        // rotation is now confirmed, so it gets that rotation's answer.
        Rotation::Retried(sealed) => {
            tracing::debug!(domain_id = %domain_id, user_id = %user_id, "unconfirmed refresh answered on retry");
            metrics::counter!("tokengate_refresh_retries_answered_total").increment(1);
            open_answer(presented, &sealed)
        }
        // "Already consumed or revoked → ERROR_INVALID_REFRESH_TOKEN, and —
        // reuse detection — the whole family … is revoked".
        Rotation::ReuseDetected => {
            metrics::counter!("tokengate_refresh_reuse_detected_total").increment(1);
            family_ended(
                "reuse",
                domain_id,
                user_id,
                "refresh token reused: family revoked",
            );
            Err(TokenError::InvalidRefreshToken)
        }
        // SPEC §3: "A token the store has never seen for a live family (a
        // write lost in a Redis failover) ends that family, fail closed."
        // Counted apart from reuse: it says the store lost writes.
        Rotation::Diverged => {
            family_ended(
                "diverged",
                domain_id,
                user_id,
                "refresh token unknown to its family's record (a lost store write): family revoked",
            );
            Err(TokenError::InvalidRefreshToken)
        }
        // Refresh rule 3: "its password changed since the family was issued
        // (UNAUTHENTICATED ERROR_INVALID_REFRESH_TOKEN)".
        Rotation::PasswordChanged => {
            family_ended(
                "password_changed",
                domain_id,
                user_id,
                "password changed since issue: family revoked",
            );
            Err(TokenError::InvalidRefreshToken)
        }
        Rotation::Invalid => Err(TokenError::InvalidRefreshToken),
    }
}
