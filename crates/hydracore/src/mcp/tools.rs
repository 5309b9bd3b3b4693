//! The tools: what an agent can do with its instance's workflows, each a
//! use case of `Workflows` run as the agent's proxy key would run it over
//! the internal API, with the same rules, limits and answers.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine as _;
use hydracore_domain::idempotency::{self, IdempotencyKey};
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::request::{AdvanceWorkflow, CreateWorkflow, ListQuery, SuspendWorkflow};
use hydracore_domain::transition::Command;
use hydracore_domain::validation::{values, FieldError, Invalid, ValidationErrors};
use hydracore_domain::{loc, HistoryEntry, Status, Workflow};
use hydracore_storage::service::Idempotent;
use hydracore_storage::{Waited, WithHistory};
use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::schema::ObjectSchema;
use crate::http::auth::ProxyAuth;
use crate::http::error::ApiError;
use crate::http::openapi::ListParams;
use crate::http::respond::{self, WorkflowList};
use crate::http::AppState;

// Schema-only types of the tools' own fields (the rest are the HTTP API's
// request bodies). Never built: they describe arguments read from JSON.

/// The workflow a tool acts on.
#[derive(ToSchema)]
#[allow(dead_code)]
struct OnWorkflow {
    /// The workflow's `id`, as create_workflow or list_workflows answered it.
    workflow_id: Uuid,
}

/// The version a change expects.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Expecting {
    /// The workflow's `version` as you last saw it (every answer about the
    /// workflow carries it). If the workflow has changed since, nothing is
    /// written and the tool answers status 412 with the current version:
    /// read it with get_workflow and decide again. This is also why a
    /// retried call never applies twice.
    #[schema(minimum = 1)]
    expected_version: i64,
}

/// What to ask.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Question {
    /// The question for the person, in plain words. Shown to them as the
    /// `question` of the decision's payload.
    #[schema(min_length = 1, max_length = 4000)]
    question: Option<String>,
}

/// How long to wait.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Timeout {
    /// How long to wait for the answer, in seconds (default 25). The
    /// server waits at most its HYDRACORE_MAX_WAIT (60 s by default); when
    /// no answer came, call again.
    #[schema(minimum = 0, maximum = 3600, default = 25)]
    timeout_seconds: Option<i64>,
}

const DEFAULT_WAIT_SECONDS: u64 = 25;
const QUESTION_MAX_CHARS: usize = 4000;

