//! Idempotency keys on SQLite. Callers hold a write transaction.

use hydracore_domain::idempotency::{decide, Claim, IdempotencyKey, StoredKey, KEY_TTL_MICROS};
use hydracore_domain::Timestamp;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::rows::timestamp;
use crate::StoreError;

pub async fn claim(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> Result<Claim, StoreError> {
    let row: Option<(Vec<u8>, Option<Uuid>, i64)> = sqlx::query_as(
        "SELECT fingerprint, workflow_id, created_at FROM idempotency_keys \
         WHERE tenant_id = ?1 AND instance_id = ?2 AND key = ?3",
    )
    .bind(tenant_id)
    .bind(instance_id)
    .bind(key.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let stored = row
        .map(|(fingerprint, workflow_id, created_at)| {
            Ok::<_, StoreError>(StoredKey {
                fingerprint,
                workflow_id,
                created_at: timestamp(created_at)?,
            })
        })
        .transpose()?;
    let now = Timestamp::now();
    let claim = decide(stored.as_ref(), fingerprint, now);
    if claim == Claim::Fresh {
        sqlx::query(
            "INSERT OR REPLACE INTO idempotency_keys \
             (tenant_id, instance_id, key, fingerprint, workflow_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        )
        .bind(tenant_id)
        .bind(instance_id)
        .bind(key.as_str())
        .bind(fingerprint)
        .bind(now.unix_micros())
        .execute(conn)
        .await?;
    }
    Ok(claim)
}

pub async fn complete(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    workflow_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency_keys SET workflow_id = ?1 \
         WHERE tenant_id = ?2 AND instance_id = ?3 AND key = ?4",
    )
    .bind(workflow_id)
    .bind(tenant_id)
    .bind(instance_id)
    .bind(key.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn release(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE tenant_id = ?1 AND instance_id = ?2 AND key = ?3 AND workflow_id IS NULL",
    )
    .bind(tenant_id)
    .bind(instance_id)
    .bind(key.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn purge(conn: &mut SqliteConnection, limit: u32) -> Result<u64, StoreError> {
    let cutoff = Timestamp::now()
        .unix_micros()
        .saturating_sub(KEY_TTL_MICROS);
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (tenant_id, instance_id, key) IN \
         (SELECT tenant_id, instance_id, key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
    )
    .bind(cutoff)
    .bind(i64::from(limit))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
