//! The agent runtime's API: `/internal/v1/instances/{instance_id}/workflows`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use hydracore_domain::request::{
    AdvanceWorkflow, CreateWorkflow, ListQuery, ResumeWorkflow, SuspendWorkflow,
};
use hydracore_domain::transition::{self, Command};
use hydracore_domain::Timestamp;
use hydracore_storage::WithHistory;
use uuid::Uuid;

use super::auth::ProxyAuth;
use super::error::ApiError;
use super::extract::{JsonBody, Prefer, QueryPairs, WorkflowId};
use super::respond::{self, WorkflowList};
use super::AppState;

pub fn routes() -> Router<AppState> {
    let base = "/internal/v1/instances/{instance_id}/workflows";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{workflow_id}}"), get(read).patch(advance))
        .route(&format!("{base}/{{workflow_id}}/suspend"), post(suspend))
        .route(&format!("{base}/{{workflow_id}}/resume"), post(resume))
}

fn location(instance_id: Uuid, id: Uuid) -> String {
    format!("/internal/v1/instances/{instance_id}/workflows/{id}")
}

fn history_for(prefer: Prefer) -> WithHistory {
    if prefer.minimal {
        WithHistory::No
    } else {
        WithHistory::Yes
    }
}

async fn list(
    State(state): State<AppState>,
    agent: ProxyAuth,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<WorkflowList>, ApiError> {
    let query = ListQuery::from_pairs(&pairs, false)?;
    let page = state.store.list_workflows(agent.scope, &query).await?;
    Ok(Json(WorkflowList::new(&query, page)))
}

async fn create(
    State(state): State<AppState>,
    agent: ProxyAuth,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = CreateWorkflow::from_json(&body.unwrap_or_default(), agent.instance_id)?;
    let workflow = transition::create(
        Uuid::now_v7(),
        agent.scope.tenant_id,
        agent.instance_id,
        request,
        agent.actor(),
        Timestamp::now(),
    );
    state.store.insert_workflow(&workflow).await?;
    let location = location(agent.instance_id, workflow.id);
    Ok(respond::record(
        StatusCode::CREATED,
        &workflow,
        Some(&location),
        prefer,
    ))
}

async fn read(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
) -> Result<Response, ApiError> {
    let workflow = state
        .store
        .get_workflow(agent.scope, id, WithHistory::Yes)
        .await?
        .ok_or(ApiError::WorkflowNotFound)?;
    Ok(respond::record(
        StatusCode::OK,
        &workflow,
        None,
        Prefer::full(),
    ))
}

async fn advance(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let command = Command::Advance(Box::new(AdvanceWorkflow::from_json(
        &body.unwrap_or_default(),
    )?));
    let change = state
        .store
        .change_workflow(
            agent.scope,
            id,
            &command,
            &agent.actor(),
            history_for(prefer),
        )
        .await?;
    let location = location(agent.instance_id, id);
    Ok(respond::record(
        StatusCode::OK,
        &change.workflow,
        Some(&location),
        prefer,
    ))
}

async fn suspend(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let command = Command::Suspend(SuspendWorkflow::from_json(&body.unwrap_or_default())?);
    let location = location(agent.instance_id, id);
    respond::act(
        &state,
        agent.scope,
        id,
        &command,
        &agent.actor(),
        &location,
        prefer,
    )
    .await
}

async fn resume(
    State(state): State<AppState>,
    agent: ProxyAuth,
    WorkflowId(id): WorkflowId,
    prefer: Prefer,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let command = Command::Resume(ResumeWorkflow::from_json(body.as_ref())?);
    let location = location(agent.instance_id, id);
    respond::act(
        &state,
        agent.scope,
        id,
        &command,
        &agent.actor(),
        &location,
        prefer,
    )
    .await
}
