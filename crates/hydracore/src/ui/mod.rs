//! The approver's web page, under `/ui/`: server-rendered from templates
//! compiled into the binary (HTML-escaped by default), with its CSS and
//! script embedded. Every page works without JavaScript; the script only
//! refreshes lists when events arrive and sends forms without a reload.
//!
//! Pages call the same use cases as the API, under a session (`session`)
//! instead of a credential per request.

pub mod form;
mod pages;
pub mod session;
mod view;

use askama::Template;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::error::ApiError;
use crate::http::AppState;

pub use session::UiSettings;

/// The page's routes, and `/`, which leads to them.
pub fn routes() -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::inbox))
        .route("/ui/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route(
            "/ui/sign-in/{token}",
            get(pages::sign_in_link).post(pages::use_sign_in_link),
        )
        .route("/ui/sign-out", post(pages::sign_out))
        .route("/ui/workflows", get(pages::workflows))
        .route("/ui/workflows/{id}", get(pages::workflow))
        .route("/ui/workflows/{id}/resume", post(pages::resume))
        .route("/ui/workflows/{id}/abort", post(pages::abort))
        .route("/ui/workflows/{id}/suspend", post(pages::suspend))
        .route(
            "/ui/approve/{token}",
            get(pages::approval).post(pages::answer_approval),
        )
        .route("/ui/events", get(pages::events))
        .route("/ui/static/app.css", get(stylesheet))
        .route("/ui/static/app.js", get(script))
        .route("/ui/static/icon.svg", get(icon))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .merge(pages)
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    )
}

/// The page's icon: without one, browsers ask for `/favicon.ico` on
/// every page and get a 404.
async fn icon() -> Response {
    asset("image/svg+xml", include_str!("../../assets/icon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Why a page was not shown, as the page that says so.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No session, or one that ended: to the sign-in page.
    #[error("not signed in")]
    SignIn,
    /// The sign-in form's key or token was not accepted.
    #[error("sign-in refused")]
    BadSignIn,
    #[error("{0}")]
    Forbidden(&'static str),
    /// A form without this session's form token.
    #[error("form token missing or wrong")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Api(ApiError),
}

impl From<hydracore_storage::UseCaseError> for UiError {
    fn from(e: hydracore_storage::UseCaseError) -> Self {
        match e {
            hydracore_storage::UseCaseError::NotFound => UiError::NotFound,
            hydracore_storage::UseCaseError::Store(e) => e.into(),
            other => UiError::Api(other.into()),
        }
    }
}

impl From<hydracore_storage::StoreError> for UiError {
    fn from(e: hydracore_storage::StoreError) -> Self {
        match e {
            // The key the session was opened with was revoked meanwhile
            // (PostgreSQL checks it in every transaction).
            hydracore_storage::StoreError::KeyRevoked => UiError::SignIn,
            other => UiError::Api(other.into()),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            UiError::SignIn => return Redirect::to("/ui/sign-in").into_response(),
            UiError::BadSignIn => (
                StatusCode::UNAUTHORIZED,
                "Not signed in",
                "That key or token was not accepted.",
            ),
            UiError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why),
            UiError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form is out of date",
                "Reload the page and try again.",
            ),
            UiError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such workflow in your tenant.",
            ),
            UiError::Api(e) => {
                let status = e.into_response().status();
                let message = match status {
                    StatusCode::TOO_MANY_REQUESTS => {
                        "Too many requests: wait a moment and try again."
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        "The service is busy or its database is away: try again shortly."
                    }
                    _ => "Something went wrong; it was logged.",
                };
                (status, "Not available", message)
            }
        };
        let page = view::ErrorPage {
            chrome: view::Chrome::signed_out(),
            heading,
            message,
            back: "/ui/",
            back_label: "Back to the inbox",
        };
        (status, render(&page)).into_response()
    }
}

/// `page` as HTML; a template that fails to render is a 500.
fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => ApiError::Internal(anyhow::anyhow!("rendering a page: {e}")).into_response(),
    }
}

/// Where users reach this server: `HYDRACORE_PUBLIC_URL`, else the
/// request's own `Host`.
pub fn base_url(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &state.ui.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}