/// The tools, as `tools/list` answers them.
pub static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        tool(
            "create_workflow",
            "Start a durable workflow record: the state of one piece of work (a lead, a \
             repair, an approval...) that survives restarts and that people can see on the \
             dashboard. Answers the record; keep its `id` and `version`. Calling again with \
             exactly the same arguments within 24 hours answers the same workflow instead of \
             making a second one, so a retry is safe; to make a second, similar workflow, \
             give it another `reference` or `title`.",
            ObjectSchema::body("CreateWorkflow").without(&["instance_id"]),
            annotations(false, true),
        ),
        tool(
            "get_workflow",
            "Read one workflow record: its status, stage, `workflow_state` (your saved \
             data, including a person's answers), `version` and newest history entries.",
            ObjectSchema::of::<OnWorkflow>(),
            annotations(true, true),
        ),
        tool(
            "list_workflows",
            "List this agent's workflows, newest first, 20 a page (filters: customer_id, \
             workflow_type, status, reference). Pass `next_cursor` of an answer as `cursor` \
             for the next page.",
            ObjectSchema::query::<ListParams>(),
            annotations(true, true),
        ),
        tool(
            "advance_workflow",
            "Record progress on a workflow: name what happened in `action` (e.g. \
             'customer_contacted') and give only the fields that change: `stage`, `status`, \
             `assigned_to`, `next_action_at`, ... `workflow_state` is merged into the saved \
             state (a key set to null is removed). Appends one history entry. Answers the \
             record with its new `version`.",
            ObjectSchema::of::<OnWorkflow>()
                .with::<Expecting>()
                .merge(ObjectSchema::body("AdvanceWorkflow")),
            annotations(false, false),
        ),
        tool(
            "ask_human",
            "Ask a person to decide, and pause the workflow until they answer. Give the \
             `step` you are at, the `question`, any `payload` they need to decide, and a \
             `resume_schema` (JSON Schema) for the answer you need, e.g. {\"type\": \
             \"object\", \"required\": [\"approved\"], \"properties\": {\"approved\": \
             {\"type\": \"boolean\"}}}: an answer that does not fit is refused before it \
             reaches you. Optionally who should answer (`assigned_to`) and by when \
             (`due_at`, with `escalate_every` to escalate when late). The decision appears \
             in the people's inbox. Answers the decision's id; then call wait_for_human. \
             The same call again answers the same decision.",
            ObjectSchema::of::<OnWorkflow>()
                .with::<Expecting>()
                .with::<Question>()
                .merge(ObjectSchema::body("SuspendWorkflow")),
            annotations(false, true),
        ),
        tool(
            "wait_for_human",
            "Wait for the person's answer to ask_human. Answers {\"status\": \"answered\", \
             \"resume_data\": {...}} with their answer (also merged into the workflow's \
             `workflow_state`), or {\"status\": \"waiting\"} when none came within \
             `timeout_seconds`: then do other work or call again later; the question stays \
             open, durably, for as long as it takes. {\"status\": \"closed\"} means the \
             workflow ended without an answer (cancelled or expired); {\"status\": \
             \"not_asked\"} that there is no question to wait for.",
            ObjectSchema::of::<OnWorkflow>().with::<Timeout>(),
            annotations(true, true),
        ),
        tool(
            "complete_workflow",
            "Mark a workflow as done (status `completed`): it is closed and changes no more. \
             Optionally save a final `workflow_state` (merged) and an `action_detail` that \
             says how it ended.",
            ObjectSchema::of::<OnWorkflow>().with::<Expecting>().merge(
                ObjectSchema::body("AdvanceWorkflow").only(&["action_detail", "workflow_state"]),
            ),
            annotations(false, false),
        ),
    ]
});

fn tool(
    name: &'static str,
    description: &'static str,
    schema: ObjectSchema,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(
        Cow::Borrowed(name),
        Cow::Borrowed(description),
        Arc::new(schema.build()),
    )
    .with_annotations(annotations)
}

fn annotations(read_only: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(false)
        .idempotent(idempotent)
        .open_world(false)
}

/// Runs tool `name` for `agent`; `None` when there is no such tool. A
/// refusal is a tool error that carries the HTTP API's status and `detail`.
/// `base`: where people reach the server, for approval links (none: the
/// answer has no link).
pub async fn call(
    state: &AppState,
    agent: &ProxyAuth,
    base: Option<&str>,
    name: &str,
    arguments: JsonObject,
) -> Option<CallToolResult> {
    let mut args = Arguments::new(arguments);
    let outcome = match name {
        "create_workflow" => create_workflow(state, agent, args).await,
        "get_workflow" => get_workflow(state, agent, &mut args).await,
        "list_workflows" => list_workflows(state, agent, args).await,
        "advance_workflow" => advance_workflow(state, agent, args).await,
        "ask_human" => ask_human(state, agent, base, args).await,
        "wait_for_human" => wait_for_human(state, agent, args).await,
        "complete_workflow" => complete_workflow(state, agent, args).await,
        _ => return None,
    };
    Some(match outcome {
        Ok(answer) => CallToolResult::structured(answer),
        Err(e) => tool_error(&e),
    })
}

/// The HTTP API's answer to `e` as a tool error: `{"status", "detail"}`,
/// with validation items located in the tool's arguments.
pub fn tool_error(e: &ApiError) -> CallToolResult {
    e.log();
    let mut detail = e.detail();
    if let Value::Array(items) = &mut detail {
        for item in items {
            if let Some(first) = item.pointer_mut("/loc/0") {
                if first == "body" || first == "query" {
                    *first = Value::from("arguments");
                }
            }
        }
    }
    CallToolResult::structured_error(json!({
        "status": e.status_code().as_u16(),
        "detail": detail,
    }))
}

fn record(workflow: &Workflow) -> Result<Value, ApiError> {
    serde_json::to_value(workflow).map_err(|e| ApiError::Internal(e.into()))
}

