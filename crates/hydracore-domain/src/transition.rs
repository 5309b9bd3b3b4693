//! The status rules: how each command changes a workflow and what it
//! appends to the history. Pure functions; storage runs them inside the
//! transaction that holds the workflow's row.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::decision::{ResumeSchema, DEFAULT_MAX_ESCALATION_LEVEL};
use crate::event::EventType;
use crate::merge::merge_object;
use crate::precondition::IfMatch;
use crate::request::{AdvanceWorkflow, CreateWorkflow, ResumeWorkflow, SuspendWorkflow};
use crate::validation::{Invalid, ValidationErrors};
use crate::{HistoryEntry, Principal, Status, Timestamp, Workflow};

/// A change to an existing workflow.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Advance(Box<AdvanceWorkflow>),
    Suspend(SuspendWorkflow),
    Resume(ResumeWorkflow),
    /// With the reason a person gave, kept in the history entry.
    Abort {
        reason: Option<String>,
    },
    /// The sweeper's: `expires_at` has passed.
    Expire,
    /// The sweeper's: a suspension's due time has passed.
    Escalate,
}

/// Why a command does not apply to the workflow as it stands: a 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("Workflow is {0}; a workflow in a terminal status cannot change")]
    Terminal(Status),
    #[error("Workflow is already suspended")]
    AlreadySuspended,
    #[error("Workflow is {0}; only a suspended workflow can be resumed")]
    NotSuspended(Status),
    /// `If-Match` named another version: a 412.
    #[error("Precondition failed: the workflow is at version {current}")]
    VersionMismatch { current: i64 },
    /// The sweeper's: the workflow is no longer due to expire (it was
    /// changed or closed since it was picked). Never answered to a client.
    #[error("Workflow is not due to expire")]
    NotDue,
    /// The change is well-formed but its result is not allowed (a state
    /// grown past its bound): a 422 in the validation shape.
    #[error("{0}")]
    Invalid(ValidationErrors),
}

/// The largest `workflow_state` a change may leave, as compact JSON. Every
/// read answers the whole state, so merges may not grow it without end.
pub const STATE_MAX_BYTES: usize = 1024 * 1024;

/// Refuses a merged state past [`STATE_MAX_BYTES`], naming the request
/// field that grew it.
fn check_state_size(workflow: &Workflow, field: &str) -> Result<(), TransitionError> {
    let size = serde_json::to_string(&workflow.workflow_state).map_or(usize::MAX, |s| s.len());
    if size <= STATE_MAX_BYTES {
        return Ok(());
    }
    let reason = format!(
        "workflow_state would be {size} bytes of JSON after this change; it may be at most \
         {STATE_MAX_BYTES}"
    );
    Err(TransitionError::Invalid(ValidationErrors::single(
        Invalid::value_error(&reason).at(vec![json!("body"), json!(field)], Value::Null),
    )))
}

/// The outcome of a command: the workflow as it is now (without its
/// history), the entry to append, and a sentence for the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub workflow: Workflow,
    pub entry: HistoryEntry,
    pub message: String,
    /// The event the change is.
    pub event: EventType,
}

/// A new workflow of `instance_id` (of tenant `tenant_id`), created by
/// `by`, with its `created` entry as its first history line.
pub fn create(
    id: Uuid,
    tenant_id: Uuid,
    instance_id: Uuid,
    request: CreateWorkflow,
    by: &Principal,
    now: Timestamp,
) -> Workflow {
    let entry = HistoryEntry {
        seq: 1,
        at: now,
        action: "created".into(),
        action_detail: Value::Null,
        actor: Some(by.default_actor()),
        from_status: None,
        to_status: Some(Status::Active),
        from_stage: None,
        to_stage: request.stage.clone(),
        principal: Some(by.to_string()),
    };
    Workflow {
        id,
        tenant_id,
        instance_id,
        customer_id: request.customer_id,
        workflow_type: request.workflow_type,
        status: Status::Active,
        stage: request.stage,
        title: request.title,
        reference: request.reference,
        assigned_to: request.assigned_to,
        approver_id: None,
        escalation_level: 0,
        escalate_every: None,
        max_escalation_level: None,
        workflow_state: request.workflow_state,
        suspended_step: None,
        suspend_payload: Value::Null,
        suspended_at: None,
        resume_schema: None,
        created_at: now,
        updated_at: now,
        last_action_at: None,
        next_action_at: request.next_action_at,
        expires_at: request.expires_at,
        completed_at: None,
        version: 1,
        history: vec![entry],
        history_total: None,
    }
}

