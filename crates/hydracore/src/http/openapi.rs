//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! Request bodies are parsed by the domain crate from raw JSON (to report
//! every problem pydantic-style), so their documented shapes live here as
//! schema-only types that mirror the seed API field for field.

use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToSchema};
use uuid::Uuid;

use hydracore_domain::{Status, Timestamp, WorkflowType};

/// Names of the security schemes, as handlers refer to them.
pub const PROXY_KEY: &str = "proxy_key";
pub const ADMIN_JWT: &str = "admin_jwt";
pub const API_KEY: &str = "api_key";
pub const METRICS_TOKEN: &str = "metrics_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HydraCore Workflows",
        description = "Durable workflow records for AI agents. The internal API serves the agent runtime (one instance, proxy key); the dashboard API serves tenant admins (JWT or tenant API key).",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(HttpValidationError, ValidationError, ErrorDetail)),
    tags(
        (name = "internal", description = "The agent runtime's API, scoped to one instance."),
        (name = "dashboard", description = "Tenant admins' API, scoped to one tenant."),
        (name = "decisions", description = "The tenant's suspended workflows as decisions waiting for a person."),
        (name = "events", description = "Every change, in order: pages and a Server-Sent Events stream."),
        (name = "webhooks", description = "Endpoints that the tenant's events are delivered to, signed, and their deliveries."),
        (name = "operations", description = "Health, readiness and metrics."),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            PROXY_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Proxy key of the path's instance (`hcp_...`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ADMIN_JWT,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("JWT with `exp`, `tenant_id`, `role: admin` and `sub`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "Tenant API key (`hck_...`) with the route's scope: `workflows:read`, `workflows:write`, `webhooks:read` or `webhooks:write`",
            ))),
        );
        components.add_security_scheme(
            METRICS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's `HYDRACORE_METRICS_TOKEN`"))
                    .build(),
            ),
        );
    }
}

/// FastAPI's 422 body.
#[derive(ToSchema)]
#[schema(as = HTTPValidationError)]
pub struct HttpValidationError {
    pub detail: Vec<ValidationError>,
}

/// One validation problem, as pydantic v2 reports it.
#[derive(ToSchema)]
pub struct ValidationError {
    /// `missing`, `uuid_parsing`, `enum`, `string_too_long`, ...
    #[schema(rename = "type")]
    pub error_type: String,
    /// Where: `["body", "customer_id"]`, `["query", "page"]`, `["path", "workflow_id"]`.
    pub loc: Vec<LocItem>,
    pub msg: String,
    pub input: Value,
    #[schema(value_type = Option<Object>)]
    pub ctx: Option<Value>,
}

/// A field name, or an index or position.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Index(i64),
}

/// Every error but validation: `{"detail": "<sentence>"}`.
#[derive(ToSchema)]
pub struct ErrorDetail {
    pub detail: String,
}

/// Body of `POST .../workflows`.
#[derive(ToSchema)]
#[schema(as = CreateWorkflow)]
pub struct CreateWorkflowBody {
    pub customer_id: Uuid,
    pub workflow_type: WorkflowType,
    /// May repeat the path's instance; any other value is a 422.
    pub instance_id: Option<Uuid>,
    /// Initial stage.
    #[schema(max_length = 255)]
    pub stage: Option<String>,
    #[schema(max_length = 1000)]
    pub title: Option<String>,
    /// External reference (property ref, job ref, etc.).
    #[schema(max_length = 255)]
    pub reference: Option<String>,
    #[schema(max_length = 255)]
    pub assigned_to: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub workflow_state: Option<Value>,
    pub next_action_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

/// Body of `PATCH .../workflows/{workflow_id}`: an advance. A field present
/// replaces the stored value (`null` clears a nullable one);
/// `workflow_state` is merged (RFC 7396).
#[derive(ToSchema)]
#[schema(as = AdvanceWorkflow)]
pub struct AdvanceWorkflowBody {
    /// Audit action name (e.g. 'escalated', 'approved', 'contacted_tier2').
    #[schema(min_length = 1, max_length = 100)]
    pub action: String,
    /// Any JSON, at most 64 KiB.
    pub action_detail: Option<Value>,
    /// Named in the history entry; default `instance:<instance_id>`. Not
    /// `system`, the service's own name.
    #[schema(max_length = 255)]
    pub actor: Option<String>,
    pub approver_id: Option<Uuid>,
    #[schema(max_length = 255)]
    pub assigned_to: Option<String>,
    #[schema(minimum = 0)]
    pub escalation_level: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub next_action_at: Option<Timestamp>,
    /// New stage.
    #[schema(max_length = 255)]
    pub stage: Option<String>,
    /// New status; into a terminal one sets `completed_at`.
    pub status: Option<Status>,
    /// Merged into the existing state.
    #[schema(value_type = Option<Object>)]
    pub workflow_state: Option<Value>,
}

/// Body of `POST .../suspend`.
#[derive(ToSchema)]
#[schema(as = SuspendWorkflow)]
pub struct SuspendWorkflowBody {
    /// Step name to suspend at.
    #[schema(min_length = 1, max_length = 100)]
    pub step: String,
    /// Arbitrary state payload to preserve for resume; at most 64 KiB of JSON.
    pub payload: Option<Value>,
    /// A JSON Schema (draft 2020-12, at most 64 KiB, `$ref`s only within
    /// itself) that the resume's `resume_data` must satisfy.
    #[schema(value_type = Option<Object>)]
    pub resume_schema: Option<Value>,
    /// Who should decide (a person or a group); sets the record's `assigned_to`.
    #[schema(max_length = 255)]
    pub assigned_to: Option<String>,
    /// By when; sets the record's `next_action_at`.
    pub due_at: Option<Timestamp>,
    /// Once `due_at` has passed, escalate every this often: seconds, or an
    /// ISO-8601 duration such as `PT30M`; at least 60 s.
    #[schema(value_type = Option<String>, example = "PT30M")]
    pub escalate_every: Option<Value>,
    /// The level escalation stops at (default 3); needs `escalate_every`.
    #[schema(minimum = 1, maximum = 10)]
    pub max_escalation_level: Option<i64>,
}

/// Body of `POST .../resume`; may be empty.
#[derive(ToSchema)]
#[schema(as = ResumeWorkflow)]
pub struct ResumeWorkflowBody {
    /// Data merged into workflow_state on resume; at most 64 KiB of JSON,
    /// and valid against the suspension's `resume_schema` if it has one.
    #[schema(value_type = Option<Object>)]
    pub resume_data: Option<Value>,
}

/// Query of the agent runtime's list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub customer_id: Option<Uuid>,
    pub workflow_type: Option<WorkflowType>,
    pub status: Option<Status>,
    pub reference: Option<String>,
    /// `page` × `per_page` may reach 10,000 rows deep; past that, use `cursor`.
    #[param(minimum = 1, default = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<i64>,
    /// The `next_cursor` of the previous page, instead of `page`.
    pub cursor: Option<String>,
}

