//! How records and action results are answered, honouring
//! `Prefer: return=minimal` (RFC 7240).

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::precondition::IfNoneMatch;
use hydracore_domain::request::ListQuery;
use hydracore_domain::Scope;
use hydracore_domain::{Status, Workflow};
use hydracore_storage::{Acted, Waited, WithHistory, WorkflowPage};
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
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
    /// Pass as `cursor` for the page after this one; `null` on the last
    /// page. Opaque. Cursor pages cost the same at any depth and neither
    /// skip nor repeat rows when workflows are created meanwhile.
    pub next_cursor: Option<String>,
}

impl WorkflowList {
    pub fn new(query: &ListQuery, page: WorkflowPage) -> Self {
        Self {
            page: query.page,
            per_page: query.per_page,
            total: page.total,
            workflows: page.workflows,
            next_cursor: page.next_cursor.map(|c| c.encode()),
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

/// A read of workflow `id`: the record, or with `If-None-Match` naming its
/// version 304 — at once, or with `Prefer: wait=N` once N seconds (at most
/// `HYDRACORE_MAX_WAIT`) passed without a change. A change ends the wait
/// with the new record: an agent waits for a human's answer in one
/// request.
pub async fn read(
    state: &AppState,
    scope: Scope,
    id: Uuid,
    if_none_match: Option<IfNoneMatch>,
    prefer: Prefer,
    location: &str,
) -> Result<Response, ApiError> {
    let workflows = &state.workflows;
    let workflow = match if_none_match {
        None => workflows.get(scope, id, WithHistory::Yes).await?,
        Some(condition) => {
            let (wait, _permit) = wait_budget(state, prefer.wait);
            let has = |version| condition.has(version);
            match workflows
                .wait_for_change(scope, id, has, wait, WithHistory::Yes)
                .await?
            {
                Waited::Changed(workflow) => *workflow,
                Waited::Unchanged(version) => {
                    let not_modified = (StatusCode::NOT_MODIFIED, [(header::ETAG, etag(version))]);
                    return Ok(not_modified.into_response());
                }
            }
        }
    };
    let response = record(StatusCode::OK, &workflow, None, Prefer::full());
    Ok(link_history(response, &workflow, location))
}

/// How long a read that `asked` to wait may wait, and the permit it holds
/// meanwhile. Waiting holds a request open: only so many at once
/// (`HYDRACORE_MAX_WAITING`), beyond which a read answers at once, and
/// none longer than `HYDRACORE_MAX_WAIT`.
pub fn wait_budget(
    state: &AppState,
    asked: Option<Duration>,
) -> (Duration, Option<OwnedSemaphorePermit>) {
    let permit = asked.and_then(|_| state.limits.waiting.clone().try_acquire_owned().ok());
    match (asked, &permit) {
        (Some(asked), Some(_)) => (asked.min(state.limits.max_wait), permit),
        _ => (Duration::ZERO, None),
    }
}

/// The `{id, message, status}` answer of suspend, resume and abort, or 204
/// and headers only when minimal was asked.
pub fn action(acted: &Acted, location: &str, prefer: Prefer) -> Response {
    let answer = &acted.answer;
    let mut headers = headers(Some(location), answer.version, prefer);
    if acted.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if prefer.minimal {
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    let result = ActionResult {
        id: answer.id,
        message: answer.message.clone(),
        status: answer.status,
    };
    (StatusCode::OK, headers, Json(result)).into_response()
}

/// Adds `Link: <.../history>; rel="history"` when `workflow` carries only
/// the newest of its history entries: where the rest can be read.
pub fn link_history(mut response: Response, workflow: &Workflow, record_path: &str) -> Response {
    if workflow.history_total.is_some() {
        let link = format!("<{record_path}/history>; rel=\"history\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    response
}

/// A page of one workflow's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// Oldest first.
    pub entries: Vec<hydracore_domain::HistoryEntry>,
    /// The `after` of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

impl From<hydracore_storage::HistorySlice> for HistoryPage {
    fn from(slice: hydracore_storage::HistorySlice) -> Self {
        Self {
            next_after: slice.next_after(),
            entries: slice.entries,
        }
    }
}
