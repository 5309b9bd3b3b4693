//! The agent runtime's API: `/internal/v1/instances/{instance_id}/workflows`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use hydracore_domain::idempotency;
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::request::{
    AdvanceWorkflow, CreateWorkflow, HistoryQuery, ListQuery, ResumeWorkflow, SuspendWorkflow,
};
use hydracore_domain::transition::Command;
use hydracore_storage::service::Idempotent;
use hydracore_storage::WithHistory;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::ProxyAuth;
use super::error::ApiError;
use super::extract::{
    IdempotencyKeyHeader, IfMatchHeader, IfNoneMatchHeader, JsonBody, Prefer, QueryPairs,
    WorkflowId,
};
use super::openapi::{
    AdvanceWorkflowBody, AgentErrors, BodyErrors, CreateWorkflowBody, ErrorDetail, HistoryParams,
    HttpValidationError, ListParams, ResumeWorkflowBody, SuspendWorkflowBody,
};
use super::respond::{self, ActionResult, HistoryPage, WorkflowList};
use super::AppState;
use hydracore_domain::Workflow;

/// The routes, registered with their OpenAPI operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, advance))
        .routes(routes!(history))
        .routes(routes!(suspend))
        .routes(routes!(resume))
}

fn location(instance_id: Uuid, id: Uuid) -> String {
    format!("/internal/v1/instances/{instance_id}/workflows/{id}")
}

/// Runs suspend or resume for the agent and answers `{id, message, status}`.
async fn act(
    state: &AppState,
    agent: &ProxyAuth,
    id: Uuid,
    command: Command,
    preconditions: (Option<IfMatch>, Option<Idempotent>),
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let (if_match, idempotent) = preconditions;
    let acted = state
        .workflows
        .act(
            agent.scope,
            id,
            command,
            &agent.principal(),
            if_match,
            idempotent,
        )
        .await?;
    let location = location(agent.instance_id, id);
    Ok(respond::action(&acted, &location, prefer))
}

fn history_for(prefer: Prefer) -> WithHistory {
    if prefer.minimal {
        WithHistory::No
    } else {
        WithHistory::Yes
    }
}

/// Query Workflows Internal
///
/// Query workflow records of the instance, newest first. Auth: Bearer proxy key.
#[utoipa::path(
    get, path = "/internal/v1/instances/{instance_id}/workflows", tag = "internal",
    operation_id = "query_workflows_internal",
    params(("instance_id" = Uuid, Path, description = "Instance Id"), ListParams),
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "One page of matches and the exact total", body = WorkflowList),
        (status = 422, description = "Invalid path or query parameter", body = HttpValidationError),
        AgentErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    agent: ProxyAuth,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<WorkflowList>, ApiError> {
    let query = ListQuery::from_pairs(&pairs, false)?;
    let page = state.workflows.list(agent.scope, &query).await?;
    Ok(Json(WorkflowList::new(&query, page)))
}

/// Create Workflow
///
/// Create a new workflow record. Called by agent runtime via platform skill. Auth: Bearer proxy key.
#[utoipa::path(
    post, path = "/internal/v1/instances/{instance_id}/workflows", tag = "internal",
    operation_id = "create_workflow",
    params(
        ("instance_id" = Uuid, Path, description = "Instance Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the first answer (kept 24 h)"),
    ),
    request_body = CreateWorkflowBody,
    security(("proxy_key" = [])),
    responses(
        (status = 201, description = "Created", body = Workflow, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Created (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "A request with the same Idempotency-Key is in progress", body = ErrorDetail),
        AgentErrors, BodyErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    agent: ProxyAuth,
    prefer: Prefer,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let request = CreateWorkflow::from_json(&body, agent.instance_id)?;
    let idempotent = key.map(|key| Idempotent {
        key,
        fingerprint: idempotency::fingerprint(&body),
    });
    let created = state
        .workflows
        .create(
            agent.scope,
            agent.instance_id,
            request,
            idempotent,
            &agent.principal(),
            history_for(prefer),
        )
        .await?;
    let location = location(agent.instance_id, created.workflow.id);
    let mut response = respond::record(
        StatusCode::CREATED,
        &created.workflow,
        Some(&location),
        prefer,
    );
    if created.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Get Workflow Internal
///
/// Get a single workflow record with its history. Auth: Bearer proxy key.
#[utoipa::path(
    get, path = "/internal/v1/instances/{instance_id}/workflows/{workflow_id}", tag = "internal",
    operation_id = "get_workflow_internal",
    params(("instance_id" = Uuid, Path, description = "Instance Id"), ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the client has: 304 while the record is still at that version"),
        ("Prefer" = Option<String>, Header, description = "`wait=N` with If-None-Match: wait up to N seconds (at most HYDRACORE_MAX_WAIT, 60 s, and less than the request timeout) for a change before the 304")),
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "The record", body = Workflow, headers(("ETag" = String))),
        (status = 304, description = "Not changed from the version in If-None-Match (after the wait, if one was asked)", headers(("ETag" = String))),
        (status = 404, description = "No such workflow in this instance", body = ErrorDetail),
        (status = 422, description = "Invalid path parameter", body = HttpValidationError),
        AgentErrors,
    )
)]
async fn read(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    IfNoneMatchHeader(if_none_match): IfNoneMatchHeader,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let location = location(agent.instance_id, id);
    respond::read(&state, agent.scope, id, if_none_match, prefer, &location).await
}

