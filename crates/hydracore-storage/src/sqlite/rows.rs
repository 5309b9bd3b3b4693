//! SQLite rows and their conversion to and from domain values.

use hydracore_domain::{History, Status, Timestamp, Workflow, WorkflowType};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::StoreError;

/// The columns of [`WorkflowRow`], in a form every query can splice in.
pub const WORKFLOW_COLUMNS: &str = "id, tenant_id, instance_id, customer_id, workflow_type, \
    status, stage, title, reference, assigned_to, approver_id, escalation_level, \
    workflow_state, suspended_step, suspend_payload, suspended_at, created_at, updated_at, \
    last_action_at, next_action_at, expires_at, completed_at, version";

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
    workflow_state: String,
    suspended_step: Option<String>,
    suspend_payload: Option<String>,
    suspended_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    last_action_at: Option<i64>,
    next_action_at: Option<i64>,
    expires_at: Option<i64>,
    completed_at: Option<i64>,
    version: i64,
}

impl WorkflowRow {
    /// A row selected with [`WORKFLOW_COLUMNS`].
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            tenant_id: row.get(1)?,
            instance_id: row.get(2)?,
            customer_id: row.get(3)?,
            workflow_type: row.get(4)?,
            status: row.get(5)?,
            stage: row.get(6)?,
            title: row.get(7)?,
            reference: row.get(8)?,
            assigned_to: row.get(9)?,
            approver_id: row.get(10)?,
            escalation_level: row.get(11)?,
            workflow_state: row.get(12)?,
            suspended_step: row.get(13)?,
            suspend_payload: row.get(14)?,
            suspended_at: row.get(15)?,
            created_at: row.get(16)?,
            updated_at: row.get(17)?,
            last_action_at: row.get(18)?,
            next_action_at: row.get(19)?,
            expires_at: row.get(20)?,
            completed_at: row.get(21)?,
            version: row.get(22)?,
        })
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
            workflow_state: json_object(&self.workflow_state)?,
            suspended_step: self.suspended_step,
            suspend_payload: json_value(self.suspend_payload.as_deref())?,
            suspended_at: timestamp_opt(self.suspended_at)?,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
            last_action_at: timestamp_opt(self.last_action_at)?,
            next_action_at: timestamp_opt(self.next_action_at)?,
            expires_at: timestamp_opt(self.expires_at)?,
            completed_at: timestamp_opt(self.completed_at)?,
            version: self.version,
            history: History::default(),
        })
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn status(s: &str) -> Result<Status, StoreError> {
    Status::parse(s).ok_or_else(|| corrupt("status", s))
}

pub fn timestamp(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_unix_micros(micros).ok_or_else(|| corrupt("timestamp", &micros.to_string()))
}

pub fn timestamp_opt(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(timestamp).transpose()
}

pub fn micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_micros)
}

fn json_object(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("workflow_state", &e.to_string()))
}

/// SQL `NULL` is JSON `null`.
fn json_value(text: Option<&str>) -> Result<Value, StoreError> {
    text.map(serde_json::from_str)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| corrupt("JSON column", &e.to_string()))
}

/// JSON `null` is stored as SQL `NULL`.
pub fn json_text(value: &Value) -> Option<String> {
    (!value.is_null()).then(|| value.to_string())
}

pub fn object_text(map: &Map<String, Value>) -> String {
    // A map of JSON values always serializes; an empty object is the
    // harmless answer should that ever change.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned())
}
