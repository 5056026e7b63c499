//! Minting: the claims and signatures of a new access and refresh token.

use tokengate_directory::{Principal, PrincipalKind};
use tokengate_keys::DomainKeys;

use super::{TokenPair, TokenService};
use crate::{AccessClaims, RefreshClaims, TokenCategory, TokenError, secrets};

/// The `user_type` claim for a kind of principal.
fn user_type_claim(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "USER",
        PrincipalKind::DomainOwner => "DOMAIN_OWNER",
    }
}

/// Everything needed to mint one token pair.
pub(super) struct Mint<'a> {
    /// The domain's keys: access and refresh tokens sign with different ones.
    pub(super) keys: &'a DomainKeys,
    /// The `did` claim.
    pub(super) domain_id: &'a str,
    /// Whom the tokens speak for (`aud`, `user_type`, permissions).
    pub(super) principal: &'a Principal,
    /// The `iat` claim, unix seconds.
    pub(super) now_secs: u64,
    /// The access token's lifetime, seconds (cut at the family's end).
    pub(super) access_lifetime: u64,
    /// The refresh token's `ttl` claim: refreshes its family has left.
    pub(super) refreshes_left: u32,
    /// The `fam` claim.
    pub(super) family_id: &'a str,
    /// The `fex` claim, unix seconds; neither token outlives it.
    pub(super) family_end: u64,
    /// The refresh token's `gen` claim: its generation in the family.
    pub(super) generation: u64,
}

impl TokenService {
    /// Signs a new access and refresh token, each with its own key; returns
    /// the refresh token's claims too, for the store's records. Both expire
    /// by their own lifetime or at the family's end, whichever is first
    /// (refresh rule 4: "both cut at the family's absolute end"). A user
    /// whose `required_actions` hold `UPDATE_PASSWORD` gets an access token
    /// limited to changing it.
    pub(super) fn mint(&self, m: &Mint<'_>) -> Result<(TokenPair, RefreshClaims), TokenError> {
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
            expires_at: (m.now_secs + m.access_lifetime).min(m.family_end),
            issuer: self.settings.issuer.clone(),
            token_id: secrets::new_id(),
            session_id: Some(m.family_id.to_owned()),
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
            expires_at: (m.now_secs + self.settings.refresh_timeout).min(m.family_end),
            issuer: self.settings.issuer.clone(),
            one_time_key: secrets::new_refresh_key(),
            refreshes_left: m.refreshes_left,
            family_id: m.family_id.to_owned(),
            family_end: m.family_end,
            generation: m.generation,
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
