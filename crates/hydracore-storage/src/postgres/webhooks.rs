//! Webhook endpoints and deliveries on PostgreSQL. The routes' queries run
//! in a request transaction of the tenant (row-level security bounds
//! them); the delivery worker's, which span tenants, as the login, as the
//! sweeper's do. The explicit tenant conditions duplicate row-level
//! security on purpose.

use hydracore_domain::event::Event;
use hydracore_domain::webhook::{self, Delivery, Webhook, WebhookSecret};
use hydracore_domain::{Scope, Timestamp};
use uuid::Uuid;

use super::pool::Client;
use super::rows::get as column;
use super::workflows::events_horizon;
use crate::rows::EVENT_COLUMNS;
use crate::webhooks::{
    delivery_row, webhook_row, AttemptReport, DueDelivery, EndpointChange, DELIVERY_COLUMNS,
    WEBHOOK_COLUMNS,
};
use crate::StoreError;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// In a request transaction: the tenant's endpoints are counted under a
/// lock of the tenant's, so that concurrent creates respect the maximum.
pub async fn insert(
    tx: &Client,
    scope: Scope,
    w: &Webhook,
    secret: &WebhookSecret,
    max: u32,
) -> Result<bool> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 19))",
        &[&scope.tenant_id.to_string()],
    )
    .await?;
    let n: i64 = column(
        &tx.query_one(
            "SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1",
            &[&scope.tenant_id],
        )
        .await?,
        0,
    )?;
    if n >= i64::from(max) {
        return Ok(false);
    }
    // The cursor starts before the transactions still running, so that an
    // event they commit later is not passed over; events older than the
    // endpoint are then left out by their time.
    let horizon = events_horizon(tx).await?;
    let insert =
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, description, secret, \
         created_at, updated_at, cursor_xid, cursor_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, 0)";
    tx.execute(
        insert,
        &[
            &scope.tenant_id,
            &w.id,
            &w.url,
            &Webhook::stored_types(&w.event_types),
            &w.description,
            &secret.as_str(),
            &w.created_at.as_datetime(),
            &horizon,
        ],
    )
    .await?;
    Ok(true)
}

pub async fn get(tx: &Client, scope: Scope, id: Uuid) -> Result<Option<Webhook>> {
    tx.query_opt(
        &format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
        ),
        &[&scope.tenant_id, &id],
    )
    .await?
    .map(|row| webhook_row(&row))
    .transpose()
}

pub async fn list(tx: &Client, scope: Scope) -> Result<Vec<Webhook>> {
    tx.query(
        &format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 \
             ORDER BY created_at, id"
        ),
        &[&scope.tenant_id],
    )
    .await?
    .iter()
    .map(webhook_row)
    .collect()
}

pub async fn update(tx: &Client, scope: Scope, w: &Webhook) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE webhook_endpoints SET url = $3, event_types = $4, description = $5, \
             updated_at = $6, disabled_at = $7, disabled_reason = $8, failing_since = $9 \
             WHERE tenant_id = $1 AND id = $2",
            &[
                &scope.tenant_id,
                &w.id,
                &w.url,
                &Webhook::stored_types(&w.event_types),
                &w.description,
                &w.updated_at.as_datetime(),
                &w.disabled_at.map(Timestamp::as_datetime),
                &w.disabled_reason,
                &w.failing_since.map(Timestamp::as_datetime),
            ],
        )
        .await?;
    Ok(n == 1)
}

pub async fn delete(tx: &Client, scope: Scope, id: Uuid) -> Result<bool> {
    Ok(tx
        .execute(
            "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
            &[&scope.tenant_id, &id],
        )
        .await?
        == 1)
}

pub async fn set_secret(
    tx: &Client,
    scope: Scope,
    id: Uuid,
    secret: &WebhookSecret,
    now: Timestamp,
) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE webhook_endpoints SET secret = $3, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2",
            &[&scope.tenant_id, &id, &secret.as_str(), &now.as_datetime()],
        )
        .await?;
    Ok(n == 1)
}

pub async fn list_deliveries(
    tx: &Client,
    scope: Scope,
    webhook_id: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>> {
    tx.query(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE tenant_id = $1 AND webhook_id = $2 \
             ORDER BY created_at DESC, event_xid DESC, event_seq DESC LIMIT $3"
        ),
        &[&scope.tenant_id, &webhook_id, &limit],
    )
    .await?
    .iter()
    .map(delivery_row)
    .collect()
}

pub async fn retry(
    tx: &Client,
    scope: Scope,
    webhook_id: Uuid,
    id: Uuid,
    now: Timestamp,
) -> Result<Option<Delivery>> {
    tx.query_opt(
        &format!(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, \
             retrying_since = $4 \
             WHERE tenant_id = $1 AND webhook_id = $2 AND id = $3 \
             RETURNING {DELIVERY_COLUMNS}"
        ),
        &[&scope.tenant_id, &webhook_id, &id, &now.as_datetime()],
    )
    .await?
    .map(|row| delivery_row(&row))
    .transpose()
}

