//! Webhooks: `/v1/webhooks`, the tenant's endpoints and their deliveries.
//! Another tenant's endpoint is 404 here, never 403.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::loc;
use hydracore_domain::validation::query::QueryReader;
use hydracore_domain::validation::ValidationErrors;
use hydracore_domain::webhook::{Delivery, NewWebhook, Webhook, WebhookLimits, WebhookPatch};
use hydracore_storage::webhooks::WithSecret;
use rand::RngCore;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::auth::{AdminAuth, WebhooksRead, WebhooksWrite};
use super::error::ApiError;
use super::extract::{path_uuid, JsonBody, QueryPairs};
use super::openapi::{AdminErrors, BodyErrors, ErrorDetail, HttpValidationError};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
}

/// Bytes of randomness in a signing secret.
const SECRET_BYTES: usize = 32;

/// Deliveries per page at most, and by default.
const DELIVERIES_LIMIT_MAX: i64 = 500;
const DELIVERIES_LIMIT_DEFAULT: i64 = 50;

/// `{webhook_id}` of the path.
pub struct WebhookId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for WebhookId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        path_uuid(parts, state, "webhook_id").await.map(WebhookId)
    }
}

/// `{delivery_id}` of the path.
pub struct DeliveryId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for DeliveryId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        path_uuid(parts, state, "delivery_id").await.map(DeliveryId)
    }
}

/// An endpoint with its signing secret: shown on create and rotation only.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_` and the base64 of the key: keep it, it is not shown again.
    pub secret: String,
}

impl From<WithSecret> for WebhookWithSecret {
    fn from(w: WithSecret) -> Self {
        Self {
            webhook: w.webhook,
            secret: w.secret.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub webhooks: Vec<Webhook>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
}

/// Body of `POST /v1/webhooks`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateWebhookBody {
    /// `https://` (plain `http` only where the operator allows private addresses); not a
    /// loopback, private, link-local or metadata address; at most 2048 bytes by default.
    pub url: String,
    /// The event types to deliver, at least one.
    #[schema(value_type = Vec<String>, example = json!(["workflow.created", "workflow.completed"]))]
    pub event_types: Vec<String>,
    /// For people; at most 1000 characters by default.
    pub description: Option<String>,
}

/// Body of `PATCH /v1/webhooks/{webhook_id}`: fields left out stay.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdateWebhookBody {
    pub url: Option<String>,
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Vec<String>>,
    /// `null` clears it.
    pub description: Option<String>,
    /// `true` enables a disabled endpoint again; `false` disables it.
    pub enabled: Option<bool>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeliveryParams {
    /// Deliveries to answer, newest first: 1 to 500 (default 50).
    limit: Option<i64>,
}

/// A 422 at `["body", "url"]` when the URL's host resolves to an address
/// no webhook may reach.
async fn resolves_publicly(url: &str, limits: &WebhookLimits) -> Result<(), ApiError> {
    crate::webhooks::check_resolves(url, limits)
        .await
        .map_err(|e| {
            ValidationErrors::single(e.at(loc!["body", "url"], Value::String(url.to_owned())))
                .into()
        })
}

fn random_key() -> [u8; SECRET_BYTES] {
    let mut key = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Create a Webhook Endpoint
///
/// Registers an endpoint for the tenant's events created from now on. The answer carries the signing secret, which is never shown again. Auth: JWT (admin) or API key with `webhooks:write`.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = CreateWebhookBody,
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created, with its secret", body = WebhookWithSecret),
        BodyErrors,
        AdminErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksWrite>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let limits = &state.webhooks.rules.limits;
    let new = NewWebhook::from_body(body.as_ref(), limits)?;
    resolves_publicly(&new.url, limits).await?;
    let created = state
        .webhooks
        .create(admin.scope, new, &random_key())
        .await?;
    let location = format!("/v1/webhooks/{}", created.webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(WebhookWithSecret::from(created)),
    )
        .into_response())
}

/// List Webhook Endpoints
///
/// The tenant's endpoints, oldest first, without their secrets. Auth: JWT (admin) or API key with `webhooks:read`.
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    security(("admin_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The endpoints", body = WebhookList), AdminErrors)
)]
async fn list(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksRead>,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks = state.webhooks.list(admin.scope).await?;
    Ok(Json(WebhookList { webhooks }))
}

