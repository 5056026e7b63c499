//! tokengate's configuration: the TOML file of SPEC §4, with
//! `TOKENGATE_<SECTION>_<KEY>` environment variables overriding single
//! values, validated before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// TOML syntax or schema error.
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

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The one listener for gRPC, gRPC-Web and REST.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The directory file (users and domains).
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
}

/// `[telemetry]`: OpenTelemetry trace export (off unless an endpoint is set).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of new traces recorded (calls with a sampled `traceparent`
    /// follow their parent).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "tokengate".to_owned(),
            sample_ratio: 1.0,
        }
    }
}

/// `[keys]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Folder of per-domain key material.
    pub dir: PathBuf,
    /// Create keys for domains that have none.
    pub generate_missing: bool,
    /// Algorithm for new keys: RS256, ES256 or EdDSA.
    pub algorithm: String,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("keys"),
            generate_missing: true,
            algorithm: "RS256".to_owned(),
        }
    }
}

/// `[token]` (seconds).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Access-token lifetime when the request says 0.
    pub access_timeout: u64,
    /// Largest access-token lifetime a request may ask for.
    pub max_access_timeout: u64,
    /// Refresh-token lifetime.
    pub refresh_timeout: u64,
    /// Refreshes a family may make (the maximum `refresh_count`).
    pub refresh_ttl: u32,
    /// A family's whole life, however often it is refreshed.
    pub absolute_timeout: u64,
    /// Window in which a duplicate refresh gets the winner's answer; 0 = any
    /// reuse revokes the family.
    pub reuse_grace: u64,
    /// The `iss` claim.
    pub issuer: String,
    /// Concurrent password checks (0 = number of CPUs).
    pub password_workers: usize,
    /// Password checks that may wait for a worker before issue answers
    /// RESOURCE_EXHAUSTED.
    pub password_queue: usize,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_timeout: 1200,
            max_access_timeout: 86400,
            refresh_timeout: 1800,
            refresh_ttl: 18,
            absolute_timeout: 86400,
            reuse_grace: 0,
            issuer: "tokengate".to_owned(),
            password_workers: 0,
            password_queue: 64,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `redis://`, `rediss://` or `redis+cluster://`; absent = in-memory.
    pub redis_url: Option<String>,
    /// Cluster seed nodes (alternative to a `redis+cluster://` URL).
    pub cluster_nodes: Vec<String>,
    /// Prefix of every key.
    pub key_prefix: String,
    /// Bound on every store call.
    pub timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            cluster_nodes: Vec::new(),
            key_prefix: "tokengate:".to_owned(),
            timeout_ms: 500,
        }
    }
}

/// `[cors]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins allowed to call from a browser.
    pub allowed_origins: Vec<String>,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body (REST) or message (gRPC).
    pub max_body_bytes: usize,
    /// Failed logins per window per (domain, user).
    pub login_failures_per_user: u32,
    /// Failed logins per window per client IP.
    pub login_failures_per_ip: u32,
    /// The failure-counting window, seconds.
    pub login_failure_window: u64,
    /// Behind a proxy or ingress, the header naming the client address
    /// (e.g. `x-forwarded-for`, `x-real-ip`); its last address is used, the
    /// one your own proxy appended. Unset: the TCP peer address. Set it only
    /// when every request passes that proxy, or clients can pick their IP.
    pub client_ip_header: Option<String>,
    /// Protocol faults from one client address (malformed or oversized
    /// request heads, oversized bodies, HTTP/2 protocol errors) within
    /// `source_fault_window` that throttle it; 0 = never. Counted by TCP
    /// peer: behind a proxy that forwards oversized bodies, the proxy's
    /// address is what gets throttled (its open connections keep serving).
    pub source_faults: u32,
    /// The fault-counting window, seconds.
    pub source_fault_window: u64,
    /// How long an address stays throttled after its last fault, seconds.
    pub source_throttle: u64,
    /// New connections a throttled address may still open per second;
    /// the rest are reset as soon as they are accepted.
    pub throttled_connections_per_second: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            login_failures_per_user: 10,
            login_failures_per_ip: 100,
            login_failure_window: 300,
            client_ip_header: None,
            source_faults: 20,
            source_fault_window: 10,
            source_throttle: 60,
            throttled_connections_per_second: 2,
        }
    }
}

