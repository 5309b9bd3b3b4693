//! Instance and credential queries on PostgreSQL. All but the key lookup
//! are administrative (the command line), run as the login across tenants;
//! the command line runs each once, so they are not kept prepared on the
//! connection, while the key lookup, made by requests, is.

use tokio_postgres::Row;
use uuid::Uuid;

use super::pool::Client;
use super::rows::get;
use crate::rows::{corrupt, Columns};
use crate::{Credential, CredentialKind, Instance, NewCredential, StoreError};

pub async fn insert_instance(conn: &Client, i: &Instance) -> Result<(), StoreError> {
    conn.execute_once(
        "INSERT INTO instances (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)",
        &[&i.id, &i.tenant_id, &i.name, &i.created_at.as_datetime()],
    )
    .await?;
    Ok(())
}

/// Every instance, or only `only`.
pub async fn list_instances(
    conn: &Client,
    only: Option<Uuid>,
) -> Result<Vec<Instance>, StoreError> {
    let rows = conn
        .query_once(
            "SELECT id, tenant_id, name, created_at FROM instances \
             WHERE $1::uuid IS NULL OR id = $1 ORDER BY created_at, id",
            &[&only],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Instance {
                id: get(row, 0)?,
                tenant_id: get(row, 1)?,
                name: get(row, 2)?,
                created_at: row.time(3)?,
            })
        })
        .collect()
}

/// `conn` must be in a transaction: the instance stays share-locked until
/// the credential is committed, which is what a foreign key would give
/// (credentials, a reference table, cannot have one to instances).
pub async fn insert_credential(conn: &Client, new: &NewCredential) -> Result<(), StoreError> {
    let c = &new.credential;
    if let Some(instance_id) = c.instance_id {
        let found = conn
            .query_opt_once(
                "SELECT id FROM instances WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE",
                &[&c.tenant_id, &instance_id],
            )
            .await?;
        if found.is_none() {
            return Err(StoreError::Config(format!(
                "no instance {instance_id} in tenant {}",
                c.tenant_id
            )));
        }
    }
    conn.execute_once(
        "INSERT INTO credentials (id, kind, tenant_id, instance_id, scopes, key_hash, key_prefix, \
         created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &c.id,
            &c.kind.as_str(),
            &c.tenant_id,
            &c.instance_id,
            &c.scopes,
            &new.key_hash,
            &c.key_prefix,
            &c.created_at.as_datetime(),
            &c.revoked_at.map(hydracore_domain::Timestamp::as_datetime),
        ],
    )
    .await?;
    Ok(())
}

/// Selected in this order by every credential query, for [`credential`].
const CREDENTIAL_COLUMNS: &str =
    "id, kind, tenant_id, instance_id, scopes, key_prefix, created_at, revoked_at";

fn credential(row: &Row) -> Result<Credential, StoreError> {
    let kind: &str = get(row, 1)?;
    let scopes: Vec<String> = get(row, 4)?;
    Ok(Credential {
        id: get(row, 0)?,
        kind: CredentialKind::parse(kind).ok_or_else(|| corrupt("credential kind", kind))?,
        tenant_id: get(row, 2)?,
        instance_id: get(row, 3)?,
        scopes: scopes.into_iter().filter(|s| !s.is_empty()).collect(),
        key_prefix: get(row, 5)?,
        created_at: row.time(6)?,
        revoked_at: row.opt_time(7)?,
    })
}

/// Runs outside any transaction: `hydracore_credential_by_key` switches to
/// the application role and sets the key for its own implicit
/// transaction, so row-level security shows the row only to who presents
/// its key, in one round trip.
pub async fn find_credential(
    conn: &Client,
    key_hash: &[u8],
) -> Result<Option<Credential>, StoreError> {
    conn.query_opt(
        &format!("SELECT {CREDENTIAL_COLUMNS} FROM hydracore_credential_by_key($1)"),
        &[&key_hash],
    )
    .await?
    .as_ref()
    .map(credential)
    .transpose()
}

pub async fn list_credentials(conn: &Client) -> Result<Vec<Credential>, StoreError> {
    let rows = conn
        .query_once(
            &format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"),
            &[],
        )
        .await?;
    rows.iter().map(credential).collect()
}

pub async fn revoke_credential(conn: &Client, id: Uuid) -> Result<bool, StoreError> {
    let revoked = conn
        .execute_once(
            "UPDATE credentials SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
            &[&hydracore_domain::Timestamp::now().as_datetime(), &id],
        )
        .await?;
    Ok(revoked > 0)
}
