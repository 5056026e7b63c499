//! tokengate's configuration: the TOML file of SPEC §4, with
//! `TOKENGATE_<SECTION>_<KEY>` environment variables overriding single
//! values, validated before anything starts.
//!
//! # Where things are
//!
//! - `config.rs`: [`Config`], the whole file: loading it, and reading one
//!   setting by its `section.key` name;
//! - `section/`: one module per section (`[keys]`, `[token]`, …): its keys,
//!   the types they parse into (an [`Algorithm`](tokengate_keys::Algorithm),
//!   a [`LogFormat`], a [`Duration`](std::time::Duration) for whole seconds)
//!   and its defaults;
//! - `env.rs`: the `TOKENGATE_*` overlay, applied before typing;
//! - `validate.rs`: ranges and consistency, checked after typing;
//! - `seconds.rs`: seconds in the file, `Duration` in Rust (keys in
//!   milliseconds end in `_ms` and stay integers);
//! - `settings.rs`: the core's and the store's settings made from a config
//!   (`From<&Config>` for `TokenSettings` and `LoginLimits`,
//!   `TryFrom<&StoreConfig>` for [`StoreBackend`]).
//!
//! # Defaults
//!
//! One set, kept by whoever uses the setting. The core's
//! `TokenSettings::default()` and `LoginLimits::default()` are the defaults
//! of `[token]`'s lifetimes and issuer and of `limits.login_*`, and the
//! store's `RedisStoreConfig::DEFAULT_*` those of `[store]`: the sections
//! read them from there. The core is the home because it is used without a
//! config (its tests and benchmarks build `TokenSettings` from its
//! `Default`) and must not depend on this crate. Every other setting is used
//! only by the binary, whose settings types have no defaults of their own,
//! so its default is here, in its section's `Default`.

#![warn(missing_docs)]

mod config;
mod env;
mod error;
mod seconds;
mod section;
mod settings;
mod validate;

pub use config::Config;
pub use error::ConfigError;
pub use section::{
    BadIntrospectionEntry, CorsConfig, IntrospectionConfig, KeysConfig, LdapConfig,
    LdapDomainConfig, LimitsConfig, LogConfig, LogFormat, PostgresConfig, ServerConfig,
    StoreConfig, TelemetryConfig, TokenConfig, UnknownLogFormat,
};
pub use settings::{AmbiguousStore, DirectoryBackend, StoreBackend};
