//! Workflow writes on SQLite. Each function runs on the writer thread
//! (`writer`), inside its transaction: SQLite has one writer, so what a
//! function reads cannot change before it writes.

use hydracore_domain::event::EventType;
use hydracore_domain::transition::{Change, TransitionError};
use hydracore_domain::{HistoryEntry, Scope, Status, Timestamp, Workflow};
use rusqlite::{params, Connection};
use serde_json::Value;
use uuid::Uuid;

use super::rows::{json_text, micros, object_text, SqliteRow};
use crate::rows::WORKFLOW_COLUMNS;
use crate::{ChangeOutcome, StoreError};

pub fn insert(conn: &Connection, w: &Workflow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, status, \
         stage, title, reference, assigned_to, approver_id, escalation_level, workflow_state, \
         suspended_step, suspend_payload, suspended_at, created_at, updated_at, last_action_at, \
         next_action_at, expires_at, completed_at, version, escalate_every, max_escalation_level, \
         resume_schema) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
    )?
    .execute(params![
        w.id,
        w.tenant_id,
        w.instance_id,
        w.customer_id,
        w.workflow_type.as_str(),
        w.status.as_str(),
        w.stage,
        w.title,
        w.reference,
        w.assigned_to,
        w.approver_id,
        w.escalation_level,
        object_text(&w.workflow_state)?,
        w.suspended_step,
        json_text(&w.suspend_payload),
        micros(w.suspended_at),
        w.created_at.unix_micros(),
        w.updated_at.unix_micros(),
        micros(w.last_action_at),
        micros(w.next_action_at),
        micros(w.expires_at),
        micros(w.completed_at),
        w.version,
        w.escalate_every,
        w.max_escalation_level,
        w.resume_schema.as_ref().map(Value::to_string),
    ])?;
    for entry in &w.history {
        append_history(conn, w.tenant_id, w.id, entry)?;
    }
    if let Some(first) = w.history.first() {
        append_event(conn, EventType::Created, w, first)?;
    }
    Ok(())
}

/// The columns a command may change that the list and expiry indexes
/// cover (`status` also decides the partial indexes). SQLite rewrites an
/// index whenever one of its columns is assigned, even to the value it
/// had, so [`update`] assigns these only when they changed. (The inbox and
/// escalation indexes cover columns assigned on every update, but hold
/// suspended workflows only.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Indexed {
    status: Status,
    suspended_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
}

impl Indexed {
    fn of(w: &Workflow) -> Self {
        Self {
            status: w.status,
            suspended_at: w.suspended_at,
            expires_at: w.expires_at,
        }
    }
}

/// Writes back every column a command may change (the indexed ones only
/// if they differ from `before`).
fn update(conn: &Connection, before: Indexed, w: &Workflow) -> Result<(), StoreError> {
    let after = Indexed::of(w);
    let mut sql = String::from(
        "UPDATE workflows SET stage = ?1, assigned_to = ?2, approver_id = ?3, \
         escalation_level = ?4, workflow_state = ?5, suspended_step = ?6, suspend_payload = ?7, \
         updated_at = ?8, last_action_at = ?9, next_action_at = ?10, completed_at = ?11, \
         version = ?12, escalate_every = ?18, max_escalation_level = ?19, resume_schema = ?20",
    );
    if after.status != before.status {
        sql.push_str(", status = ?13");
    }
    if after.suspended_at != before.suspended_at {
        sql.push_str(", suspended_at = ?14");
    }
    if after.expires_at != before.expires_at {
        sql.push_str(", expires_at = ?15");
    }
    sql.push_str(" WHERE id = ?16 AND tenant_id = ?17");
    conn.prepare_cached(&sql)?.execute(params![
        w.stage,
        w.assigned_to,
        w.approver_id,
        w.escalation_level,
        object_text(&w.workflow_state)?,
        w.suspended_step,
        json_text(&w.suspend_payload),
        w.updated_at.unix_micros(),
        micros(w.last_action_at),
        micros(w.next_action_at),
        micros(w.completed_at),
        w.version,
        w.status.as_str(),
        micros(w.suspended_at),
        micros(w.expires_at),
        w.id,
        w.tenant_id,
        w.escalate_every,
        w.max_escalation_level,
        w.resume_schema.as_ref().map(Value::to_string),
    ])?;
    Ok(())
}

fn append_history(
    conn: &Connection,
    tenant_id: Uuid,
    workflow_id: Uuid,
    e: &HistoryEntry,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail, \
         actor, from_status, to_status, from_stage, to_stage, principal, entry) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        tenant_id,
        workflow_id,
        e.seq,
        e.at.unix_micros(),
        e.action,
        json_text(&e.action_detail),
        e.actor,
        e.from_status.map(Status::as_str),
        e.to_status.map(Status::as_str),
        e.from_stage,
        e.to_stage,
        e.principal,
        crate::render_entry(e)?,
    ])?;
    Ok(())
}

/// The event `event_type` of the change that left `w` as it is and
/// appended `entry`.
fn append_event(
    conn: &Connection,
    event_type: EventType,
    w: &Workflow,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (tenant_id, type, occurred_at, instance_id, workflow_id, version, \
         actor, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        w.tenant_id,
        event_type.as_str(),
        entry.at.unix_micros(),
        w.instance_id,
        w.id,
        w.version,
        entry.actor,
        hydracore_domain::event::data(w).to_string(),
    ])?;
    Ok(())
}

/// The workflow `id` within `scope`, without its history.
fn select_one(conn: &Connection, scope: Scope, id: Uuid) -> Result<Option<Workflow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows \
         WHERE id = ?1 AND tenant_id = ?2 AND (?3 IS NULL OR instance_id = ?3)"
    ))?;
    let mut rows = statement.query(params![id, scope.tenant_id, scope.instance_id])?;
    rows.next()?
        .map(|row| crate::rows::workflow(&SqliteRow(row)))
        .transpose()
}

/// Loads one workflow, runs `rule` on it and writes what it returns. The
/// history is not read here: see `workflows::history_of`.
pub fn change(
    conn: &Connection,
    scope: Scope,
    id: Uuid,
    rule: &(dyn Fn(Workflow) -> Result<Change, TransitionError> + Send + Sync),
) -> Result<ChangeOutcome, StoreError> {
    let Some(current) = select_one(conn, scope, id)? else {
        return Ok(ChangeOutcome::NotFound);
    };
    let before = Indexed::of(&current);
    let change = match rule(current) {
        Ok(change) => change,
        Err(refused) => return Ok(ChangeOutcome::Refused(refused)),
    };
    update(conn, before, &change.workflow)?;
    append_history(conn, scope.tenant_id, id, &change.entry)?;
    append_event(conn, change.event, &change.workflow, &change.entry)?;
    Ok(ChangeOutcome::Changed(Box::new(change)))
}
