//! Idempotency keys on PostgreSQL. Callers hold a request transaction of
//! the key's tenant.

use chrono::{DateTime, Utc};
use hydracore_domain::idempotency::{decide, Claim, IdempotencyKey, StoredKey, KEY_TTL_MICROS};
use hydracore_domain::Timestamp;
use sqlx::PgConnection;
use uuid::Uuid;

use super::rows::timestamp;
use crate::StoreError;

pub async fn claim(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> Result<Claim, StoreError> {
    let now = Timestamp::now();
    // First use: the insert is the claim. Two first uses at once meet on
    // the primary key; the loser waits for the winner, then reads its row.
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, instance_id, key, fingerprint, workflow_id, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(instance_id)
    .bind(key.as_str())
    .bind(fingerprint)
    .bind(now.as_datetime())
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Fresh);
    }
    let row: Option<(Vec<u8>, Option<Uuid>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT fingerprint, workflow_id, created_at FROM idempotency_keys \
         WHERE tenant_id = $1 AND instance_id = $2 AND key = $3 FOR UPDATE",
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
    let claim = decide(stored.as_ref(), fingerprint, now);
    if claim == Claim::Fresh {
        // An expired or abandoned claim: take it over.
        sqlx::query(
            "UPDATE idempotency_keys SET fingerprint = $4, workflow_id = NULL, created_at = $5 \
             WHERE tenant_id = $1 AND instance_id = $2 AND key = $3",
        )
        .bind(tenant_id)
        .bind(instance_id)
        .bind(key.as_str())
        .bind(fingerprint)
        .bind(now.as_datetime())
        .execute(conn)
        .await?;
    }
    Ok(claim)
}

pub async fn release(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys \
         WHERE tenant_id = $1 AND instance_id = $2 AND key = $3 AND workflow_id IS NULL",
    )
    .bind(tenant_id)
    .bind(instance_id)
    .bind(key.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs as the login (a system job across tenants).
pub async fn purge(conn: &mut PgConnection, limit: u32) -> Result<u64, StoreError> {
    let cutoff = Timestamp::now()
        .unix_micros()
        .saturating_sub(KEY_TTL_MICROS);
    let cutoff = Timestamp::from_unix_micros(cutoff)
        .map(Timestamp::as_datetime)
        .unwrap_or_default();
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (tenant_id, instance_id, key) IN \
         (SELECT tenant_id, instance_id, key FROM idempotency_keys WHERE created_at < $1 \
          LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoff)
    .bind(i64::from(limit))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