/// Applies `command` on behalf of `by` at `now`, if the workflow is at a
/// version `if_match` accepts. `workflow` is the stored record; its
/// `history` is neither read nor kept.
pub fn apply(
    mut workflow: Workflow,
    command: &Command,
    by: &Principal,
    if_match: Option<&IfMatch>,
    now: Timestamp,
) -> Result<Change, TransitionError> {
    if let Some(condition) = if_match {
        if !condition.matches(workflow.version) {
            return Err(TransitionError::VersionMismatch {
                current: workflow.version,
            });
        }
    }
    let from_status = workflow.status;
    if from_status.is_terminal() {
        return Err(TransitionError::Terminal(from_status));
    }
    let from_stage = workflow.stage.clone();
    workflow.history = Vec::new();
    workflow.history_total = None;

    let (action, action_detail, message) = match command {
        Command::Advance(advance) => {
            apply_advance(&mut workflow, advance, now);
            if advance.workflow_state.is_some() {
                check_state_size(&workflow, "workflow_state")?;
            }
            (
                advance.action.as_str().to_owned(),
                advance.action_detail.clone(),
                format!("Workflow advanced: {}", advance.action.as_str()),
            )
        }
        Command::Suspend(suspend) => {
            if from_status == Status::Suspended {
                return Err(TransitionError::AlreadySuspended);
            }
            workflow.status = Status::Suspended;
            workflow.suspended_step = Some(suspend.step.as_str().to_owned());
            workflow.suspend_payload = suspend.payload.clone();
            workflow.suspended_at = Some(now);
            workflow.resume_schema = suspend.resume_schema.as_ref().map(|s| s.as_value().clone());
            if let Some(assignee) = &suspend.assigned_to {
                workflow.assigned_to = Some(assignee.clone());
            }
            if let Some(due) = suspend.due_at {
                workflow.next_action_at = Some(due);
            }
            workflow.escalate_every = suspend.escalate_every;
            if suspend.escalate_every.is_some() {
                // This suspension's escalation starts from the bottom.
                workflow.escalation_level = 0;
            }
            workflow.max_escalation_level = suspend.escalate_every.map(|_| {
                suspend
                    .max_escalation_level
                    .unwrap_or(DEFAULT_MAX_ESCALATION_LEVEL)
            });
            (
                "suspended".into(),
                json!({ "step": suspend.step }),
                format!("Workflow suspended at step '{}'", suspend.step.as_str()),
            )
        }
        Command::Resume(resume) => {
            if from_status != Status::Suspended {
                return Err(TransitionError::NotSuspended(from_status));
            }
            if let Some(schema) = &workflow.resume_schema {
                ResumeSchema::stored(schema.clone())
                    .check(&resume.resume_data)
                    .map_err(TransitionError::Invalid)?;
            }
            let step = workflow.suspended_step.clone();
            if let Some(approver) = by.approver_id() {
                workflow.approver_id = Some(approver);
            }
            merge_object(&mut workflow.workflow_state, &resume.resume_data);
            if !resume.resume_data.is_empty() {
                check_state_size(&workflow, "resume_data")?;
            }
            workflow.status = Status::Active;
            end_suspension(&mut workflow);
            let message = match &step {
                Some(step) => format!("Workflow resumed from step '{step}'"),
                None => "Workflow resumed".to_owned(),
            };
            (
                "resumed".into(),
                json!({ "step": step, "resume_data": Value::Object(resume.resume_data.clone()) }),
                message,
            )
        }
        Command::Abort { reason } => {
            workflow.status = Status::Cancelled;
            end_suspension(&mut workflow);
            let detail = reason
                .as_ref()
                .map_or(Value::Null, |r| json!({ "reason": r }));
            ("aborted".into(), detail, "Workflow aborted".to_owned())
        }
        Command::Expire => {
            workflow.status = Status::Expired;
            end_suspension(&mut workflow);
            (
                "expired".into(),
                json!({ "expires_at": workflow.expires_at }),
                "Workflow expired".to_owned(),
            )
        }
        Command::Escalate => {
            let from_level = workflow.escalation_level;
            workflow.escalation_level += 1;
            let below_max = workflow
                .max_escalation_level
                .is_some_and(|max| workflow.escalation_level < max);
            if let (true, Some(every), Some(due)) =
                (below_max, workflow.escalate_every, workflow.next_action_at)
            {
                workflow.next_action_at = due.plus_seconds(every);
            }
            (
                "escalated".into(),
                json!({ "from_level": from_level, "to_level": workflow.escalation_level }),
                format!("Workflow escalated to level {}", workflow.escalation_level),
            )
        }
    };

    if workflow.status.is_terminal() {
        workflow.completed_at = Some(now);
    }
    workflow.updated_at = now;
    workflow.last_action_at = Some(now);
    workflow.version += 1;

    let actor = match command {
        Command::Advance(advance) => advance.actor.clone(),
        _ => None,
    }
    .unwrap_or_else(|| by.default_actor());
    let entry = HistoryEntry {
        seq: workflow.version,
        at: now,
        action,
        action_detail,
        actor: Some(actor),
        from_status: Some(from_status),
        to_status: Some(workflow.status),
        from_stage,
        to_stage: workflow.stage.clone(),
        principal: Some(by.to_string()),
    };
    let event = EventType::of_change(
        match command {
            Command::Advance(_) => EventType::Advanced,
            Command::Suspend(_) => EventType::Suspended,
            Command::Resume(_) => EventType::Resumed,
            Command::Abort { .. } => EventType::Aborted,
            Command::Expire => EventType::Expired,
            Command::Escalate => EventType::Escalated,
        },
        from_status,
        &workflow,
    );
    Ok(Change {
        workflow,
        entry,
        message,
        event,
    })
}

