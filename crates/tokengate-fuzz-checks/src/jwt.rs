//! `jwt`: `tokengate_keys::UnverifiedToken::parse`, its claims and
//! `KeySet::verify` against RS256, ES256 and EdDSA keys generated once per
//! process (kids `rs`, `es`, `ed`).
//!
//! Input: first byte picks a mode, the rest is its material:
//! - 0: the text is a token;
//! - 1: `header 0xFF claims 0xFF signature`, each part base64url-encoded
//!   by the harness (so the JSON inside is what gets fuzzed);
//! - 2: edits (`position, byte` pairs; byte 0 deletes) applied to a real
//!   token signed by one of the keys;
//! - 3: the text is claims JSON, signed by our key and by an impostor key
//!   with the same kid.
//!
//! Properties: never panics; parse / claims / verify agree (a token that
//! does not parse is `Malformed`); nothing the fuzzer writes verifies; a
//! changed real token verifies only if its header and claims are unchanged
//! (so never with different claims); our own signature over any claims
//! verifies and yields exactly those claims (floats within
//! [`FLOAT_ULPS`](crate::json_eq::FLOAT_ULPS)), the impostor's never does.

use crate::json_eq::json_eq;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokengate_keys::{Algorithm, JwtError, KeySet, SigningKey, UnverifiedToken};

struct Keys {
    /// All three keys: what tokens are verified against.
    all: KeySet,
    /// One set per key (a set signs with its newest key).
    each: Vec<KeySet>,
    /// Same kids, other key material.
    impostors: Vec<KeySet>,
    /// One real token per key.
    tokens: Vec<String>,
}

fn key(kid: &str, algorithm: Algorithm) -> Arc<SigningKey> {
    let der = SigningKey::generate_pkcs8(algorithm).expect("generate");
    Arc::new(SigningKey::from_pkcs8(kid, &der).expect("parse"))
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let specs = [
            ("rs", Algorithm::RS256),
            ("es", Algorithm::ES256),
            ("ed", Algorithm::EdDSA),
        ];
        let own: Vec<_> = specs.iter().map(|(k, a)| key(k, *a)).collect();
        let each: Vec<KeySet> = own.iter().map(|k| KeySet::new(vec![k.clone()])).collect();
        let impostors = specs
            .iter()
            .map(|(k, a)| KeySet::new(vec![key(k, *a)]))
            .collect();
        let claims = serde_json::json!({
            "cat": "REFRESH_TOKEN", "did": "domain-1a2b3c", "aud": "alice@example.com",
            "iat": 1_700_000_000, "exp": 1_700_003_600, "jti": "4f1c2d", "key": "k-123", "ttl": 3,
        });
        let tokens: Vec<String> = each
            .iter()
            .map(|s| s.sign(&claims).expect("sign"))
            .collect();
        let all = KeySet::new(own);
        for token in &tokens {
            // Else mode 2 would prove nothing.
            all.verify::<Value>(token).expect("a real token verifies");
        }
        Keys {
            all,
            each,
            impostors,
            tokens,
        }
    })
}

/// Checks one input (see the module docs).
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                must_not_verify(token);
            }
        }
        1 => {
            let mut parts = rest.splitn(3, |b| *b == 0xFF);
            let header = URL_SAFE_NO_PAD.encode(parts.next().unwrap_or_default());
            let claims = URL_SAFE_NO_PAD.encode(parts.next().unwrap_or_default());
            let signature = URL_SAFE_NO_PAD.encode(parts.next().unwrap_or_default());
            must_not_verify(&format!("{header}.{claims}.{signature}"));
        }
        2 => mutated_real_token(rest),
        _ => sign_and_verify(rest),
    }
}

/// Parse, claims and verify agree, and the token does not verify.
fn must_not_verify(token: &str) {
    let keys = keys();
    let verified = keys.all.verify::<Value>(token);
    match UnverifiedToken::parse(token) {
        Err(e) => {
            assert_eq!(e, JwtError::Malformed);
            assert_eq!(verified.unwrap_err(), JwtError::Malformed);
        }
        Ok(parsed) => {
            let claims = parsed.claims::<Value>();
            let signature = keys.all.verify_token(&parsed);
            match (signature, claims) {
                (Err(e), _) => assert_eq!(verified.unwrap_err(), e),
                (Ok(()), claims) => panic!("a fuzzed token verified: {token:?} {claims:?}"),
            }
        }
    }
}

fn mutated_real_token(edits: &[u8]) {
    let Some((&which, edits)) = edits.split_first() else {
        return;
    };
    let keys = keys();
    let original = &keys.tokens[usize::from(which) % keys.tokens.len()];
    let mut token = original.as_bytes().to_vec();
    for edit in edits.chunks_exact(3) {
        let at = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % (token.len() + 1);
        match edit[2] {
            0 if at < token.len() => {
                token.remove(at);
            }
            0 => {}
            b if at < token.len() && b & 0x80 == 0 => token[at] = b,
            b => token.insert(at, b & 0x7F),
        }
    }
    let Ok(token) = String::from_utf8(token) else {
        return;
    };
    if token == *original {
        return;
    }
    if let Ok(claims) = keys.all.verify::<Value>(&token) {
        let signed = |t: &str| t.rsplit_once('.').map(|(signed, _)| signed.to_owned());
        assert_eq!(
            signed(&token),
            signed(original),
            "a changed token verified with a changed header or claims: {token:?} {claims}"
        );
    }
}

fn sign_and_verify(text: &[u8]) {
    let Ok(claims) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    let keys = keys();
    for (own, impostor) in keys.each.iter().zip(&keys.impostors) {
        let token = own.sign(&claims).expect("sign");
        let back: Value = keys.all.verify(&token).expect("our own signature verifies");
        assert!(
            json_eq(&back, &claims),
            "claims survive signing: {back} != {claims}"
        );
        let forged = impostor.sign(&claims).expect("sign");
        assert_eq!(
            keys.all.verify::<Value>(&forged).unwrap_err(),
            JwtError::BadSignature,
            "an impostor key with our kid"
        );
    }
}
