//! `[postgres]`: how to reach the directory database when `directory` is a
//! `postgres://` URL (ignored otherwise).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokengate_directory_postgres::PostgresSettings;

/// `[postgres]`. Its defaults are the directory's
/// ([`PostgresSettings::new`]).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// A file holding the password (a mounted Secret), relative to the
    /// config file; trailing newlines are ignored.
    pub password_file: Option<PathBuf>,
    /// The password itself: meant for `TOKENGATE_POSTGRES_PASSWORD`, not
    /// for the file.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Bound on connecting (TCP, TLS, authentication), milliseconds.
    pub connect_timeout_ms: u64,
    /// Bound on every statement, milliseconds.
    pub query_timeout_ms: u64,
    /// How often the connection is checked, milliseconds.
    pub ping_interval_ms: u64,
    /// A full resync this often, seconds, notifications or not.
    #[serde(with = "crate::seconds")]
    pub resync_interval: Duration,
    /// How long refreshes are still served from the last synced snapshot
    /// once the database is unreachable, seconds (0: at once UNAVAILABLE).
    #[serde(with = "crate::seconds")]
    pub outage_refresh_grace: Duration,
    /// Extra PEM CA certificates for TLS, relative to the config file.
    pub ca_file: Option<PathBuf>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        let d = PostgresSettings::new("");
        Self {
            password_file: None,
            password: None,
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
            query_timeout_ms: d.query_timeout.as_millis() as u64,
            ping_interval_ms: d.ping_interval.as_millis() as u64,
            resync_interval: d.resync_interval,
            outage_refresh_grace: d.outage_refresh_grace,
            ca_file: None,
        }
    }
}

/// Debug output never shows the password.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("password_file", &self.password_file)
            .field(
                "password",
                &if self.password.is_some() {
                    "<redacted>"
                } else {
                    "<unset>"
                },
            )
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("query_timeout_ms", &self.query_timeout_ms)
            .field("ping_interval_ms", &self.ping_interval_ms)
            .field("resync_interval", &self.resync_interval)
            .field("outage_refresh_grace", &self.outage_refresh_grace)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}
