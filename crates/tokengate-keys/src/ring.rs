//! The in-memory key ring: every domain's access and refresh keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{JwtError, KeyError, SigningKey, UnverifiedToken, jwt};

/// What a key signs. Access and refresh tokens of a domain never share keys,
/// so an access token can never pass as a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// Access tokens (published in the JWKS and by `get_public_key`).
    Access,
    /// Refresh tokens (only tokengate verifies these).
    Refresh,
}

impl Purpose {
    /// The folder name and kid prefix of this purpose.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Access => "access",
            Purpose::Refresh => "refresh",
        }
    }

    /// Both purposes, in a fixed order.
    pub const ALL: [Purpose; 2] = [Purpose::Access, Purpose::Refresh];
}

/// The live keys of one domain and purpose, oldest first. The newest signs;
/// all of them verify, so rotation overlaps.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
}

impl KeySet {
    /// A key set from keys in age order (oldest first).
    pub fn new(keys: Vec<Arc<SigningKey>>) -> Self {
        Self { keys }
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> Option<&Arc<SigningKey>> {
        self.keys.last()
    }

    /// Every live key, oldest first.
    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The key with this kid.
    pub fn find(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        // Newest first: fresh tokens are the common case.
        self.keys.iter().rev().find(|k| k.kid() == kid)
    }

    /// Signs `claims` with the newest key.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, KeyError> {
        let key = self
            .signing_key()
            .ok_or_else(|| KeyError::Rejected("no signing key".into()))?;
        jwt::encode(key, claims)
    }

    /// Verifies a token signed by any key of this set and returns its claims.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, JwtError> {
        jwt::verify(self, token)
    }

    /// Verifies the signature of an already parsed token.
    pub fn verify_token(&self, token: &UnverifiedToken<'_>) -> Result<(), JwtError> {
        jwt::verify_token(self, token)
    }

    /// Verifies the signature of a parsed token without a `kid` (as
    /// SpaceONE signs them) with this set's keys imported from SpaceONE,
    /// and only those.
    pub fn verify_spaceone_token(&self, token: &UnverifiedToken<'_>) -> Result<(), JwtError> {
        jwt::verify_spaceone_token(self, token)
    }
}

/// The key sets of one domain.
#[derive(Debug, Clone, Default)]
pub struct DomainKeys {
    /// Access-token keys.
    pub access: KeySet,
    /// Refresh-token keys.
    pub refresh: KeySet,
}

impl DomainKeys {
    /// The key set for `purpose`.
    pub fn get(&self, purpose: Purpose) -> &KeySet {
        match purpose {
            Purpose::Access => &self.access,
            Purpose::Refresh => &self.refresh,
        }
    }

    pub(crate) fn get_mut(&mut self, purpose: Purpose) -> &mut KeySet {
        match purpose {
            Purpose::Access => &mut self.access,
            Purpose::Refresh => &mut self.refresh,
        }
    }

    /// Whether both purposes have a signing key.
    pub fn is_complete(&self) -> bool {
        self.access.signing_key().is_some() && self.refresh.signing_key().is_some()
    }
}

/// Every domain's keys, as loaded from the keys folder.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    domains: BTreeMap<String, DomainKeys>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key (keys must be added oldest first per domain and purpose).
    pub fn insert(&mut self, domain_id: &str, purpose: Purpose, key: SigningKey) {
        self.domains
            .entry(domain_id.to_owned())
            .or_default()
            .get_mut(purpose)
            .keys
            .push(Arc::new(key));
    }

    /// The keys of a domain.
    pub fn domain(&self, domain_id: &str) -> Option<&DomainKeys> {
        self.domains.get(domain_id)
    }

    /// Domain ids with keys.
    pub fn domain_ids(&self) -> impl Iterator<Item = &str> {
        self.domains.keys().map(String::as_str)
    }

    /// The JWKS document: every domain's access-token public keys.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&serde_json::Value> = self
            .domains
            .values()
            .flat_map(|d| d.access.keys().iter().map(|k| k.public_jwk()))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
