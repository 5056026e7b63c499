//! How to reach the directory database and how the live snapshot behaves.

use std::path::PathBuf;
use std::time::Duration;

use crate::PostgresDirectoryError;

/// The PostgreSQL directory's settings (the config's `directory` URL and
/// its `[postgres]` section).
#[derive(Clone)]
pub struct PostgresSettings {
    /// `postgres://user@host:port/db?sslmode=…` (libpq's URL form). A
    /// password in it works but is better given as [`Self::password`].
    pub url: String,
    /// The password, from `postgres.password_file` or
    /// `TOKENGATE_POSTGRES_PASSWORD`; overrides one in the URL.
    pub password: Option<String>,
    /// Bound on establishing a connection (TCP, TLS, authentication).
    pub connect_timeout: Duration,
    /// Bound on every statement.
    pub query_timeout: Duration,
    /// A full resync this often even without notifications (a belt to the
    /// braces of LISTEN/NOTIFY).
    pub resync_interval: Duration,
    /// The connection is checked (`SELECT 1`) this often: a server that
    /// stopped answering is noticed within this plus `query_timeout`.
    pub ping_interval: Duration,
    /// How long refreshes keep being served from the last synced snapshot
    /// once the database is unreachable (0: refresh fails at once, like
    /// issue).
    pub outage_refresh_grace: Duration,
    /// Extra PEM CA certificates for `sslmode=require` (beside the
    /// system's).
    pub ca_file: Option<PathBuf>,
}

impl PostgresSettings {
    /// Settings with the defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            connect_timeout: Duration::from_secs(3),
            query_timeout: Duration::from_secs(2),
            resync_interval: Duration::from_secs(60),
            ping_interval: Duration::from_secs(1),
            outage_refresh_grace: Duration::from_secs(300),
            ca_file: None,
        }
    }

    /// The URL without its password, for logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// The driver's config: the URL, the password, the timeouts.
    pub(crate) fn driver_config(&self) -> Result<tokio_postgres::Config, PostgresDirectoryError> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|_| {
            PostgresDirectoryError::Settings(format!(
                "directory URL {:?} is not a valid postgres:// URL",
                self.redacted_url()
            ))
        })?;
        if let Some(password) = &self.password {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("tokengate");
        }
        config
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        Ok(config)
    }
}

/// Debug output never shows the URL's password or the password.
impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.redacted_url())
            .field(
                "password",
                &if self.password.is_some() {
                    "<redacted>"
                } else {
                    "<unset>"
                },
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("resync_interval", &self.resync_interval)
            .field("outage_refresh_grace", &self.outage_refresh_grace)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a
/// `password=` query parameter is masked too.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<not a URL>".to_owned(),
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(
            redact("postgres://tg:s3cret@db:5432/tg?sslmode=require"),
            "postgres://tg:***@db:5432/tg?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://db/tg?user=tg&password=s3cret"),
            "postgresql://db/tg?user=tg&password=***"
        );
        assert_eq!(redact("postgres://tg@db/tg"), "postgres://tg@db/tg");
        let s = PostgresSettings {
            password: Some("pw-xyz".into()),
            ..PostgresSettings::new("postgres://a:pw-abc@h/d")
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("pw-xyz") && !shown.contains("pw-abc"),
            "{shown}"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_secrets() {
        let s = PostgresSettings::new("postgres://a:pw-abc@h:notaport/d");
        let e = s.driver_config().expect_err("bad port").to_string();
        assert!(!e.contains("pw-abc"), "{e}");
    }
}