async fn create_workflow(
    state: &AppState,
    agent: &ProxyAuth,
    args: Arguments,
) -> Result<Value, ApiError> {
    let body = args.into_body();
    let request = CreateWorkflow::from_json(&body, agent.instance_id)?;
    let fingerprint = idempotency::fingerprint(&body);
    let key = derived_key("create", &fingerprint)?;
    let created = state
        .workflows
        .create(
            agent.scope,
            agent.instance_id,
            request,
            Some(Idempotent { key, fingerprint }),
            &agent.principal(),
            WithHistory::Yes,
        )
        .await?;
    record(&created.workflow)
}

async fn get_workflow(
    state: &AppState,
    agent: &ProxyAuth,
    args: &mut Arguments,
) -> Result<Value, ApiError> {
    let id = args.workflow_id();
    let id = args.check(id)?;
    record(
        &state
            .workflows
            .get(agent.scope, id, WithHistory::Yes)
            .await?,
    )
}

async fn list_workflows(
    state: &AppState,
    agent: &ProxyAuth,
    args: Arguments,
) -> Result<Value, ApiError> {
    // The arguments are the list's query parameters, read as the query.
    let pairs: Vec<(String, String)> = args
        .into_body()
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect();
    let query = ListQuery::from_pairs(&pairs, false)?;
    let page = state.workflows.list(agent.scope, &query).await?;
    serde_json::to_value(WorkflowList::new(&query, page)).map_err(|e| ApiError::Internal(e.into()))
}

async fn advance_workflow(
    state: &AppState,
    agent: &ProxyAuth,
    mut args: Arguments,
) -> Result<Value, ApiError> {
    let id = args.workflow_id();
    let if_match = args.expected_version();
    let advance = AdvanceWorkflow::from_json(&args.body());
    let (target, advance) = args.finish((id, if_match), advance)?;
    change(state, agent, target, Command::Advance(Box::new(advance))).await
}

async fn complete_workflow(
    state: &AppState,
    agent: &ProxyAuth,
    mut args: Arguments,
) -> Result<Value, ApiError> {
    let id = args.workflow_id();
    let if_match = args.expected_version();
    let mut body = Map::new();
    body.insert("action".into(), "completed".into());
    body.insert("status".into(), "completed".into());
    for name in ["action_detail", "workflow_state"] {
        if let Some(value) = args.take(name) {
            body.insert(name.into(), value);
        }
    }
    let advance = AdvanceWorkflow::from_json(&Value::Object(body));
    let (target, advance) = args.finish((id, if_match), advance)?;
    change(state, agent, target, Command::Advance(Box::new(advance))).await
}

async fn change(
    state: &AppState,
    agent: &ProxyAuth,
    (id, expected_version): (Uuid, i64),
    command: Command,
) -> Result<Value, ApiError> {
    let if_match = IfMatch::Versions(vec![expected_version]);
    let change = state
        .workflows
        .change(
            agent.scope,
            id,
            command,
            &agent.principal(),
            Some(if_match),
            WithHistory::Yes,
        )
        .await?;
    record(&change.workflow)
}

/// What ask_human answers.
#[derive(Debug, Serialize)]
struct Asked {
    /// The decision's id, as the inbox (`GET /v1/decisions`) lists it: the
    /// workflow's.
    decision_id: Uuid,
    workflow_id: Uuid,
    status: Status,
    /// The workflow's version once suspended.
    version: i64,
    message: String,
    /// Where a person can answer without signing in: a single-use approval
    /// link to this suspension (as `POST /v1/workflows/{id}/approval-links`
    /// makes), live for a day.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_url: Option<String>,
}