/// As the login: the enabled endpoints with events past their cursor
/// that no running transaction can precede.
pub async fn endpoints_behind(conn: &Client) -> Result<Vec<(Uuid, Uuid)>> {
    let horizon = events_horizon(conn).await?;
    let statement = "SELECT w.tenant_id, w.id FROM webhook_endpoints AS w \
         WHERE w.disabled_at IS NULL AND EXISTS ( \
             SELECT 1 FROM events AS e WHERE e.tenant_id = w.tenant_id \
             AND (e.xid, e.seq) > (w.cursor_xid::text::xid8, w.cursor_seq) \
             AND e.xid < $1::text::xid8)";
    conn.query(statement, &[&horizon.to_string()])
        .await?
        .iter()
        .map(|row| Ok((column(row, 0)?, column(row, 1)?)))
        .collect()
}

/// As the login, in a transaction: one endpoint's events past its cursor
/// into deliveries, and the cursor past them. An endpoint another replica
/// is doing this for is skipped. Returns how many events it went past.
pub async fn enqueue_one(tx: &Client, tenant_id: Uuid, id: Uuid, limit: u32) -> Result<u64> {
    let Some(endpoint) = tx
        .query_opt(
            "SELECT cursor_xid, cursor_seq, event_types, created_at FROM webhook_endpoints \
             WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL FOR UPDATE SKIP LOCKED",
            &[&tenant_id, &id],
        )
        .await?
    else {
        return Ok(0);
    };
    let cursor: (i64, i64) = (column(&endpoint, 0)?, column(&endpoint, 1)?);
    let types = Webhook::parse_stored_types(&column::<String>(&endpoint, 2)?);
    let created_at: chrono::DateTime<chrono::Utc> = column(&endpoint, 3)?;
    let horizon = events_horizon(tx).await?;
    let events = tx
        .query(
            &format!(
                "SELECT xid::text::bigint, seq, {EVENT_COLUMNS} FROM events \
                 WHERE tenant_id = $1 AND (xid, seq) > ($2::text::xid8, $3) \
                 AND xid < $5::text::xid8 \
                 ORDER BY xid, seq LIMIT $4"
            ),
            &[
                &tenant_id,
                &cursor.0.to_string(),
                &cursor.1,
                &i64::from(limit),
                &horizon.to_string(),
            ],
        )
        .await?
        .iter()
        .map(crate::rows::event)
        .collect::<Result<Vec<Event>>>()?;
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(0);
    };
    let wanted: Vec<&Event> = events
        .iter()
        .filter(|e| types.contains(&e.event_type) && e.occurred_at.as_datetime() >= created_at)
        .collect();
    if !wanted.is_empty() {
        let ids: Vec<Uuid> = wanted.iter().map(|_| Uuid::now_v7()).collect();
        let xids: Vec<i64> = wanted.iter().map(|e| e.id.0).collect();
        let seqs: Vec<i64> = wanted.iter().map(|e| e.id.1).collect();
        let kinds: Vec<&str> = wanted.iter().map(|e| e.event_type.as_str()).collect();
        let workflows: Vec<Uuid> = wanted.iter().map(|e| e.workflow_id).collect();
        let payloads: Vec<String> = wanted.iter().map(|e| webhook::payload(e)).collect();
        tx.execute(
            "INSERT INTO webhook_deliveries (tenant_id, webhook_id, id, event_xid, event_seq, \
             event_type, workflow_id, payload, status, created_at, retrying_since, \
             next_attempt_at) \
             SELECT $1, $2, d.id, d.xid, d.seq, d.kind, d.workflow_id, d.payload, 'pending', \
                    now(), now(), now() \
             FROM unnest($3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::uuid[], \
                         $8::text[]) AS d (id, xid, seq, kind, workflow_id, payload) \
             ON CONFLICT (tenant_id, webhook_id, event_xid, event_seq) DO NOTHING",
            &[
                &tenant_id, &id, &ids, &xids, &seqs, &kinds, &workflows, &payloads,
            ],
        )
        .await?;
    }
    tx.execute(
        "UPDATE webhook_endpoints SET cursor_xid = $3, cursor_seq = $4 \
         WHERE tenant_id = $1 AND id = $2",
        &[&tenant_id, &id, &last.0, &last.1],
    )
    .await?;
    Ok(events.len() as u64)
}

