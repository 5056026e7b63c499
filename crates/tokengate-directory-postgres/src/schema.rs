//! The tables, created by migrations compiled into the binary
//! (`tokengate directory migrate`). Each migration runs once, in order, in
//! one transaction with the others, under an advisory lock so that
//! instances migrating together do not race.

use tokio_postgres::Client;

use crate::PostgresDirectoryError;

/// Every migration: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "directory",
        include_str!("migrations/0001_directory.sql"),
    ),
    (
        2,
        "user_backend",
        include_str!("migrations/0002_user_backend.sql"),
    ),
];

/// The schema version this binary reads.
pub const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key of migrations ("tokengate" in a number).
const MIGRATION_LOCK: i64 = 0x746f_6b65_6e67;

/// Applies the migrations the database lacks; returns the ones applied.
pub async fn migrate(
    client: &mut Client,
) -> Result<Vec<(i32, &'static str)>, PostgresDirectoryError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS tokengate;
         CREATE TABLE IF NOT EXISTS tokengate.schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    let mut applied = Vec::new();
    for row in tx
        .query("SELECT version FROM tokengate.schema_migrations", &[])
        .await?
    {
        applied.push(row.try_get::<_, i32>(0)?);
    }
    let mut done = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO tokengate.schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        done.push((*version, *name));
    }
    tx.commit().await?;
    Ok(done)
}

/// The database's schema version: 0 when it has no tokengate tables.
pub async fn schema_version(client: &Client) -> Result<i32, PostgresDirectoryError> {
    let row = client
        .query_one(
            "SELECT to_regclass('tokengate.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?;
    if !row.try_get::<_, bool>(0)? {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM tokengate.schema_migrations",
            &[],
        )
        .await?;
    Ok(row.try_get::<_, i32>(0)?)
}

/// Fails unless the database has at least [`SCHEMA_VERSION`].
pub async fn check_schema(client: &Client) -> Result<i32, PostgresDirectoryError> {
    let found = schema_version(client).await?;
    if found < SCHEMA_VERSION {
        return Err(PostgresDirectoryError::Schema {
            found,
            needed: SCHEMA_VERSION,
        });
    }
    Ok(found)
}
