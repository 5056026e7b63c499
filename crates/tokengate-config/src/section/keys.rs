//! `[keys]`: where signing keys live and which algorithm new ones get.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[keys]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Folder of per-domain key material (relative to the config file).
    pub dir: PathBuf,
    /// Create keys for domains that have none.
    pub generate_missing: bool,
    /// Algorithm for new keys: RS256, ES256 or EdDSA.
    pub algorithm: String,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("keys"),
            generate_missing: true,
            algorithm: "RS256".to_owned(),
        }
    }
}