/// How long the approval link `ask_human` answers works.
const APPROVAL_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn ask_human(
    state: &AppState,
    agent: &ProxyAuth,
    base: Option<&str>,
    mut args: Arguments,
) -> Result<Value, ApiError> {
    let id = args.workflow_id();
    let if_match = args.expected_version();
    let question = args.question();
    let mut body = args.body();
    if let (Some(question), Value::Object(fields)) = (&question, &mut body) {
        let payload = fields.remove("payload").unwrap_or(Value::Null);
        fields.insert("payload".into(), with_question(question, payload));
    }
    let suspend = SuspendWorkflow::from_json(&body);
    let ((id, expected_version), suspend) = args.finish((id, if_match), suspend)?;
    // The same question at the same version is the same request: a retry
    // gets the first answer instead of a 409 "already suspended". Asking
    // again after an answer is another version, so another request.
    let request = json!({"workflow_id": id, "expected_version": expected_version, "body": body});
    let key = derived_key("ask", &idempotency::fingerprint(&request))?;
    let idempotent = Idempotent::action(key, "suspend", id, &request);
    let acted = state
        .workflows
        .act(
            agent.scope,
            id,
            Command::Suspend(suspend),
            &agent.principal(),
            Some(IfMatch::Versions(vec![expected_version])),
            Some(idempotent),
        )
        .await?;
    let approval_url = match base {
        Some(base) => {
            let link = state
                .ui_tokens
                .create_approval_link(
                    &state.workflows,
                    agent.scope,
                    id,
                    &agent.principal(),
                    APPROVAL_LINK_TTL,
                    None,
                )
                .await?;
            Some(format!("{base}/ui/approve/{}", link.token))
        }
        None => None,
    };
    let answer = Asked {
        decision_id: id,
        workflow_id: id,
        status: acted.answer.status,
        version: acted.answer.version,
        message: acted.answer.message,
        approval_url,
    };
    serde_json::to_value(answer).map_err(|e| ApiError::Internal(e.into()))
}

/// The decision's payload with the question in it: `question` beside the
/// payload's own fields, or beside a payload that is not an object as
/// `details`.
fn with_question(question: &str, payload: Value) -> Value {
    match payload {
        Value::Null => json!({ "question": question }),
        Value::Object(mut fields) => {
            fields.insert("question".into(), question.into());
            Value::Object(fields)
        }
        other => json!({ "question": question, "details": other }),
    }
}

async fn wait_for_human(
    state: &AppState,
    agent: &ProxyAuth,
    mut args: Arguments,
) -> Result<Value, ApiError> {
    let id = args.workflow_id();
    let timeout = args.timeout_seconds();
    let (id, timeout) = args.check((id, timeout))?;
    let (budget, _permit) = respond::wait_budget(state, Some(timeout));
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let workflow = state
            .workflows
            .get(agent.scope, id, WithHistory::Yes)
            .await?;
        if workflow.status != Status::Suspended {
            return outcome(&workflow);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let waiting = json!({
            "status": "waiting",
            "step": workflow.suspended_step,
            "version": workflow.version,
        });
        if left.is_zero() {
            return Ok(waiting);
        }
        // An escalation changes the version but not the question: then
        // wait on.
        let version = workflow.version;
        let waited = state
            .workflows
            .wait_for_change(agent.scope, id, |v| v == version, left, WithHistory::No)
            .await?;
        if let Waited::Unchanged(_) = waited {
            return Ok(waiting);
        }
    }
}

/// How the newest suspension of `workflow` (no longer suspended) ended.
fn outcome(workflow: &Workflow) -> Result<Value, ApiError> {
    let ended = workflow.history.iter().rev().find(|e| ended_suspension(e));
    let Some(entry) = ended else {
        return Ok(json!({
            "status": "not_asked",
            "detail": "The workflow has no question for a person: call ask_human first",
            "workflow_status": workflow.status,
            "version": workflow.version,
        }));
    };
    if entry.action == "resumed" {
        return Ok(json!({
            "status": "answered",
            "resume_data": entry.action_detail.get("resume_data").cloned().unwrap_or_else(|| json!({})),
            "step": entry.action_detail.get("step"),
            "answered_by": entry.actor,
            "answered_at": entry.at,
            "workflow_status": workflow.status,
            "version": workflow.version,
        }));
    }
    Ok(json!({
        "status": if workflow.status.is_terminal() { "closed" } else { "ended" },
        "how": entry.action,
        "by": entry.actor,
        "workflow_status": workflow.status,
        "version": workflow.version,
    }))
}

