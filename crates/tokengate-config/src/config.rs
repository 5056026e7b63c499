//! The whole file: its top-level keys and sections, how it is loaded, and
//! one setting read by its `section.key` name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env::apply_env;
use crate::{
    ConfigError, CorsConfig, IntrospectionConfig, KeysConfig, LdapConfig, LimitsConfig, LogConfig,
    PostgresConfig, ServerConfig, StoreConfig, TelemetryConfig, TokenConfig,
};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The one listener for gRPC, gRPC-Web and REST.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The directory: a file (users and domains, relative to the config
    /// file) or a `postgres://` URL ([`Config::directory_backend`]).
    pub directory: PathBuf,
    /// Signing keys.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Token lifetimes.
    #[serde(default)]
    pub token: TokenConfig,
    /// Refresh-token state.
    #[serde(default)]
    pub store: StoreConfig,
    /// The directory database, when `directory` is a `postgres://` URL.
    #[serde(default)]
    pub postgres: PostgresConfig,
    /// The LDAP directory, when `directory` is an `ldap://` URL.
    #[serde(default)]
    pub ldap: LdapConfig,
    /// Browser origins.
    #[serde(default)]
    pub cors: CorsConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Connection handling.
    #[serde(default)]
    pub server: ServerConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Trace export.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Who may introspect tokens.
    #[serde(default)]
    pub introspection: IntrospectionConfig,
}

/// Loopback, the port of SPEC §4.
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}

/// The sections, as named in the file and in `TOKENGATE_<SECTION>_<KEY>`:
/// every table of [`Config`], each answered by [`Config::section`].
pub(crate) const SECTIONS: &[&str] = &[
    "keys",
    "token",
    "store",
    "postgres",
    "ldap",
    "cors",
    "limits",
    "server",
    "log",
    "telemetry",
    "introspection",
];

