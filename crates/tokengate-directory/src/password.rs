//! Password hashes: parsing, verification, and hashing new passwords.

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use aws_lc_rs::digest;

/// Errors parsing or creating password hashes.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is neither bcrypt nor argon2id PHC.
    #[error("unsupported password hash (expected bcrypt $2a$/$2b$/$2y$ or argon2id PHC)")]
    Unsupported,
    /// The hash has the right prefix but does not parse.
    #[error("malformed password hash: {0}")]
    Malformed(String),
    /// The hash parses but one check would take seconds or gigabytes: a
    /// directory with it would stall every login of that user and, through
    /// the dummy hash of its cost, every unknown-user login too.
    #[error("password hash too expensive to check: {0}")]
    TooExpensive(String),
}

/// Highest bcrypt cost accepted: 2^16 rounds already take seconds per check.
pub const MAX_BCRYPT_COST: u32 = 16;
/// Most memory an argon2id check may take, KiB (256 MiB; OWASP suggests 19-46 MiB).
pub const MAX_ARGON2_M_KIB: u32 = 256 * 1024;
/// Most argon2id passes.
pub const MAX_ARGON2_T: u32 = 16;
/// Most argon2id lanes.
pub const MAX_ARGON2_P: u32 = 16;

/// The algorithm and cost of a hash: what a dummy hash must match so that an
/// unknown user costs the same time as a wrong password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashProfile {
    /// bcrypt with this cost.
    Bcrypt {
        /// log2 rounds.
        cost: u32,
    },
    /// argon2id with these parameters.
    Argon2id {
        /// Memory in KiB.
        m_cost: u32,
        /// Iterations.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
    /// Kept elsewhere (an LDAP server checks the password by a bind): no
    /// hash here, only a fingerprint of what changes with the password.
    External,
}

/// A parsed, verifiable password hash. Its text never appears in `Debug`.
#[derive(Clone)]
pub struct PasswordHash {
    text: String,
    profile: HashProfile,
    fingerprint: [u8; 16],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHash")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl PasswordHash {
    /// Parses a stored hash.
    pub fn parse(text: &str) -> Result<Self, PasswordError> {
        let text = text.trim();
        let profile = if text.starts_with("$2a$")
            || text.starts_with("$2b$")
            || text.starts_with("$2y$")
        {
            let cost = text
                .get(4..6)
                .and_then(|c| c.parse::<u32>().ok())
                .filter(|c| (4..=31).contains(c))
                .ok_or_else(|| PasswordError::Malformed("bad bcrypt cost".into()))?;
            if cost > MAX_BCRYPT_COST {
                return Err(PasswordError::TooExpensive(format!(
                    "bcrypt cost {cost} is above {MAX_BCRYPT_COST}"
                )));
            }
            if text.len() != 60 {
                return Err(PasswordError::Malformed(
                    "bcrypt hashes are 60 characters".into(),
                ));
            }
            HashProfile::Bcrypt { cost }
        } else if text.starts_with("$argon2id$") {
            let phc = argon2::PasswordHash::new(text)
                .map_err(|e| PasswordError::Malformed(e.to_string()))?;
            let params = argon2::Params::try_from(&phc)
                .map_err(|e| PasswordError::Malformed(e.to_string()))?;
            if params.m_cost() > MAX_ARGON2_M_KIB
                || params.t_cost() > MAX_ARGON2_T
                || params.p_cost() > MAX_ARGON2_P
            {
                return Err(PasswordError::TooExpensive(format!(
                    "argon2id m={} t={} p={} is above m={MAX_ARGON2_M_KIB} t={MAX_ARGON2_T} p={MAX_ARGON2_P}",
                    params.m_cost(),
                    params.t_cost(),
                    params.p_cost()
                )));
            }
            HashProfile::Argon2id {
                m_cost: params.m_cost(),
                t_cost: params.t_cost(),
                p_cost: params.p_cost(),
            }
        } else {
            return Err(PasswordError::Unsupported);
        };
        let digest = digest::digest(&digest::SHA256, text.as_bytes());
        let mut fingerprint = [0; 16];
        fingerprint.copy_from_slice(&digest.as_ref()[..16]);
        Ok(Self {
            text: text.to_owned(),
            profile,
            fingerprint,
        })
    }

    /// The algorithm and cost of this hash.
    pub fn profile(&self) -> &HashProfile {
        &self.profile
    }

    /// A stable digest of the stored hash: it changes when the password is
    /// changed, and reveals nothing usable about the password.
    pub fn fingerprint(&self) -> [u8; 16] {
        self.fingerprint
    }

    /// A password kept elsewhere: never verifies here; its fingerprint is
    /// a digest of `marker` (what changes with the password, e.g. LDAP's
    /// `pwdChangedTime`), so a change ends families as a new hash would.
    pub fn external(marker: &str) -> Self {
        let digest = digest::digest(&digest::SHA256, marker.as_bytes());
        let mut fingerprint = [0; 16];
        fingerprint.copy_from_slice(&digest.as_ref()[..16]);
        Self {
            text: String::new(),
            profile: HashProfile::External,
            fingerprint,
        }
    }

