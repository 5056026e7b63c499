//! Ranges and consistency, checked once the file is typed: what a type
//! cannot say (a positive timeout, a default within its maximum, an exact
//! origin). The first problem found is the error, section by section.

use crate::{
    Config, ConfigError, CorsConfig, LimitsConfig, ServerConfig, StoreConfig, TelemetryConfig,
    TokenConfig,
};

impl Config {
    /// Checks ranges and consistency ([`Config::from_toml`] does, before
    /// returning a config).
    pub fn validate(&self) -> Result<(), ConfigError> {
        token(&self.token)?;
        server(&self.server)?;
        limits(&self.limits)?;
        store(&self.store)?;
        postgres(self)?;
        ldap(self)?;
        cors(&self.cors)?;
        telemetry(&self.telemetry)?;
        self.introspection
            .parsed_clients()
            .map_err(|e| ConfigError::Invalid(e.0))?;
        self.introspection
            .parsed_service_accounts()
            .map_err(|e| ConfigError::Invalid(e.0))?;
        Ok(())
    }
}

fn postgres(config: &Config) -> Result<(), ConfigError> {
    let p = &config.postgres;
    if p.password.is_some() && p.password_file.is_some() {
        return invalid(
            "set either postgres.password (TOKENGATE_POSTGRES_PASSWORD) or postgres.password_file, not both",
        );
    }
    if p.connect_timeout_ms == 0 || p.query_timeout_ms == 0 || p.ping_interval_ms == 0 {
        return invalid(
            "postgres.connect_timeout_ms, query_timeout_ms and ping_interval_ms must be positive",
        );
    }
    if p.resync_interval.is_zero() {
        return invalid("postgres.resync_interval must be at least 1 second");
    }
    if config.directory_is_postgres() {
        let url = config.directory.to_string_lossy();
        if url
            .parse::<tokengate_directory_postgres::tokio_postgres::Config>()
            .is_err()
        {
            return invalid(format!(
                "directory {:?} is not a valid postgres:// URL",
                tokengate_directory_postgres::settings::redact(&url)
            ));
        }
    }
    Ok(())
}

fn ldap(config: &Config) -> Result<(), ConfigError> {
    let l = &config.ldap;
    if l.bind_password.is_some() && l.bind_password_file.is_some() {
        return invalid(
            "set either ldap.bind_password (TOKENGATE_LDAP_BIND_PASSWORD) or ldap.bind_password_file, not both",
        );
    }
    if l.timeout_ms == 0 || l.health_interval_ms == 0 {
        return invalid("ldap.timeout_ms and ldap.health_interval_ms must be positive");
    }
    if l.sync_interval_ms > 0 && l.full_sync_interval_ms < l.sync_interval_ms {
        return invalid(
            "ldap.full_sync_interval_ms must be at least ldap.sync_interval_ms (0 turns the snapshot off)",
        );
    }
    if !config.directory_is_ldap() {
        return Ok(());
    }
    if l.domain.is_empty() {
        return invalid(
            "an ldap:// directory needs at least one [[ldap.domain]] (domain_id, base_dn)",
        );
    }
    if !l.user_filter.contains("{user}")
        || l.owner_filter
            .as_ref()
            .is_some_and(|f| !f.contains("{user}"))
    {
        return invalid("ldap.user_filter and ldap.owner_filter must contain {user}");
    }
    for d in &l.domain {
        if !["ENABLED", "DISABLED"].contains(&d.state.as_str()) {
            return invalid(format!(
                "ldap.domain {:?}: state must be ENABLED or DISABLED",
                d.domain_id
            ));
        }
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid(message.into()))
}

