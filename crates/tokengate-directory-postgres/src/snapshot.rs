//! Reading the whole directory from the tables into a [`Directory`].

use std::collections::BTreeMap;

use tokengate_directory::{
    Backend, Directory, DomainRecord, OwnerRecord, PasswordHash, UserRecord,
};
use tokio_postgres::Client;

use crate::PostgresDirectoryError;

/// Reads domains, users and owners in one repeatable-read, read-only
/// transaction (the three tables agree) and builds the snapshot. A row
/// whose hash does not parse is left out with an error log naming the
/// principal (never the hash): one bad row must not freeze every other
/// change. The dummy hash of `previous` is reused when its profile still
/// fits.
pub async fn load(
    client: &mut Client,
    previous: Option<&Directory>,
) -> Result<Directory, PostgresDirectoryError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut domains: BTreeMap<String, DomainRecord> = BTreeMap::new();
    for row in tx
        .query("SELECT domain_id, state FROM tokengate.domains", &[])
        .await?
    {
        let domain_id: String = row.try_get(0)?;
        let state: String = row.try_get(1)?;
        domains.insert(
            domain_id.clone(),
            DomainRecord {
                domain_id,
                state: state.parse()?,
                user: Vec::new(),
                owner: Vec::new(),
            },
        );
    }
    for row in tx
        .query(
            "SELECT domain_id, user_id, password_hash, state, user_type, required_actions, \
             backend FROM tokengate.users",
            &[],
        )
        .await?
    {
        let domain_id: String = row.try_get(0)?;
        let user_id: String = row.try_get(1)?;
        // None: an EXTERNAL user, or an API_USER without a password (the
        // table's constraint allows no other).
        let password_hash: Option<String> = row.try_get(2)?;
        if let Some(hash) = &password_hash
            && !hash_ok(&domain_id, "user", &user_id, hash)
        {
            continue;
        }
        let state: String = row.try_get(3)?;
        let user_type: String = row.try_get(4)?;
        let backend: String = row.try_get(6)?;
        let record = UserRecord {
            user_id,
            password_hash,
            backend: backend.parse::<Backend>()?,
            state: state.parse()?,
            user_type: user_type.parse()?,
            required_actions: row.try_get(5)?,
        };
        if let Some(domain) = domains.get_mut(&domain_id) {
            domain.user.push(record);
        }
    }
    for row in tx
        .query(
            "SELECT domain_id, owner_id, password_hash, state FROM tokengate.owners",
            &[],
        )
        .await?
    {
        let domain_id: String = row.try_get(0)?;
        let owner_id: String = row.try_get(1)?;
        let password_hash: String = row.try_get(2)?;
        if !hash_ok(&domain_id, "owner", &owner_id, &password_hash) {
            continue;
        }
        let state: String = row.try_get(3)?;
        let record = OwnerRecord {
            owner_id,
            password_hash,
            state: state.parse()?,
        };
        if let Some(domain) = domains.get_mut(&domain_id) {
            domain.owner.push(record);
        }
    }
    tx.commit().await?;
    Ok(Directory::from_records(
        domains.into_values().collect(),
        previous,
    )?)
}

fn hash_ok(domain_id: &str, kind: &str, id: &str, hash: &str) -> bool {
    match PasswordHash::parse(hash) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(%domain_id, kind, principal = %id, error = %e, "directory row left out: its password_hash is not usable");
            metrics::counter!("tokengate_directory_rows_skipped_total").increment(1);
            false
        }
    }
}
