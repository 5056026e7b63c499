//! The file's sections, one module each: their keys, the types the values
//! parse into, and their defaults.

mod cors;
mod introspection;
mod keys;
mod ldap;
mod limits;
mod log;
mod postgres;
mod server;
mod store;
mod telemetry;
mod token;

pub use cors::CorsConfig;
pub use introspection::{BadIntrospectionEntry, IntrospectionConfig};
pub use keys::KeysConfig;
pub use ldap::{LdapConfig, LdapDomainConfig};
pub use limits::LimitsConfig;
pub use log::{LogConfig, LogFormat, UnknownLogFormat};
pub use postgres::PostgresConfig;
pub use server::ServerConfig;
pub use store::StoreConfig;
pub use telemetry::TelemetryConfig;
pub use token::TokenConfig;
