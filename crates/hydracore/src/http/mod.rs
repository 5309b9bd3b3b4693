//! The HTTP layer: routes, extractors, error mapping. Handlers parse with
//! the domain crate and call the [`Store`]; they hold no rules of their own.

pub mod auth;
mod dashboard;
pub mod error;
pub mod extract;
mod internal;
pub mod metrics;
pub mod openapi;
mod ops;
mod respond;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hydracore_storage::Store;
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
    pub store: Arc<dyn Store>,
    /// `None` when no JWT key is configured: the dashboard takes API keys only.
    pub jwt: Option<Arc<JwtVerifier>>,
    pub status_counts: Arc<metrics::StatusCounts>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, jwt: Option<JwtVerifier>) -> Self {
        Self {
            store,
            jwt: jwt.map(Arc::new),
            status_counts: Arc::default(),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes and its OpenAPI document, registered together.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(internal::routes())
        .merge(dashboard::routes())
        .merge(ops::routes())
        .split_for_parts()
}

pub fn router(state: AppState) -> Router {
    metrics::recorder();
    let (api, openapi) = api();
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
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
