//! Refresh tokens SpaceONE minted before the move (`tokengate import
//! spaceone`): signed with the domain's imported `refresh_prv_jwk`, RS256,
//! with no `kid` in the header and SpaceONE 1.x's claims (`cat`,
//! `user_type`, `did`, `aud`, `iat`, `exp`, `key`, `ttl`: no `fam`, `fex`
//! or `gen`). Such a token refreshes once more, on tokengate, and starts a
//! family of its own (rotation rule 0); its replay is reuse.
//!
//! What the adopted family is:
//!
//! - its id is derived from the token's domain, principal and one-time
//!   `key`, so every copy of the token names the same family;
//! - it counts as issued at the token's `iat`, and ends at
//!   `min(iat, now) + token.absolute_timeout`: SpaceONE's session began no
//!   later than its newest refresh token, so no session lives longer on
//!   tokengate than `absolute_timeout` from then;
//! - its refreshes left are the token's `ttl`, at most `token.refresh_ttl`;
//!   SpaceONE's default `ttl` of -1 (unlimited) becomes `token.refresh_ttl`,
//!   and 0 is `ERROR_REFRESH_COUNT` as for our own tokens.

use serde::Deserialize;
use tokengate_keys::UnverifiedToken;

use super::TokenSettings;
use crate::claims::TokenCategory;
use crate::{RefreshClaims, TokenError, secrets};

/// A SpaceONE 1.x refresh token's claims (its `JWTManager.
/// issue_refresh_token`). Read only after the signature verified.
#[derive(Debug, Deserialize)]
struct SpaceOneRefreshClaims {
    /// `user_type`: `USER` or `DOMAIN_OWNER`.
    user_type: String,
    /// `aud`: the user or owner id.
    aud: String,
    /// `iat`: when SpaceONE minted it, unix seconds.
    iat: u64,
    /// `exp`: when it expires, unix seconds.
    exp: u64,
    /// `key`: SpaceONE's one-time refresh key (16 random characters).
    key: String,
    /// `ttl`: refreshes left; negative is SpaceONE's "unlimited".
    ttl: i64,
}

/// A SpaceONE token, read as the generation 0 of the family it adopts.
pub(super) struct Adopted {
    /// Its claims in tokengate's terms.
    pub claims: RefreshClaims,
    /// When the adopted family counts as issued, unix ms (the token's `iat`).
    pub issued_at_ms: u64,
}

/// The claims of a verified SpaceONE refresh token of `domain_id`, as
/// tokengate's own claims of the family it adopts. A token whose claims
/// are not SpaceONE's is `ERROR_INVALID_REFRESH_TOKEN`.
pub(super) fn adopted_claims(
    token: &UnverifiedToken<'_>,
    domain_id: &str,
    now_secs: u64,
    settings: &TokenSettings,
) -> Result<Adopted, TokenError> {
    let spaceone: SpaceOneRefreshClaims = token
        .claims()
        .map_err(|_| TokenError::InvalidRefreshToken)?;
    if spaceone.key.is_empty() || spaceone.aud.is_empty() {
        return Err(TokenError::InvalidRefreshToken);
    }
    // Negative is SpaceONE's unlimited (its default, -1): bounded here.
    let refreshes_left = u32::try_from(spaceone.ttl)
        .map_or(settings.refresh_ttl, |ttl| ttl.min(settings.refresh_ttl));
    let family_id = secrets::adopted_family_id(domain_id, &spaceone.aud, &spaceone.key);
    Ok(Adopted {
        issued_at_ms: spaceone.iat.min(now_secs) * 1000,
        claims: RefreshClaims {
            category: TokenCategory::Refresh,
            user_type: spaceone.user_type,
            domain_id: domain_id.to_owned(),
            principal_id: spaceone.aud,
            issued_at: spaceone.iat,
            expires_at: spaceone.exp,
            issuer: String::new(),
            one_time_key: spaceone.key,
            refreshes_left,
            family_id,
            family_end: spaceone.iat.min(now_secs) + settings.absolute_timeout,
            generation: 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn token(claims: serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{claims}.c2ln")
    }

    #[test]
    fn spaceone_claims_become_generation_zero_of_a_derived_family() {
        let settings = TokenSettings::default();
        let text = token(serde_json::json!({
            "cat": "REFRESH_TOKEN", "user_type": "USER", "did": "d", "aud": "alice",
            "iat": 1_000, "exp": 4_600, "key": "abcdefghijklmnop", "ttl": -1
        }));
        let parsed = UnverifiedToken::parse(&text).expect("parse");
        let adopted = adopted_claims(&parsed, "d", 2_000, &settings).expect("claims");
        let claims = &adopted.claims;
        assert_eq!(claims.refreshes_left, settings.refresh_ttl);
        assert_eq!(claims.generation, 0);
        assert_eq!(claims.family_end, 1_000 + settings.absolute_timeout);
        assert_eq!(adopted.issued_at_ms, 1_000_000);
        // The same token always names the same family; another key does not.
        let again = adopted_claims(&parsed, "d", 3_000, &settings).expect("claims");
        assert_eq!(again.claims.family_id, claims.family_id);
        let other = token(serde_json::json!({
            "cat": "REFRESH_TOKEN", "user_type": "USER", "did": "d", "aud": "alice",
            "iat": 1_000, "exp": 4_600, "key": "another-key-0000", "ttl": 3
        }));
        let other = UnverifiedToken::parse(&other).expect("parse");
        let other = adopted_claims(&other, "d", 2_000, &settings).expect("claims");
        assert_ne!(other.claims.family_id, claims.family_id);
        assert_eq!(other.claims.refreshes_left, 3);
        // Not SpaceONE's claims: refused.
        let ours = token(serde_json::json!({"cat": "REFRESH_TOKEN", "did": "d"}));
        let ours = UnverifiedToken::parse(&ours).expect("parse");
        assert!(matches!(
            adopted_claims(&ours, "d", 2_000, &settings),
            Err(TokenError::InvalidRefreshToken)
        ));
    }
}
