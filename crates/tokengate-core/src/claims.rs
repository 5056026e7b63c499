//! JWT claims, with SpaceONE v1's names (existing verifiers read them).

use serde::{Deserialize, Serialize};

/// The `cat` claim.
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
    /// Always `ACCESS_TOKEN`.
    pub cat: TokenCategory,
    /// `USER` or `DOMAIN_OWNER`.
    pub user_type: String,
    /// The domain id.
    pub did: String,
    /// The user id or owner id.
    pub aud: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// Unique token id.
    pub jti: String,
    /// Present only when the user must change their password first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

/// Claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// Always `REFRESH_TOKEN`.
    pub cat: TokenCategory,
    /// `USER` or `DOMAIN_OWNER`.
    pub user_type: String,
    /// The domain id.
    pub did: String,
    /// The user id or owner id.
    pub aud: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds).
    pub exp: u64,
    /// Issuer.
    pub iss: String,
    /// The one-time key (≥128 random bits, base64url).
    pub key: String,
    /// Refreshes left.
    pub ttl: u32,
    /// The family id, shared by every token descended from one issue.
    pub fam: String,
    /// The family's absolute end (unix seconds): no descendant outlives it.
    pub fex: u64,
}

/// The claims read leniently (any JSON type): `did` picks the verification
/// keys before the signature is checked; `exp` and `cat` are judged only
/// after it verified, with SpaceONE's error for each.
#[derive(Debug, Deserialize)]
pub(crate) struct UnverifiedRouting {
    #[serde(default)]
    pub did: Option<serde_json::Value>,
    #[serde(default)]
    pub exp: Option<serde_json::Value>,
    #[serde(default)]
    pub cat: Option<serde_json::Value>,
}
