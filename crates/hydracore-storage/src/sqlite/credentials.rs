//! Instance and credential queries on SQLite: reads run on a read
//! connection (`readers`), writes by the writer thread (`writer`).

use hydracore_domain::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
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
pub fn list_instances(conn: &Connection, only: Option<Uuid>) -> Result<Vec<Instance>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT id, tenant_id, name, created_at FROM instances \
             WHERE ?1 IS NULL OR id = ?1 ORDER BY created_at, id",
        )?
        .query_map(params![only], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<Vec<(Uuid, Uuid, Option<String>, i64)>, _>>()?;
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

fn credential_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

pub fn find_credential(
    conn: &Connection,
    key_hash: &[u8],
) -> Result<Option<Credential>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE key_hash = ?1"
        ))?
        .query_row(params![key_hash], credential_row)
        .optional()?;
    row.map(credential).transpose()
}

pub fn list_credentials(conn: &Connection) -> Result<Vec<Credential>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_at, id"
        ))?
        .query_map([], credential_row)?
        .collect::<Result<Vec<_>, _>>()?;
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
