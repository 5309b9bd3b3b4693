//! The HTTP layer: routes, extractors, error mapping. Handlers parse with
//! the domain crate and call the [`Store`]; they hold no rules of their own.

mod approval_links;
pub mod auth;
mod dashboard;
mod decisions;
pub mod error;
pub(crate) mod events;
pub mod extract;
mod internal;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod ops;
pub(crate) mod respond;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hydracore_storage::{Store, UiTokens, Webhooks, Workflows};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use self::error::ApiError;
use crate::auth::jwt::JwtVerifier;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The use cases the workflow routes run.
    pub workflows: Workflows,
    /// The webhook routes' use cases.
    pub webhooks: Webhooks,
    /// The web page's sessions and links.
    pub ui_tokens: UiTokens,
    pub ui: Arc<crate::ui::UiSettings>,
    /// The store itself, for credentials, readiness and metrics.
    pub store: Arc<dyn Store>,
    /// `None` when no JWT key is configured: the dashboard takes API keys only.
    pub jwt: Option<Arc<JwtVerifier>>,
    pub status_counts: Arc<metrics::StatusCounts>,
    /// The bearer token `/metrics` takes on the API listener; without one
    /// it is not served there.
    pub metrics_token: Option<Arc<str>>,
    pub limits: Arc<limits::Limits>,
    pub readiness: Arc<ops::Readiness>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, jwt: Option<JwtVerifier>) -> Self {
        Self {
            workflows: Workflows::new(Arc::clone(&store)),
            webhooks: Webhooks::new(
                Arc::clone(&store),
                crate::webhooks::WebhookSettings::default().rules(),
            ),
            ui_tokens: UiTokens::new(Arc::clone(&store)),
            ui: Arc::default(),
            store,
            jwt: jwt.map(Arc::new),
            status_counts: Arc::default(),
            metrics_token: None,
            limits: Arc::new(limits::Limits::new(&limits::LimitSettings::default())),
            readiness: Arc::default(),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes and its OpenAPI document, registered together.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, probes, doc) = parts();
    (routes.merge(probes), doc)
}

/// The routes the load limits apply to, the probes, which they do not,
/// and the OpenAPI document of both.
fn parts() -> (Router<AppState>, Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(internal::routes())
        .merge(dashboard::routes())
        .merge(decisions::routes())
        .merge(approval_links::routes())
        .merge(events::routes())
        .merge(webhooks::routes())
        .merge(ops::routes())
        .split_for_parts();
    let (probes, probes_doc) = ops::probes().split_for_parts();
    doc.merge(probes_doc);
    (routes, probes, doc)
}

/// `/metrics` alone, for a listener of its own (`HYDRACORE_METRICS_LISTEN`).
pub fn metrics_router(state: AppState) -> Router {
    metrics::recorder();
    Router::new()
        .route("/metrics", axum::routing::get(ops::metrics_text))
        .fallback(error::route_not_found)
        .with_state(state)
}

/// How much work the server takes on at once.
#[derive(Debug, Clone, Copy)]
pub struct LoadSettings {
    /// A request still running after this is answered 503 (and cancelled);
    /// `None` leaves that to a proxy in front, and saves a timer per
    /// request. A write may have landed before such a 503: retry changes
    /// with `If-Match` and creates with an `Idempotency-Key`.
    pub request_timeout: Option<Duration>,
    /// Requests in flight at most; more are answered 503 at once rather
    /// than queued without end.
    pub max_in_flight: usize,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self {
            request_timeout: Some(Duration::from_secs(30)),
            max_in_flight: 1024,
        }
    }
}

pub fn router(state: AppState, load: LoadSettings) -> Router {
    metrics::recorder();
    let (api, probes, openapi) = parts();
    let mut routes = api
        .merge(crate::mcp::http::routes(state.clone()))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(crate::ui::routes())
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT));
    if let Some(timeout) = load.request_timeout {
        routes = routes.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overload_answer))
                .timeout(timeout),
        );
    }
    routes
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overload_answer))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(load.max_in_flight)),
        )
        .merge(probes)
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("<unmatched>", MatchedPath::as_str);
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %request.method(), route, request_id)
                })
                .on_request(|_: &Request, _: &Span| tracing::debug!("request started"))
                .on_response(|response: &Response, latency: Duration, _span: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                        "request"
                    );
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// The answer for a request the load layers refused or gave up on.
async fn overload_answer(error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::TimedOut
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded
    } else {
        ApiError::Internal(anyhow::anyhow!(error))
    }
}
