//! The PostgreSQL directory: domains, users and owners in three tables
//! (created by migrations shipped in the binary), served from an in-memory
//! snapshot that LISTEN/NOTIFY keeps current on every instance (see
//! [`live`] for the design and the outage behaviour), and the statements
//! the `tokengate domain|user|owner` commands run ([`admin`]).
//!
//! - [`settings`]: the URL, password, timeouts, TLS;
//! - [`schema`]: migrations and the schema version;
//! - [`snapshot`]: the tables read into a [`tokengate_directory::Directory`];
//! - [`live`]: the feed and its [`tokengate_directory::Freshness`];
//! - [`admin`]: adding, changing and removing rows.
#![warn(missing_docs)]

pub mod admin;
mod error;
mod link;
pub mod live;
pub mod schema;
pub mod settings;
pub mod snapshot;
mod tls;

pub use error::PostgresDirectoryError;
pub use live::{Feed, PostgresFreshness};
pub use settings::PostgresSettings;

/// A one-off connection for commands (`directory migrate`, `user add`, …):
/// the client, its driver running in the background.
pub async fn connect(
    settings: &PostgresSettings,
) -> Result<tokio_postgres::Client, PostgresDirectoryError> {
    let (client, _events) = link::connect(settings).await?;
    Ok(client)
}

/// Whether a `directory` setting names a PostgreSQL database.
pub fn is_postgres_url(value: &str) -> bool {
    value.starts_with("postgres://") || value.starts_with("postgresql://")
}
/// The driver, for its URL parser and client type.
pub use tokio_postgres;
