//! Compact JWS (JWT) encoding and verification over [`SigningKey`]s.
//!
//! Verification is pinned: the header's `kid` selects the key and the
//! header's `alg` must equal that key's algorithm, so `none`, HS256 signed
//! with a public key, or a kid borrowed from another key set all fail.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{KeyError, KeySet, SigningKey};

/// Why a token did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts with JSON header and claims.
    #[error("token is not a well-formed JWT")]
    Malformed,
    /// The header names no key, or a key this key set does not hold.
    #[error("token names an unknown key")]
    UnknownKey,
    /// The header's `alg` is not the algorithm of the key it names.
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

struct Parts<'a> {
    header: &'a str,
    claims: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    let mut it = token.splitn(4, '.');
    let (Some(header), Some(claims), Some(signature), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(JwtError::Malformed);
    };
    if header.is_empty() || claims.is_empty() {
        return Err(JwtError::Malformed);
    }
    Ok(Parts {
        header,
        claims,
        signature,
        signing_input: &token[..header.len() + 1 + claims.len()],
    })
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// A compact JWS split and decoded once, not yet verified: read its claims
/// to pick the keys (nothing in them is trusted), then [`KeySet::verify_token`].
#[derive(Debug)]
pub struct UnverifiedToken<'a> {
    signing_input: &'a str,
    alg: String,
    kid: Option<String>,
    claims: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes a token; the header must be JSON with an `alg`.
    pub fn parse(token: &'a str) -> Result<Self, JwtError> {
        let parts = split(token)?;
        let header: Header = decode_json(parts.header)?;
        let claims = URL_SAFE_NO_PAD
            .decode(parts.claims)
            .map_err(|_| JwtError::Malformed)?;
        // A bad signature encoding is a bad signature, not a bad token.
        let signature = URL_SAFE_NO_PAD.decode(parts.signature).unwrap_or_default();
        Ok(Self {
            signing_input: parts.signing_input,
            alg: header.alg,
            kid: header.kid,
            claims,
            signature,
        })
    }

    /// The header's `kid`, if it names one (SpaceONE's tokens do not).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The claims as `T` (unverified until [`KeySet::verify_token`] says so).
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, JwtError> {
        serde_json::from_slice(&self.claims).map_err(|_| JwtError::Malformed)
    }
}

/// Reads a token's claims **without verifying it**: only for choosing which
/// domain's keys to verify it with. The header must parse too.
pub fn decode_unverified_claims<T: DeserializeOwned>(token: &str) -> Result<T, JwtError> {
    UnverifiedToken::parse(token)?.claims()
}

/// Signs `claims` with `key`.
pub(crate) fn encode<C: Serialize>(key: &SigningKey, claims: &C) -> Result<String, KeyError> {
    let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Crypto)?;
    let header = key.encoded_header();
    let claims_len = base64::encoded_len(claims.len(), false).unwrap_or(0);
    let mut token = String::with_capacity(header.len() + claims_len + 2 + 342);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// Checks a parsed token's signature with the key its `kid` names in `set`,
/// pinned to that key's algorithm.
pub(crate) fn verify_token(set: &KeySet, token: &UnverifiedToken<'_>) -> Result<(), JwtError> {
    let kid = token.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let key = set.find(kid).ok_or(JwtError::UnknownKey)?;
    if token.alg != key.algorithm().as_str() {
        return Err(JwtError::AlgorithmMismatch);
    }
    if token.signature.is_empty() || !key.verify(token.signing_input.as_bytes(), &token.signature) {
        return Err(JwtError::BadSignature);
    }
    Ok(())
}

/// Checks the signature of a token whose header names no `kid`, as
/// SpaceONE signs them, against the keys of `set` imported from SpaceONE
/// only (their kid carries [`SPACEONE_KID_MARKER`]), each pinned to its own
/// algorithm. A token with a `kid` is refused here: it is verified by the
/// key it names or not at all, so a key tokengate generated never verifies
/// a token without a kid.
pub(crate) fn verify_spaceone_token(
    set: &KeySet,
    token: &UnverifiedToken<'_>,
) -> Result<(), JwtError> {
    if token.kid.is_some() {
        return Err(JwtError::UnknownKey);
    }
    let mut imported = set
        .keys()
        .iter()
        .rev()
        .filter(|k| k.is_spaceone_import())
        .peekable();
    if imported.peek().is_none() {
        return Err(JwtError::UnknownKey);
    }
    let mut outcome = Err(JwtError::AlgorithmMismatch);
    for key in imported {
        if token.alg != key.algorithm().as_str() {
            continue;
        }
        if !token.signature.is_empty()
            && key.verify(token.signing_input.as_bytes(), &token.signature)
        {
            return Ok(());
        }
        outcome = Err(JwtError::BadSignature);
    }
    outcome
}

/// What every kid of a key imported from SpaceONE holds
/// (`<purpose>-0000000000-spaceone-<16 hex of sha256(n)>`): only such keys
/// verify tokens without a kid (SpaceONE's own tokens).
pub const SPACEONE_KID_MARKER: &str = "-0000000000-spaceone-";

