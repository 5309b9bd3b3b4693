//! The records this replica wrote last, as guesses for the next change's
//! read. A change is a read and a write made at the record read
//! (`workflows::Attempt::run`). When this replica made the workflow's
//! latest write, that read returns what it already holds, so the change
//! starts from the remembered record and saves a round trip. If anyone
//! else (another replica, the sweeper of one, the command line) changed
//! the workflow since, the write finds another record and writes nothing,
//! and the change starts over from a read. (The write compares the version
//! and `updated_at`: the migration's `hydracore_change_workflow` says why
//! the version alone is not enough.) A remembered record is never answered as a read, and neither
//! is a refusal (409, 412) worked out from one: those come only from a
//! record read from the database.

use std::mem::size_of;
use std::sync::Arc;

use hydracore_domain::Workflow;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use serde_json::Value;
use uuid::Uuid;

/// What the remembered records may take, by [`approximate_bytes`], an
/// estimate (it leaves out the allocator's rounding and spare capacity).
/// The cache divides it among its shards (a few per CPU); a record heavier
/// than a shard's share is not kept. Most records weigh a few kilobytes,
/// so this keeps the last thousands.
const BUDGET_BYTES: u64 = 16 * 1024 * 1024;

/// A typical record, for sizing the cache's table.
const TYPICAL_BYTES: u64 = 2 * 1024;

/// (tenant, workflow id).
type Key = (Uuid, Uuid);

/// A record and its weight, worked out once.
#[derive(Debug)]
struct Remembered {
    workflow: Workflow,
    bytes: u64,
}

#[derive(Debug, Clone)]
struct ByBytes;

impl Weighter<Key, Arc<Remembered>> for ByBytes {
    fn weight(&self, _key: &Key, value: &Arc<Remembered>) -> u64 {
        value.bytes
    }
}

#[derive(Debug)]
pub struct LastWritten {
    records: Cache<Key, Arc<Remembered>, ByBytes>,
}

impl Default for LastWritten {
    fn default() -> Self {
        Self::with_budget(BUDGET_BYTES)
    }
}

impl LastWritten {
    fn with_budget(bytes: u64) -> Self {
        let items = usize::try_from(bytes / TYPICAL_BYTES).unwrap_or(usize::MAX);
        Self {
            records: Cache::with_weighter(items.max(1), bytes, ByBytes),
        }
    }

    /// The record this replica last wrote for workflow `id` of `tenant_id`,
    /// if it still holds it: a guess at the stored record, without its
    /// history.
    pub fn guess(&self, tenant_id: Uuid, id: Uuid) -> Option<Workflow> {
        self.records
            .get(&(tenant_id, id))
            .map(|r| r.workflow.clone())
    }

    /// Remembers `workflow` as just written (its history is not kept).
    /// Of two changes of one workflow landing at once, the older may be
    /// remembered last: the next change then finds it stale and reads. A
    /// workflow in a terminal status never changes again: it is forgotten.
    pub fn remember(&self, workflow: &Workflow) {
        if workflow.status.is_terminal() {
            self.forget(workflow.tenant_id, workflow.id);
            return;
        }
        let workflow = Workflow {
            history: Vec::new(),
            history_total: None,
            ..workflow.clone()
        };
        let bytes = approximate_bytes(&workflow);
        let key = (workflow.tenant_id, workflow.id);
        self.records
            .insert(key, Arc::new(Remembered { workflow, bytes }));
    }

    /// After a write that did not land, or may not have.
    pub fn forget(&self, tenant_id: Uuid, id: Uuid) {
        self.records.remove(&(tenant_id, id));
    }
}

