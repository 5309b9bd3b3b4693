//! Webhook endpoints and deliveries on SQLite: reads on a reader thread,
//! writes (the worker's claims included) on the writer, which runs one
//! process's writes one at a time, so a claim needs no row locks.

use hydracore_domain::event::Event;
use hydracore_domain::webhook::{self, Delivery, Webhook, WebhookSecret};
use hydracore_domain::{Scope, Timestamp};
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::rows::{micros, timestamp, timestamp_opt, SqliteRow};
use crate::rows::EVENT_COLUMNS;
use crate::webhooks::{
    delivery_row, webhook_row, AttemptReport, DueDelivery, EndpointChange, DELIVERY_COLUMNS,
    WEBHOOK_COLUMNS,
};
use crate::StoreError;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// On the writer: the count and the insert are one write.
pub fn insert(
    conn: &Connection,
    scope: Scope,
    w: &Webhook,
    secret: &WebhookSecret,
    max: u32,
) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = ?1")?
        .query_row(params![scope.tenant_id], |row| row.get(0))?;
    if n >= i64::from(max) {
        return Ok(false);
    }
    // One writer: every event committed so far is in the table, so the
    // newest id is exactly where the events to come start.
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, description, secret, \
         created_at, updated_at, cursor_xid, cursor_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, \
                 (SELECT COALESCE(MAX(id), 0) FROM events))",
    )?
    .execute(params![
        scope.tenant_id,
        w.id,
        w.url,
        Webhook::stored_types(&w.event_types),
        w.description,
        secret.as_str(),
        w.created_at.unix_micros(),
    ])?;
    Ok(true)
}

pub fn get(conn: &Connection, scope: Scope, id: Uuid) -> Result<Option<Webhook>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    let mut rows = statement.query(params![scope.tenant_id, id])?;
    rows.next()?
        .map(|row| webhook_row(&SqliteRow(row)))
        .transpose()
}

pub fn list(conn: &Connection, scope: Scope) -> Result<Vec<Webhook>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 \
         ORDER BY created_at, id"
    ))?;
    let mut rows = statement.query(params![scope.tenant_id])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(webhook_row(&SqliteRow(row))?);
    }
    Ok(found)
}

pub fn update(conn: &Connection, scope: Scope, w: &Webhook) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET url = ?3, event_types = ?4, description = ?5, \
             updated_at = ?6, disabled_at = ?7, disabled_reason = ?8, failing_since = ?9 \
             WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![
            scope.tenant_id,
            w.id,
            w.url,
            Webhook::stored_types(&w.event_types),
            w.description,
            w.updated_at.unix_micros(),
            micros(w.disabled_at),
            w.disabled_reason,
            micros(w.failing_since),
        ])?;
    Ok(n == 1)
}

pub fn delete(conn: &Connection, scope: Scope, id: Uuid) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![scope.tenant_id, id])?;
    Ok(n == 1)
}

pub fn set_secret(
    conn: &Connection,
    scope: Scope,
    id: Uuid,
    secret: &WebhookSecret,
    now: Timestamp,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE webhook_endpoints SET secret = ?3, updated_at = ?4 \
             WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![
            scope.tenant_id,
            id,
            secret.as_str(),
            now.unix_micros()
        ])?;
    Ok(n == 1)
}

pub fn list_deliveries(
    conn: &Connection,
    scope: Scope,
    webhook_id: Uuid,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
         WHERE tenant_id = ?1 AND webhook_id = ?2 \
         ORDER BY created_at DESC, event_xid DESC, event_seq DESC LIMIT ?3"
    ))?;
    let mut rows = statement.query(params![scope.tenant_id, webhook_id, limit])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(delivery_row(&SqliteRow(row))?);
    }
    Ok(found)
}

pub fn retry(
    conn: &Connection,
    scope: Scope,
    webhook_id: Uuid,
    id: Uuid,
    now: Timestamp,
) -> Result<Option<Delivery>> {
    let mut statement = conn.prepare_cached(&format!(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?4, \
         retrying_since = ?4 WHERE tenant_id = ?1 AND webhook_id = ?2 AND id = ?3 \
         RETURNING {DELIVERY_COLUMNS}"
    ))?;
    let mut rows = statement.query(params![scope.tenant_id, webhook_id, id, now.unix_micros()])?;
    rows.next()?
        .map(|row| delivery_row(&SqliteRow(row)))
        .transpose()
}

/// On a reader: whether an enabled endpoint has events past its cursor,
/// so that an idle worker does not queue empty writes (each a commit).
pub fn any_behind(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhook_endpoints AS w \
             WHERE w.disabled_at IS NULL AND EXISTS ( \
                 SELECT 1 FROM events AS e WHERE e.tenant_id = w.tenant_id \
                 AND e.id > w.cursor_seq))",
        )?
        .query_row([], |row| row.get(0))?)
}

/// On a reader: whether a pending delivery is due at `now`.
pub fn any_due(conn: &Connection, now: Timestamp) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= ?1)",
        )?
        .query_row(params![now.unix_micros()], |row| row.get(0))?)
}

