//! The user directory tokengate authenticates against: domains, their users
//! and owners, read from a TOML file, with password hashes verified in
//! constant time per algorithm (bcrypt `$2a/$2b/$2y`, argon2id PHC).
//!
//! The crate only parses and answers questions; reloading on change is the
//! caller's job (keep the old [`Directory`] when a new file fails to load).
//! Other sources (the PostgreSQL directory) build the same [`Directory`]
//! from [`DomainRecord`]s and say through [`Freshness`] whether their
//! snapshot is current.

mod directory;
mod file;
mod freshness;
mod password;

pub use directory::{
    Backend, Directory, DirectoryError, Domain, DomainState, Principal, PrincipalKind,
    PrincipalState, UserType,
};
pub use file::{DomainRecord, OwnerRecord, UserRecord};
pub use freshness::{DirectoryUnavailable, Freshness, RemoteAnswer, RemotePrincipals};
pub use password::{
    HashProfile, MAX_ARGON2_M_KIB, MAX_ARGON2_P, MAX_ARGON2_T, MAX_BCRYPT_COST, PasswordError,
    PasswordHash, hash_argon2id, hash_bcrypt,
};