    /// Checks a password. CPU-heavy (by design): call it off the async
    /// workers. Both libraries compare digests in constant time.
    pub fn verify(&self, password: &str) -> bool {
        match self.profile {
            HashProfile::External => false,
            HashProfile::Bcrypt { .. } => bcrypt::verify(password, &self.text).unwrap_or(false),
            HashProfile::Argon2id { .. } => argon2::PasswordHash::new(&self.text)
                .map(|phc| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &phc)
                        .is_ok()
                })
                .unwrap_or(false),
        }
    }

    /// A hash of a random password with the given profile: verifying any
    /// password against it fails, at the cost a real hash would take.
    pub fn dummy(profile: &HashProfile) -> Result<Self, PasswordError> {
        let secret: [u8; 16] = rand_bytes();
        let password = hex_string(&secret);
        let text = match *profile {
            HashProfile::External => return Ok(Self::external(&password)),
            HashProfile::Bcrypt { cost } => hash_bcrypt(&password, cost)?,
            HashProfile::Argon2id {
                m_cost,
                t_cost,
                p_cost,
            } => {
                let params = argon2::Params::new(m_cost, t_cost, p_cost, None)
                    .map_err(|e| PasswordError::Malformed(e.to_string()))?;
                Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password(password.as_bytes())
                    .map_err(|e| PasswordError::Malformed(e.to_string()))?
                    .to_string()
            }
        };
        Self::parse(&text)
    }
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0; N];
    // SystemRandom failing means the OS has no entropy: nothing sane to do.
    let _ = aws_lc_rs::rand::fill(&mut out);
    out
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a password with argon2id (the library's default parameters).
pub fn hash_argon2id(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Malformed(e.to_string()))
}

/// Hashes a password with bcrypt (`$2b$`) at `cost`.
pub fn hash_bcrypt(password: &str, cost: u32) -> Result<String, PasswordError> {
    bcrypt::hash(password, cost).map_err(|e| PasswordError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_too_expensive_to_check_are_refused() {
        // A valid bcrypt hash with cost 31 (2^31 rounds: hours per check).
        let bcrypt31 = "$2b$31$abcdefghijklmnopqrstuuGq1C4Zc2vQh3NXgGjBjdTAYK6J1c8Lq";
        assert_eq!(bcrypt31.len(), 60);
        assert!(matches!(
            PasswordHash::parse(bcrypt31),
            Err(PasswordError::TooExpensive(_))
        ));
        // 4 GiB of memory per check.
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        let refused = PasswordHash::parse(huge).expect_err("too much memory");
        assert!(matches!(refused, PasswordError::TooExpensive(_)));
        assert!(refused.to_string().contains("m=4194304"), "{refused}");
        // The limits themselves are accepted.
        let at_limit = format!(
            "$argon2id$v=19$m={MAX_ARGON2_M_KIB},t={MAX_ARGON2_T},p={MAX_ARGON2_P}$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A"
        );
        assert!(PasswordHash::parse(&at_limit).is_ok());
        let bcrypt16 = bcrypt31.replacen("$31$", "$16$", 1);
        assert!(PasswordHash::parse(&bcrypt16).is_ok());
    }

    #[test]
    fn argon2id_and_bcrypt_verify() {
        let a = PasswordHash::parse(&hash_argon2id("s3cret").expect("hash")).expect("parse");
        assert!(a.verify("s3cret"));
        assert!(!a.verify("s3cret "));
        assert!(!a.verify(""));
        let b = PasswordHash::parse(&hash_bcrypt("s3cret", 4).expect("hash")).expect("parse");
        assert_eq!(b.profile(), &HashProfile::Bcrypt { cost: 4 });
        assert!(b.verify("s3cret"));
        assert!(!b.verify("nope"));
        // $2y$ and $2a$ prefixes are accepted too.
        let y = b.text.replacen("$2b$", "$2y$", 1);
        assert!(PasswordHash::parse(&y).expect("2y").verify("s3cret"));
    }

    #[test]
    fn dummy_matches_profile_and_never_verifies() {
        let real = PasswordHash::parse(&hash_bcrypt("pw", 5).expect("hash")).expect("parse");
        let dummy = PasswordHash::dummy(real.profile()).expect("dummy");
        assert_eq!(dummy.profile(), real.profile());
        assert!(!dummy.verify("pw"));
        assert_ne!(dummy.fingerprint(), real.fingerprint());
    }

    #[test]
    fn rejects_other_schemes() {
        assert!(matches!(
            PasswordHash::parse("plain"),
            Err(PasswordError::Unsupported)
        ));
        assert!(matches!(
            PasswordHash::parse("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
            Err(PasswordError::Unsupported)
        ));
        assert!(PasswordHash::parse("$2b$99$abc").is_err());
    }
}