/// Expires `workflow` if it is live and its `expires_at` has passed at
/// `now`; [`TransitionError::NotDue`] otherwise.
pub fn expire(workflow: Workflow, now: Timestamp) -> Result<Change, TransitionError> {
    let due = !workflow.status.is_terminal() && workflow.expires_at.is_some_and(|at| at <= now);
    if !due {
        return Err(TransitionError::NotDue);
    }
    apply(workflow, &Command::Expire, &Principal::System, None, now)
}

fn apply_advance(workflow: &mut Workflow, advance: &AdvanceWorkflow, now: Timestamp) {
    if let Some(status) = advance.status {
        match (
            workflow.status == Status::Suspended,
            status == Status::Suspended,
        ) {
            // Into `suspended` by PATCH: a suspension without a step.
            (false, true) => {
                workflow.suspended_step = None;
                workflow.suspend_payload = Value::Null;
                workflow.suspended_at = Some(now);
            }
            (true, false) => end_suspension(workflow),
            _ => {}
        }
        workflow.status = status;
    }
    set(&mut workflow.stage, &advance.stage);
    set(&mut workflow.assigned_to, &advance.assigned_to);
    set(&mut workflow.approver_id, &advance.approver_id);
    set(&mut workflow.expires_at, &advance.expires_at);
    set(&mut workflow.next_action_at, &advance.next_action_at);
    if let Some(level) = advance.escalation_level {
        workflow.escalation_level = level;
    }
    if let Some(patch) = &advance.workflow_state {
        merge_object(&mut workflow.workflow_state, patch);
    }
}

fn set<T: Clone>(field: &mut Option<T>, given: &Option<Option<T>>) {
    if let Some(value) = given {
        field.clone_from(value);
    }
}

fn end_suspension(workflow: &mut Workflow) {
    workflow.suspended_step = None;
    workflow.suspend_payload = Value::Null;
    workflow.suspended_at = None;
    workflow.resume_schema = None;
    workflow.escalate_every = None;
    workflow.max_escalation_level = None;
}

/// Whether `workflow`'s suspension is due to escalate at `now`: its due
/// time (`next_action_at`) has passed, it escalates, and it is below its
/// maximum level.
pub fn escalation_due(workflow: &Workflow, now: Timestamp) -> bool {
    workflow.status == Status::Suspended
        && workflow.escalate_every.is_some()
        && workflow.next_action_at.is_some_and(|due| due <= now)
        && workflow
            .max_escalation_level
            .is_some_and(|max| workflow.escalation_level < max)
}