fn token(t: &TokenConfig) -> Result<(), ConfigError> {
    if t.access_timeout.is_zero() || t.access_timeout > t.max_access_timeout {
        return invalid("token.access_timeout must be between 1 and token.max_access_timeout");
    }
    if t.max_access_timeout.as_secs() > i32::MAX as u64 {
        return invalid("token.max_access_timeout is larger than an int32 timeout can ask for");
    }
    if t.refresh_timeout.is_zero() || t.absolute_timeout.is_zero() {
        return invalid("token.refresh_timeout and token.absolute_timeout must be positive");
    }
    if t.refresh_ttl == 0 || t.refresh_ttl > i32::MAX as u32 {
        return invalid("token.refresh_ttl must be at least 1");
    }
    if t.password_queue == 0 {
        return invalid("token.password_queue must be at least 1");
    }
    Ok(())
}

fn server(s: &ServerConfig) -> Result<(), ConfigError> {
    if s.default_timeout_ms == 0 || s.max_timeout_ms < s.default_timeout_ms {
        return invalid(
            "server.default_timeout_ms must be positive and at most server.max_timeout_ms",
        );
    }
    if s.max_connections == 0 {
        return invalid("server.max_connections must be at least 1");
    }
    Ok(())
}

fn limits(l: &LimitsConfig) -> Result<(), ConfigError> {
    if l.max_body_bytes < 64 {
        return invalid("limits.max_body_bytes must be at least 64");
    }
    Ok(())
}

/// The URL schemes the store connects to.
const REDIS_SCHEMES: [&str; 8] = [
    "redis://",
    "rediss://",
    "redis+cluster://",
    "rediss+cluster://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+unix://",
    "unix://",
];

/// The most replica acknowledgements `store.replica_acks` may ask for.
const MAX_REPLICA_ACKS: u32 = 16;

fn store(s: &StoreConfig) -> Result<(), ConfigError> {
    if s.timeout_ms == 0 {
        return invalid("store.timeout_ms must be positive");
    }
    if let Some(url) = &s.redis_url
        && !REDIS_SCHEMES.iter().any(|p| url.starts_with(p))
    {
        return invalid(
            "store.redis_url must start with redis://, rediss://, redis+cluster:// or redis+sentinel://",
        );
    }
    if s.replica_acks > MAX_REPLICA_ACKS {
        return invalid(format!(
            "store.replica_acks must be at most {MAX_REPLICA_ACKS}"
        ));
    }
    if s.replica_acks > 0 && s.redis_url.is_none() && s.cluster_nodes.is_empty() {
        return invalid("store.replica_acks needs a Redis store (store.redis_url)");
    }
    let sentinel = s
        .redis_url
        .as_deref()
        .is_some_and(|url| url.contains("+sentinel://"));
    if (s.sentinel_password.is_some() || s.sentinel_username.is_some()) && !sentinel {
        return invalid(
            "store.sentinel_username and store.sentinel_password need a redis+sentinel:// URL",
        );
    }
    if s.sentinel_username.is_some() && s.sentinel_password.as_deref().unwrap_or("").is_empty() {
        return invalid("store.sentinel_username needs store.sentinel_password");
    }
    Ok(())
}

fn cors(c: &CorsConfig) -> Result<(), ConfigError> {
    for origin in &c.allowed_origins {
        if origin == "*"
            || !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.ends_with('/')
        {
            return invalid(format!(
                "cors.allowed_origins entry {origin:?}: give exact origins like \"https://app.example.com\""
            ));
        }
    }
    Ok(())
}

