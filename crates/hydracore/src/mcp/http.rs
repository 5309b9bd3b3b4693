//! `/mcp` on the API listener: MCP's streamable HTTP transport, behind
//! the proxy key. A request without a valid key is answered 401 (or 403,
//! 429) by the same extractor as the internal API, before rmcp reads a
//! message.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::server::HydraCoreMcp;
use crate::http::auth::ProxyKeyAuth;
use crate::http::extract::BODY_LIMIT;
use crate::http::AppState;

pub const PATH: &str = "/mcp";

pub fn routes(state: AppState) -> Router<AppState> {
    let make = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(HydraCoreMcp::new(make.clone())),
        Arc::new(NeverSessionManager::default()),
        StreamableHttpServerConfig::default()
            // No sessions: a request needs nothing a replica remembers, so
            // replicas behind a load balancer answer any of them.
            .with_legacy_session_mode(false)
            .with_json_response(true)
            // The Host check guards local servers that trust whoever can
            // reach them (DNS rebinding); every request here carries a
            // proxy key, which a rebinding page does not have.
            .disable_allowed_hosts()
            .with_max_request_body_bytes(BODY_LIMIT),
    );
    Router::new()
        .route_service(PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// Where the server is reached, as this request names it: the base of the
/// approval links `ask_human` hands out.
#[derive(Debug, Clone)]
pub struct PublicBase(pub String);

/// Passes the agent the key authenticates to the tools, in the request's
/// extensions (rmcp hands a tool the request's parts).
async fn authenticate(
    State(state): State<AppState>,
    ProxyKeyAuth(agent): ProxyKeyAuth,
    mut request: Request,
    next: Next,
) -> Response {
    let base = PublicBase(crate::ui::base_url(&state, request.headers()));
    request.extensions_mut().insert(agent);
    request.extensions_mut().insert(base);
    next.run(request).await
}
