use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    ParsedPublicKey, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::Algorithm;

/// Errors creating, parsing or using key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PKCS#8 document is not an RSA, P-256 or Ed25519 private key.
    #[error("not a usable private key (expected PKCS#8 RSA-2048+, P-256 or Ed25519): {0}")]
    Rejected(String),
    /// The crypto library failed to generate or sign.
    #[error("crypto operation failed")]
    Crypto,
    /// A PEM file could not be decoded.
    #[error("malformed PEM: {0}")]
    Pem(String),
}

enum Material {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One parsed private key with its `kid`, its pinned algorithm, its public
/// JWK and a parsed verifier. Parsing happens once, at load.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    material: Material,
    verifier: ParsedPublicKey,
    public_jwk: serde_json::Value,
    /// `public_jwk` as JSON text, rendered once: `get_public_key` answers it.
    public_jwk_text: String,
    /// The base64url JWT header, which never changes for a key.
    encoded_header: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh private key and returns its PKCS#8 DER encoding.
    pub fn generate_pkcs8(algorithm: Algorithm) -> Result<Vec<u8>, KeyError> {
        match algorithm {
            Algorithm::RS256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Crypto)?;
                let der = pair.as_der().map_err(|_| KeyError::Crypto)?;
                Ok(der.as_ref().to_vec())
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(pair
                    .to_pkcs8v1()
                    .map_err(|_| KeyError::Crypto)?
                    .as_ref()
                    .to_vec())
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto)?;
                Ok(pair
                    .to_pkcs8()
                    .map_err(|_| KeyError::Crypto)?
                    .as_ref()
                    .to_vec())
            }
        }
    }

    /// Parses a PKCS#8 private key; the algorithm follows from the key type.
    pub fn from_pkcs8(kid: impl Into<String>, der: &[u8]) -> Result<Self, KeyError> {
        let kid = kid.into();
        if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
            if pair.public_modulus_len() < 256 {
                return Err(KeyError::Rejected(
                    "RSA keys must be at least 2048 bits".into(),
                ));
            }
            let public = pair.public_key();
            let verifier =
                ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public.as_ref())
                    .map_err(|e| KeyError::Rejected(e.to_string()))?;
            let jwk = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            return Ok(Self::assemble(
                kid,
                Algorithm::RS256,
                Material::Rsa(pair),
                verifier,
                jwk,
            ));
        }
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            let point = pair.public_key().as_ref().to_vec();
            // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError::Rejected(
                    "unexpected P-256 public key encoding".into(),
                ));
            }
            let verifier = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                .map_err(|e| KeyError::Rejected(e.to_string()))?;
            let jwk = json!({
                "kty": "EC",
                "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            return Ok(Self::assemble(
                kid,
                Algorithm::ES256,
                Material::Ecdsa(pair),
                verifier,
                jwk,
            ));
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8(der) {
            let public = pair.public_key().as_ref().to_vec();
            let verifier = ParsedPublicKey::new(&signature::ED25519, &public)
                .map_err(|e| KeyError::Rejected(e.to_string()))?;
            let jwk = json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(&public),
            });
            return Ok(Self::assemble(
                kid,
                Algorithm::EdDSA,
                Material::Ed25519(pair),
                verifier,
                jwk,
            ));
        }
        Err(KeyError::Rejected("unrecognised PKCS#8 key".into()))
    }

    fn assemble(
        kid: String,
        algorithm: Algorithm,
        material: Material,
        verifier: ParsedPublicKey,
        mut public_jwk: serde_json::Value,
    ) -> Self {
        if let Some(map) = public_jwk.as_object_mut() {
            map.insert("kid".into(), json!(kid));
            map.insert("alg".into(), json!(algorithm.as_str()));
            map.insert("use".into(), json!("sig"));
        }
        let header = json!({"alg": algorithm.as_str(), "typ": "JWT", "kid": kid});
        let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        Self {
            kid,
            algorithm,
            material,
            verifier,
            public_jwk_text: public_jwk.to_string(),
            public_jwk,
            encoded_header,
            rng: SystemRandom::new(),
        }
    }

    /// The key id carried in every JWT header this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Whether the key was imported from SpaceONE (`tokengate import
    /// spaceone`): only such keys verify tokens without a `kid`.
    pub fn is_spaceone_import(&self) -> bool {
        self.kid.contains(crate::SPACEONE_KID_MARKER)
    }

    /// The one algorithm this key signs and verifies with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The public half as a JWK (with `kid`, `alg` and `use`).
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.public_jwk
    }

    /// The public JWK as JSON text (rendered once, at load).
    pub fn public_jwk_text(&self) -> &str {
        &self.public_jwk_text
    }

    /// When the key was created, from the unix-seconds part of its kid
    /// (`<purpose>-<secs>-<random>`); `None` for imported keys named otherwise.
    pub fn created_at(&self) -> Option<u64> {
        self.kid.split('-').nth(1).and_then(|s| s.parse().ok())
    }

    pub(crate) fn encoded_header(&self) -> &str {
        &self.encoded_header
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.material {
            Material::Rsa(pair) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(sig)
            }
            Material::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec()),
            Material::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify_sig(message, signature).is_ok()
    }
}

/// A new key id for `purpose`: `<purpose>-<unix seconds>-<random>`. Sorting
/// kids of one purpose by their second part orders keys by age.
pub(crate) fn new_kid(purpose: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let suffix: u32 = rand::random();
    format!("{purpose}-{secs:010}-{suffix:08x}")
}

/// PEM-encodes a PKCS#8 private key.
pub(crate) fn to_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Decodes a `PRIVATE KEY` PEM document to PKCS#8 DER.
pub(crate) fn from_pem(pem: &str) -> Result<Vec<u8>, KeyError> {
    let start = pem
        .find("-----BEGIN PRIVATE KEY-----")
        .ok_or_else(|| KeyError::Pem("no 'BEGIN PRIVATE KEY' block (PKCS#8 expected)".into()))?;
    let rest = &pem[start + "-----BEGIN PRIVATE KEY-----".len()..];
    let end = rest
        .find("-----END PRIVATE KEY-----")
        .ok_or_else(|| KeyError::Pem("no 'END PRIVATE KEY' line".into()))?;
    let body: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| KeyError::Pem(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_pem_and_signs() {
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let der = SigningKey::generate_pkcs8(alg).expect("generate");
            let der2 = from_pem(&to_pem(&der)).expect("pem");
            assert_eq!(der, der2);
            let key = SigningKey::from_pkcs8("k1", &der2).expect("parse");
            assert_eq!(key.algorithm(), alg);
            let sig = key.sign(b"message").expect("sign");
            assert!(key.verify(b"message", &sig));
            assert!(!key.verify(b"massage", &sig));
            assert_eq!(key.public_jwk()["kid"], "k1");
            assert!(
                key.public_jwk().get("d").is_none(),
                "no private part in the JWK"
            );
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            SigningKey::from_pkcs8("k", b"nope"),
            Err(KeyError::Rejected(_))
        ));
        assert!(from_pem("hello").is_err());
    }
}