fn telemetry(t: &TelemetryConfig) -> Result<(), ConfigError> {
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        return invalid("telemetry.sample_ratio must be between 0 and 1");
    }
    if let Some(url) = &t.otlp_endpoint
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return invalid("telemetry.otlp_endpoint must be an http(s) URL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Config;

    /// The error for `directory = "u"` plus `extra`.
    fn error(extra: &str) -> String {
        Config::from_toml(
            &format!("directory = \"u\"\n{extra}\n"),
            Path::new("."),
            vec![],
        )
        .expect_err(extra)
        .to_string()
    }

    #[test]
    fn every_rule_and_its_text() {
        for (extra, message) in [
            (
                "[token]\naccess_timeout = 0",
                "token.access_timeout must be between 1 and token.max_access_timeout",
            ),
            (
                "[token]\naccess_timeout = 90000",
                "token.access_timeout must be between 1 and token.max_access_timeout",
            ),
            (
                "[token]\nmax_access_timeout = 3000000000",
                "token.max_access_timeout is larger than an int32 timeout can ask for",
            ),
            (
                "[token]\nrefresh_timeout = 0",
                "token.refresh_timeout and token.absolute_timeout must be positive",
            ),
            (
                "[token]\nabsolute_timeout = 0",
                "token.refresh_timeout and token.absolute_timeout must be positive",
            ),
            (
                "[token]\nrefresh_ttl = 0",
                "token.refresh_ttl must be at least 1",
            ),
            (
                "[token]\nrefresh_ttl = 3000000000",
                "token.refresh_ttl must be at least 1",
            ),
            (
                "[token]\npassword_queue = 0",
                "token.password_queue must be at least 1",
            ),
            (
                "[server]\ndefault_timeout_ms = 0",
                "server.default_timeout_ms must be positive and at most server.max_timeout_ms",
            ),
            (
                "[server]\nmax_timeout_ms = 5",
                "server.default_timeout_ms must be positive and at most server.max_timeout_ms",
            ),
            (
                "[server]\nmax_connections = 0",
                "server.max_connections must be at least 1",
            ),
            (
                "[limits]\nmax_body_bytes = 63",
                "limits.max_body_bytes must be at least 64",
            ),
            (
                "[store]\ntimeout_ms = 0",
                "store.timeout_ms must be positive",
            ),
            (
                "[ldap]\nsync_interval_ms = 5000\nfull_sync_interval_ms = 1000",
                "ldap.full_sync_interval_ms must be at least ldap.sync_interval_ms (0 turns the snapshot off)",
            ),
            (
                "[store]\nredis_url = \"http://x\"",
                "store.redis_url must start with redis://, rediss://, redis+cluster:// or redis+sentinel://",
            ),
            (
                "[store]\nredis_url = \"redis://h:1\"\nreplica_acks = 17",
                "store.replica_acks must be at most 16",
            ),
            (
                "[store]\nreplica_acks = 1",
                "store.replica_acks needs a Redis store (store.redis_url)",
            ),
            (
                "[store]\nredis_url = \"redis://h:1\"\nsentinel_password = \"x\"",
                "store.sentinel_username and store.sentinel_password need a redis+sentinel:// URL",
            ),
            (
                "[store]\nredis_url = \"redis+sentinel://s:1/m\"\nsentinel_username = \"u\"",
                "store.sentinel_username needs store.sentinel_password",
            ),
            (
                "[cors]\nallowed_origins = [\"https://a.example/\"]",
                "cors.allowed_origins entry \"https://a.example/\": give exact origins like \"https://app.example.com\"",
            ),
            (
                "[cors]\nallowed_origins = [\"a.example\"]",
                "cors.allowed_origins entry \"a.example\": give exact origins like \"https://app.example.com\"",
            ),
            (
                "[telemetry]\nsample_ratio = 1.5",
                "telemetry.sample_ratio must be between 0 and 1",
            ),
            (
                "[telemetry]\notlp_endpoint = \"ftp://x\"",
                "telemetry.otlp_endpoint must be an http(s) URL",
            ),
        ] {
            assert_eq!(
                error(extra),
                format!("invalid config: {message}"),
                "{extra}"
            );
        }
    }

    #[test]
    fn what_the_rules_accept() {
        let text = "directory = \"u\"\n\
            [token]\naccess_timeout = 1\nmax_access_timeout = 1\nrefresh_ttl = 1\n\
            [server]\ndefault_timeout_ms = 1\nmax_timeout_ms = 1\n\
            [limits]\nmax_body_bytes = 64\n\
            [store]\nredis_url = \"rediss+cluster://a:1,b:2\"\n\
            [cors]\nallowed_origins = [\"http://localhost:3000\", \"https://app.example.com\"]\n\
            [telemetry]\nsample_ratio = 0.0\notlp_endpoint = \"https://collector/v1/traces\"\n";
        Config::from_toml(text, Path::new("."), vec![]).expect("every bound is inclusive");
    }
}
