//! Why a load run cannot start or goes on no longer ([`LoadError`]): a
//! target that cannot be used or may not be used, a setting out of range,
//! connections that cannot be opened, a worker that failed.

use std::net::IpAddr;

/// Errors that stop a run before or while it starts.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target URL cannot be used.
    #[error("invalid target {url}: {why}")]
    InvalidTarget {
        /// The URL given.
        url: String,
        /// Why it was refused.
        why: String,
    },
    /// The target is not on loopback and `--allow-remote` was not given.
    #[error(
        "refusing target {url}: {addr} is not a loopback address (only 127.0.0.0/8 and ::1 are allowed without --allow-remote)"
    )]
    RemoteTarget {
        /// The URL given.
        url: String,
        /// The non-loopback address it resolves to.
        addr: IpAddr,
    },
    /// A setting is out of range or inconsistent.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The connections could not be opened.
    #[error("cannot open connections to {target}: {message}")]
    Connect {
        /// The target URL.
        target: String,
        /// What failed.
        message: String,
    },
    /// A worker task failed.
    #[error("a worker failed: {0}")]
    Worker(String),
}
