//! Ending refresh families early: one family (its principal is gone or
//! disabled at refresh, or `tokengate revoke --token`), or every family of
//! a principal (`tokengate revoke --user`). Reuse and password changes end
//! a family inside the store's rotation instead, atomically with it.

use tokengate_keys::decode_unverified_claims;
use tokengate_store::FamilyRef;

use super::{TokenService, now_ms, store_error};
use crate::claims::UnverifiedRouting;
use crate::{RefreshClaims, TokenError};

impl TokenService {
    /// Ends `family` for `reason` (an audit line, a metric), at refresh.
    pub(super) async fn revoke(
        &self,
        family: &FamilyRef,
        reason: &'static str,
    ) -> Result<(), TokenError> {
        family_ended(
            reason,
            &family.domain_id,
            &family.principal_id,
            "refresh family revoked",
        );
        self.store.revoke_family(family).await.map_err(store_error)
    }

    /// Ends every refresh family of a principal issued until now
    /// (`tokengate revoke --user`). The store keeps the marker until the
    /// last of those families' records ends (none of them refreshes again,
    /// so none outlives its newest token), never longer than
    /// `absolute_timeout`.
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
        let mut routing: UnverifiedRouting =
            decode_unverified_claims(token).map_err(|_| TokenError::CannotDecodeToken)?;
        let domain_id = routing.take_domain_id()?;
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
}

/// The audit line and the count of a family that ended for `reason` (the
/// store ended it, or [`TokenService::revoke`] is about to): one shape for
/// every reason, so dashboards and alerts see them all. No token is logged.
pub(super) fn family_ended(reason: &'static str, domain_id: &str, user_id: &str, what: &str) {
    let audit = if reason == "reuse" {
        "reuse_detected"
    } else {
        "family_revoked"
    };
    tracing::warn!(audit, reason, domain_id = %domain_id, user_id = %user_id, "{what}");
    metrics::counter!("tokengate_families_revoked_total", "reason" => reason).increment(1);
}

/// The audit line and the count of sessions a session call ended: `by`
/// (the caller's user or owner id) ended `count` sessions of `user_id` for
/// `reason` (`logout`: its own token revoked; `user`: the user ended some
/// of their own; `admin`: a domain owner ended a user's). Nothing is logged
/// when nothing ended. No token is logged.
pub(super) fn sessions_ended(
    reason: &'static str,
    by: &str,
    domain_id: &str,
    user_id: &str,
    count: usize,
) {
    if count == 0 {
        return;
    }
    tracing::warn!(
        audit = "session_revoked",
        reason,
        by = %by,
        domain_id = %domain_id,
        user_id = %user_id,
        sessions = count,
        "sessions ended"
    );
    metrics::counter!("tokengate_families_revoked_total", "reason" => reason)
        .increment(count as u64);
}
