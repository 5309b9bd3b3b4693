//! How tokio-postgres reads the shared row mapping's columns
//! (`crate::rows`), and how workflows and history entries are sent to the
//! request functions: as the composite values the migration declares
//! (`hydracore_workflow_record`, `hydracore_history_entry`), whose fields
//! the derived `ToSql` matches by name against the type the server
//! describes.
//!
//! JSON columns are `json`, read with serde_json (tokio-postgres's
//! `with-serde_json-1`), which keeps each number as written.

use chrono::{DateTime, Utc};
use hydracore_domain::event::EventType;
use hydracore_domain::{HistoryEntry, Status, Timestamp, Workflow};
use postgres_types::{FromSql, Json, ToSql};
use serde_json::{Map, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::rows::{corrupt, Columns, WORKFLOW_COLUMN_COUNT};
use crate::{InlineHistory, StoreError};

/// The history a workflow embeds (as `hydracore_history_inline` selects
/// it: its stored entries joined with commas, oldest first), selected after
/// [`crate::rows::WORKFLOW_COLUMNS`] for a page, so the records and their
/// histories come in one statement (one snapshot, one round trip).
/// `hydracore_workflow` and `hydracore_list_workflows` select the same in
/// the same place. Written out rather than called: migration 0005 says why.
/// `tenant` is the placeholder of the scope's tenant: with it, Citus sees
/// that the whole statement reads one tenant's rows, and routes it whole.
pub fn history_column(inline: InlineHistory, tenant: &str) -> String {
    format!(
        "(SELECT string_agg(e.entry, ',' ORDER BY e.seq) \
          FROM (SELECT h.seq, h.entry, \
                       sum(octet_length(h.entry)) OVER (ORDER BY h.seq DESC) \
                         - octet_length(h.entry) AS newer \
                FROM workflow_history AS h \
                WHERE h.tenant_id = {tenant} AND h.tenant_id = workflows.tenant_id \
                  AND h.workflow_id = workflows.id \
                  AND h.seq <= workflows.version AND h.seq > workflows.version - {}) AS e \
          WHERE e.newer < {}) AS history",
        inline.entries, inline.bytes
    )
}

/// Where [`history_column`] is in a row that has it.
pub const HISTORY: usize = WORKFLOW_COLUMN_COUNT;

/// Column `i` of `row`; a value this build cannot read is corrupt.
pub fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| {
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        StoreError::Corrupt(format!("{e}: {}", cause.unwrap_or_default()))
    })
}

impl Columns for Row {
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        get(self, i)
    }
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        get(self, i)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        get(self, i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        get(self, i)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        get(self, i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        get(self, i)
    }
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        get::<Option<DateTime<Utc>>>(self, i)?
            .map(timestamp)
            .transpose()
    }
    fn json(&self, i: usize) -> Result<Value, StoreError> {
        Ok(get::<Option<Value>>(self, i)?.unwrap_or_default())
    }
}

/// A row of workflow columns followed by [`HISTORY_COLUMN`] (NULL when the
/// history was not wanted), as a workflow with its history.
pub fn workflow_with_history(row: &Row) -> Result<Workflow, StoreError> {
    let mut workflow = crate::rows::workflow(row)?;
    if let Some(joined) = get::<Option<&str>>(row, HISTORY)? {
        workflow.history = rendered(joined)?;
    }
    Ok(workflow)
}

/// Entries joined as [`HISTORY_COLUMN`] joins them, as a history.
pub fn rendered(joined: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    if joined.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&format!("[{joined}]"))
        .map_err(|e| StoreError::Corrupt(format!("stored history: {e}")))
}

/// timestamptz spans more years than RFC 3339 can print; such a value was
/// not written by us.
pub fn timestamp(dt: DateTime<Utc>) -> Result<Timestamp, StoreError> {
    Timestamp::new(dt).ok_or_else(|| corrupt("timestamp", &dt.to_string()))
}

fn datetime(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
    t.map(Timestamp::as_datetime)
}

