//! What can go wrong reading a config.

/// Errors reading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The config file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TOML syntax or schema error, or a value of the wrong kind (an
    /// unknown `keys.algorithm` or `log.format` is one).
    #[error("invalid config: {0}")]
    Syntax(String),
    /// An environment override that does not fit.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable name.
        var: String,
        /// What is wrong.
        reason: String,
    },
    /// A value out of range or inconsistent with another.
    #[error("invalid config: {0}")]
    Invalid(String),
}
