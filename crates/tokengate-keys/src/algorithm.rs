use std::fmt;
use std::str::FromStr;

/// A JWS algorithm tokengate signs with. Every key has exactly one, and a
/// token naming any other algorithm in its header is refused for that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over a 2048-bit key (SpaceONE's only one).
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in the order the CLI lists them.
    pub const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The `alg` header value, which is also its name in the config file
    /// (`keys.algorithm`), on the command line (`--algorithm`) and in serde.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an algorithm name tokengate does not sign with.
#[derive(Debug, thiserror::Error)]
#[error("unsupported algorithm {0:?} (expected RS256, ES256 or EdDSA)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exactly an [`Algorithm::as_str`] name (case matters, as in `alg`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

/// `--algorithm RS256|ES256|EdDSA` (with the `clap` feature): the names of
/// [`Algorithm::as_str`], case-sensitive, without per-value help.
#[cfg(feature = "clap")]
impl clap::ValueEnum for Algorithm {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_everywhere() {
        for algorithm in Algorithm::ALL {
            let name = algorithm.as_str();
            assert_eq!(name.parse::<Algorithm>().ok(), Some(algorithm));
            assert_eq!(algorithm.to_string(), name);
            // serde (key metadata, the config file) names it the same way.
            let json = serde_json::to_string(&algorithm).expect("serialize");
            assert_eq!(json, format!("\"{name}\""));
            let back: Algorithm = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, algorithm);
        }
        for other in ["rs256", "HS256", "EDDSA", ""] {
            assert!(other.parse::<Algorithm>().is_err(), "{other}");
        }
    }
}