/// On the writer: every enabled endpoint's events past its cursor, up to
/// `limit` each, into deliveries, and each cursor past them.
pub fn enqueue(conn: &Connection, limit: u32, now: Timestamp) -> Result<u64> {
    let endpoints: Vec<(Uuid, Uuid, i64, String, i64)> = conn
        .prepare_cached(
            "SELECT w.tenant_id, w.id, w.cursor_seq, w.event_types, w.created_at \
             FROM webhook_endpoints AS w WHERE w.disabled_at IS NULL AND EXISTS ( \
                 SELECT 1 FROM events AS e WHERE e.tenant_id = w.tenant_id \
                 AND e.id > w.cursor_seq)",
        )?
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut moved = 0;
    for (tenant_id, id, cursor, types, created_at) in endpoints {
        let types = Webhook::parse_stored_types(&types);
        let mut statement = conn.prepare_cached(&format!(
            "SELECT 0, id, {EVENT_COLUMNS} FROM events WHERE tenant_id = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3"
        ))?;
        let mut rows = statement.query(params![tenant_id, cursor, i64::from(limit)])?;
        let mut events: Vec<Event> = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(crate::rows::event(&SqliteRow(row))?);
        }
        let Some(last) = events.last().map(|e| e.id) else {
            continue;
        };
        let mut insert = conn.prepare_cached(
            "INSERT INTO webhook_deliveries (tenant_id, webhook_id, id, event_xid, event_seq, \
             event_type, workflow_id, payload, status, created_at, retrying_since, \
             next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9, ?9) \
             ON CONFLICT (tenant_id, webhook_id, event_xid, event_seq) DO NOTHING",
        )?;
        for e in events
            .iter()
            .filter(|e| types.contains(&e.event_type) && e.occurred_at.unix_micros() >= created_at)
        {
            insert.execute(params![
                tenant_id,
                id,
                Uuid::now_v7(),
                e.id.0,
                e.id.1,
                e.event_type.as_str(),
                e.workflow_id,
                webhook::payload(e),
                now.unix_micros(),
            ])?;
        }
        conn.prepare_cached(
            "UPDATE webhook_endpoints SET cursor_seq = ?3 WHERE tenant_id = ?1 AND id = ?2",
        )?
        .execute(params![tenant_id, id, last.1])?;
        moved += events.len() as u64;
    }
    Ok(moved)
}

/// On the writer (see `Store::claim_deliveries`): the writer runs one
/// write at a time, so the select and the updates need no locks.
pub fn claim(
    conn: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: u32,
) -> Result<Vec<DueDelivery>> {
    let mut statement = conn.prepare_cached(
        "SELECT d.tenant_id, d.webhook_id, d.id, w.url, w.secret, d.payload, d.attempts + 1, \
                d.retrying_since, w.failing_since \
         FROM webhook_deliveries AS d \
         JOIN webhook_endpoints AS w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND w.disabled_at IS NULL \
         AND NOT EXISTS ( \
             SELECT 1 FROM webhook_deliveries AS p \
             WHERE p.tenant_id = d.tenant_id AND p.webhook_id = d.webhook_id \
             AND p.workflow_id = d.workflow_id AND p.status = 'pending' \
             AND (p.event_xid, p.event_seq) < (d.event_xid, d.event_seq)) \
         ORDER BY d.next_attempt_at LIMIT ?2",
    )?;
    let mut rows = statement.query(params![now.unix_micros(), i64::from(limit)])?;
    let mut claimed = Vec::new();
    while let Some(row) = rows.next()? {
        claimed.push(DueDelivery {
            tenant_id: row.get(0)?,
            webhook_id: row.get(1)?,
            id: row.get(2)?,
            url: row.get(3)?,
            secret: row.get(4)?,
            payload: row.get(5)?,
            attempts: row.get(6)?,
            retrying_since: timestamp(row.get(7)?)?,
            failing_since: timestamp_opt(row.get(8)?)?,
        });
    }
    let mut lease = conn.prepare_cached(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?3 \
         WHERE tenant_id = ?1 AND id = ?2",
    )?;
    for due in &claimed {
        lease.execute(params![due.tenant_id, due.id, lease_until.unix_micros()])?;
    }
    Ok(claimed)
}

/// On the writer.
pub fn record(conn: &Connection, r: &AttemptReport) -> Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?3, next_attempt_at = ?4, last_attempt_at = ?5, \
         last_status_code = ?6, last_latency_ms = ?7, last_error = ?8, \
         delivered_at = CASE WHEN ?3 = 'delivered' THEN ?5 ELSE delivered_at END \
         WHERE tenant_id = ?1 AND id = ?2",
    )?
    .execute(params![
        r.tenant_id,
        r.delivery_id,
        r.outcome.status().as_str(),
        micros(r.outcome.next_attempt_at()),
        r.at.unix_micros(),
        r.status_code,
        r.latency_ms,
        r.error,
    ])?;
    let at = r.at.unix_micros();
    match &r.endpoint {
        EndpointChange::Healthy => conn
            .prepare_cached(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE tenant_id = ?1 AND id = ?2 AND failing_since IS NOT NULL",
            )?
            .execute(params![r.tenant_id, r.webhook_id])?,
        EndpointChange::Failing => conn
            .prepare_cached(
                "UPDATE webhook_endpoints SET failing_since = ?3 \
                 WHERE tenant_id = ?1 AND id = ?2 AND failing_since IS NULL",
            )?
            .execute(params![r.tenant_id, r.webhook_id, at])?,
        EndpointChange::Disable(reason) => conn
            .prepare_cached(
                "UPDATE webhook_endpoints SET disabled_at = ?3, disabled_reason = ?4, \
                 updated_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND disabled_at IS NULL",
            )?
            .execute(params![r.tenant_id, r.webhook_id, at, reason])?,
    };
    Ok(())
}

/// On the writer.
pub fn purge(conn: &Connection, before: Timestamp, limit: u32) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM webhook_deliveries WHERE rowid IN ( \
                 SELECT rowid FROM webhook_deliveries \
                 WHERE status <> 'pending' AND created_at < ?1 ORDER BY created_at LIMIT ?2)",
        )?
        .execute(params![before.unix_micros(), i64::from(limit)])?;
    Ok(n as u64)
}
