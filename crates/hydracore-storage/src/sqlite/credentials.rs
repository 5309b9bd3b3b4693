//! Instance and credential queries on SQLite.

use hydracore_domain::Timestamp;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::rows::{micros, timestamp, timestamp_opt};
use crate::{Credential, CredentialKind, Instance, NewCredential, StoreError};

pub async fn insert_instance(conn: &mut SqliteConnection, i: &Instance) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO instances (id, tenant_id, name, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(i.id)
        .bind(i.tenant_id)
        .bind(&i.name)
        .bind(i.created_at.unix_micros())
        .execute(conn)
        .await?;
    Ok(())
}

/// Every instance, or only `only`.
pub async fn list_instances(
    conn: &mut SqliteConnection,
    only: Option<Uuid>,
) -> Result<Vec<Instance>, StoreError> {
    let rows: Vec<(Uuid, Uuid, Option<String>, i64)> = sqlx::query_as(
        "SELECT id, tenant_id, name, created_at FROM instances \
         WHERE ?1 IS NULL OR id = ?1 ORDER BY created_at, id",
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

pub async fn insert_credential(
    conn: &mut SqliteConnection,
    new: &NewCredential,
) -> Result<(), StoreError> {
    let c = &new.credential;
    if let Some(instance_id) = c.instance_id {
        let owner: Option<Uuid> =
            sqlx::query_scalar("SELECT tenant_id FROM instances WHERE id = ?1")
                .bind(instance_id)
                .fetch_optional(&mut *conn)
                .await?;
        if owner != Some(c.tenant_id) {
            return Err(StoreError::Config(format!(
                "no instance {instance_id} in tenant {}",
                c.tenant_id
            )));
        }
    }
    sqlx::query(
        "INSERT INTO credentials (id, kind, tenant_id, instance_id, scopes, key_hash, key_prefix, \
         created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(c.id)
    .bind(c.kind.as_str())
    .bind(c.tenant_id)
    .bind(c.instance_id)
    .bind(c.scopes.join(","))
    .bind(&new.key_hash)
    .bind(&c.key_prefix)
    .bind(c.created_at.unix_micros())
    .bind(micros(c.revoked_at))
    .execute(conn)
    .await?;
    Ok(())
}

type CredentialRow = (
    Uuid,
    String,
    Uuid,
    Option<Uuid>,
    String,
    String,
    i64,
    Option<i64>,
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
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        key_prefix,
        created_at: timestamp(created_at)?,
        revoked_at: timestamp_opt(revoked_at)?,
    })
}

pub async fn find_credential(
    conn: &mut SqliteConnection,
    key_hash: &[u8],
) -> Result<Option<Credential>, StoreError> {
    let row: Option<CredentialRow> = sqlx::query_as(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE key_hash = ?1"
    ))
    .bind(key_hash)
    .fetch_optional(conn)
    .await?;
    row.map(credential).transpose()
}

pub async fn list_credentials(conn: &mut SqliteConnection) -> Result<Vec<Credential>, StoreError> {
    let rows: Vec<CredentialRow> = sqlx::query_as(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"
    ))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(credential).collect()
}

pub async fn revoke_credential(conn: &mut SqliteConnection, id: Uuid) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE credentials SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2")
            .bind(Timestamp::now().unix_micros())
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}
