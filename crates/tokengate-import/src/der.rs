//! An RSA private JWK (RFC 7518 §6.3) as a PKCS#8 DER document, the form
//! the key folder stores. Only the few DER shapes PKCS#8 needs are written.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// Why a JWK is not a usable RSA private key (never quotes its values).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwkError {
    /// `kty` is not `RSA`.
    #[error("not an RSA key (kty {0:?})")]
    NotRsa(String),
    /// A member is missing or not base64url.
    #[error("member {0:?} missing or not base64url")]
    Member(&'static str),
}

fn member(jwk: &serde_json::Value, name: &'static str) -> Result<Vec<u8>, JwkError> {
    let text = jwk
        .get(name)
        .and_then(serde_json::Value::as_str)
        .ok_or(JwkError::Member(name))?;
    // Some writers pad; RFC 7515 says they should not.
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| JwkError::Member(name))?;
    if bytes.is_empty() {
        return Err(JwkError::Member(name));
    }
    Ok(bytes)
}

/// The public modulus and exponent of an RSA JWK (public or private).
pub(crate) fn rsa_public(jwk: &serde_json::Value) -> Result<(Vec<u8>, Vec<u8>), JwkError> {
    let kty = jwk
        .get("kty")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if kty != "RSA" {
        return Err(JwkError::NotRsa(kty.to_owned()));
    }
    Ok((strip(member(jwk, "n")?), strip(member(jwk, "e")?)))
}

/// PKCS#8 DER of an RSA private JWK with all CRT members.
pub(crate) fn rsa_pkcs8(jwk: &serde_json::Value) -> Result<Vec<u8>, JwkError> {
    let (n, e) = rsa_public(jwk)?;
    let mut body = integer(&[0]);
    for value in [n, e] {
        body.extend(integer(&value));
    }
    for name in ["d", "p", "q", "dp", "dq", "qi"] {
        body.extend(integer(&member(jwk, name)?));
    }
    let rsa_private_key = tlv(0x30, &body);
    let mut algorithm = RSA_ENCRYPTION_OID.to_vec();
    algorithm.extend([0x05, 0x00]);
    let mut info = integer(&[0]);
    info.extend(tlv(0x30, &algorithm));
    info.extend(tlv(0x04, &rsa_private_key));
    Ok(tlv(0x30, &info))
}

fn strip(bytes: Vec<u8>) -> Vec<u8> {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    bytes[first..].to_vec()
}

/// A non-negative DER INTEGER from big-endian magnitude bytes.
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let mut value = strip(magnitude.to_vec());
    if value.first().is_some_and(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    tlv(0x02, &value)
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_shapes() {
        assert_eq!(integer(&[0]), vec![2, 1, 0]);
        assert_eq!(integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(integer(&[0, 0, 1]), vec![2, 1, 1]);
        assert_eq!(tlv(4, &[7; 200])[..3], [4, 0x81, 200]);
        assert_eq!(tlv(4, &[7; 300])[..4], [4, 0x82, 1, 44]);
    }

    #[test]
    fn refuses_non_rsa_and_missing_members() {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256"});
        assert_eq!(rsa_pkcs8(&ec), Err(JwkError::NotRsa("EC".into())));
        let public = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert_eq!(rsa_pkcs8(&public), Err(JwkError::Member("d")));
    }
}
