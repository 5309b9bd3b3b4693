//! Instance and credential queries on PostgreSQL.

use chrono::{DateTime, Utc};
use hydracore_domain::Timestamp;
use sqlx::PgConnection;
use uuid::Uuid;

use super::rows::{datetime, timestamp, timestamp_opt};
use crate::{Credential, CredentialKind, Instance, NewCredential, StoreError};

pub async fn insert_instance(conn: &mut PgConnection, i: &Instance) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO instances (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(i.id)
        .bind(i.tenant_id)
        .bind(&i.name)
        .bind(i.created_at.as_datetime())
        .execute(conn)
        .await?;
    Ok(())
}

/// Every instance, or only `only`.
pub async fn list_instances(
    conn: &mut PgConnection,
    only: Option<Uuid>,
) -> Result<Vec<Instance>, StoreError> {
    let rows: Vec<(Uuid, Uuid, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, tenant_id, name, created_at FROM instances \
         WHERE $1::uuid IS NULL OR id = $1 ORDER BY created_at, id",
    )
    .bind(only)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, tenant_id, name, created_at)| {
            Ok(Instance {
                id,
                tenant_id,
                name,
                created_at: timestamp(created_at)?,
            })
        })
        .collect()
}

/// `conn` must be in a transaction: the instance stays share-locked until
/// the credential is committed, which is what a foreign key would give
/// (credentials, a reference table, cannot have one to instances).
pub async fn insert_credential(
    conn: &mut PgConnection,
    new: &NewCredential,
) -> Result<(), StoreError> {
    let c = &new.credential;
    if let Some(instance_id) = c.instance_id {
        let found: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM instances WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE",
        )
        .bind(c.tenant_id)
        .bind(instance_id)
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_none() {
            return Err(StoreError::Config(format!(
                "no instance {instance_id} in tenant {}",
                c.tenant_id
            )));
        }
    }
    sqlx::query(
        "INSERT INTO credentials (id, kind, tenant_id, instance_id, scopes, key_hash, key_prefix, \
         created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.id)
    .bind(c.kind.as_str())
    .bind(c.tenant_id)
    .bind(c.instance_id)
    .bind(&c.scopes)
    .bind(&new.key_hash)
    .bind(&c.key_prefix)
    .bind(c.created_at.as_datetime())
    .bind(datetime(c.revoked_at))
    .execute(conn)
    .await?;
    Ok(())
}

type CredentialRow = (
    Uuid,
    String,
    Uuid,
    Option<Uuid>,
    Vec<String>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const CREDENTIAL_COLUMNS: &str =
    "id, kind, tenant_id, instance_id, scopes, key_prefix, created_at, revoked_at";

fn credential(row: CredentialRow) -> Result<Credential, StoreError> {
    let (id, kind, tenant_id, instance_id, scopes, key_prefix, created_at, revoked_at) = row;
    Ok(Credential {
        id,
        kind: CredentialKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("credential kind {kind:?}")))?,
        tenant_id,
        instance_id,
        scopes: scopes.into_iter().filter(|s| !s.is_empty()).collect(),
        key_prefix,
        created_at: timestamp(created_at)?,
        revoked_at: timestamp_opt(revoked_at)?,
    })
}

/// Runs outside any transaction: `hydracore_credential_by_key` (migration
/// 0003) switches to the application role and sets the key for its own
/// implicit transaction, so row-level security shows the row only to who
/// presents its key, in one round trip.
pub async fn find_credential(
    conn: &mut PgConnection,
    key_hash: &[u8],
) -> Result<Option<Credential>, StoreError> {
    let row: Option<CredentialRow> = sqlx::query_as(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM hydracore_credential_by_key($1)"
    ))
    .bind(key_hash)
    .fetch_optional(conn)
    .await?;
    row.map(credential).transpose()
}

pub async fn list_credentials(conn: &mut PgConnection) -> Result<Vec<Credential>, StoreError> {
    let rows: Vec<CredentialRow> = sqlx::query_as(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"
    ))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(credential).collect()
}

pub async fn revoke_credential(conn: &mut PgConnection, id: Uuid) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE credentials SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(Timestamp::now().as_datetime())
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}
