//! `[cors]`: which browser origins may call.

use serde::{Deserialize, Serialize};

/// `[cors]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins allowed to call from a browser (none by default).
    pub allowed_origins: Vec<String>,
}