impl Config {
    /// Reads `path`, applies `TOKENGATE_*` overrides from `env`, resolves
    /// relative paths against the file's folder and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml(&text, base, env)
    }

    /// Parses config text (see [`Config::load`]).
    pub fn from_toml(
        text: &str,
        base: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_owned()))?;
        apply_env(&mut table, env)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.message().to_owned()))?;
        if !config.directory_is_postgres() && !config.directory_is_ldap() {
            config.directory = base.join(&config.directory);
        }
        for file in [
            &mut config.ldap.bind_password_file,
            &mut config.ldap.ca_file,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
        if let Some(file) = &mut config.postgres.password_file {
            *file = base.join(&*file);
        }
        if let Some(file) = &mut config.postgres.ca_file {
            *file = base.join(&*file);
        }
        config.keys.dir = base.join(&config.keys.dir);
        config.validate()?;
        Ok(config)
    }

    /// Whether `directory` is a `postgres://` (or `postgresql://`) URL.
    pub fn directory_is_postgres(&self) -> bool {
        self.directory
            .to_str()
            .is_some_and(tokengate_directory_postgres::is_postgres_url)
    }

    /// Whether `directory` is an `ldap://` (or `ldaps://`) URL.
    pub fn directory_is_ldap(&self) -> bool {
        self.directory
            .to_str()
            .is_some_and(tokengate_directory_ldap::is_ldap_url)
    }

    /// The value of one setting of a section, named as in the file
    /// (`token.max_access_timeout`), in the file's unit; `None` for an
    /// unknown or unset key. Lets other parts name a setting in data (the
    /// OpenAPI document's bounds follow `token.*` settings) without a list
    /// of them here.
    pub fn setting(&self, key: &str) -> Option<toml::Value> {
        let (section, name) = key.split_once('.')?;
        self.section(section)?.ok()?.get(name).cloned()
    }

    /// One section as the file would write it; `None` for a name that is
    /// not one of [`SECTIONS`].
    fn section(&self, name: &str) -> Option<Result<toml::Value, toml::ser::Error>> {
        Some(match name {
            "keys" => toml::Value::try_from(&self.keys),
            "token" => toml::Value::try_from(&self.token),
            "store" => toml::Value::try_from(&self.store),
            "postgres" => toml::Value::try_from(&self.postgres),
            "ldap" => toml::Value::try_from(&self.ldap),
            "cors" => toml::Value::try_from(&self.cors),
            "limits" => toml::Value::try_from(&self.limits),
            "server" => toml::Value::try_from(&self.server),
            "log" => toml::Value::try_from(&self.log),
            "telemetry" => toml::Value::try_from(&self.telemetry),
            "introspection" => toml::Value::try_from(&self.introspection),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SAMPLE: &str = r#"
listen = "127.0.0.1:6000"
directory = "users.toml"
[keys]
dir = "keys"
algorithm = "EdDSA"
[token]
reuse_grace = 5
[cors]
allowed_origins = ["http://localhost:3000"]
"#;

    #[test]
    fn file_env_and_relative_paths() {
        let env = vec![
            (
                "TOKENGATE_STORE_REDIS_URL".to_owned(),
                "redis://127.0.0.1:7000/0".to_owned(),
            ),
            ("TOKENGATE_TOKEN_ACCESS_TIMEOUT".to_owned(), "60".to_owned()),
            ("TOKENGATE_LISTEN".to_owned(), "127.0.0.1:7001".to_owned()),
            ("TOKENGATE_LOG_FORMAT".to_owned(), "json".to_owned()),
        ];
        let c = Config::from_toml(SAMPLE, Path::new("/etc/tg"), env).expect("config");
        assert_eq!(c.listen.port(), 7001);
        assert_eq!(c.directory, Path::new("/etc/tg/users.toml"));
        assert_eq!(c.keys.dir, Path::new("/etc/tg/keys"));
        assert_eq!(c.keys.algorithm, tokengate_keys::Algorithm::EdDSA);
        assert_eq!(c.token.access_timeout, Duration::from_secs(60));
        assert_eq!(c.token.reuse_grace, Duration::from_secs(5));
        assert_eq!(c.log.format, crate::LogFormat::Json);
        assert_eq!(
            c.store.redis_url.as_deref(),
            Some("redis://127.0.0.1:7000/0")
        );
        assert_eq!(c.store.key_prefix, "tokengate:");
        assert_eq!(c.limits.max_body_bytes, 65536);
    }

    #[test]
    fn settings_by_key() {
        let env = vec![("TOKENGATE_TOKEN_REFRESH_TTL".to_owned(), "5".to_owned())];
        let c = Config::from_toml(SAMPLE, Path::new("."), env).expect("config");
        let int = |key: &str| c.setting(key).and_then(|v| v.as_integer());
        assert_eq!(int("token.max_access_timeout"), Some(86400), "a default");
        assert_eq!(int("token.refresh_ttl"), Some(5), "an override");
        assert_eq!(int("token.reuse_grace"), Some(5), "from the file");
        assert_eq!(int("limits.max_body_bytes"), Some(65536));
        assert_eq!(int("limits.login_failure_window"), Some(300), "seconds");
        assert_eq!(int("store.timeout_ms"), Some(500));
        let text = |key: &str| c.setting(key).and_then(|v| v.as_str().map(str::to_owned));
        assert_eq!(text("keys.algorithm").as_deref(), Some("EdDSA"));
        assert_eq!(text("log.format").as_deref(), Some("text"));
        for unknown in [
            "token.nope",
            "nope.refresh_ttl",
            "refresh_ttl",
            "listen",
            "",
        ] {
            assert_eq!(c.setting(unknown), None, "{unknown}");
        }
        assert_eq!(c.setting("store.redis_url"), None, "unset");
    }

    #[test]
    fn every_section_is_answered() {
        let c = Config::from_toml("directory = \"u\"\n", Path::new("."), vec![]).expect("config");
        for section in SECTIONS {
            let value = c.section(section).expect("a section").expect("serializes");
            assert!(value.is_table(), "{section}");
        }
    }

    #[test]
    fn clear_errors() {
        let error = |text: &str| {
            Config::from_toml(text, Path::new("."), vec![])
                .expect_err(text)
                .to_string()
        };
        assert_eq!(
            error("directory = \"u\"\nbogus = 1\n"),
            "invalid config: unknown field `bogus`, expected one of `listen`, `directory`, \
             `keys`, `token`, `store`, `postgres`, `ldap`, `cors`, `limits`, `server`, `log`, \
             `telemetry`, `introspection`"
        );
        assert_eq!(
            error("directory = \"u\"\n[keys]\nalgorithm = \"HS256\"\n"),
            "invalid config: keys.algorithm \"HS256\": expected RS256, ES256 or EdDSA"
        );
        assert_eq!(
            error("directory = \"u\"\n[log]\nformat = \"xml\"\n"),
            "invalid config: log.format must be \"text\" or \"json\""
        );
        assert_eq!(
            error("directory = \"u\"\n[token]\naccess_timeout = -1\n"),
            "invalid config: invalid value: integer `-1`, expected u64"
        );
        assert_eq!(
            error("directory = \"u\"\n[cors]\nallowed_origins = [\"*\"]\n"),
            "invalid config: cors.allowed_origins entry \"*\": give exact origins like \"https://app.example.com\""
        );
    }
}
