//! JWT claims. On the wire they keep SpaceONE v1's short names, which
//! existing verifiers read (`did`, `aud`, `ttl`, …); in Rust they are named
//! for what they mean. Fields serialize in declaration order, so the order
//! here is the order in every token's payload: do not reorder them.

use serde::{Deserialize, Serialize};

use crate::TokenError;

/// What a token is for: the `cat` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenCategory {
    /// An access token.
    #[serde(rename = "ACCESS_TOKEN")]
    Access,
    /// A refresh token.
    #[serde(rename = "REFRESH_TOKEN")]
    Refresh,
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `cat`: always [`TokenCategory::Access`].
    #[serde(rename = "cat")]
    pub category: TokenCategory,
    /// `user_type`: `USER` or `DOMAIN_OWNER`.
    pub user_type: String,
    /// `did`: the domain id.
    #[serde(rename = "did")]
    pub domain_id: String,
    /// `aud`: the user id or owner id the token speaks for.
    #[serde(rename = "aud")]
    pub principal_id: String,
    /// `iat`: issued at, unix seconds.
    #[serde(rename = "iat")]
    pub issued_at: u64,
    /// `exp`: expires at, unix seconds.
    #[serde(rename = "exp")]
    pub expires_at: u64,
    /// `iss`: the issuer (`token.issuer`).
    #[serde(rename = "iss")]
    pub issuer: String,
    /// `jti`: a unique token id.
    #[serde(rename = "jti")]
    pub token_id: String,
    /// `sid`: the session (refresh family) the token was minted in, as
    /// OpenID Connect names it, so the session calls can tell the caller's
    /// own session. Not a SpaceONE claim (its verifiers ignore it); tokens
    /// minted before it existed have none.
    #[serde(default, rename = "sid", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `permissions`: present only when the user must change their
    /// password first, and then limited to what doing so needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

/// Claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// `cat`: always [`TokenCategory::Refresh`].
    #[serde(rename = "cat")]
    pub category: TokenCategory,
    /// `user_type`: `USER` or `DOMAIN_OWNER`.
    pub user_type: String,
    /// `did`: the domain id.
    #[serde(rename = "did")]
    pub domain_id: String,
    /// `aud`: the user id or owner id the token speaks for.
    #[serde(rename = "aud")]
    pub principal_id: String,
    /// `iat`: issued at, unix seconds.
    #[serde(rename = "iat")]
    pub issued_at: u64,
    /// `exp`: expires at, unix seconds.
    #[serde(rename = "exp")]
    pub expires_at: u64,
    /// `iss`: the issuer (`token.issuer`).
    #[serde(rename = "iss")]
    pub issuer: String,
    /// `key`: the one-time key (≥128 random bits, base64url). The store
    /// knows it only by a digest; a second use is reuse.
    #[serde(rename = "key")]
    pub one_time_key: String,
    /// `ttl`: how many more times this family may be refreshed.
    #[serde(rename = "ttl")]
    pub refreshes_left: u32,
    /// `fam`: the family id, shared by every token descended from one issue.
    #[serde(rename = "fam")]
    pub family_id: String,
    /// `fex`: the family's absolute end, unix seconds: no descendant
    /// outlives it.
    #[serde(rename = "fex")]
    pub family_end: u64,
    /// `gen`: the token's generation in its family, 0 at issue and one more
    /// per refresh. The store compares it with the family's record: behind
    /// is a spent token, ahead is one a lost write never recorded. Not a
    /// SpaceONE claim (its verifiers ignore claims they do not know); a
    /// token minted before it existed reads as generation 0.
    #[serde(default, rename = "gen")]
    pub generation: u64,
}

/// The claims read leniently (any JSON type), before the signature is
/// checked: `did` picks the verification keys; `exp` and `cat` are judged
/// only after the signature verified, with SpaceONE's error for each.
#[derive(Debug, Deserialize)]
pub(crate) struct UnverifiedRouting {
    /// `did`, which should name the domain.
    #[serde(default, rename = "did")]
    pub domain_id: Option<serde_json::Value>,
    /// `exp`, which should be unix seconds.
    #[serde(default, rename = "exp")]
    pub expires_at: Option<serde_json::Value>,
    /// `cat`, which should be `REFRESH_TOKEN`.
    #[serde(default, rename = "cat")]
    pub category: Option<serde_json::Value>,
}

impl UnverifiedRouting {
    /// The `did` claim, which must be a non-empty string: refresh rule 1,
    /// "no `did` → (Empty domain_id provided.)". Taken out, not copied.
    pub(crate) fn take_domain_id(&mut self) -> Result<String, TokenError> {
        match self.domain_id.take() {
            Some(serde_json::Value::String(d)) if !d.is_empty() => Ok(d),
            _ => Err(TokenError::EmptyDomainId),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload bytes are the wire contract: SpaceONE's claim names, in
    /// this order, whatever the Rust fields are called.
    #[test]
    fn claims_serialize_with_spaceone_names_in_order() {
        let access = AccessClaims {
            category: TokenCategory::Access,
            user_type: "USER".into(),
            domain_id: "d".into(),
            principal_id: "u".into(),
            issued_at: 1,
            expires_at: 2,
            issuer: "i".into(),
            token_id: "j".into(),
            session_id: Some("s".into()),
            permissions: None,
        };
        assert_eq!(
            serde_json::to_string(&access).expect("json"),
            r#"{"cat":"ACCESS_TOKEN","user_type":"USER","did":"d","aud":"u","iat":1,"exp":2,"iss":"i","jti":"j","sid":"s"}"#
        );
        // A token minted before `sid` existed still reads.
        let old: AccessClaims = serde_json::from_str(
            r#"{"cat":"ACCESS_TOKEN","user_type":"USER","did":"d","aud":"u","iat":1,"exp":2,"iss":"i","jti":"j"}"#,
        )
        .expect("parse");
        assert_eq!(old.session_id, None);
        let refresh = RefreshClaims {
            category: TokenCategory::Refresh,
            user_type: "DOMAIN_OWNER".into(),
            domain_id: "d".into(),
            principal_id: "o".into(),
            issued_at: 1,
            expires_at: 2,
            issuer: "i".into(),
            one_time_key: "k".into(),
            refreshes_left: 3,
            family_id: "f".into(),
            family_end: 4,
            generation: 5,
        };
        let text = serde_json::to_string(&refresh).expect("json");
        assert_eq!(
            text,
            r#"{"cat":"REFRESH_TOKEN","user_type":"DOMAIN_OWNER","did":"d","aud":"o","iat":1,"exp":2,"iss":"i","key":"k","ttl":3,"fam":"f","fex":4,"gen":5}"#
        );
        assert_eq!(
            serde_json::from_str::<RefreshClaims>(&text).expect("parse"),
            refresh
        );
    }
}
