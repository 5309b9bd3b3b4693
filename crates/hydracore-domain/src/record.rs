//! The workflow record and its history entries, as stored and as answered.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Status, Timestamp, WorkflowType};

/// A workflow record. Serializes to the seed's response shape plus the
/// suspension fields and `version`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Workflow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub instance_id: Uuid,
    pub customer_id: Uuid,
    pub workflow_type: WorkflowType,
    pub status: Status,
    pub stage: Option<String>,
    pub title: Option<String>,
    pub reference: Option<String>,
    pub assigned_to: Option<String>,
    pub approver_id: Option<Uuid>,
    pub escalation_level: i64,
    /// While suspended: seconds between escalations once `next_action_at`
    /// (the decision's due time) has passed; null: no escalation.
    pub escalate_every: Option<i64>,
    /// While suspended: the level escalation stops at.
    pub max_escalation_level: Option<i64>,
    #[schema(value_type = Object)]
    pub workflow_state: Map<String, Value>,
    pub suspended_step: Option<String>,
    pub suspend_payload: Value,
    pub suspended_at: Option<Timestamp>,
    /// While suspended: the JSON Schema `resume_data` must satisfy.
    #[schema(value_type = Option<Object>)]
    pub resume_schema: Option<Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_action_at: Option<Timestamp>,
    pub next_action_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// Bumped by every change; the record's `ETag`. Every change appends
    /// one history entry, so this is also the `seq` of the newest entry
    /// (an append never scans the history).
    pub version: i64,
    /// Oldest first, the newest entries only when there are more than a
    /// record embeds (then `history_total` says how many there are). Empty
    /// when the caller asked for the record without it.
    pub history: Vec<HistoryEntry>,
    /// How many entries the history has, when `history` holds only the
    /// newest of them; absent otherwise, as in the original service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_total: Option<i64>,
}

/// One immutable audit line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub action: String,
    pub action_detail: Value,
    pub actor: Option<String>,
    pub from_status: Option<Status>,
    pub to_status: Option<Status>,
    pub from_stage: Option<String>,
    pub to_stage: Option<String>,
    /// Who was authenticated behind the change (`instance:<id>`,
    /// `api_key:<id>`, `user:<sub>`, `system`), whatever `actor` says.
    /// Absent on entries written before it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// A suspended workflow as the dashboard's approval queue lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SuspendedWorkflow {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub customer_id: Uuid,
    pub workflow_type: WorkflowType,
    pub status: Status,
    pub title: Option<String>,
    pub reference: Option<String>,
    pub stage: Option<String>,
    pub suspended_step: Option<String>,
    pub suspend_payload: Value,
    pub suspended_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl From<Workflow> for SuspendedWorkflow {
    fn from(w: Workflow) -> Self {
        Self {
            id: w.id,
            instance_id: w.instance_id,
            customer_id: w.customer_id,
            workflow_type: w.workflow_type,
            status: w.status,
            title: w.title,
            reference: w.reference,
            stage: w.stage,
            suspended_step: w.suspended_step,
            suspend_payload: w.suspend_payload,
            suspended_at: w.suspended_at,
            updated_at: w.updated_at,
        }
    }
}