/// Query of a workflow's history.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The entries after this `seq` (0: from the first).
    #[param(minimum = 0, default = 0)]
    pub after: Option<i64>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
}

/// Query of the inbox.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxParams {
    /// Only the decisions assigned to this person or group.
    pub assigned_to: Option<String>,
    /// `true`: only those past their due time; `false`: only the others.
    pub overdue: Option<bool>,
    pub workflow_type: Option<WorkflowType>,
    pub instance_id: Option<Uuid>,
    /// Only those suspended at this step.
    pub step: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query of the events.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// The events after this id (a page's `next_after`, an event's `id`).
    pub after: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 100)]
    pub limit: Option<i64>,
    /// Only this workflow's events.
    pub workflow_id: Option<Uuid>,
    /// Only events of this type (repeatable): `workflow.created`, `workflow.advanced`,
    /// `workflow.suspended`, `workflow.resumed`, `workflow.aborted`, `workflow.expired`,
    /// `workflow.escalated`, `workflow.completed`.
    #[param(rename = "type")]
    pub event_type: Option<String>,
}

/// Query of the dashboard's list: the agent's, plus `instance_id`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardListParams {
    pub customer_id: Option<Uuid>,
    pub workflow_type: Option<WorkflowType>,
    pub status: Option<Status>,
    pub reference: Option<String>,
    pub instance_id: Option<Uuid>,
    /// `page` × `per_page` may reach 10,000 rows deep; past that, use `cursor`.
    #[param(minimum = 1, default = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<i64>,
    /// The `next_cursor` of the previous page, instead of `page`.
    pub cursor: Option<String>,
}

// Response sets that many operations share, so each is written once. The
// variants only describe responses; they are never built.

/// What every agent route may answer besides its own statuses.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AgentErrors {
    /// Missing, unknown or revoked proxy key
    #[response(status = 401)]
    Unauthorized(ErrorDetail),
    /// The key belongs to another instance
    #[response(status = 403)]
    Forbidden(ErrorDetail),
    /// Database unavailable
    #[response(status = 503)]
    Unavailable(ErrorDetail),
}

/// What every dashboard route may answer besides its own statuses.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum AdminErrors {
    /// Missing, malformed, expired or revoked credential
    #[response(status = 401)]
    Unauthorized(ErrorDetail),
    /// JWT role is not admin, or the API key lacks the scope
    #[response(status = 403)]
    Forbidden(ErrorDetail),
    /// Database unavailable
    #[response(status = 503)]
    Unavailable(ErrorDetail),
}

/// What a route that reads a JSON body may answer about it.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// Body over 1 MiB
    #[response(status = 413)]
    TooLarge(ErrorDetail),
    /// Body is not JSON
    #[response(status = 415)]
    NotJson(ErrorDetail),
    /// Invalid body or path
    #[response(status = 422)]
    Invalid(HttpValidationError),
}