/// JSON `null` is stored as SQL `NULL`, as the SQLite backend does, so a
/// missing payload reads the same on both.
fn json_or_null(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

/// A workflow as the request functions take it: `hydracore_workflow_record`,
/// which has no tenant nor instance (the call's own parameters say where
/// the record goes).
#[derive(Debug, ToSql)]
#[postgres(name = "hydracore_workflow_record")]
pub struct WorkflowRecord<'a> {
    id: Uuid,
    customer_id: Uuid,
    workflow_type: &'a str,
    title: Option<&'a str>,
    reference: Option<&'a str>,
    created_at: DateTime<Utc>,
    status: &'a str,
    stage: Option<&'a str>,
    assigned_to: Option<&'a str>,
    approver_id: Option<Uuid>,
    escalation_level: i64,
    workflow_state: Json<&'a Map<String, Value>>,
    suspended_step: Option<&'a str>,
    suspend_payload: Option<&'a Value>,
    suspended_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    last_action_at: Option<DateTime<Utc>>,
    next_action_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
    escalate_every: Option<i64>,
    max_escalation_level: Option<i64>,
    resume_schema: Option<&'a Value>,
}

impl<'a> From<&'a Workflow> for WorkflowRecord<'a> {
    fn from(w: &'a Workflow) -> Self {
        WorkflowRecord {
            id: w.id,
            customer_id: w.customer_id,
            workflow_type: w.workflow_type.as_str(),
            title: w.title.as_deref(),
            reference: w.reference.as_deref(),
            created_at: w.created_at.as_datetime(),
            status: w.status.as_str(),
            stage: w.stage.as_deref(),
            assigned_to: w.assigned_to.as_deref(),
            approver_id: w.approver_id,
            escalation_level: w.escalation_level,
            workflow_state: Json(&w.workflow_state),
            suspended_step: w.suspended_step.as_deref(),
            suspend_payload: json_or_null(&w.suspend_payload),
            suspended_at: datetime(w.suspended_at),
            updated_at: w.updated_at.as_datetime(),
            last_action_at: datetime(w.last_action_at),
            next_action_at: datetime(w.next_action_at),
            expires_at: datetime(w.expires_at),
            completed_at: datetime(w.completed_at),
            version: w.version,
            escalate_every: w.escalate_every,
            max_escalation_level: w.max_escalation_level,
            resume_schema: w.resume_schema.as_ref(),
        }
    }
}

/// An event as the write functions take it: `hydracore_event`.
#[derive(Debug, ToSql)]
#[postgres(name = "hydracore_event")]
pub struct EventRecord<'a> {
    #[postgres(name = "type")]
    event_type: &'a str,
    occurred_at: DateTime<Utc>,
    instance_id: Uuid,
    workflow_id: Uuid,
    version: i64,
    actor: Option<&'a str>,
    data: Value,
}

impl<'a> EventRecord<'a> {
    /// The event `event_type` of the change that left `w` as it is and
    /// appended `entry`.
    pub fn new(event_type: EventType, w: &'a Workflow, entry: &'a HistoryEntry) -> Self {
        EventRecord {
            event_type: event_type.as_str(),
            occurred_at: entry.at.as_datetime(),
            instance_id: w.instance_id,
            workflow_id: w.id,
            version: w.version,
            actor: entry.actor.as_deref(),
            data: hydracore_domain::event::data(w),
        }
    }
}

/// A history entry as the request functions take it:
/// `hydracore_history_entry`, with `entry` its rendering (what the API
/// answers; the request functions return a record's entries joined).
#[derive(Debug, ToSql)]
#[postgres(name = "hydracore_history_entry")]
pub struct EntryRecord<'a> {
    seq: i64,
    at: DateTime<Utc>,
    action: &'a str,
    action_detail: Option<&'a Value>,
    actor: Option<&'a str>,
    from_status: Option<&'a str>,
    to_status: Option<&'a str>,
    from_stage: Option<&'a str>,
    to_stage: Option<&'a str>,
    entry: &'a str,
    principal: Option<&'a str>,
}

impl<'a> EntryRecord<'a> {
    pub fn new(e: &'a HistoryEntry, rendered: &'a str) -> Self {
        EntryRecord {
            seq: e.seq,
            at: e.at.as_datetime(),
            action: &e.action,
            action_detail: json_or_null(&e.action_detail),
            actor: e.actor.as_deref(),
            from_status: e.from_status.map(Status::as_str),
            to_status: e.to_status.map(Status::as_str),
            from_stage: e.from_stage.as_deref(),
            to_stage: e.to_stage.as_deref(),
            entry: rendered,
            principal: e.principal.as_deref(),
        }
    }
}
