//! `Token.refresh`: SPEC §2 refresh rules 1–4.

use tokengate_directory::{DomainState, PrincipalState, UserType};
use tokengate_keys::UnverifiedToken;
use tokengate_store::{FamilyRef, RotateRequest, Rotation};

use super::minting::Mint;
use super::{TokenPair, TokenService, now_ms, principal_kind, shown, store_error};
use crate::claims::UnverifiedRouting;
use crate::{RefreshClaims, TokenError, secrets};

impl TokenService {
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
}