/// Verifies `token` against the keys of `set` and returns its claims.
pub(crate) fn verify<T: DeserializeOwned>(set: &KeySet, token: &str) -> Result<T, JwtError> {
    let parsed = UnverifiedToken::parse(token)?;
    verify_token(set, &parsed)?;
    parsed.claims()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Algorithm;

    fn set(alg: Algorithm, kid: &str) -> KeySet {
        let der = SigningKey::generate_pkcs8(alg).expect("generate");
        KeySet::new(vec![Arc::new(
            SigningKey::from_pkcs8(kid, &der).expect("parse"),
        )])
    }

    #[test]
    fn round_trip_and_tamper() {
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let keys = set(alg, "k1");
            let token = keys.sign(&serde_json::json!({"sub": "a"})).expect("sign");
            let claims: serde_json::Value = keys.verify(&token).expect("verify");
            assert_eq!(claims["sub"], "a");

            // Change one claim, keep the signature.
            let mut parts: Vec<&str> = token.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"b"}"#);
            parts[1] = &forged;
            assert_eq!(
                keys.verify::<serde_json::Value>(&parts.join("."))
                    .unwrap_err(),
                JwtError::BadSignature
            );
        }
    }

    #[test]
    fn refuses_alg_none_and_foreign_kid() {
        let keys = set(Algorithm::EdDSA, "k1");
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#);
        let none = format!("{header}.{claims}.");
        assert_eq!(
            keys.verify::<serde_json::Value>(&none).unwrap_err(),
            JwtError::AlgorithmMismatch
        );

        let other = set(Algorithm::EdDSA, "k2");
        let token = other.sign(&serde_json::json!({"sub": "a"})).expect("sign");
        assert_eq!(
            keys.verify::<serde_json::Value>(&token).unwrap_err(),
            JwtError::UnknownKey
        );

        // Same kid, different key material: the signature fails.
        let impostor = set(Algorithm::EdDSA, "k1");
        let token = impostor
            .sign(&serde_json::json!({"sub": "a"}))
            .expect("sign");
        assert_eq!(
            keys.verify::<serde_json::Value>(&token).unwrap_err(),
            JwtError::BadSignature
        );
    }

    /// A token without a kid verifies only against a key imported from
    /// SpaceONE, never against one tokengate generated.
    #[test]
    fn kidless_tokens_verify_only_with_spaceone_keys() {
        let der = SigningKey::generate_pkcs8(Algorithm::RS256).expect("generate");
        let imported = SigningKey::from_pkcs8(
            format!("refresh{SPACEONE_KID_MARKER}0123456789abcdef"),
            &der,
        )
        .expect("parse");
        let own = SigningKey::from_pkcs8("refresh-1700000000-abc", &der).expect("parse");
        assert!(imported.is_spaceone_import() && !own.is_spaceone_import());
        let kidless = |key: &SigningKey| {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
            let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"a"}"#);
            let input = format!("{header}.{claims}");
            let signature = key.sign(input.as_bytes()).expect("sign");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        };
        let token = kidless(&imported);
        let parsed = UnverifiedToken::parse(&token).expect("parse");
        assert_eq!(parsed.kid(), None);
        let spaceone = KeySet::new(vec![Arc::new(imported)]);
        assert_eq!(verify_spaceone_token(&spaceone, &parsed), Ok(()));
        // The same key material under a tokengate kid: refused.
        let generated = KeySet::new(vec![Arc::new(own)]);
        assert_eq!(
            verify_spaceone_token(&generated, &parsed),
            Err(JwtError::UnknownKey)
        );
        // The pinned path still wants a kid.
        assert_eq!(verify_token(&spaceone, &parsed), Err(JwtError::UnknownKey));
        // Signed by another key: a bad signature.
        let other = SigningKey::from_pkcs8(
            "refresh-9",
            &SigningKey::generate_pkcs8(Algorithm::RS256).expect("generate"),
        )
        .expect("parse");
        let forged = kidless(&other);
        let forged = UnverifiedToken::parse(&forged).expect("parse");
        assert_eq!(
            verify_spaceone_token(&spaceone, &forged),
            Err(JwtError::BadSignature)
        );
        // A token with a kid never takes this path.
        let with_kid = spaceone
            .sign(&serde_json::json!({"sub": "a"}))
            .expect("sign");
        let with_kid = UnverifiedToken::parse(&with_kid).expect("parse");
        assert_eq!(
            verify_spaceone_token(&spaceone, &with_kid),
            Err(JwtError::UnknownKey)
        );
    }

    #[test]
    fn malformed_inputs() {
        let keys = set(Algorithm::EdDSA, "k1");
        for bad in ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", ".."] {
            assert_eq!(
                keys.verify::<serde_json::Value>(bad).unwrap_err(),
                JwtError::Malformed,
                "{bad}"
            );
        }
        assert!(decode_unverified_claims::<serde_json::Value>("x.y.z").is_err());
    }
}
