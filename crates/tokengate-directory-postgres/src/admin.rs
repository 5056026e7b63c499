//! What the `tokengate domain|user|owner` commands do to the tables. Every
//! change fires the tables' trigger, so running instances resync within a
//! second. Hashes come in already made (the password never reaches this
//! module, and no statement text carries a hash: they are parameters).

use tokengate_directory::{DomainState, PrincipalState, UserType};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::PostgresDirectoryError;

/// A user or an owner: which table, which id column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalTable {
    /// `tokengate.users`.
    User,
    /// `tokengate.owners`.
    Owner,
}

impl PrincipalTable {
    fn table(self) -> &'static str {
        match self {
            PrincipalTable::User => "tokengate.users",
            PrincipalTable::Owner => "tokengate.owners",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            PrincipalTable::User => "user_id",
            PrincipalTable::Owner => "owner_id",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            PrincipalTable::User => "user",
            PrincipalTable::Owner => "owner",
        }
    }
}

fn insert_error(e: tokio_postgres::Error, what: String, domain_id: &str) -> PostgresDirectoryError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
            PostgresDirectoryError::AlreadyExists(format!("{what} already exists"))
        }
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
            PostgresDirectoryError::NotFound(format!("domain {domain_id:?} does not exist"))
        }
        _ => e.into(),
    }
}

fn changed(rows: u64, what: String) -> Result<(), PostgresDirectoryError> {
    if rows == 0 {
        Err(PostgresDirectoryError::NotFound(format!(
            "{what} does not exist"
        )))
    } else {
        Ok(())
    }
}

/// Adds a domain.
pub async fn add_domain(
    client: &Client,
    domain_id: &str,
    state: DomainState,
) -> Result<(), PostgresDirectoryError> {
    client
        .execute(
            "INSERT INTO tokengate.domains (domain_id, state) VALUES ($1, $2)",
            &[&domain_id, &state.as_str()],
        )
        .await
        .map_err(|e| insert_error(e, format!("domain {domain_id:?}"), domain_id))?;
    Ok(())
}

/// Enables or disables a domain.
pub async fn set_domain_state(
    client: &Client,
    domain_id: &str,
    state: DomainState,
) -> Result<(), PostgresDirectoryError> {
    let rows = client
        .execute(
            "UPDATE tokengate.domains SET state = $2, updated_at = now() WHERE domain_id = $1",
            &[&domain_id, &state.as_str()],
        )
        .await?;
    changed(rows, format!("domain {domain_id:?}"))
}

/// Removes a domain with its users and owners.
pub async fn remove_domain(client: &Client, domain_id: &str) -> Result<(), PostgresDirectoryError> {
    let rows = client
        .execute(
            "DELETE FROM tokengate.domains WHERE domain_id = $1",
            &[&domain_id],
        )
        .await?;
    changed(rows, format!("domain {domain_id:?}"))
}

/// A new user or owner.
#[derive(Clone)]
pub struct NewPrincipal<'a> {
    /// Its domain (must exist).
    pub domain_id: &'a str,
    /// user_id or owner_id.
    pub id: &'a str,
    /// bcrypt or argon2id PHC text.
    pub password_hash: &'a str,
    /// Its state.
    pub state: PrincipalState,
    /// USER or API_USER (users only).
    pub user_type: UserType,
}

/// Adds a user or owner.
pub async fn add_principal(
    client: &Client,
    table: PrincipalTable,
    new: &NewPrincipal<'_>,
) -> Result<(), PostgresDirectoryError> {
    let what = format!(
        "{} {:?} in domain {:?}",
        table.noun(),
        new.id,
        new.domain_id
    );
    let result = match table {
        PrincipalTable::User => client
            .execute(
                "INSERT INTO tokengate.users (domain_id, user_id, password_hash, state, user_type) \
                     VALUES ($1, $2, $3, $4, $5)",
                &[
                    &new.domain_id,
                    &new.id,
                    &new.password_hash,
                    &new.state.as_str(),
                    &new.user_type.as_str(),
                ],
            )
            .await,
        PrincipalTable::Owner => {
            client
                .execute(
                    "INSERT INTO tokengate.owners (domain_id, owner_id, password_hash, state) \
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &new.domain_id,
                        &new.id,
                        &new.password_hash,
                        &new.state.as_str(),
                    ],
                )
                .await
        }
    };
    result.map_err(|e| insert_error(e, what, new.domain_id))?;
    Ok(())
}

/// Sets a user's or owner's password hash (its families end at their next
/// refresh: the fingerprint changes). A user imported as `EXTERNAL` (whose
/// password SpaceONE's auth plugin checked) becomes `LOCAL`: its password
/// is checked here from now on.
pub async fn set_password_hash(
    client: &Client,
    table: PrincipalTable,
    domain_id: &str,
    id: &str,
    password_hash: &str,
) -> Result<(), PostgresDirectoryError> {
    let backend = match table {
        PrincipalTable::User => ", backend = 'LOCAL'",
        PrincipalTable::Owner => "",
    };
    let sql = format!(
        "UPDATE {} SET password_hash = $3{backend}, updated_at = now() \
         WHERE domain_id = $1 AND {} = $2",
        table.table(),
        table.id_column()
    );
    let rows = client
        .execute(&sql, &[&domain_id, &id, &password_hash])
        .await?;
    changed(
        rows,
        format!("{} {id:?} in domain {domain_id:?}", table.noun()),
    )
}

/// Enables or disables a user or owner.
pub async fn set_principal_state(
    client: &Client,
    table: PrincipalTable,
    domain_id: &str,
    id: &str,
    state: PrincipalState,
) -> Result<(), PostgresDirectoryError> {
    let sql = format!(
        "UPDATE {} SET state = $3, updated_at = now() WHERE domain_id = $1 AND {} = $2",
        table.table(),
        table.id_column()
    );
    let rows = client
        .execute(&sql, &[&domain_id, &id, &state.as_str()])
        .await?;
    changed(
        rows,
        format!("{} {id:?} in domain {domain_id:?}", table.noun()),
    )
}

/// Removes a user or owner.
pub async fn remove_principal(
    client: &Client,
    table: PrincipalTable,
    domain_id: &str,
    id: &str,
) -> Result<(), PostgresDirectoryError> {
    let sql = format!(
        "DELETE FROM {} WHERE domain_id = $1 AND {} = $2",
        table.table(),
        table.id_column()
    );
    let rows = client.execute(&sql, &[&domain_id, &id]).await?;
    changed(
        rows,
        format!("{} {id:?} in domain {domain_id:?}", table.noun()),
    )
}
