//! Approval links: a URL that answers one suspension once, for an approver
//! reached by e-mail or chat, who opens it without signing in.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::request::NewApprovalLink;
use hydracore_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::{AdminAuth, Write};
use super::error::ApiError;
use super::extract::{JsonBody, WorkflowId};
use super::openapi::{AdminErrors, BodyErrors, ErrorDetail, HttpValidationError};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// Body of `POST .../approval-links`; may be empty.
#[derive(ToSchema)]
#[schema(as = NewApprovalLink)]
#[allow(dead_code)] // Describes the body in the OpenAPI document; the domain reads it.
pub struct NewApprovalLinkBody {
    /// Seconds the link works, from 60 to HYDRACORE_APPROVAL_LINK_MAX_TTL (7 days); default one day.
    pub expires_in: Option<i64>,
    /// Shown to whoever opens the link; at most 255 characters.
    pub note: Option<String>,
}

/// An approval link, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalLinkAnswer {
    pub id: Uuid,
    /// Open it to see the question and answer it, without signing in.
    pub url: String,
    pub workflow_id: Uuid,
    /// The suspension's version: any change to the workflow retires the link.
    pub version: i64,
    pub expires_at: Timestamp,
    pub note: Option<String>,
}

/// Create Approval Link
///
/// A single-use URL that answers the workflow's current suspension: whoever opens it sees that one decision and its form, without signing in. It works once, and dies when the suspension ends or the time passes; the history names the link's creator, "via approval link". Auth: JWT (admin) or API key with `workflows:write`.
#[utoipa::path(
    post, path = "/v1/workflows/{workflow_id}/approval-links", tag = "dashboard",
    operation_id = "create_approval_link",
    params(("workflow_id" = Uuid, Path, description = "Workflow Id")),
    request_body(content = Option<NewApprovalLinkBody>, content_type = "application/json"),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The link", body = ApprovalLinkAnswer),
        (status = 404, description = "No such workflow in this tenant", body = ErrorDetail),
        (status = 409, description = "The workflow is not suspended", body = ErrorDetail),
        (status = 422, description = "Invalid path parameter or body", body = HttpValidationError),
        BodyErrors,
        AdminErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    admin: AdminAuth<Write>,
    WorkflowId(id): WorkflowId,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let max = i64::try_from(state.ui.approval_link_max_ttl.as_secs()).unwrap_or(i64::MAX);
    let asked = NewApprovalLink::from_json(body.as_ref(), max)?;
    let link = state
        .ui_tokens
        .create_approval_link(
            &state.workflows,
            admin.scope,
            id,
            &admin.principal,
            std::time::Duration::from_secs(asked.expires_in.unsigned_abs()),
            asked.note,
        )
        .await?;
    let url = format!(
        "{}/ui/approve/{}",
        crate::ui::base_url(&state, &headers),
        link.token
    );
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(ApprovalLinkAnswer {
            id: link.detail.link_id,
            url,
            workflow_id: id,
            version: link.detail.version,
            expires_at: link.expires_at,
            note: link.detail.note,
        }),
    )
        .into_response())
}