fn ended_suspension(entry: &HistoryEntry) -> bool {
    entry.from_status == Some(Status::Suspended) && entry.to_status != Some(Status::Suspended)
}

/// An `Idempotency-Key` made from a tool call's arguments.
fn derived_key(tool: &str, fingerprint: &[u8]) -> Result<IdempotencyKey, ApiError> {
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(fingerprint);
    Ok(IdempotencyKey::parse(&format!("mcp-{tool}-{digest}"))?)
}

/// A tool call's arguments: the tool's own fields are taken out one by
/// one, problems collected; the rest is the HTTP request body.
struct Arguments {
    fields: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Arguments {
    fn new(fields: JsonObject) -> Self {
        Self {
            fields,
            errors: Vec::new(),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|v| !v.is_null())
    }

    fn fail(&mut self, name: &str, invalid: Invalid, input: Value) {
        self.errors.push(invalid.at(loc!["body", name], input));
    }

    fn required(&mut self, name: &str) -> Option<Value> {
        let value = self.take(name);
        if value.is_none() {
            self.fail(name, Invalid::missing(), Value::Null);
        }
        value
    }

    fn workflow_id(&mut self) -> Option<Uuid> {
        let value = self.required("workflow_id")?;
        values::uuid(&value)
            .map_err(|e| self.fail("workflow_id", e, value.clone()))
            .ok()
    }

    fn expected_version(&mut self) -> Option<i64> {
        let value = self.required("expected_version")?;
        values::int(&value)
            .and_then(|v| values::greater_than_equal(v, 1))
            .map_err(|e| self.fail("expected_version", e, value.clone()))
            .ok()
    }

    fn question(&mut self) -> Option<String> {
        let value = self.take("question")?;
        values::string(&value)
            .and_then(|s| values::bounded(s, 1, QUESTION_MAX_CHARS))
            .map(str::to_owned)
            .map_err(|e| self.fail("question", e, value.clone()))
            .ok()
    }

    fn timeout_seconds(&mut self) -> Option<Duration> {
        let Some(value) = self.take("timeout_seconds") else {
            return Some(Duration::from_secs(DEFAULT_WAIT_SECONDS));
        };
        values::int(&value)
            .and_then(|v| values::greater_than_equal(v, 0))
            .map(|v| Duration::from_secs(u64::try_from(v).unwrap_or(0)))
            .map_err(|e| self.fail("timeout_seconds", e, value.clone()))
            .ok()
    }

    /// The fields not taken, as a request body.
    fn body(&self) -> Value {
        Value::Object(self.fields.clone())
    }

    fn into_body(self) -> Value {
        Value::Object(self.fields)
    }

    /// `own` if every field taken so far was valid (then all of them are
    /// `Some`), else every problem at once.
    fn check<T: Unwrapped>(&mut self, own: T) -> Result<T::Out, ValidationErrors> {
        match own.unwrapped() {
            Some(out) if self.errors.is_empty() => Ok(out),
            _ => Err(ValidationErrors(std::mem::take(&mut self.errors))),
        }
    }

    /// [`Arguments::check`], and the request `body` parsed from the rest:
    /// the problems of both at once.
    fn finish<T: Unwrapped, U>(
        &mut self,
        own: T,
        body: Result<U, ValidationErrors>,
    ) -> Result<(T::Out, U), ValidationErrors> {
        match (self.check(own), body) {
            (Ok(own), Ok(body)) => Ok((own, body)),
            (own, body) => {
                let mut errors = own.err().map(|e| e.0).unwrap_or_default();
                errors.extend(body.err().map(|e| e.0).unwrap_or_default());
                Err(ValidationErrors(errors))
            }
        }
    }
}

/// Options that are all `Some` once no field failed.
trait Unwrapped {
    type Out;
    fn unwrapped(self) -> Option<Self::Out>;
}

impl<A> Unwrapped for Option<A> {
    type Out = A;
    fn unwrapped(self) -> Option<A> {
        self
    }
}

impl<A, B> Unwrapped for (Option<A>, Option<B>) {
    type Out = (A, B);
    fn unwrapped(self) -> Option<(A, B)> {
        Some((self.0?, self.1?))
    }
}
