//! PostgreSQL rows and their conversion to and from domain values.

use chrono::{DateTime, Utc};
use hydracore_domain::{History, Status, Timestamp, Workflow, WorkflowType};
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
// `try_get` of sqlx's rows, for `workflow_row!`.
use sqlx::Row as _;
use uuid::Uuid;

use crate::StoreError;

/// The columns of [`WorkflowRow`], in a form every query can splice in.
pub const WORKFLOW_COLUMNS: &str = "id, tenant_id, instance_id, customer_id, workflow_type, \
    status, stage, title, reference, assigned_to, approver_id, escalation_level, \
    workflow_state, suspended_step, suspend_payload, suspended_at, created_at, updated_at, \
    last_action_at, next_action_at, expires_at, completed_at, version";

/// A workflow's stored history entries joined with commas, oldest first:
/// selected beside [`WORKFLOW_COLUMNS`] for a page, so the records and
/// their histories come in one statement (one snapshot, one round trip).
/// `hydracore_workflow` (migrations 0005, 0006, 0010) selects the same for one
/// record.
pub const HISTORY_COLUMN: &str = "(SELECT string_agg(h.entry, ',' ORDER BY h.seq) \
    FROM workflow_history AS h \
    WHERE h.tenant_id = workflows.tenant_id AND h.workflow_id = workflows.id) AS history";

/// A workflow as stored, read by [`WorkflowRow::from_pool`] (sqlx) or
/// [`WorkflowRow::from_pipelined`] (tokio-postgres): one list of columns
/// for both drivers, in `workflow_row!`.
pub struct WorkflowRow {
    id: Uuid,
    tenant_id: Uuid,
    instance_id: Uuid,
    customer_id: Uuid,
    workflow_type: String,
    status: String,
    stage: Option<String>,
    title: Option<String>,
    reference: Option<String>,
    assigned_to: Option<String>,
    approver_id: Option<Uuid>,
    escalation_level: i64,
    workflow_state: Value,
    suspended_step: Option<String>,
    suspend_payload: Option<Value>,
    suspended_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_action_at: Option<DateTime<Utc>>,
    next_action_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
    /// [`HISTORY_COLUMN`], when selected.
    history: Option<String>,
}

/// Both drivers' rows have a `try_get` by column name whose value type is
/// inferred from the field, so one expansion reads either.
macro_rules! workflow_row {
    ($row:expr, $with_history:expr) => {{
        let row = $row;
        WorkflowRow {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            instance_id: row.try_get("instance_id")?,
            customer_id: row.try_get("customer_id")?,
            workflow_type: row.try_get("workflow_type")?,
            status: row.try_get("status")?,
            stage: row.try_get("stage")?,
            title: row.try_get("title")?,
            reference: row.try_get("reference")?,
            assigned_to: row.try_get("assigned_to")?,
            approver_id: row.try_get("approver_id")?,
            escalation_level: row.try_get("escalation_level")?,
            workflow_state: row.try_get("workflow_state")?,
            suspended_step: row.try_get("suspended_step")?,
            suspend_payload: row.try_get("suspend_payload")?,
            suspended_at: row.try_get("suspended_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            last_action_at: row.try_get("last_action_at")?,
            next_action_at: row.try_get("next_action_at")?,
            expires_at: row.try_get("expires_at")?,
            completed_at: row.try_get("completed_at")?,
            version: row.try_get("version")?,
            history: if $with_history {
                row.try_get("history")?
            } else {
                None
            },
        }
    }};
}

impl WorkflowRow {
    /// A row from the pool's connections; `with_history` when the query
    /// selected [`HISTORY_COLUMN`].
    pub fn from_pool(row: &PgRow, with_history: bool) -> Result<Self, StoreError> {
        Ok(workflow_row!(row, with_history))
    }

    /// A row of `hydracore_workflow` or `hydracore_list_workflows`, which
    /// always have the history column (NULL when not wanted).
    pub fn from_pipelined(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        Ok(workflow_row!(row, true))
    }

    pub fn into_domain(self) -> Result<Workflow, StoreError> {
        Ok(Workflow {
            id: self.id,
            tenant_id: self.tenant_id,
            instance_id: self.instance_id,
            customer_id: self.customer_id,
            workflow_type: WorkflowType::parse(&self.workflow_type)
                .ok_or_else(|| corrupt("workflow_type", &self.workflow_type))?,
            status: status(&self.status)?,
            stage: self.stage,
            title: self.title,
            reference: self.reference,
            assigned_to: self.assigned_to,
            approver_id: self.approver_id,
            escalation_level: self.escalation_level,
            workflow_state: json_object(self.workflow_state)?,
            suspended_step: self.suspended_step,
            suspend_payload: json_value(self.suspend_payload),
            suspended_at: timestamp_opt(self.suspended_at)?,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
            last_action_at: timestamp_opt(self.last_action_at)?,
            next_action_at: timestamp_opt(self.next_action_at)?,
            expires_at: timestamp_opt(self.expires_at)?,
            completed_at: timestamp_opt(self.completed_at)?,
            version: self.version,
            history: match self.history {
                Some(joined) => rendered(&joined)?,
                None => History::default(),
            },
        })
    }
}

/// Entries joined as [`HISTORY_COLUMN`] joins them, as a history.
pub fn rendered(joined: &str) -> Result<History, StoreError> {
    History::from_rendered(std::iter::once(joined).filter(|j| !j.is_empty()))
        .map_err(|e| StoreError::Corrupt(format!("stored history: {e}")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn status(s: &str) -> Result<Status, StoreError> {
    Status::parse(s).ok_or_else(|| corrupt("status", s))
}

/// timestamptz spans more years than RFC 3339 can print; such a value was
/// not written by us.
pub fn timestamp(dt: DateTime<Utc>) -> Result<Timestamp, StoreError> {
    Timestamp::new(dt).ok_or_else(|| corrupt("timestamp", &dt.to_string()))
}

pub fn timestamp_opt(dt: Option<DateTime<Utc>>) -> Result<Option<Timestamp>, StoreError> {
    dt.map(timestamp).transpose()
}

pub fn datetime(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
    t.map(Timestamp::as_datetime)
}

fn json_object(value: Value) -> Result<Map<String, Value>, StoreError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(corrupt("workflow_state", &other.to_string())),
    }
}

/// SQL `NULL` is JSON `null`.
fn json_value(value: Option<Value>) -> Value {
    value.unwrap_or_default()
}

/// JSON `null` is stored as SQL `NULL`, as the SQLite backend does, so a
/// missing payload reads the same on both.
pub fn json_param(value: &Value) -> Option<Json<&Value>> {
    (!value.is_null()).then_some(Json(value))
}