/// Read a Webhook Endpoint
///
/// Without its secret; a disabled endpoint says why. Auth: JWT (admin) or API key with `webhooks:read`.
#[utoipa::path(
    get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "read_webhook",
    params(("webhook_id" = Uuid, Path, description = "Webhook Id")),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 404, description = "No such endpoint in the tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn read(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksRead>,
    WebhookId(id): WebhookId,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(state.webhooks.get(admin.scope, id).await?))
}

/// Change a Webhook Endpoint
///
/// Changes the fields given; `enabled: true` enables a disabled endpoint again, and it then gets the events it missed that are still kept. Auth: JWT (admin) or API key with `webhooks:write`.
#[utoipa::path(
    patch, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "update_webhook",
    params(("webhook_id" = Uuid, Path, description = "Webhook Id")),
    request_body = UpdateWebhookBody,
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint as changed", body = Webhook),
        (status = 404, description = "No such endpoint in the tenant", body = ErrorDetail),
        BodyErrors,
        AdminErrors,
    )
)]
async fn update(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksWrite>,
    WebhookId(id): WebhookId,
    JsonBody(body): JsonBody,
) -> Result<Json<Webhook>, ApiError> {
    let limits = &state.webhooks.rules.limits;
    let patch = WebhookPatch::from_body(body.as_ref(), limits)?;
    if let Some(url) = &patch.url {
        resolves_publicly(url, limits).await?;
    }
    Ok(Json(state.webhooks.update(admin.scope, id, &patch).await?))
}

/// Delete a Webhook Endpoint
///
/// With its deliveries; nothing more is sent to it. Auth: JWT (admin) or API key with `webhooks:write`.
#[utoipa::path(
    delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("webhook_id" = Uuid, Path, description = "Webhook Id")),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint in the tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn delete(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksWrite>,
    WebhookId(id): WebhookId,
) -> Result<StatusCode, ApiError> {
    state.webhooks.delete(admin.scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a Webhook Endpoint's Secret
///
/// A new signing secret replaces the old one at once (attempts from now on are signed with it); the answer is the only time it is shown. Auth: JWT (admin) or API key with `webhooks:write`.
#[utoipa::path(
    post, path = "/v1/webhooks/{webhook_id}/rotate-secret", tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("webhook_id" = Uuid, Path, description = "Webhook Id")),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WebhookWithSecret),
        (status = 404, description = "No such endpoint in the tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksWrite>,
    WebhookId(id): WebhookId,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let rotated = state
        .webhooks
        .rotate(admin.scope, id, &random_key())
        .await?;
    Ok(Json(rotated.into()))
}

/// List a Webhook Endpoint's Deliveries
///
/// Newest first: each with its status, attempts, and the last attempt's response code and latency. Auth: JWT (admin) or API key with `webhooks:read`.
#[utoipa::path(
    get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("webhook_id" = Uuid, Path, description = "Webhook Id"), DeliveryParams),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 404, description = "No such endpoint in the tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path or query parameter", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn deliveries(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksRead>,
    WebhookId(id): WebhookId,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<DeliveryList>, ApiError> {
    let mut q = QueryReader::new(&pairs);
    let limit = q.int(
        "limit",
        DELIVERIES_LIMIT_DEFAULT,
        1,
        Some(DELIVERIES_LIMIT_MAX),
    );
    let limit = q.finish(limit)?;
    let deliveries = state.webhooks.deliveries(admin.scope, id, limit).await?;
    Ok(Json(DeliveryList { deliveries }))
}

/// Retry a Delivery
///
/// Queues the delivery again now, whatever became of it, with a new retry period; the endpoint must be enabled for it to go out. Auth: JWT (admin) or API key with `webhooks:write`.
#[utoipa::path(
    post, path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    operation_id = "retry_webhook_delivery",
    params(
        ("webhook_id" = Uuid, Path, description = "Webhook Id"),
        ("delivery_id" = Uuid, Path, description = "Delivery Id"),
    ),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Queued", body = Delivery),
        (status = 404, description = "No such endpoint or delivery in the tenant", body = ErrorDetail),
        (status = 422, description = "Invalid path", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn retry(
    State(state): State<AppState>,
    admin: AdminAuth<WebhooksWrite>,
    WebhookId(id): WebhookId,
    DeliveryId(delivery_id): DeliveryId,
) -> Result<Response, ApiError> {
    let delivery = state.webhooks.retry(admin.scope, id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}