/// Get Workflow History Internal
///
/// Page through a workflow's whole history, oldest first: the entries after `after` (a `seq`), at most `limit`. A record embeds only its newest entries. Auth: Bearer proxy key.
#[utoipa::path(
    get, path = "/internal/v1/instances/{instance_id}/workflows/{workflow_id}/history", tag = "internal",
    operation_id = "get_workflow_history_internal",
    params(("instance_id" = Uuid, Path, description = "Instance Id"), ("workflow_id" = Uuid, Path, description = "Workflow Id"), HistoryParams),
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "One page of entries", body = HistoryPage),
        (status = 404, description = "No such workflow in this instance", body = ErrorDetail),
        (status = 422, description = "Invalid path or query parameter", body = HttpValidationError),
        AgentErrors,
    )
)]
async fn history(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<HistoryPage>, ApiError> {
    let query = HistoryQuery::from_pairs(&pairs)?;
    let page = state.workflows.history(agent.scope, id, query).await?;
    Ok(Json(HistoryPage::from(page)))
}

/// Advance Workflow
///
/// Advance a workflow's state and append one history entry. Called by agent runtime via platform skill. Auth: Bearer proxy key.
#[utoipa::path(
    patch, path = "/internal/v1/instances/{instance_id}/workflows/{workflow_id}", tag = "internal",
    operation_id = "advance_workflow",
    params(
        ("instance_id" = Uuid, Path, description = "Instance Id"),
        ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("If-Match" = Option<String>, Header, description = "The ETag (version) the change expects, else 412"),
    ),
    request_body = AdvanceWorkflowBody,
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "The record after the change", body = Workflow, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Changed (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such workflow in this instance", body = ErrorDetail),
        (status = 409, description = "The workflow is in a terminal status", body = ErrorDetail),
        (status = 412, description = "If-Match names another version", body = ErrorDetail),
        AgentErrors, BodyErrors,
    )
)]
async fn advance(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    IfMatchHeader(if_match): IfMatchHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let command = Command::Advance(Box::new(AdvanceWorkflow::from_json(
        &body.unwrap_or_default(),
    )?));
    let change = state
        .workflows
        .change(
            agent.scope,
            id,
            command,
            &agent.principal(),
            if_match,
            history_for(prefer),
        )
        .await?;
    let location = location(agent.instance_id, id);
    let response = respond::record(StatusCode::OK, &change.workflow, Some(&location), prefer);
    Ok(respond::link_history(response, &change.workflow, &location))
}

/// Suspend Workflow Internal
///
/// Suspend a workflow at a named step from the agent runtime. Auth: Bearer proxy key.
#[utoipa::path(
    post, path = "/internal/v1/instances/{instance_id}/workflows/{workflow_id}/suspend", tag = "internal",
    operation_id = "suspend_workflow_internal",
    params(
        ("instance_id" = Uuid, Path, description = "Instance Id"),
        ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("If-Match" = Option<String>, Header, description = "The ETag (version) the change expects, else 412"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body gets the first answer (with `Idempotent-Replayed: true`); with another body, 422"),
    ),
    request_body = SuspendWorkflowBody,
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "Suspended", body = ActionResult, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Suspended (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such workflow in this instance", body = ErrorDetail),
        (status = 409, description = "Already suspended, or terminal", body = ErrorDetail),
        (status = 412, description = "If-Match names another version", body = ErrorDetail),
        AgentErrors, BodyErrors,
    )
)]
async fn suspend(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    IfMatchHeader(if_match): IfMatchHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let command = Command::Suspend(SuspendWorkflow::from_json(&body)?);
    let idempotent = key.map(|key| Idempotent::action(key, "suspend", id, &body));
    act(&state, &agent, id, command, (if_match, idempotent), prefer).await
}

/// Resume Workflow Internal
///
/// Resume a suspended workflow from the agent runtime, merging `resume_data` into its state. Auth: Bearer proxy key.
#[utoipa::path(
    post, path = "/internal/v1/instances/{instance_id}/workflows/{workflow_id}/resume", tag = "internal",
    operation_id = "resume_workflow_internal",
    params(
        ("instance_id" = Uuid, Path, description = "Instance Id"),
        ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("If-Match" = Option<String>, Header, description = "The ETag (version) the change expects, else 412"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body gets the first answer (with `Idempotent-Replayed: true`); with another body, 422"),
    ),
    request_body(content = Option<ResumeWorkflowBody>, description = "May be empty"),
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "Resumed", body = ActionResult, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Resumed (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such workflow in this instance", body = ErrorDetail),
        (status = 409, description = "Not suspended", body = ErrorDetail),
        (status = 412, description = "If-Match names another version", body = ErrorDetail),
        AgentErrors, BodyErrors,
    )
)]
async fn resume(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    IfMatchHeader(if_match): IfMatchHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let resume = ResumeWorkflow::from_json(body.as_ref())?;
    // No body and `{}` resume alike, so they are one request for the key.
    let data = serde_json::Value::Object(resume.resume_data.clone());
    let idempotent = key.map(|key| Idempotent::action(key, "resume", id, &data));
    let command = Command::Resume(resume);
    act(&state, &agent, id, command, (if_match, idempotent), prefer).await
}
