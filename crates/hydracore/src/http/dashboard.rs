//! The tenant admins' API: `/v1/workflows`. Another tenant's workflow is
//! 404 here, never 403, so that existence does not leak.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{HistoryQuery, ListQuery, ResumeWorkflow, SuspendWorkflow};
use hydracore_domain::transition::Command;
use hydracore_storage::service::Idempotent;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::{AdminAuth, Read, Write};
use super::error::ApiError;
use super::extract::{
    IdempotencyKeyHeader, IfMatchHeader, IfNoneMatchHeader, JsonBody, Prefer, QueryPairs,
    WorkflowId,
};
use super::openapi::{
    AdminErrors, BodyErrors, DashboardListParams, ErrorDetail, HistoryParams, HttpValidationError,
    ResumeWorkflowBody, SuspendWorkflowBody,
};
use super::respond::{self, ActionResult, HistoryPage, WorkflowList};
use super::AppState;
use hydracore_domain::Workflow;

/// The routes, registered with their OpenAPI operations.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(list_suspended))
        .routes(routes!(read))
        .routes(routes!(history))
        .routes(routes!(abort))
        .routes(routes!(suspend))
        .routes(routes!(resume))
}

fn location(id: Uuid) -> String {
    format!("/v1/workflows/{id}")
}

/// Runs abort, suspend or resume for the admin and answers `{id, message,
/// status}`.
async fn act<S>(
    state: &AppState,
    admin: &AdminAuth<S>,
    id: Uuid,
    command: Command,
    preconditions: (Option<IfMatch>, Option<Idempotent>),
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let (if_match, idempotent) = preconditions;
    let acted = state
        .workflows
        .act(
            admin.scope,
            id,
            command,
            &admin.principal,
            if_match,
            idempotent,
        )
        .await?;
    Ok(respond::action(&acted, &location(id), prefer))
}

