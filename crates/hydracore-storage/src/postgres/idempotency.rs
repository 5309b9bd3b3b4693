//! Idempotency keys on PostgreSQL. Callers hold a request transaction of
//! the key's tenant, but for [`purge`], the login's system job.

use hydracore_domain::idempotency::{decide, Claim, IdempotencyKey, StoredKey, KEY_TTL_MICROS};
use hydracore_domain::Timestamp;
use uuid::Uuid;

use super::pool::Client;
use super::rows::get;
use crate::rows::Columns;
use crate::StoreError;

pub async fn claim(
    conn: &Client,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    fingerprint: &[u8],
) -> Result<Claim, StoreError> {
    let now = Timestamp::now();
    let key = key.as_str();
    // First use: the insert is the claim. Two first uses at once meet on
    // the primary key; the loser waits for the winner, then reads its row.
    let inserted = conn
        .execute(
            "INSERT INTO idempotency_keys \
             (tenant_id, instance_id, key, fingerprint, workflow_id, created_at) \
             VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT DO NOTHING",
            &[
                &tenant_id,
                &instance_id,
                &key,
                &fingerprint,
                &now.as_datetime(),
            ],
        )
        .await?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let stored = match conn
        .query_opt(
            "SELECT fingerprint, workflow_id, answer, created_at FROM idempotency_keys \
             WHERE tenant_id = $1 AND instance_id = $2 AND key = $3 FOR UPDATE",
            &[&tenant_id, &instance_id, &key],
        )
        .await?
    {
        Some(row) => Some(StoredKey {
            fingerprint: get(&row, 0)?,
            workflow_id: get(&row, 1)?,
            answer: get(&row, 2)?,
            created_at: row.time(3)?,
        }),
        None => None,
    };
    let claim = decide(stored.as_ref(), fingerprint, now);
    if claim == Claim::Fresh {
        // An expired or abandoned claim: take it over.
        conn.execute(
            "UPDATE idempotency_keys \
             SET fingerprint = $4, workflow_id = NULL, answer = NULL, created_at = $5 \
             WHERE tenant_id = $1 AND instance_id = $2 AND key = $3",
            &[
                &tenant_id,
                &instance_id,
                &key,
                &fingerprint,
                &now.as_datetime(),
            ],
        )
        .await?;
    }
    Ok(claim)
}

/// Marks a claimed key done: its change landed on `workflow_id` and was
/// answered `answer`.
pub async fn complete(
    conn: &Client,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
    workflow_id: Uuid,
    answer: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE idempotency_keys SET workflow_id = $4, answer = $5 \
         WHERE tenant_id = $1 AND instance_id = $2 AND key = $3",
        &[
            &tenant_id,
            &instance_id,
            &key.as_str(),
            &workflow_id,
            answer,
        ],
    )
    .await?;
    Ok(())
}

pub async fn release(
    conn: &Client,
    tenant_id: Uuid,
    instance_id: Uuid,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM idempotency_keys \
         WHERE tenant_id = $1 AND instance_id = $2 AND key = $3 AND workflow_id IS NULL",
        &[&tenant_id, &instance_id, &key.as_str()],
    )
    .await?;
    Ok(())
}

/// Runs as the login (a system job across tenants).
pub async fn purge(conn: &Client, limit: u32) -> Result<u64, StoreError> {
    let cutoff = Timestamp::now()
        .unix_micros()
        .saturating_sub(KEY_TTL_MICROS);
    let cutoff = Timestamp::from_unix_micros(cutoff)
        .map(Timestamp::as_datetime)
        .unwrap_or_default();
    let cutoff = super::purge::bound(
        conn,
        "SELECT created_at FROM idempotency_keys WHERE created_at < $1 \
         ORDER BY created_at OFFSET $2 LIMIT 1",
        cutoff,
        limit,
    )
    .await?;
    conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < $1",
        &[&cutoff],
    )
    .await
}
