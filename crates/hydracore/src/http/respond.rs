//! How records and action results are answered, honouring
//! `Prefer: return=minimal` (RFC 7240).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::request::ListQuery;
use hydracore_domain::transition::Command;
use hydracore_domain::{Scope, Status, Workflow};
use hydracore_storage::{WithHistory, WorkflowPage};
use serde::Serialize;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::Prefer;
use super::AppState;

/// A page of a workflow list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowList {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub workflows: Vec<Workflow>,
}

impl WorkflowList {
    pub fn new(query: &ListQuery, page: WorkflowPage) -> Self {
        Self {
            page: query.page,
            per_page: query.per_page,
            total: page.total,
            workflows: page.workflows,
        }
    }
}

/// The `{id, message, status}` answer of suspend, resume and abort.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionResult {
    pub id: Uuid,
    /// A sentence for people.
    pub message: String,
    /// The status after the call.
    pub status: Status,
}

fn etag(version: i64) -> HeaderValue {
    // Digits and quotes only: always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn headers(location: Option<&str>, version: i64, prefer: Prefer) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag(version));
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if prefer.minimal {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("return=minimal"),
        );
    }
    headers
}

/// A record with `status`, or 204 and headers only when minimal was asked.
pub fn record(
    status: StatusCode,
    workflow: &Workflow,
    location: Option<&str>,
    prefer: Prefer,
) -> Response {
    let headers = headers(location, workflow.version, prefer);
    if prefer.minimal {
        (StatusCode::NO_CONTENT, headers).into_response()
    } else {
        (status, headers, Json(workflow)).into_response()
    }
}

/// An action's result, or 204 and headers only when minimal was asked.
fn action(result: ActionResult, version: i64, location: &str, prefer: Prefer) -> Response {
    let headers = headers(Some(location), version, prefer);
    if prefer.minimal {
        (StatusCode::NO_CONTENT, headers).into_response()
    } else {
        (StatusCode::OK, headers, Json(result)).into_response()
    }
}

/// Runs suspend, resume or abort for `actor` and answers `{id, message,
/// status}`; the same for agents and admins.
#[allow(clippy::too_many_arguments)] // one per part of the request, each distinct
pub async fn act(
    state: &AppState,
    scope: Scope,
    id: Uuid,
    command: &Command,
    actor: &str,
    if_match: Option<&IfMatch>,
    location: &str,
    prefer: Prefer,
) -> Result<Response, ApiError> {
    let change = state
        .store
        .change_workflow(scope, id, command, actor, if_match, WithHistory::No)
        .await?;
    let result = ActionResult {
        id,
        message: change.message,
        status: change.workflow.status,
    };
    Ok(action(result, change.workflow.version, location, prefer))
}
