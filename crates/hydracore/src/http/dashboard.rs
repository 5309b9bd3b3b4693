//! The tenant admins' API: `/v1/workflows`. Another tenant's workflow is
//! 404 here, never 403, so that existence does not leak.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{ListQuery, ResumeWorkflow, SuspendWorkflow};
use hydracore_domain::transition::Command;
use hydracore_storage::WithHistory;
use uuid::Uuid;

use super::auth::{AdminAuth, Read, Write};
use super::error::ApiError;
use super::extract::{JsonBody, Prefer, QueryPairs, WorkflowId};
use super::respond::{self, WorkflowList};
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workflows", get(list))
        .route("/v1/workflows/suspended", get(list_suspended))
        .route("/v1/workflows/{workflow_id}", get(read))
        .route("/v1/workflows/{workflow_id}/abort", post(abort))
        .route("/v1/workflows/{workflow_id}/suspend", post(suspend))
        .route("/v1/workflows/{workflow_id}/resume", post(resume))
}

fn location(id: Uuid) -> String {
    format!("/v1/workflows/{id}")
}

async fn list(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<WorkflowList>, ApiError> {
    let query = ListQuery::from_pairs(&pairs, true)?;
    let page = state.store.list_workflows(admin.scope, &query).await?;
    Ok(Json(WorkflowList::new(&query, page)))
}

async fn list_suspended(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
) -> Result<Json<Vec<SuspendedWorkflow>>, ApiError> {
    Ok(Json(state.store.list_suspended(admin.scope).await?))
}

async fn read(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    WorkflowId(id): WorkflowId,
) -> Result<Response, ApiError> {
    let workflow = state
        .store
        .get_workflow(admin.scope, id, WithHistory::Yes)
        .await?
        .ok_or(ApiError::WorkflowNotFound)?;
    Ok(respond::record(
        StatusCode::OK,
        &workflow,
        None,
        Prefer::full(),
    ))
}

async fn abort(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    respond::act(
        &state,
        admin.scope,
        id,
        &Command::Abort,
        &admin.actor,
        &location(id),
        prefer,
    )
    .await
}

async fn suspend(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let command = Command::Suspend(SuspendWorkflow::from_json(&body.unwrap_or_default())?);
    respond::act(
        &state,
        admin.scope,
        id,
        &command,
        &admin.actor,
        &location(id),
        prefer,
    )
    .await
}

async fn resume(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let command = Command::Resume(ResumeWorkflow::from_json(body.as_ref())?);
    respond::act(
        &state,
        admin.scope,
        id,
        &command,
        &admin.actor,
        &location(id),
        prefer,
    )
    .await
}