/// About what `workflow` holds in memory: its fixed part and what its
/// strings and JSON values hold on the heap.
fn approximate_bytes(workflow: &Workflow) -> u64 {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
    let state: usize = workflow
        .workflow_state
        .iter()
        .map(|(k, v)| entry_bytes(k, v))
        .sum();
    let bytes = size_of::<Remembered>()
        + text(&workflow.stage)
        + text(&workflow.title)
        + text(&workflow.reference)
        + text(&workflow.assigned_to)
        + text(&workflow.suspended_step)
        + workflow.workflow_type.as_str().len()
        + state
        + value_bytes(&workflow.suspend_payload);
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// An object member: its key, a slot of the map's table and its value.
fn entry_bytes(key: &str, value: &Value) -> usize {
    key.len() + size_of::<String>() + 2 * size_of::<usize>() + value_bytes(value)
}

fn value_bytes(value: &Value) -> usize {
    size_of::<Value>()
        + match value {
            Value::String(s) => s.capacity(),
            Value::Array(items) => items.iter().map(value_bytes).sum(),
            Value::Object(members) => members.iter().map(|(k, v)| entry_bytes(k, v)).sum(),
            // Numbers keep their text (serde_json's arbitrary precision).
            Value::Number(n) => n.as_str().len(),
            Value::Null | Value::Bool(_) => 0,
        }
}

#[cfg(test)]
mod tests {
    use hydracore_domain::request::CreateWorkflow;
    use hydracore_domain::transition;
    use hydracore_domain::{Principal, Timestamp, WorkflowType};
    use serde_json::{json, Map};

    use super::*;

    fn workflow(tenant_id: Uuid, state_bytes: usize) -> Workflow {
        let mut state = Map::new();
        state.insert("notes".into(), json!("x".repeat(state_bytes)));
        let request = CreateWorkflow {
            customer_id: Uuid::new_v4(),
            workflow_type: WorkflowType::Viewing,
            stage: Some("booked".into()),
            title: None,
            reference: None,
            assigned_to: None,
            workflow_state: state,
            next_action_at: None,
            expires_at: None,
        };
        let instance_id = Uuid::new_v4();
        transition::create(
            Uuid::now_v7(),
            tenant_id,
            instance_id,
            request,
            &Principal::Instance(instance_id),
            Timestamp::now(),
        )
    }

    #[test]
    fn a_remembered_record_is_guessed_without_its_history_until_forgotten() {
        let last = LastWritten::default();
        let w = workflow(Uuid::new_v4(), 10);
        assert!(!w.history.is_empty());
        last.remember(&w);
        let guessed = last.guess(w.tenant_id, w.id).expect("remembered");
        assert!(guessed.history.is_empty());
        assert_eq!(
            Workflow {
                history: Vec::new(),
                history_total: None,
                ..w.clone()
            },
            guessed
        );
        last.forget(w.tenant_id, w.id);
        assert!(last.guess(w.tenant_id, w.id).is_none());
    }

    #[test]
    fn a_workflow_in_a_terminal_status_is_forgotten() {
        let last = LastWritten::default();
        let mut w = workflow(Uuid::new_v4(), 10);
        last.remember(&w);
        w.status = hydracore_domain::Status::Cancelled;
        last.remember(&w);
        assert!(last.guess(w.tenant_id, w.id).is_none());
    }

    #[test]
    fn a_record_is_guessed_only_for_its_own_tenant() {
        let last = LastWritten::default();
        let w = workflow(Uuid::new_v4(), 10);
        last.remember(&w);
        assert!(last.guess(Uuid::new_v4(), w.id).is_none());
    }

    #[test]
    fn remembered_records_stay_within_the_budget() {
        let budget = 256 * 1024;
        let last = LastWritten::with_budget(budget);
        let tenant = Uuid::new_v4();
        for _ in 0..1_000 {
            last.remember(&workflow(tenant, 1_000));
        }
        assert!(last.records.weight() <= budget, "{}", last.records.weight());
        assert!(last.records.len() > 10, "{}", last.records.len());
        // A record past the whole budget is not kept at all.
        let huge = workflow(tenant, 1024 * 1024);
        last.remember(&huge);
        assert!(last.guess(tenant, huge.id).is_none());
    }

    #[test]
    fn a_records_weight_grows_with_its_state() {
        let small = approximate_bytes(&workflow(Uuid::new_v4(), 10));
        let large = approximate_bytes(&workflow(Uuid::new_v4(), 100_000));
        assert!(large - small >= 99_990, "{small} {large}");
    }
}
