//! Per-domain signing keys for tokengate: load, generate and rotate them on
//! disk, keep them parsed in memory, and sign/verify compact JWTs with the
//! algorithm pinned to each key.
//!
//! Keys are parsed once (aws-lc-rs) and reused for every signature: a JWT
//! library that re-parses the DER on each call spends more time parsing an
//! RSA key than signing with it.

mod algorithm;
mod jwt;
mod keydir;
mod ring;
mod signing_key;

pub use algorithm::Algorithm;
pub use jwt::{JwtError, SPACEONE_KID_MARKER, UnverifiedToken, decode_unverified_claims};
pub use keydir::{ImportedKey, KeyDir, KeyDirError};
pub use ring::{DomainKeys, KeyRing, KeySet, Purpose};
pub use signing_key::{KeyError, SigningKey};
