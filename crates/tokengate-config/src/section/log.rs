//! `[log]`: how log lines are written and which are.

use serde::{Deserialize, Serialize};

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (readable) or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `tokengate=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".to_owned(),
            level: "info".to_owned(),
        }
    }
}
