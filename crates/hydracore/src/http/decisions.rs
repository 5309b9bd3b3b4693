//! The decisions inbox: a tenant's suspended workflows as questions
//! waiting for a person, due first.

use axum::extract::State;
use axum::Json;
use hydracore_domain::decision::{Decision, InboxQuery};
use hydracore_storage::InboxCount;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminAuth, Read};
use super::error::ApiError;
use super::extract::QueryPairs;
use super::openapi::{AdminErrors, HttpValidationError, InboxParams};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox))
        .routes(routes!(summary))
}

/// A page of the inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// Due first (those without a due time last), then the oldest
    /// suspension.
    pub decisions: Vec<Decision>,
    /// Pass as `cursor` for the next page; `null` on the last. Pages
    /// neither skip nor repeat a decision when others are resumed
    /// between them.
    pub next_cursor: Option<String>,
}

/// Decisions waiting, for a badge.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxSummary {
    pub total: i64,
    pub overdue: i64,
    /// One line per assignee by name, then unassigned (`null`).
    pub by_assignee: Vec<AssigneeCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssigneeCount {
    pub assigned_to: Option<String>,
    pub total: i64,
    pub overdue: i64,
}

impl InboxSummary {
    /// The per-assignee `counts` (by name), summed up.
    fn of(counts: Vec<InboxCount>) -> Self {
        let mut by_assignee: Vec<AssigneeCount> = counts
            .into_iter()
            .map(|c| AssigneeCount {
                assigned_to: c.assigned_to,
                total: c.total,
                overdue: c.overdue,
            })
            .collect();
        // The backends order NULL differently; unassigned goes last.
        by_assignee.sort_by_key(|line| line.assigned_to.is_none());
        Self {
            total: by_assignee.iter().map(|c| c.total).sum(),
            overdue: by_assignee.iter().map(|c| c.overdue).sum(),
            by_assignee,
        }
    }
}

/// List Decisions
///
/// The tenant's suspended workflows as decisions waiting for a person: overdue and soonest due first, then the oldest suspension. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/decisions", tag = "decisions", operation_id = "list_decisions",
    params(InboxParams),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of decisions", body = InboxPage),
        (status = 422, description = "Invalid query parameter", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn inbox(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<InboxPage>, ApiError> {
    let query = InboxQuery::from_pairs(&pairs)?;
    let inbox = state.workflows.inbox(admin.scope, &query).await?;
    Ok(Json(InboxPage {
        decisions: inbox.decisions,
        next_cursor: inbox.next_cursor.map(|c| c.encode()),
    }))
}

/// Decisions Summary
///
/// How many decisions wait, and how many are overdue, in all and per assignee. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/decisions/summary", tag = "decisions", operation_id = "decisions_summary",
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The counts", body = InboxSummary),
        AdminErrors,
    )
)]
async fn summary(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
) -> Result<Json<InboxSummary>, ApiError> {
    let counts = state.workflows.inbox_counts(admin.scope).await?;
    Ok(Json(InboxSummary::of(counts)))
}
