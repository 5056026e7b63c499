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
//!   milliseconds end in `_ms` and stay integers).

#![warn(missing_docs)]

mod config;
mod env;
mod error;
mod seconds;
mod section;
mod validate;

pub use config::Config;
pub use error::ConfigError;
pub use section::{
    CorsConfig, KeysConfig, LimitsConfig, LogConfig, LogFormat, ServerConfig, StoreConfig,
    TelemetryConfig, TokenConfig, UnknownLogFormat,
};
