//! Instance and credential queries on SQLite: reads on the read pool
//! (async), writes run by the writer thread (synchronous).

use hydracore_domain::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::rows::{micros, timestamp, timestamp_opt};
use crate::{Credential, CredentialKind, Instance, NewCredential, StoreError};

pub fn insert_instance(conn: &Connection, i: &Instance) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO instances (id, tenant_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        i.id,
        i.tenant_id,
        i.name,
        i.created_at.unix_micros()
    ])?;
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

pub fn insert_credential(conn: &Connection, new: &NewCredential) -> Result<(), StoreError> {
    let c = &new.credential;
    if let Some(instance_id) = c.instance_id {
        let owner: Option<Uuid> = conn
            .prepare_cached("SELECT tenant_id FROM instances WHERE id = ?1")?
            .query_row(params![instance_id], |row| row.get(0))
            .optional()?;
        if owner != Some(c.tenant_id) {
            return Err(StoreError::Config(format!(
                "no instance {instance_id} in tenant {}",
                c.tenant_id
            )));
        }
    }
    conn.prepare_cached(
        "INSERT INTO credentials (id, kind, tenant_id, instance_id, scopes, key_hash, key_prefix, \
         created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        c.id,
        c.kind.as_str(),
        c.tenant_id,
        c.instance_id,
        c.scopes.join(","),
        new.key_hash,
        c.key_prefix,
        c.created_at.unix_micros(),
        micros(c.revoked_at),
    ])?;
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

pub fn revoke_credential(conn: &Connection, id: Uuid) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE credentials SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
        )?
        .execute(params![Timestamp::now().unix_micros(), id])?;
    Ok(changed > 0)
}
