//! Why a hostile run stops early: a target that may not be attacked, a
//! setting out of range, or an attacker task that failed or did not stop.

use crate::error::LoadError;

/// Errors that stop a hostile run.
#[derive(Debug, thiserror::Error)]
pub enum HostileError {
    /// The target cannot be used (not a URL, not loopback, ...).
    #[error(transparent)]
    Target(#[from] LoadError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
    /// An attacker task failed or did not stop.
    #[error("an attacker failed: {0}")]
    Attacker(String),
}