/// `[server]`: connection handling.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Deadline for calls that send no `grpc-timeout`, ms.
    pub default_timeout_ms: u64,
    /// Longest deadline a `grpc-timeout` may ask for, ms (it also bounds
    /// how long a request body may take to arrive).
    pub max_timeout_ms: u64,
    /// Time a client has to send its request headers, ms.
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed, ms.
    pub idle_timeout_ms: u64,
    /// HTTP/2 PING interval, ms (0 = off).
    pub http2_keepalive_interval_ms: u64,
    /// HTTP/2 PING answer timeout, ms.
    pub http2_keepalive_timeout_ms: u64,
    /// Concurrent HTTP/2 streams per connection. 100 (as Envoy and h2o):
    /// with 256, one client's burst of streams held the core long enough to
    /// triple other clients' p99 (BENCHMARKS.md, "Hostile traffic").
    pub http2_max_concurrent_streams: u32,
    /// Connections are asked to go away after this long, ms (0 = never).
    pub max_connection_age_ms: u64,
    /// How long SIGTERM waits for in-flight calls, ms.
    pub drain_timeout_ms: u64,
    /// Open connections at most; a connection beyond it is closed at once
    /// (each costs memory, and a flood of them is an attack).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            default_timeout_ms: 10_000,
            max_timeout_ms: 60_000,
            header_read_timeout_ms: 5_000,
            idle_timeout_ms: 120_000,
            http2_keepalive_interval_ms: 30_000,
            http2_keepalive_timeout_ms: 10_000,
            http2_max_concurrent_streams: 100,
            max_connection_age_ms: 0,
            drain_timeout_ms: 20_000,
            max_connections: 10_000,
        }
    }
}

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

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}

