//! The one error type of the HTTP layer, and how each case is answered.
//!
//! Which error to use where:
//! - request parsing and validation: [`ValidationErrors`] (from the domain
//!   crate), converted with `?` into a pydantic-shaped 422;
//! - use cases: [`UseCaseError`], converted with `?` (404, 409, 412, 422,
//!   503, or a logged 500): the one place where the domain's refusals and
//!   the store's failures become statuses;
//! - credentials: [`ApiError::Unauthorized`] / [`ApiError::Forbidden`] with
//!   a short public sentence; the real reason is logged at debug by the
//!   extractor that refused;
//! - anything unexpected: [`ApiError::Internal`], logged in full and answered
//!   with a body that carries no internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::loc;
use hydracore_domain::transition::TransitionError;
use hydracore_domain::validation::{Invalid, ValidationErrors};
use hydracore_storage::{StoreError, UseCaseError};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("Workflow not found")]
    WorkflowNotFound,
    #[error("Webhook not found")]
    WebhookNotFound,
    #[error("Delivery not found")]
    DeliveryNotFound,
    #[error("Not Found")]
    RouteNotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    Conflict(#[from] TransitionError),
    #[error("A request with this Idempotency-Key is still in progress; retry shortly")]
    IdempotencyInFlight,
    #[error("Request body is larger than the limit of 1 MiB")]
    PayloadTooLarge,
    #[error("Unsupported media type: send the body as application/json")]
    UnsupportedMediaType,
    #[error("Could not read the request body")]
    BadBody,
    #[error("The database is unavailable; retry shortly")]
    Unavailable(String),
    #[error("Too many requests; retry after the time in Retry-After")]
    RateLimited {
        /// The bucket's size, for `RateLimit-Limit`.
        limit: u32,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    Gone(&'static str),
    #[error("The server is busy; retry shortly")]
    Overloaded,
    #[error("The request took too long; retry shortly")]
    TimedOut,
    #[error("Internal Server Error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::WorkflowNotFound
            | ApiError::WebhookNotFound
            | ApiError::DeliveryNotFound
            | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(TransitionError::VersionMismatch { .. }) => {
                StatusCode::PRECONDITION_FAILED
            }
            ApiError::Conflict(_) | ApiError::IdempotencyInFlight => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadBody => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) | ApiError::Overloaded | ApiError::TimedOut => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<UseCaseError> for ApiError {
    fn from(e: UseCaseError) -> Self {
        match e {
            UseCaseError::NotFound => ApiError::WorkflowNotFound,
            UseCaseError::Refused(TransitionError::Invalid(errors)) => errors.into(),
            UseCaseError::Refused(refusal) => ApiError::Conflict(refusal),
            UseCaseError::IdempotencyKeyInFlight => ApiError::IdempotencyInFlight,
            UseCaseError::IdempotencyKeyReused(key) => ValidationErrors::single(
                Invalid::value_error("this Idempotency-Key was used with a different request body")
                    .at(
                        loc!["header", "idempotency-key"],
                        Value::String(key.as_str().to_owned()),
                    ),
            )
            .into(),
            UseCaseError::EventsGone => ApiError::Gone(
                "Events after this point are older than the retention and were purged; \
                 read the workflows again, then follow the events from now",
            ),
            UseCaseError::Invalid(errors) => errors.into(),
            UseCaseError::WebhookNotFound => ApiError::WebhookNotFound,
            UseCaseError::DeliveryNotFound => ApiError::DeliveryNotFound,
            UseCaseError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::KeyRevoked => {
                tracing::debug!("key revoked since it was looked up");
                ApiError::Unauthorized("Invalid credentials")
            }
            StoreError::Unavailable(reason) => ApiError::Unavailable(reason),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl ApiError {
    /// The answer's `detail`: the validation items, or the sentence. MCP
    /// tool errors carry the same.
    pub fn detail(&self) -> Value {
        match self {
            ApiError::Validation(errors) => json!(errors.0),
            _ => Value::String(self.to_string()),
        }
    }

    /// Logs what the client is not told: an unexpected failure in full, a
    /// database away with its reason.
    pub fn log(&self) {
        match self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable(reason) => tracing::warn!(%reason, "database unavailable"),
            _ => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        self.log();
        let body = json!({ "detail": self.detail() });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { limit, retry_after } = &self {
            // Whole seconds, rounded up: a client that waits that long is
            // admitted.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            headers.insert("ratelimit-limit", HeaderValue::from(*limit));
            headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("ratelimit-reset", HeaderValue::from(seconds));
        }
        response
    }
}

/// The router's answer for paths it does not know.
pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// The router's answer for a known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
