//! The heart of tokengate: SpaceONE identity v1 `Token.issue`,
//! `Token.refresh` and `Domain.get_public_key`, made safe.
//!
//! This crate knows nothing of gRPC or HTTP. Plain Rust requests go in;
//! [`TokenPair`]s or a typed [`TokenError`] come out, and each error knows
//! its SpaceONE code, exact text and [`ErrorClass`]. Transports only
//! translate.
//!
//! # Where things are
//!
//! - `service/issue.rs`, `service/refresh.rs`: the two calls, as named
//!   steps, each commented with the SPEC §2 rule it enforces;
//! - `service/revocation.rs`, `service/minting.rs`: ending families early,
//!   and signing a new pair;
//! - `login_limits.rs`, `password_pool.rs`: failed-login limits and the
//!   bounded password threads;
//! - `claims.rs`, `error.rs`, `secrets.rs`: what goes on the wire, and the
//!   digests and sealing that keep one-time keys out of the store.
//!
//! What the store decides on a refresh is the table of rotation rules on
//! `tokengate_store::Rotation`.

#![warn(missing_docs)]

mod claims;
mod error;
mod login_limits;
mod password_pool;
mod secrets;
mod service;
mod shared;

pub use claims::{AccessClaims, RefreshClaims, TokenCategory};
pub use error::{ErrorClass, TokenError};
pub use login_limits::LoginLimits;
pub use password_pool::{PasswordPool, PoolBusy};
pub use service::{
    CallerCredentials, Credentials, Introspection, IntrospectionClient, IntrospectionSettings,
    IssueRequest, PublicKey, Session, TokenPair, TokenService, TokenSettings,
};
pub(crate) use shared::Shared;
pub use tokengate_store::{SessionInfo, SessionOrigin};
