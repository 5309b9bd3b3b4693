//! Workflow rows, once for both backends: the column list every query
//! selects, the one mapping from such a row to a [`Workflow`], and the
//! status lists the SQL needs, generated from [`Status`].
//!
//! A backend only says how its driver reads one column of each kind
//! ([`Columns`]): SQLite keeps UUIDs as blobs, times as Unix microseconds
//! and JSON as text; PostgreSQL has types of its own for each.

use std::sync::LazyLock;

use hydracore_domain::event::{Event, EventId, EventType};
use hydracore_domain::{HistoryEntry, Status, Timestamp, Workflow, WorkflowType};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::StoreError;

/// The workflow columns, in the order [`workflow`] reads them.
pub const WORKFLOW_COLUMNS: &str = "id, tenant_id, instance_id, customer_id, workflow_type, \
    status, stage, title, reference, assigned_to, approver_id, escalation_level, \
    workflow_state, suspended_step, suspend_payload, suspended_at, created_at, updated_at, \
    last_action_at, next_action_at, expires_at, completed_at, version, escalate_every, \
    max_escalation_level, resume_schema";

/// `'completed', 'expired', ...`: the terminal statuses as an SQL list, for
/// `status NOT IN (...)`. The migrations' partial indexes spell the same
/// list (a test checks that they agree).
pub static TERMINAL_STATUSES: LazyLock<String> = LazyLock::new(|| {
    Status::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// How a backend's row reads one column of each kind, by position.
pub trait Columns {
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError>;
    /// SQL `NULL` reads as JSON `null`.
    fn json(&self, i: usize) -> Result<Value, StoreError>;

    fn time(&self, i: usize) -> Result<Timestamp, StoreError> {
        self.opt_time(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }
}

/// A row selected with [`WORKFLOW_COLUMNS`] (first), without its history.
pub fn workflow(row: &impl Columns) -> Result<Workflow, StoreError> {
    let workflow_type = row.text(4)?;
    let status = row.text(5)?;
    Ok(Workflow {
        id: row.uuid(0)?,
        tenant_id: row.uuid(1)?,
        instance_id: row.uuid(2)?,
        customer_id: row.uuid(3)?,
        workflow_type: WorkflowType::parse(&workflow_type)
            .ok_or_else(|| corrupt("workflow_type", &workflow_type))?,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        stage: row.opt_text(6)?,
        title: row.opt_text(7)?,
        reference: row.opt_text(8)?,
        assigned_to: row.opt_text(9)?,
        approver_id: row.opt_uuid(10)?,
        escalation_level: row.int(11)?,
        workflow_state: object(row.json(12)?)?,
        suspended_step: row.opt_text(13)?,
        suspend_payload: row.json(14)?,
        suspended_at: row.opt_time(15)?,
        created_at: row.time(16)?,
        updated_at: row.time(17)?,
        last_action_at: row.opt_time(18)?,
        next_action_at: row.opt_time(19)?,
        expires_at: row.opt_time(20)?,
        completed_at: row.opt_time(21)?,
        version: row.int(22)?,
        escalate_every: row.opt_int(23)?,
        max_escalation_level: row.opt_int(24)?,
        resume_schema: Some(row.json(25)?).filter(|s| !s.is_null()),
        history: Vec::new(),
        history_total: None,
    })
}

/// How many columns [`WORKFLOW_COLUMNS`] has: a query's further columns
/// start here.
pub const WORKFLOW_COLUMN_COUNT: usize = 26;

/// The columns of a history entry, in the order [`history_entry`] reads
/// them.
pub const HISTORY_COLUMNS: &str =
    "seq, at, action, action_detail, actor, from_status, to_status, from_stage, to_stage, \
     principal";
pub const HISTORY_COLUMN_COUNT: usize = 10;

/// An event's columns after its id's two numbers, in the order [`event`]
/// reads them.
pub const EVENT_COLUMNS: &str =
    "type, occurred_at, tenant_id, instance_id, workflow_id, version, actor, data";

/// An event selected as its id's two numbers, then [`EVENT_COLUMNS`].
pub fn event(row: &impl Columns) -> Result<Event, StoreError> {
    let event_type = row.text(2)?;
    Ok(Event {
        id: EventId(row.int(0)?, row.int(1)?),
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| corrupt("event type", &event_type))?,
        occurred_at: row.time(3)?,
        tenant_id: row.uuid(4)?,
        instance_id: row.uuid(5)?,
        workflow_id: row.uuid(6)?,
        version: row.int(7)?,
        actor: row.opt_text(8)?,
        data: row.json(9)?,
    })
}

/// A page of one workflow's history, `$1` the tenant, `$2` the workflow:
/// the entries after seq `$3`, at most `$4` of them, and only those that
/// start within `$5` bytes of the page's start as the API renders them
/// (so always at least one). The sizes come from `octet_length`, which
/// reads a stored text's size without loading it, so an entry left out is
/// never read. The same text on both backends (SQLite as `?n`).
pub fn history_page_sql() -> String {
    format!(
        "WITH sized AS ( \
           SELECT seq, octet_length(entry) AS size FROM workflow_history \
           WHERE tenant_id = $1 AND workflow_id = $2 AND seq > $3 ORDER BY seq LIMIT $4), \
         kept AS ( \
           SELECT max(seq) AS seq FROM ( \
             SELECT seq, sum(size) OVER (ORDER BY seq) - size AS before FROM sized) AS s \
           WHERE before < $5) \
         SELECT {HISTORY_COLUMNS} FROM workflow_history \
         WHERE tenant_id = $1 AND workflow_id = $2 AND seq > $3 \
           AND seq <= (SELECT seq FROM kept) \
         ORDER BY seq"
    )
}

/// A history entry selected with [`HISTORY_COLUMNS`], starting at column
/// `first`.
pub fn history_entry(row: &impl Columns, first: usize) -> Result<HistoryEntry, StoreError> {
    let status = |i: usize| -> Result<Option<Status>, StoreError> {
        row.opt_text(first + i)?
            .map(|s| Status::parse(&s).ok_or_else(|| corrupt("status", &s)))
            .transpose()
    };
    Ok(HistoryEntry {
        seq: row.int(first)?,
        at: row.time(first + 1)?,
        action: row.text(first + 2)?,
        action_detail: row.json(first + 3)?,
        actor: row.opt_text(first + 4)?,
        from_status: status(5)?,
        to_status: status(6)?,
        from_stage: row.opt_text(first + 7)?,
        to_stage: row.opt_text(first + 8)?,
        principal: row.opt_text(first + 9)?,
    })
}

fn object(value: Value) -> Result<Map<String, Value>, StoreError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(corrupt("workflow_state", &other.to_string())),
    }
}

pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_count_matches_the_column_list() {
        assert_eq!(WORKFLOW_COLUMNS.split(',').count(), WORKFLOW_COLUMN_COUNT);
        assert_eq!(HISTORY_COLUMNS.split(',').count(), HISTORY_COLUMN_COUNT);
    }

    #[test]
    fn the_history_columns_are_the_entry_fields_in_order() {
        let entry = serde_json::to_value(HistoryEntry {
            seq: 1,
            at: Timestamp::now(),
            action: "a".into(),
            action_detail: Value::Null,
            actor: None,
            from_status: None,
            to_status: None,
            from_stage: None,
            to_stage: None,
            principal: Some("system".into()),
        })
        .unwrap_or_default();
        let fields: Vec<&str> = entry
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let columns: Vec<&str> = HISTORY_COLUMNS.split(", ").collect();
        assert_eq!(fields, columns);
    }

    #[test]
    fn every_migration_names_the_terminal_statuses_as_the_domain_does() {
        for (name, sql) in crate::migrate::all_migrations() {
            for line in sql.lines().filter(|l| l.contains("status NOT IN")) {
                assert!(
                    line.contains(&format!("status NOT IN ({})", *TERMINAL_STATUSES)),
                    "{name}: {line}"
                );
            }
        }
    }
}
