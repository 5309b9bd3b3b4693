//! Operational endpoints: liveness, readiness, metrics.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use hydracore_storage::Store;

use super::error::ApiError;
use super::openapi::ErrorDetail;
use super::{metrics, AppState};

/// How long readiness waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(prometheus))
}

/// Liveness and readiness: answered even when the server sheds load, so
/// that an orchestrator does not restart a replica for being busy.
pub fn probes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready"),
        (status = 503, description = "Database unavailable", body = ErrorDetail),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .readiness
        .check(state.store.as_ref())
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(json!({ "status": "ready" })))
}

/// Readiness probes take no credentials and pass the load limits, so they
/// share one database ping at a time: however many arrive, they hold at
/// most one connection. A probe answers with the first ping that started
/// after it arrived, never an older one.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    pub async fn check(&self, store: &dyn Store) -> Result<(), String> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((started, result)) = last.as_ref() {
            if *started >= asked {
                return result.clone();
            }
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("ping timed out".into()),
        };
        *last = Some((started, result.clone()));
        result
    }
}

/// Prometheus metrics in the text exposition format.
///
/// On the API listener only with `HYDRACORE_METRICS_TOKEN` set, to that bearer token (else 404);
/// `HYDRACORE_METRICS_LISTEN` serves them on a listener of their own.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorDetail),
        (status = 404, description = "Not served on this listener", body = ErrorDetail),
    )
)]
async fn prometheus(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = &state.metrics_token else {
        return Err(ApiError::RouteNotFound);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    if !crate::auth::keys::same_secret(given, token) {
        return Err(ApiError::Unauthorized("Invalid credentials"));
    }
    Ok(metrics_text(State(state)).await)
}

/// The metrics themselves, for whichever listener serves them.
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    let text = metrics::render(state.store.as_ref(), &state.status_counts).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}