/// List Workflows Dashboard
///
/// List workflow records for tenant dashboard observability, newest first. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/workflows", tag = "dashboard", operation_id = "list_workflows_dashboard",
    params(DashboardListParams),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of matches and the exact total", body = WorkflowList),
        (status = 422, description = "Invalid query parameter", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<WorkflowList>, ApiError> {
    let query = ListQuery::from_pairs(&pairs, true)?;
    let page = state.workflows.list(admin.scope, &query).await?;
    Ok(Json(WorkflowList::new(&query, page)))
}

/// List Suspended Workflows
///
/// List the tenant's suspended workflows, newest suspension first: at most `HYDRACORE_SUSPENDED_LIST_MAX` (500), with `X-Truncated: true` when there are more. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/workflows/suspended", tag = "dashboard", operation_id = "list_suspended_workflows",
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The approval queue", body = Vec<SuspendedWorkflow>,
            headers(("x-truncated" = String, description = "`true` when more workflows are suspended than the answer holds"))),
        AdminErrors,
    )
)]
async fn list_suspended(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
) -> Result<Response, ApiError> {
    let (suspended, more) = state
        .workflows
        .list_suspended(admin.scope, state.limits.suspended_max)
        .await?;
    let mut response = Json(suspended).into_response();
    if more {
        response
            .headers_mut()
            .insert("x-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Get Workflow Dashboard
///
/// Get workflow detail with its history. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/workflows/{workflow_id}", tag = "dashboard", operation_id = "get_workflow_dashboard",
    params(("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag the client has: 304 while the record is still at that version"),
        ("Prefer" = Option<String>, Header, description = "`wait=N` with If-None-Match: wait up to N seconds (at most HYDRACORE_MAX_WAIT, 60 s, and less than the request timeout) for a change before the 304")),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The record", body = Workflow, headers(("ETag" = String))),
        (status = 304, description = "Not changed from the version in If-None-Match (after the wait, if one was asked)", headers(("ETag" = String))),
        (status = 404, description = "No such workflow in this tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path parameter", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn read(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    WorkflowId(id): WorkflowId,
    IfNoneMatchHeader(if_none_match): IfNoneMatchHeader,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    respond::read(
        &state,
        admin.scope,
        id,
        if_none_match,
        prefer,
        &location(id),
    )
    .await
}

/// Get Workflow History Dashboard
///
/// Page through a workflow's whole history, oldest first: the entries after `after` (a `seq`), at most `limit`. A record embeds only its newest entries. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/workflows/{workflow_id}/history", tag = "dashboard", operation_id = "get_workflow_history_dashboard",
    params(("workflow_id" = Uuid, Path, description = "Workflow Id"), HistoryParams),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of entries", body = HistoryPage),
        (status = 404, description = "No such workflow in this tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path or query parameter", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn history(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    WorkflowId(id): WorkflowId,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<HistoryPage>, ApiError> {
    let query = HistoryQuery::from_pairs(&pairs)?;
    let page = state.workflows.history(admin.scope, id, query).await?;
    Ok(Json(HistoryPage::from(page)))
}

/// Abort Workflow
///
/// Abort a workflow (transition to 'cancelled'), preserving its audit trail. Only allowed for non-terminal statuses. Auth: JWT (admin) or API key with `workflows:write`.
#[utoipa::path(
    post, path = "/v1/workflows/{workflow_id}/abort", tag = "dashboard", operation_id = "abort_workflow",
    params(
        ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("If-Match" = Option<String>, Header, description = "The ETag (version) the change expects, else 412"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body gets the first answer (with `Idempotent-Replayed: true`); with another body, 422"),
    ),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Aborted", body = ActionResult, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Aborted (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such workflow in this tenant", body = ErrorDetail),
        (status = 409, description = "The workflow is already terminal", body = ErrorDetail),
        (status = 412, description = "If-Match names another version", body = ErrorDetail),
        AdminErrors, BodyErrors,
    )
)]
async fn abort(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    IfMatchHeader(if_match): IfMatchHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
) -> Result<Response, ApiError> {
    let idempotent = key.map(|key| Idempotent::action(key, "abort", id, &serde_json::Value::Null));
    act(
        &state,
        &admin,
        id,
        Command::Abort { reason: None },
        (if_match, idempotent),
        prefer,
    )
    .await
}

/// Suspend Workflow
///
/// Suspend a workflow at a specific step with a payload to preserve state. Auth: JWT (admin) or API key with `workflows:write`.
#[utoipa::path(
    post, path = "/v1/workflows/{workflow_id}/suspend", tag = "dashboard", operation_id = "suspend_workflow",
    params(
        ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("If-Match" = Option<String>, Header, description = "The ETag (version) the change expects, else 412"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body gets the first answer (with `Idempotent-Replayed: true`); with another body, 422"),
    ),
    request_body(content = SuspendWorkflowBody),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Suspended", body = ActionResult, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Suspended (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such workflow in this tenant", body = ErrorDetail),
        (status = 409, description = "Already suspended, or terminal", body = ErrorDetail),
        (status = 412, description = "If-Match names another version", body = ErrorDetail),
        AdminErrors, BodyErrors,
    )
)]
async fn suspend(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    IfMatchHeader(if_match): IfMatchHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let command = Command::Suspend(SuspendWorkflow::from_json(&body)?);
    let idempotent = key.map(|key| Idempotent::action(key, "suspend", id, &body));
    act(&state, &admin, id, command, (if_match, idempotent), prefer).await
}

/// Resume Workflow
///
/// Resume a suspended workflow, merging `resume_data` into its state. Auth: JWT (admin) or API key with `workflows:write`.
#[utoipa::path(
    post, path = "/v1/workflows/{workflow_id}/resume", tag = "dashboard", operation_id = "resume_workflow",
    params(
        ("workflow_id" = Uuid, Path, description = "Workflow Id"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal`: answer 204 with headers only"),
        ("If-Match" = Option<String>, Header, description = "The ETag (version) the change expects, else 412"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body gets the first answer (with `Idempotent-Replayed: true`); with another body, 422"),
    ),
    request_body(content = Option<ResumeWorkflowBody>, description = "May be empty"),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Resumed", body = ActionResult, headers(("Location" = String), ("ETag" = String))),
        (status = 204, description = "Resumed (Prefer: return=minimal)", headers(("Location" = String), ("ETag" = String))),
        (status = 404, description = "No such workflow in this tenant", body = ErrorDetail),
        (status = 409, description = "Not suspended", body = ErrorDetail),
        (status = 412, description = "If-Match names another version", body = ErrorDetail),
        AdminErrors, BodyErrors,
    )
)]
async fn resume(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
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
    act(&state, &admin, id, command, (if_match, idempotent), prefer).await
}
