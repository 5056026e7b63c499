//! What can go wrong talking to the directory database.

/// Errors of the PostgreSQL directory. Texts never carry a password, a
/// hash or the connection URL.
#[derive(Debug, thiserror::Error)]
pub enum PostgresDirectoryError {
    /// The settings cannot make a connection (bad URL, unreadable CA file).
    #[error("postgres directory settings: {0}")]
    Settings(String),
    /// Connecting failed or took longer than the connect timeout.
    #[error("cannot connect to the postgres directory: {0}")]
    Connect(String),
    /// A statement failed.
    #[error("postgres directory query failed: {0}")]
    Query(String),
    /// A statement took longer than the query timeout.
    #[error("postgres directory query timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The database has no tokengate tables, or older ones.
    #[error(
        "the postgres directory schema is at version {found}, this binary needs {needed}: run `tokengate directory migrate`"
    )]
    Schema {
        /// The version found (0: no tables).
        found: i32,
        /// The version this binary needs.
        needed: i32,
    },
    /// Rows that do not make a valid directory (a hash that does not parse).
    #[error(transparent)]
    Invalid(#[from] tokengate_directory::DirectoryError),
    /// A command named something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A command would create something that exists.
    #[error("{0}")]
    AlreadyExists(String),
}

impl From<tokio_postgres::Error> for PostgresDirectoryError {
    fn from(e: tokio_postgres::Error) -> Self {
        PostgresDirectoryError::Query(describe(&e))
    }
}

/// A driver error as a log line can show it: the server's message and
/// SQLSTATE for a database error ("password authentication failed for
/// user …", never the password; not the row-echoing detail), else the
/// error and its causes ("error connecting to server: Connection refused").
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
