//! The heart of tokengate: SpaceONE identity v1 `Token.issue`,
//! `Token.refresh` and `Domain.get_public_key`, made safe.
//!
//! This crate knows nothing of gRPC or HTTP. Plain Rust requests go in;
//! [`TokenPair`]s or a typed [`TokenError`] come out, and each error knows
//! its SpaceONE code, exact text and [`ErrorClass`]. Transports only
//! translate.

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
pub use service::{Credentials, IssueRequest, PublicKey, TokenPair, TokenService, TokenSettings};
pub(crate) use shared::Shared;
