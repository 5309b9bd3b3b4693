//! Events: every create and change of a workflow, in order, as a page of
//! JSON or a Server-Sent Events stream that resumes where it left off.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hydracore_domain::event::{Event, EventId, EventQuery};
use hydracore_domain::Scope;
use hydracore_storage::Workflows;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminAuth, ProxyAuth, Read};
use super::error::ApiError;
use super::extract::QueryPairs;
use super::openapi::{AdminErrors, AgentErrors, ErrorDetail, EventParams, HttpValidationError};
use super::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tenant_events))
        .routes(routes!(instance_events))
}

/// How long an open stream waits for news before it reads again anyway,
/// for the changes of replicas that could not tell of them.
const STREAM_POLL: Duration = Duration::from_secs(1);
/// When news came but its event was not there to read yet (PostgreSQL
/// shows an event once the transactions older than its own, anywhere on
/// the server, have ended), the stream looks again this soon, then twice
/// as late each time until that reaches [`STREAM_POLL`].
const STREAM_RETRY: Duration = Duration::from_millis(10);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<Event>,
    /// Pass as `after` for the next page (the last event's id, or the
    /// `after` given when the page is empty).
    pub next_after: Option<String>,
}

/// List or Stream the Tenant's Events
///
/// Every create and change of the tenant's workflows, in order. `Accept: text/event-stream` streams them (Server-Sent Events: `id`, `event` = type, `data` = the event), resuming after `Last-Event-ID` or `after`; otherwise a page of JSON. Auth: JWT (admin) or API key with `workflows:read`.
#[utoipa::path(
    get, path = "/v1/events", tag = "events", operation_id = "list_events",
    params(EventParams),
    security(("admin_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of events, or the stream",
            content((EventPage = "application/json"), (String = "text/event-stream"))),
        (status = 410, description = "Events after `after` are past their retention", body = ErrorDetail),
        (status = 422, description = "Invalid query parameter", body = HttpValidationError),
        AdminErrors,
    )
)]
async fn tenant_events(
    State(state): State<AppState>,
    admin: AdminAuth<Read>,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    stream_or_page(state, admin.scope, &headers, &pairs).await
}

/// List or Stream the Instance's Events
///
/// As `GET /v1/events`, for the events of the key's instance only. Auth: Bearer proxy key.
#[utoipa::path(
    get, path = "/internal/v1/instances/{instance_id}/events", tag = "internal",
    operation_id = "list_events_internal",
    params(("instance_id" = uuid::Uuid, Path, description = "Instance Id"), EventParams),
    security(("proxy_key" = [])),
    responses(
        (status = 200, description = "A page of events, or the stream",
            content((EventPage = "application/json"), (String = "text/event-stream"))),
        (status = 410, description = "Events after `after` are past their retention", body = ErrorDetail),
        (status = 422, description = "Invalid query parameter", body = HttpValidationError),
        AgentErrors,
    )
)]
async fn instance_events(
    State(state): State<AppState>,
    agent: ProxyAuth,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    stream_or_page(state, agent.scope, &headers, &pairs).await
}

/// The scope's events after the query's point: a stream when the client
/// accepts `text/event-stream`, else a page of JSON.
pub(crate) async fn stream_or_page(
    state: AppState,
    scope: Scope,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let mut query = EventQuery::from_pairs(pairs)?;
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_stream {
        let events = state.workflows.events(scope, &query).await?;
        let next_after = events.last().map(|e| e.id).or(query.after);
        return Ok(Json(EventPage {
            events,
            next_after: next_after.map(|id| id.encode()),
        })
        .into_response());
    }
    if let Some(last) = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(EventId::parse)
    {
        query.after = Some(last);
    }
    let permit = state
        .limits
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    // A resume point past the retention is refused before the stream opens.
    let first = state.workflows.events(scope, &query).await?;
    let stream = futures_util::stream::unfold(
        Streaming {
            workflows: state.workflows.clone(),
            news: state.workflows.news(),
            scope,
            query,
            pending: first.into(),
            retry: None,
            _permit: permit,
        },
        next_event,
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// An open stream: the page being sent, and where to read next. It reads
/// a page only when the client has taken the last, so a slow client holds
/// one page at most.
struct Streaming {
    workflows: Workflows,
    news: hydracore_storage::News,
    scope: Scope,
    query: EventQuery,
    pending: std::collections::VecDeque<Event>,
    /// How soon to look again for an event announced but not yet there.
    retry: Option<Duration>,
    /// Its place among the streams a replica holds open, given back when
    /// the client goes.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

async fn next_event(mut s: Streaming) -> Option<(Result<sse::Event, Infallible>, Streaming)> {
    loop {
        if let Some(event) = s.pending.pop_front() {
            s.query.after = Some(event.id);
            let data = serde_json::to_string(&event).unwrap_or_default();
            let sent = sse::Event::default()
                .id(event.id.encode())
                .event(event.event_type.as_str())
                .data(data);
            return Some((Ok(sent), s));
        }
        let heard = s
            .news
            .of_tenant(s.scope.tenant_id, s.retry.unwrap_or(STREAM_POLL))
            .await;
        match s.workflows.events(s.scope, &s.query).await {
            Ok(events) => {
                s.retry = match s.retry {
                    _ if !events.is_empty() => None,
                    Some(retry) => Some(retry * 2).filter(|r| *r < STREAM_POLL),
                    None => heard.then_some(STREAM_RETRY),
                };
                s.pending = events.into();
            }
            // Ends the stream: a key revoked meanwhile, events purged past
            // it (a resume then gets the 410 that says so), a database
            // away (a resume starts over where it left off).
            Err(e) => {
                tracing::debug!(error = %e, "an event stream ended");
                return None;
            }
        }
    }
}
