//! The binary's own settings, made from a [`Config`]: the request stack's
//! ([`StackSettings`]), the listener's ([`ConnectionSettings`]) and the
//! per-source throttle's ([`SourceGuardSettings`]). The core's and the
//! store's are made in `tokengate-config` (`settings.rs`), beside `Config`.

use std::time::Duration;

use tokengate_config::{Config, LimitsConfig, ServerConfig};

use crate::server::{ConnectionSettings, SourceGuardSettings};
use crate::stack::StackSettings;

impl From<&Config> for StackSettings {
    /// `[cors]`, the body limit of `[limits]`, the deadlines of `[server]`.
    fn from(config: &Config) -> Self {
        Self {
            allowed_origins: config.cors.allowed_origins.clone(),
            max_body_bytes: config.limits.max_body_bytes,
            default_timeout: Duration::from_millis(config.server.default_timeout_ms),
            max_timeout: Duration::from_millis(config.server.max_timeout_ms),
            client_ip_header: config.limits.client_ip_header.clone(),
        }
    }
}

impl From<&ServerConfig> for ConnectionSettings {
    /// `[server]`'s connection handling; a zero keepalive interval or
    /// connection age is none.
    fn from(s: &ServerConfig) -> Self {
        let nonzero_ms = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        Self {
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms),
            http2_keepalive_interval: nonzero_ms(s.http2_keepalive_interval_ms),
            http2_keepalive_timeout: Duration::from_millis(s.http2_keepalive_timeout_ms),
            http2_max_concurrent_streams: s.http2_max_concurrent_streams,
            max_connection_age: nonzero_ms(s.max_connection_age_ms),
            drain_timeout: Duration::from_millis(s.drain_timeout_ms),
            max_connections: s.max_connections,
        }
    }
}

impl From<&LimitsConfig> for SourceGuardSettings {
    /// `limits.source_*` and `limits.throttled_connections_per_second`.
    fn from(l: &LimitsConfig) -> Self {
        Self {
            faults: l.source_faults,
            window: l.source_fault_window,
            throttle_for: l.source_throttle,
            connections_per_second: l.throttled_connections_per_second,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(
            &format!("directory = \"u\"\n{text}"),
            Path::new("."),
            vec![],
        )
        .expect("config")
    }

    #[test]
    fn connection_settings_in_milliseconds() {
        let c = ConnectionSettings::from(&config("").server);
        assert_eq!(c.header_read_timeout, Duration::from_secs(5));
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.http2_keepalive_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.max_connection_age, None, "0 = never");
        assert_eq!(c.drain_timeout, Duration::from_secs(20));
        let c = ConnectionSettings::from(
            &config("[server]\nhttp2_keepalive_interval_ms = 0\nmax_connection_age_ms = 1500\n")
                .server,
        );
        assert_eq!(c.http2_keepalive_interval, None, "0 = off");
        assert_eq!(c.max_connection_age, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn stack_and_source_guard_settings() {
        let config = config(
            "[cors]\nallowed_origins = [\"https://a.example\"]\n\
             [limits]\nmax_body_bytes = 1024\nclient_ip_header = \"x-real-ip\"\n\
             source_faults = 3\nsource_fault_window = 4\nsource_throttle = 5\n\
             throttled_connections_per_second = 6\n\
             [server]\ndefault_timeout_ms = 250\nmax_timeout_ms = 750\n",
        );
        let s = StackSettings::from(&config);
        assert_eq!(s.allowed_origins, ["https://a.example"]);
        assert_eq!(s.max_body_bytes, 1024);
        assert_eq!(s.default_timeout, Duration::from_millis(250));
        assert_eq!(s.max_timeout, Duration::from_millis(750));
        assert_eq!(s.client_ip_header.as_deref(), Some("x-real-ip"));
        let g = SourceGuardSettings::from(&config.limits);
        assert_eq!(
            (g.faults, g.window, g.throttle_for, g.connections_per_second),
            (3, Duration::from_secs(4), Duration::from_secs(5), 6)
        );
    }
}