/// Escalates `workflow` if [`escalation_due`]: one level up, and the due
/// time moved on by the period while below the maximum (at the maximum it
/// stays overdue). [`TransitionError::NotDue`] otherwise, so that each due
/// time escalates once whoever races for it.
pub fn escalate(workflow: Workflow, now: Timestamp) -> Result<Change, TransitionError> {
    if !escalation_due(&workflow, now) {
        return Err(TransitionError::NotDue);
    }
    apply(workflow, &Command::Escalate, &Principal::System, None, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActionName, WorkflowType};

    fn now() -> Timestamp {
        Timestamp::now()
    }

    fn fresh() -> Workflow {
        let request = CreateWorkflow {
            customer_id: Uuid::from_u128(3),
            workflow_type: WorkflowType::RentArrears,
            stage: Some("intake".into()),
            title: None,
            reference: None,
            assigned_to: None,
            workflow_state: json!({"a": {"b": 1}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            next_action_at: None,
            expires_at: None,
        };
        create(
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(4),
            request,
            &Principal::Instance(Uuid::from_u128(4)),
            now(),
        )
    }

    fn advance(action: &str) -> AdvanceWorkflow {
        AdvanceWorkflow {
            action: ActionName::parse(action).unwrap_or_else(|_| unreachable!()),
            action_detail: Value::Null,
            actor: None,
            approver_id: None,
            assigned_to: None,
            escalation_level: None,
            expires_at: None,
            next_action_at: None,
            stage: None,
            status: None,
            workflow_state: None,
        }
    }

    fn suspend(step: &str) -> Command {
        suspend_with(json!({"step": step, "payload": {"invoice": 12}}))
    }

    fn suspend_with(body: Value) -> Command {
        Command::Suspend(SuspendWorkflow::from_json(&body).unwrap_or_else(|e| panic!("{e:?}")))
    }

    fn resume(data: Value) -> Command {
        Command::Resume(ResumeWorkflow {
            resume_data: data.as_object().cloned().unwrap_or_default(),
        })
    }

    fn after(t: Timestamp, seconds: i64) -> Timestamp {
        t.plus_seconds(seconds).unwrap_or(t)
    }

    /// A workflow suspended at `at`, due `due_in` seconds later, escalating
    /// every 60 s up to level 2.
    fn escalating(at: Timestamp, due_in: i64) -> Workflow {
        let due = after(at, due_in).to_rfc3339();
        let c = suspend_with(
            json!({"step": "approve", "due_at": due, "escalate_every": "PT1M",
                                    "max_escalation_level": 2}),
        );
        apply(fresh(), &c, &Principal::System, None, at)
            .map(|c| c.workflow)
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_resume_that_fails_the_schema_is_refused_with_each_violation() {
        let c = suspend_with(json!({"step": "approve", "resume_schema": {
            "type": "object", "required": ["approved"],
            "properties": {"approved": {"type": "boolean"}}}}));
        let suspended = run(fresh(), c).map(|c| c.workflow);
        let e = suspended
            .clone()
            .and_then(|w| run(w, resume(json!({"approved": "yes"}))))
            .err();
        assert!(matches!(&e, Some(TransitionError::Invalid(v))
            if v.0.len() == 1 && v.0[0].error_type == "type"
               && v.0[0].loc == vec![json!("body"), json!("resume_data"), json!("approved")]));
        let resumed = suspended.and_then(|w| run(w, resume(json!({"approved": true}))));
        assert!(resumed.is_ok_and(|c| c.workflow.resume_schema.is_none()));
    }

    #[test]
    fn a_resume_records_the_deciding_key_or_uuid_subject_as_approver() {
        let key = Uuid::from_u128(99);
        let suspended = run(fresh(), suspend("approve")).map(|c| c.workflow);
        let by_key = suspended
            .clone()
            .and_then(|w| apply(w, &resume(json!({})), &Principal::ApiKey(key), None, now()));
        assert_eq!(by_key.map(|c| c.workflow.approver_id), Ok(Some(key)));
        let by_name = suspended.and_then(|w| {
            apply(
                w,
                &resume(json!({})),
                &Principal::User("ann".into()),
                None,
                now(),
            )
        });
        assert_eq!(by_name.map(|c| c.workflow.approver_id), Ok(None));
    }

    #[test]
    fn an_overdue_suspension_escalates_once_per_due_time_until_its_maximum() {
        let start = now();
        let w = escalating(start, 10);
        assert_eq!(
            escalate(w.clone(), start).err(),
            Some(TransitionError::NotDue)
        );
        let first = escalate(w, after(start, 11)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(first.workflow.escalation_level, 1);
        assert_eq!(first.workflow.next_action_at, Some(after(start, 70)));
        assert_eq!(first.entry.action, "escalated");
        assert_eq!(
            first.entry.action_detail,
            json!({"from_level": 0, "to_level": 1})
        );
        assert_eq!(first.entry.actor.as_deref(), Some("system"));
        // The same due time does not fire twice.
        assert_eq!(
            escalate(first.workflow.clone(), after(start, 12)).err(),
            Some(TransitionError::NotDue)
        );
        let second = escalate(first.workflow, after(start, 71)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(second.workflow.escalation_level, 2);
        // At the maximum it stays overdue and escalates no more.
        assert_eq!(second.workflow.next_action_at, Some(after(start, 70)));
        assert_eq!(
            escalate(second.workflow, after(start, 1_000)).err(),
            Some(TransitionError::NotDue)
        );
    }

    #[test]
    fn a_resume_ends_the_escalation_and_the_schema() {
        let start = now();
        let resumed = run(escalating(start, 10), resume(json!({}))).map(|c| c.workflow);
        assert!(resumed.is_ok_and(|w| w.escalate_every.is_none()
            && w.max_escalation_level.is_none()
            && !escalation_due(&w, after(start, 100))));
    }

    fn run(w: Workflow, c: Command) -> Result<Change, TransitionError> {
        apply(w, &c, &Principal::Instance(Uuid::from_u128(4)), None, now())
    }

    #[test]
    fn a_new_workflow_is_active_with_one_created_entry() {
        let w = fresh();
        assert_eq!(w.status, Status::Active);
        let history = &w.history;
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].action, "created");
        assert_eq!(history[0].to_stage.as_deref(), Some("intake"));
        assert_eq!((w.version, w.history[0].seq, w.escalation_level), (1, 1, 0));
    }

    #[test]
    fn an_advance_merges_state_and_appends_the_next_seq() {
        let mut a = advance("contacted");
        a.workflow_state = json!({"a": {"c": 2}, "d": 3}).as_object().cloned();
        a.stage = Some(Some("chasing".into()));
        let change = run(fresh(), Command::Advance(Box::new(a)));
        let change = change.ok();
        let w = change.as_ref().map(|c| &c.workflow);
        assert_eq!(
            w.map(|w| Value::Object(w.workflow_state.clone())),
            Some(json!({"a": {"b": 1, "c": 2}, "d": 3}))
        );
        let e = change.as_ref().map(|c| &c.entry);
        assert_eq!(e.map(|e| e.seq), Some(2));
        assert_eq!(
            e.and_then(|e| e.from_stage.clone()).as_deref(),
            Some("intake")
        );
        assert_eq!(
            e.and_then(|e| e.to_stage.clone()).as_deref(),
            Some("chasing")
        );
        assert!(w.is_some_and(|w| w.last_action_at.is_some() && w.version == 2));
    }

    #[test]
    fn an_advance_names_its_own_actor_when_given() {
        let mut a = advance("approved");
        a.actor = Some("agent-7".into());
        let e = run(fresh(), Command::Advance(Box::new(a)))
            .ok()
            .map(|c| c.entry);
        assert_eq!(e.and_then(|e| e.actor).as_deref(), Some("agent-7"));
        let e = run(fresh(), Command::Advance(Box::new(advance("x"))))
            .ok()
            .map(|c| c.entry);
        let instance = Principal::Instance(Uuid::from_u128(4)).to_string();
        assert_eq!(e.and_then(|e| e.actor), Some(instance));
    }

    #[test]
    fn every_entry_records_the_principal_whatever_the_actor_says() {
        let mut a = advance("approved");
        a.actor = Some("the-landlord".into());
        let e = run(fresh(), Command::Advance(Box::new(a)))
            .ok()
            .map(|c| c.entry);
        let instance = Principal::Instance(Uuid::from_u128(4)).to_string();
        assert_eq!(e.and_then(|e| e.principal), Some(instance.clone()));
        assert_eq!(fresh().history[0].principal, Some(instance));
        let mut due = fresh();
        due.expires_at = Some(now());
        let expired = expire(due, now()).ok().map(|c| c.entry);
        assert_eq!(
            expired.map(|e| (e.actor, e.principal)),
            Some((Some("system".into()), Some("system".into())))
        );
    }

    #[test]
    fn null_clears_a_nullable_field_and_absent_keeps_it() {
        let mut a = advance("x");
        a.stage = Some(None);
        let w = run(fresh(), Command::Advance(Box::new(a)))
            .ok()
            .map(|c| c.workflow);
        assert_eq!(w.map(|w| w.stage), Some(None));
        let w = run(fresh(), Command::Advance(Box::new(advance("x"))))
            .ok()
            .map(|c| c.workflow);
        assert_eq!(w.and_then(|w| w.stage).as_deref(), Some("intake"));
    }

    #[test]
    fn moving_to_a_terminal_status_sets_completed_at() {
        let mut a = advance("done");
        a.status = Some(Status::Completed);
        let w = run(fresh(), Command::Advance(Box::new(a)))
            .ok()
            .map(|c| c.workflow);
        assert!(w.is_some_and(|w| w.completed_at.is_some() && w.status == Status::Completed));
    }

    #[test]
    fn every_command_on_a_terminal_workflow_is_a_conflict() {
        for terminal in [
            Status::Completed,
            Status::Expired,
            Status::Cancelled,
            Status::Failed,
        ] {
            let mut w = fresh();
            w.status = terminal;
            for c in [
                Command::Advance(Box::new(advance("x"))),
                suspend("s"),
                Command::Resume(ResumeWorkflow::default()),
                Command::Abort { reason: None },
            ] {
                assert_eq!(
                    run(w.clone(), c).err(),
                    Some(TransitionError::Terminal(terminal))
                );
            }
        }
    }

    #[test]
    fn suspend_then_resume_merges_the_humans_data_and_ends_the_suspension() {
        let suspended = run(fresh(), suspend("approve_payment"))
            .ok()
            .map(|c| c.workflow);
        let Some(suspended) = suspended else {
            panic!("suspend failed")
        };
        assert_eq!(suspended.status, Status::Suspended);
        assert_eq!(suspended.suspended_step.as_deref(), Some("approve_payment"));
        assert_eq!(suspended.suspend_payload, json!({"invoice": 12}));

        let data = json!({"approved": true, "a": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let change = run(
            suspended,
            Command::Resume(ResumeWorkflow { resume_data: data }),
        )
        .ok();
        let w = change.as_ref().map(|c| &c.workflow);
        assert_eq!(w.map(|w| w.status), Some(Status::Active));
        assert_eq!(
            w.map(|w| Value::Object(w.workflow_state.clone())),
            Some(json!({"approved": true}))
        );
        assert!(w.is_some_and(|w| w.suspended_step.is_none() && w.suspended_at.is_none()));
        assert_eq!(
            change.map(|c| (
                c.entry.action,
                c.entry.action_detail["step"].clone(),
                c.message
            )),
            Some((
                "resumed".into(),
                json!("approve_payment"),
                "Workflow resumed from step 'approve_payment'".into()
            ))
        );
    }

    #[test]
    fn a_suspended_workflow_cannot_be_suspended_again() {
        let w = run(fresh(), suspend("a")).ok().map(|c| c.workflow);
        let again = w.map(|w| run(w, suspend("b")).err());
        assert_eq!(again, Some(Some(TransitionError::AlreadySuspended)));
    }

    #[test]
    fn only_a_suspended_workflow_can_be_resumed() {
        for status in [Status::Active, Status::Paused, Status::AwaitingApproval] {
            let mut w = fresh();
            w.status = status;
            let e = run(w, Command::Resume(ResumeWorkflow::default())).err();
            assert_eq!(e, Some(TransitionError::NotSuspended(status)));
        }
    }

    #[test]
    fn suspend_is_allowed_from_every_live_status_but_suspended() {
        for status in [Status::Active, Status::Paused, Status::AwaitingApproval] {
            let mut w = fresh();
            w.status = status;
            assert!(run(w, suspend("s")).is_ok());
        }
    }

    #[test]
    fn patching_out_of_suspended_ends_the_suspension() {
        let w = run(fresh(), suspend("a")).ok().map(|c| c.workflow);
        let mut a = advance("unblocked");
        a.status = Some(Status::Active);
        let w = w
            .and_then(|w| run(w, Command::Advance(Box::new(a))).ok())
            .map(|c| c.workflow);
        assert!(w.is_some_and(|w| w.suspended_step.is_none() && w.suspended_at.is_none()));
    }

    #[test]
    fn patching_into_suspended_records_no_step() {
        let mut a = advance("waiting");
        a.status = Some(Status::Suspended);
        let w = run(fresh(), Command::Advance(Box::new(a)))
            .ok()
            .map(|c| c.workflow);
        assert!(w.is_some_and(|w| w.suspended_step.is_none() && w.suspended_at.is_some()));
    }

    #[test]
    fn abort_cancels_and_completes() {
        let c = run(fresh(), Command::Abort { reason: None }).ok();
        assert_eq!(
            c.as_ref().map(|c| c.workflow.status),
            Some(Status::Cancelled)
        );
        assert!(c.is_some_and(|c| c.workflow.completed_at.is_some() && c.entry.action == "aborted"));
    }

    #[test]
    fn expiry_records_the_system_and_completes() {
        let c = apply(fresh(), &Command::Expire, &Principal::System, None, now()).ok();
        assert_eq!(c.as_ref().map(|c| c.workflow.status), Some(Status::Expired));
        assert!(c
            .as_ref()
            .is_some_and(|c| c.workflow.completed_at.is_some()));
        assert_eq!(
            c.map(|c| (c.entry.action, c.entry.actor)),
            Some(("expired".into(), Some("system".into())))
        );
    }

    #[test]
    fn expiry_applies_only_to_a_live_workflow_past_its_deadline() {
        let at = now();
        let mut due = fresh();
        due.expires_at = Some(at);
        assert!(expire(due.clone(), at).is_ok());
        let mut closed = due.clone();
        closed.status = Status::Cancelled;
        assert_eq!(expire(closed, at).err(), Some(TransitionError::NotDue));
        assert_eq!(expire(fresh(), at).err(), Some(TransitionError::NotDue));
        let later = Timestamp::from_unix_micros(at.unix_micros() + 1_000_000);
        let mut not_yet = due;
        not_yet.expires_at = later;
        assert_eq!(expire(not_yet, at).err(), Some(TransitionError::NotDue));
    }

    #[test]
    fn merges_may_not_grow_the_state_past_its_bound() {
        let chunk = "x".repeat(STATE_MAX_BYTES / 2);
        let mut grow = advance("grow");
        grow.workflow_state = json!({"a": chunk}).as_object().cloned();
        let grown = run(fresh(), Command::Advance(Box::new(grow))).map(|c| c.workflow);
        let mut more = advance("grow");
        more.workflow_state = json!({"b": chunk}).as_object().cloned();
        let e = grown.and_then(|w| run(w, Command::Advance(Box::new(more))));
        assert!(
            matches!(&e, Err(TransitionError::Invalid(v)) if v.0[0].loc == vec![json!("body"), json!("workflow_state")])
        );
    }

    #[test]
    fn a_stale_if_match_is_refused_before_any_rule() {
        let stale = IfMatch::Versions(vec![7]);
        let e = apply(
            fresh(),
            &Command::Abort { reason: None },
            &Principal::System,
            Some(&stale),
            now(),
        )
        .err();
        assert_eq!(e, Some(TransitionError::VersionMismatch { current: 1 }));
        let current = IfMatch::Versions(vec![1]);
        assert!(apply(
            fresh(),
            &Command::Abort { reason: None },
            &Principal::System,
            Some(&current),
            now()
        )
        .is_ok());
    }
}
