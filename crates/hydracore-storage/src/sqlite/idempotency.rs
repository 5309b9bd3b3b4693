//! Idempotency keys on SQLite: writes only, run by the writer thread.

use hydracore_domain::idempotency::{decide, Claim, IdempotencyKey, StoredKey, KEY_TTL_MICROS};
use hydracore_domain::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::rows::timestamp;
use crate::StoreError;

/// A key's row: fingerprint, workflow id, kept answer, creation time.
type StoredRow = (Vec<u8>, Option<Uuid>, Option<String>, i64);

pub fn claim(
    conn: &Connection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> Result<Claim, StoreError> {
    let row: Option<StoredRow> = conn
        .prepare_cached(
            "SELECT fingerprint, workflow_id, answer, created_at FROM idempotency_keys \
             WHERE tenant_id = ?1 AND instance_id = ?2 AND key = ?3",
        )?
        .query_row(params![tenant_id, instance_id, key.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let stored = row
        .map(|(fingerprint, workflow_id, answer, created_at)| {
            Ok::<_, StoreError>(StoredKey {
                fingerprint,
                workflow_id,
                answer: answer
                    .map(|a| serde_json::from_str(&a))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("idempotency answer: {e}")))?,
                created_at: timestamp(created_at)?,
            })
        })
        .transpose()?;
    let now = Timestamp::now();
    let claim = decide(stored.as_ref(), fingerprint, now);
    if claim == Claim::Fresh {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idempotency_keys \
             (tenant_id, instance_id, key, fingerprint, workflow_id, answer, created_at) \
             VALUES (?1, ?2, ?3, ?4, NULL, NULL, ?5)",
        )?
        .execute(params![
            tenant_id,
            instance_id,
            key.as_str(),
            fingerprint,
            now.unix_micros()
        ])?;
    }
    Ok(claim)
}

/// Marks a claimed key done: its create or change landed on
/// `workflow_id`, and a change was answered `answer`.
pub fn complete(
    conn: &Connection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    workflow_id: Uuid,
    answer: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET workflow_id = ?1, answer = ?5 \
         WHERE tenant_id = ?2 AND instance_id = ?3 AND key = ?4",
    )?
    .execute(params![
        workflow_id,
        tenant_id,
        instance_id,
        key.as_str(),
        answer.map(serde_json::Value::to_string)
    ])?;
    Ok(())
}

pub fn release(
    conn: &Connection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys \
         WHERE tenant_id = ?1 AND instance_id = ?2 AND key = ?3 AND workflow_id IS NULL",
    )?
    .execute(params![tenant_id, instance_id, key.as_str()])?;
    Ok(())
}

pub fn purge(conn: &Connection, limit: u32) -> Result<u64, StoreError> {
    let cutoff = Timestamp::now()
        .unix_micros()
        .saturating_sub(KEY_TTL_MICROS);
    let purged = conn
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE (tenant_id, instance_id, key) IN \
             (SELECT tenant_id, instance_id, key FROM idempotency_keys \
             WHERE created_at < ?1 LIMIT ?2)",
        )?
        .execute(params![cutoff, i64::from(limit)])?;
    Ok(u64::try_from(purged).unwrap_or(u64::MAX))
}