/// As the login, in a transaction (see `Store::claim_deliveries`).
pub async fn claim(
    tx: &Client,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<DueDelivery>> {
    // The due deliveries first, unlocked and across tenants; then each is
    // claimed by a statement of its own tenant that takes it only if it is
    // still due, so one another replica claimed meanwhile is left to it.
    // (Citus locks rows only in a statement that touches one tenant.)
    let due = "SELECT d.tenant_id, d.id FROM webhook_deliveries AS d \
         JOIN webhook_endpoints AS w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.disabled_at IS NULL \
         AND NOT EXISTS ( \
             SELECT 1 FROM webhook_deliveries AS p \
             WHERE p.tenant_id = d.tenant_id AND p.webhook_id = d.webhook_id \
             AND p.workflow_id = d.workflow_id AND p.status = 'pending' \
             AND (p.event_xid, p.event_seq) < (d.event_xid, d.event_seq)) \
         ORDER BY d.next_attempt_at LIMIT $2";
    let take = "UPDATE webhook_deliveries AS d \
         SET attempts = d.attempts + 1, next_attempt_at = $4 \
         FROM webhook_endpoints AS w \
         WHERE d.tenant_id = $1 AND d.id = $2 AND d.status = 'pending' \
         AND d.next_attempt_at <= $3 \
         AND w.tenant_id = $1 AND w.id = d.webhook_id AND w.disabled_at IS NULL \
         RETURNING d.tenant_id, d.webhook_id, d.id, w.url, w.secret, d.payload, d.attempts, \
                   d.retrying_since, w.failing_since";
    let (now, lease_until) = (now.as_datetime(), lease_until.as_datetime());
    let mut claimed = Vec::new();
    for candidate in tx.query(due, &[&now, &i64::from(limit)]).await? {
        let (tenant_id, id): (Uuid, Uuid) = (column(&candidate, 0)?, column(&candidate, 1)?);
        if let Some(row) = tx
            .query_opt(take, &[&tenant_id, &id, &now, &lease_until])
            .await?
        {
            claimed.push(row);
        }
    }
    claimed
        .iter()
        .map(|row| {
            let time = |i: usize| -> Result<Option<Timestamp>> {
                let at: Option<chrono::DateTime<chrono::Utc>> = column(row, i)?;
                Ok(at.and_then(Timestamp::new))
            };
            Ok(DueDelivery {
                tenant_id: column(row, 0)?,
                webhook_id: column(row, 1)?,
                id: column(row, 2)?,
                url: column(row, 3)?,
                secret: column(row, 4)?,
                payload: column(row, 5)?,
                attempts: column(row, 6)?,
                retrying_since: time(7)?
                    .ok_or_else(|| StoreError::Corrupt("retrying_since".into()))?,
                failing_since: time(8)?,
            })
        })
        .collect()
}

/// As the login, in a transaction.
pub async fn record(tx: &Client, r: &AttemptReport) -> Result<()> {
    tx.execute(
        "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, last_attempt_at = $5, \
         last_status_code = $6, last_latency_ms = $7, last_error = $8, \
         delivered_at = CASE WHEN $3 = 'delivered' THEN $5 ELSE delivered_at END \
         WHERE tenant_id = $1 AND id = $2",
        &[
            &r.tenant_id,
            &r.delivery_id,
            &r.outcome.status().as_str(),
            &r.outcome.next_attempt_at().map(Timestamp::as_datetime),
            &r.at.as_datetime(),
            &r.status_code,
            &r.latency_ms,
            &r.error,
        ],
    )
    .await?;
    let at = r.at.as_datetime();
    match &r.endpoint {
        EndpointChange::Healthy => {
            tx.execute(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE tenant_id = $1 AND id = $2 AND failing_since IS NOT NULL",
                &[&r.tenant_id, &r.webhook_id],
            )
            .await?;
        }
        EndpointChange::Failing => {
            tx.execute(
                "UPDATE webhook_endpoints SET failing_since = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND failing_since IS NULL",
                &[&r.tenant_id, &r.webhook_id, &at],
            )
            .await?;
        }
        EndpointChange::Disable(reason) => {
            tx.execute(
                "UPDATE webhook_endpoints SET disabled_at = $3, disabled_reason = $4, \
                 updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL",
                &[&r.tenant_id, &r.webhook_id, &at, reason],
            )
            .await?;
        }
    }
    Ok(())
}

/// As the login, in a transaction.
pub async fn purge(tx: &Client, before: Timestamp, limit: u32) -> Result<u64> {
    let before = super::purge::bound(
        tx,
        "SELECT created_at FROM webhook_deliveries \
         WHERE status <> 'pending' AND created_at < $1 ORDER BY created_at OFFSET $2 LIMIT 1",
        before.as_datetime(),
        limit,
    )
    .await?;
    tx.execute(
        "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1",
        &[&before],
    )
    .await
}
