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
//!   a [`LogFormat`]) and its defaults;
//! - `env.rs`: the `TOKENGATE_*` overlay, applied before typing;
//! - `validate.rs`: ranges and consistency, checked after typing.

#![warn(missing_docs)]

mod config;
mod env;
mod error;
mod section;
mod validate;

pub use config::Config;
pub use error::ConfigError;
pub use section::{
    CorsConfig, KeysConfig, LimitsConfig, LogConfig, LogFormat, ServerConfig, StoreConfig,
    TelemetryConfig, TokenConfig, UnknownLogFormat,
};
