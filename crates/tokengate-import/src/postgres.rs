//! `tokengate import spaceone --to postgres://…`: the same export, written
//! as rows of the PostgreSQL directory (`tokengate_directory_postgres`'s
//! tables) instead of a directory file; the keys go to the keys folder as
//! for a file.
//!
//! Every row is an upsert that changes nothing when the row already holds
//! the imported values, so a second run over the same export changes
//! nothing (and fires no change notification). Rows the export does not
//! hold are left as they are: the database may hold users added with
//! `tokengate user add`. All rows are written in one transaction; a dry run
//! writes them and rolls back, so its counts are exactly what a real run
//! would change. Hashes travel as statement parameters, never in the text.

use std::fmt;
use std::path::PathBuf;

use tokengate_directory::Directory;
use tokengate_directory_postgres::tokio_postgres::{Client, GenericClient};
use tokengate_directory_postgres::{PostgresDirectoryError, schema};

use crate::spaceone::{self, Domains, ImportError, Report};

/// What to import from where, into a PostgreSQL directory.
#[derive(Debug, Clone)]
pub struct PostgresImportOptions {
    /// The folder holding the export's `<collection>.json` files.
    pub from: PathBuf,
    /// The keys folder to write.
    pub keys: PathBuf,
    /// Count what would change; commit nothing, write no key.
    pub dry_run: bool,
}

/// How many rows of one table an import created, updated or found as
/// imported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows that did not exist.
    pub created: usize,
    /// Rows that held other values.
    pub updated: usize,
    /// Rows already as imported.
    pub unchanged: usize,
}

impl Counts {
    fn add(&mut self, outcome: Option<bool>) {
        match outcome {
            Some(true) => self.created += 1,
            Some(false) => self.updated += 1,
            None => self.unchanged += 1,
        }
    }
}

/// The rows an import wrote (or, in a dry run, would write).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowChanges {
    /// Whether this was a dry run (rolled back).
    pub dry_run: bool,
    /// `tokengate.domains`.
    pub domains: Counts,
    /// `tokengate.users`.
    pub users: Counts,
    /// `tokengate.owners`.
    pub owners: Counts,
}

impl RowChanges {
    /// Whether any row was (or would be) created or updated.
    pub fn changed(&self) -> bool {
        [self.domains, self.users, self.owners]
            .iter()
            .any(|c| c.created + c.updated > 0)
    }
}

impl fmt::Display for RowChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = if self.dry_run { "would be " } else { "" };
        for (table, c) in [
            ("domains", self.domains),
            ("users", self.users),
            ("owners", self.owners),
        ] {
            writeln!(
                f,
                "database {table}: {} {would}created, {} {would}updated, {} unchanged",
                c.created, c.updated, c.unchanged
            )?;
        }
        Ok(())
    }
}

impl From<PostgresDirectoryError> for ImportError {
    fn from(e: PostgresDirectoryError) -> Self {
        ImportError::Database(e.to_string())
    }
}

impl From<tokengate_directory_postgres::tokio_postgres::Error> for ImportError {
    fn from(e: tokengate_directory_postgres::tokio_postgres::Error) -> Self {
        PostgresDirectoryError::from(e).into()
    }
}

/// Reads the export, writes (unless a dry run) the domains' keys, and
/// upserts the domains, users and owners into the PostgreSQL directory
/// `client` is connected to (its schema migrated: `tokengate directory
/// migrate`). Records that cannot be imported are skipped and reported,
/// as for a file.
pub async fn import_postgres(
    options: &PostgresImportOptions,
    client: &mut Client,
) -> Result<Report, ImportError> {
    let (domains, mut report) = spaceone::read(&options.from, options.dry_run)?;
    // The rows must make a directory tokengate loads, as a file must.
    Directory::from_records(spaceone::records(&domains)?, None)
        .map_err(|e| ImportError::Invalid(e.to_string()))?;
    schema::check_schema(client).await?;
    spaceone::import_keys(&options.keys, &domains, options.dry_run, &mut report)?;
    let tx = client.transaction().await?;
    let mut rows = write_rows(&tx, &domains).await?;
    rows.dry_run = options.dry_run;
    if options.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    report.database = Some(rows);
    Ok(report)
}

/// The upserts: `Some(true)` a row created, `Some(false)` updated, `None`
/// already as imported (the `WHERE` of `DO UPDATE` left it alone).
async fn write_rows(
    client: &impl GenericClient,
    domains: &Domains,
) -> Result<RowChanges, ImportError> {
    let mut rows = RowChanges::default();
    let created = |row: Option<tokengate_directory_postgres::tokio_postgres::Row>| {
        row.map(|r| r.try_get::<_, bool>(0)).transpose()
    };
    for (domain_id, domain) in domains {
        let row = client
            .query_opt(
                "INSERT INTO tokengate.domains (domain_id, state) VALUES ($1, $2) \
                 ON CONFLICT (domain_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now() \
                 WHERE tokengate.domains.state IS DISTINCT FROM EXCLUDED.state \
                 RETURNING (xmax = 0)",
                &[domain_id, &domain.state],
            )
            .await?;
        rows.domains.add(created(row)?);
        for user in domain.users.values() {
            let backend = if user.external { "EXTERNAL" } else { "LOCAL" };
            let row = client
                .query_opt(
                    "INSERT INTO tokengate.users \
                       (domain_id, user_id, password_hash, state, user_type, required_actions, backend) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (domain_id, user_id) DO UPDATE SET \
                       password_hash = EXCLUDED.password_hash, state = EXCLUDED.state, \
                       user_type = EXCLUDED.user_type, required_actions = EXCLUDED.required_actions, \
                       backend = EXCLUDED.backend, updated_at = now() \
                     WHERE (tokengate.users.password_hash, tokengate.users.state, \
                            tokengate.users.user_type, tokengate.users.required_actions, \
                            tokengate.users.backend) \
                       IS DISTINCT FROM (EXCLUDED.password_hash, EXCLUDED.state, \
                            EXCLUDED.user_type, EXCLUDED.required_actions, EXCLUDED.backend) \
                     RETURNING (xmax = 0)",
                    &[
                        domain_id,
                        &user.user_id,
                        &user.hash,
                        &user.state,
                        &user.user_type,
                        &user.required_actions,
                        &backend,
                    ],
                )
                .await?;
            rows.users.add(created(row)?);
        }
        for owner in domain.owners.values() {
            let row = client
                .query_opt(
                    "INSERT INTO tokengate.owners (domain_id, owner_id, password_hash, state) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (domain_id, owner_id) DO UPDATE SET \
                       password_hash = EXCLUDED.password_hash, state = EXCLUDED.state, \
                       updated_at = now() \
                     WHERE (tokengate.owners.password_hash, tokengate.owners.state) \
                       IS DISTINCT FROM (EXCLUDED.password_hash, EXCLUDED.state) \
                     RETURNING (xmax = 0)",
                    &[domain_id, &owner.owner_id, &owner.hash, &owner.state],
                )
                .await?;
            rows.owners.add(created(row)?);
        }
    }
    Ok(rows)
}
