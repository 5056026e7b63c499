//! Secrets derived from a refresh token's one-time `key` claim.
//!
//! The store never sees the key itself: it indexes by a digest of it, and
//! the answer kept for duplicate refreshes inside the grace window is
//! encrypted with a second digest of it, so only a holder of that same
//! refresh token can read the answer back.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokengate_store::KeyId;

/// A fresh one-time key: 192 random bits, base64url.
pub(crate) fn new_refresh_key() -> String {
    let mut bytes = [0u8; 24];
    // An OS without entropy cannot run tokengate safely; aws-lc aborts first.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh family id or jti: 128 random bits, base64url.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `label` then `key`: a different label gives an unrelated
/// secret from the same key, so no derived value reveals another.
fn derive(label: &[u8], key: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(label.len() + key.len());
    input.extend_from_slice(label);
    input.extend_from_slice(key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &input).as_ref());
    out
}

/// An opaque id for a tuple of strings (NUL-separated, so ("ab","c") and
/// ("a","bc") differ): 128 bits of SHA-256, hex.
pub(crate) fn digest_id(parts: &[&str]) -> String {
    let joined = parts.join("\0");
    hex::encode(&derive(b"tokengate/counter/v1\0", &joined)[..16])
}

/// The family id of an adopted SpaceONE refresh token: derived from its
/// domain, principal and one-time `key`, so every copy of the token names
/// the same family (and no two tokens do). Hex, prefixed `so-`.
pub(crate) fn adopted_family_id(domain_id: &str, principal_id: &str, key: &str) -> String {
    let joined = [domain_id, principal_id, key].join("\0");
    format!(
        "so-{}",
        hex::encode(&derive(b"tokengate/spaceone-family/v1\0", &joined)[..16])
    )
}

/// The store's id for a one-time key.
pub(crate) fn key_id(key: &str) -> KeyId {
    KeyId(hex::encode(&derive(b"tokengate/key-id/v1\0", key)[..20]))
}

/// The AES-256-GCM key that seals a grace answer, derived from the
/// presented token's one-time key.
fn cipher(key: &str) -> Option<LessSafeKey> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, &derive(b"tokengate/grace-answer/v1\0", key)).ok()?;
    Some(LessSafeKey::new(unbound))
}

/// Encrypts the winner's answer under the spent token's key.
pub(crate) fn seal(key: &str, plaintext: &[u8]) -> Option<Vec<u8>> {
    let cipher = cipher(key)?;
    let mut nonce = [0u8; 12];
    aws_lc_rs::rand::fill(&mut nonce).ok()?;
    let mut buf = plaintext.to_vec();
    cipher
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Some(out)
}

/// Decrypts an answer sealed by [`seal`] with the same key.
pub(crate) fn open(key: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let cipher = cipher(key)?;
    let (nonce, body) = sealed.split_at_checked(12)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = body.to_vec();
    let plain = cipher.open_in_place(nonce, Aad::empty(), &mut buf).ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let key = new_refresh_key();
        let sealed = seal(&key, b"answer").expect("seal");
        assert_eq!(open(&key, &sealed).as_deref(), Some(&b"answer"[..]));
        assert!(open(&new_refresh_key(), &sealed).is_none());
        assert!(open(&key, &sealed[..5]).is_none());
        assert_ne!(key_id(&key), key_id(&new_refresh_key()));
        assert!(!key_id(&key).0.contains(&key));
    }
}