/// The sections an environment variable may name.
const SECTIONS: &[&str] = &[
    "keys",
    "token",
    "store",
    "cors",
    "limits",
    "server",
    "log",
    "telemetry",
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
        config.directory = base.join(&config.directory);
        config.keys.dir = base.join(&config.keys.dir);
        config.validate()?;
        Ok(config)
    }

    /// The value of one setting of a section, named as in the file
    /// (`token.max_access_timeout`); `None` for an unknown or unset key.
    /// Lets other parts name a setting in data (the OpenAPI document's
    /// bounds follow `token.*` settings) without a list of them here.
    pub fn setting(&self, key: &str) -> Option<toml::Value> {
        let (section, name) = key.split_once('.')?;
        let table = match section {
            "keys" => toml::Value::try_from(&self.keys),
            "token" => toml::Value::try_from(&self.token),
            "store" => toml::Value::try_from(&self.store),
            "cors" => toml::Value::try_from(&self.cors),
            "limits" => toml::Value::try_from(&self.limits),
            "server" => toml::Value::try_from(&self.server),
            "log" => toml::Value::try_from(&self.log),
            "telemetry" => toml::Value::try_from(&self.telemetry),
            _ => return None,
        };
        table.ok()?.get(name).cloned()
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.token;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !matches!(self.keys.algorithm.as_str(), "RS256" | "ES256" | "EdDSA") {
            return bad(format!(
                "keys.algorithm {:?}: expected RS256, ES256 or EdDSA",
                self.keys.algorithm
            ));
        }
        if t.access_timeout == 0 || t.access_timeout > t.max_access_timeout {
            return bad(
                "token.access_timeout must be between 1 and token.max_access_timeout".into(),
            );
        }
        if t.max_access_timeout > i32::MAX as u64 {
            return bad(
                "token.max_access_timeout is larger than an int32 timeout can ask for".into(),
            );
        }
        if t.refresh_timeout == 0 || t.absolute_timeout == 0 {
            return bad("token.refresh_timeout and token.absolute_timeout must be positive".into());
        }
        if t.refresh_ttl == 0 || t.refresh_ttl > i32::MAX as u32 {
            return bad("token.refresh_ttl must be at least 1".into());
        }
        if t.password_queue == 0 {
            return bad("token.password_queue must be at least 1".into());
        }
        if self.server.default_timeout_ms == 0
            || self.server.max_timeout_ms < self.server.default_timeout_ms
        {
            return bad(
                "server.default_timeout_ms must be positive and at most server.max_timeout_ms"
                    .into(),
            );
        }
        if self.server.max_connections == 0 {
            return bad("server.max_connections must be at least 1".into());
        }
        if self.limits.max_body_bytes < 64 {
            return bad("limits.max_body_bytes must be at least 64".into());
        }
        if self.store.timeout_ms == 0 {
            return bad("store.timeout_ms must be positive".into());
        }
        if let Some(url) = &self.store.redis_url {
            let ok = [
                "redis://",
                "rediss://",
                "redis+cluster://",
                "rediss+cluster://",
                "redis+unix://",
                "unix://",
            ]
            .iter()
            .any(|p| url.starts_with(p));
            if !ok {
                return bad(
                    "store.redis_url must start with redis://, rediss:// or redis+cluster://"
                        .into(),
                );
            }
        }
        for origin in &self.cors.allowed_origins {
            if origin == "*"
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                return bad(format!(
                    "cors.allowed_origins entry {origin:?}: give exact origins like \"https://app.example.com\""
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return bad("telemetry.sample_ratio must be between 0 and 1".into());
        }
        if let Some(url) = &self.telemetry.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("telemetry.otlp_endpoint must be an http(s) URL".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad("log.format must be \"text\" or \"json\"".into());
        }
        Ok(())
    }
}

/// Applies `TOKENGATE_<KEY>` (top level) and `TOKENGATE_<SECTION>_<KEY>`.
/// Values parse as TOML (numbers, booleans, arrays) and fall back to strings.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (var, raw) in env {
        let Some(name) = var.strip_prefix("TOKENGATE_") else {
            continue;
        };
        // TOKENGATE_CONFIG names the file; TOKENGATE_PORT* and
        // TOKENGATE_SERVICE_* are Kubernetes service links for a Service
        // called "tokengate", not settings.
        if name == "CONFIG"
            || name == "PORT"
            || name.starts_with("PORT_")
            || name.starts_with("SERVICE_")
        {
            continue;
        }
        let name = name.to_ascii_lowercase();
        let value = parse_env_value(&raw);
        let section = SECTIONS.iter().find(|s| {
            name.strip_prefix(**s)
                .is_some_and(|rest| rest.starts_with('_'))
        });
        match section {
            Some(section) => {
                let key = name[section.len() + 1..].to_owned();
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(sub) = entry.as_table_mut() else {
                    return Err(ConfigError::Env {
                        var,
                        reason: format!("[{section}] is not a table in the config file"),
                    });
                };
                sub.insert(key, value);
            }
            None => {
                table.insert(name, value);
            }
        }
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Probe {
        v: toml::Value,
    }
    match toml::from_str::<Probe>(&format!("v = {raw}")) {
        Ok(p) => p.v,
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
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
            ("TOKENGATE_CONFIG".to_owned(), "ignored".to_owned()),
            (
                "TOKENGATE_PORT".to_owned(),
                "tcp://10.0.0.1:50051".to_owned(),
            ),
            (
                "TOKENGATE_PORT_50051_TCP_ADDR".to_owned(),
                "10.0.0.1".to_owned(),
            ),
            ("TOKENGATE_SERVICE_HOST".to_owned(), "10.0.0.1".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let c = Config::from_toml(SAMPLE, Path::new("/etc/tg"), env).expect("config");
        assert_eq!(c.listen.port(), 7001);
        assert_eq!(c.directory, Path::new("/etc/tg/users.toml"));
        assert_eq!(c.keys.dir, Path::new("/etc/tg/keys"));
        assert_eq!(c.token.access_timeout, 60);
        assert_eq!(c.token.reuse_grace, 5);
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
    fn clear_errors() {
        let unknown = Config::from_toml("directory = \"u\"\nbogus = 1\n", Path::new("."), vec![])
            .expect_err("unknown");
        assert!(unknown.to_string().contains("bogus"), "{unknown}");
        let algo = Config::from_toml(
            "directory = \"u\"\n[keys]\nalgorithm = \"HS256\"\n",
            Path::new("."),
            vec![],
        )
        .expect_err("algorithm");
        assert!(algo.to_string().contains("keys.algorithm"), "{algo}");
        let env = vec![("TOKENGATE_TOKEN_REFRESH_TTL".to_owned(), "many".to_owned())];
        assert!(Config::from_toml("directory = \"u\"\n", Path::new("."), env).is_err());
        let star = Config::from_toml(
            "directory = \"u\"\n[cors]\nallowed_origins = [\"*\"]\n",
            Path::new("."),
            vec![],
        );
        assert!(star.is_err());
    }
}
