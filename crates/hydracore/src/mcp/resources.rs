//! The resources: `hydracore://workflows/{workflow_id}` (the record) and
//! `hydracore://workflows/{workflow_id}/history` (its whole history, a page
//! at a time: `?after=&limit=` as the history route takes them), readable
//! with the owning instance's key only. Another instance's workflow is not
//! found, as on the internal API.

use hydracore_domain::request::{HistoryQuery, ListQuery};
use hydracore_storage::WithHistory;
use rmcp::model::{ErrorData, ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::http::auth::ProxyAuth;
use crate::http::error::ApiError;
use crate::http::respond::HistoryPage;
use crate::http::AppState;

const PREFIX: &str = "hydracore://workflows/";
const JSON: &str = "application/json";
/// How many of the newest workflows `resources/list` names.
const LISTED: &str = "20";

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("hydracore://workflows/{workflow_id}", "workflow")
            .with_title("Workflow record")
            .with_description("One workflow record of this agent, as get_workflow answers it.")
            .with_mime_type(JSON),
        ResourceTemplate::new(
            "hydracore://workflows/{workflow_id}/history",
            "workflow_history",
        )
        .with_title("Workflow history")
        .with_description(
            "A workflow's whole history, oldest first, 100 entries a page: add \
                 `?after=<next_after>` for the next.",
        )
        .with_mime_type(JSON),
    ]
}

/// The instance's newest workflows.
pub async fn list(state: &AppState, agent: &ProxyAuth) -> Result<Vec<Resource>, ErrorData> {
    let query = ListQuery::from_pairs(&[("per_page".to_owned(), LISTED.to_owned())], false)
        .map_err(|e| failed(&e.into()))?;
    let page = state
        .workflows
        .list(agent.scope, &query)
        .await
        .map_err(|e| failed(&e.into()))?;
    Ok(page
        .workflows
        .iter()
        .map(|w| {
            let name = w
                .title
                .clone()
                .unwrap_or_else(|| format!("{} {}", w.workflow_type, w.id));
            Resource::new(format!("{PREFIX}{}", w.id), name)
                .with_description(format!("{} workflow, {}", w.workflow_type, w.status))
                .with_mime_type(JSON)
        })
        .collect())
}

pub async fn read(
    state: &AppState,
    agent: &ProxyAuth,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let not_found =
        || ErrorData::resource_not_found("Workflow not found", Some(json!({"uri": uri})));
    let rest = uri.strip_prefix(PREFIX).ok_or_else(not_found)?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (id, history) = match path.split_once('/') {
        None => (path, false),
        Some((id, "history")) => (id, true),
        Some(_) => return Err(not_found()),
    };
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let refused = |e: ApiError| match e {
        ApiError::WorkflowNotFound => not_found(),
        e => failed(&e),
    };
    let text = if history {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let query = HistoryQuery::from_pairs(&pairs).map_err(|e| refused(e.into()))?;
        let page = state
            .workflows
            .history(agent.scope, id, query)
            .await
            .map_err(|e| refused(e.into()))?;
        to_text(&HistoryPage::from(page))?
    } else {
        let workflow = state
            .workflows
            .get(agent.scope, id, WithHistory::Yes)
            .await
            .map_err(|e| refused(e.into()))?;
        to_text(&workflow)?
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        text, uri,
    )
    .with_mime_type(JSON)]))
}

fn to_text(value: &impl Serialize) -> Result<String, ErrorData> {
    serde_json::to_string(value).map_err(|e| failed(&ApiError::Internal(e.into())))
}

/// A refusal as a protocol error: resources have no tool-error shape, so
/// the API's status and detail go in the error's data.
pub fn failed(e: &ApiError) -> ErrorData {
    e.log();
    let data = Some(json!({"status": e.status_code().as_u16(), "detail": e.detail()}));
    if e.status_code().is_client_error() {
        ErrorData::invalid_params(e.to_string(), data)
    } else {
        ErrorData::internal_error(e.to_string(), data)
    }
}
