//! `[keys]`: where signing keys live and which algorithm new ones get.

use std::path::PathBuf;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use tokengate_keys::Algorithm;

/// `[keys]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Folder of per-domain key material (relative to the config file).
    pub dir: PathBuf,
    /// Create keys for domains that have none.
    pub generate_missing: bool,
    /// Algorithm for new keys: `RS256`, `ES256` or `EdDSA` (the
    /// `--algorithm` of `tokengate keys` takes the same names).
    #[serde(deserialize_with = "algorithm")]
    pub algorithm: Algorithm,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("keys"),
            generate_missing: true,
            algorithm: Algorithm::RS256,
        }
    }
}

/// `keys.algorithm`: a name of [`Algorithm::as_str`]; anything else is
/// refused naming the key and the names it takes.
fn algorithm<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Algorithm, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse().map_err(|_| {
        D::Error::custom(format!(
            "keys.algorithm {name:?}: expected RS256, ES256 or EdDSA"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<KeysConfig, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn algorithm_by_name() {
        assert_eq!(keys("").expect("default").algorithm, Algorithm::RS256);
        for algorithm in Algorithm::ALL {
            let text = format!("algorithm = {:?}", algorithm.as_str());
            assert_eq!(keys(&text).expect("known").algorithm, algorithm);
        }
    }

    #[test]
    fn unknown_algorithm_names_the_key() {
        assert_eq!(
            keys("algorithm = \"HS256\"").expect_err("HS256"),
            "keys.algorithm \"HS256\": expected RS256, ES256 or EdDSA"
        );
        assert_eq!(
            keys("algorithm = \"rs256\"").expect_err("case matters"),
            "keys.algorithm \"rs256\": expected RS256, ES256 or EdDSA"
        );
        assert_eq!(
            keys("algorithm = 1").expect_err("not a string"),
            "invalid type: integer `1`, expected a string"
        );
    }
}
