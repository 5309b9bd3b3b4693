//! Extractors that parse requests at the edge and fail with our errors:
//! path UUIDs, query pairs, JSON bodies and the `Prefer` header.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{self, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use hydracore_domain::idempotency::IdempotencyKey;
use hydracore_domain::loc;
use hydracore_domain::precondition::{IfMatch, IfNoneMatch};
use hydracore_domain::validation::{values, Invalid, ValidationErrors};
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;

/// Bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The UUID in path segment `name`, or a 422 naming it.
pub async fn path_uuid<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<Uuid, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("path parameters unavailable: {e}")))?;
    let raw = params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route has no {name} parameter")))?;
    values::uuid_str(raw).map_err(|e| {
        ValidationErrors::single(e.at(loc!["path", name], Value::String(raw.to_owned()))).into()
    })
}

/// `{workflow_id}` of the path.
pub struct WorkflowId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for WorkflowId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        path_uuid(parts, state, "workflow_id").await.map(WorkflowId)
    }
}

/// The decoded query string, in order; parsed further by the domain.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Ok(QueryPairs(pairs))
    }
}

/// Whether the client sent `Prefer: return=minimal` (RFC 7240).
#[derive(Debug, Clone, Copy)]
pub struct Prefer {
    pub minimal: bool,
    /// `wait=<seconds>` (RFC 7240): how long a conditional read may wait
    /// for a change.
    pub wait: Option<Duration>,
}

impl Prefer {
    /// For reads, which always answer the full record.
    pub fn full() -> Self {
        Self {
            minimal: false,
            wait: None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Prefer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let preferences: Vec<String> = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        let minimal = preferences.iter().any(|p| p == "return=minimal");
        // An unreadable wait is ignored, as RFC 7240 has servers do.
        let wait = preferences.iter().find_map(|p| {
            let seconds: u64 = p.strip_prefix("wait=")?.trim().parse().ok()?;
            Some(Duration::from_secs(seconds))
        });
        Ok(Prefer { minimal, wait })
    }
}

/// The `If-None-Match` condition of a read, when sent.
pub struct IfNoneMatchHeader(pub Option<IfNoneMatch>);

impl<S: Send + Sync> FromRequestParts<S> for IfNoneMatchHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let tags: Vec<&str> = parts
            .headers
            .get_all("if-none-match")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(Self(
            (!tags.is_empty()).then(|| IfNoneMatch::parse(&tags.join(","))),
        ))
    }
}

/// The `If-Match` precondition of a write, when sent.
pub struct IfMatchHeader(pub Option<IfMatch>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatchHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let values: Vec<&str> = parts
            .headers
            .get_all(header::IF_MATCH)
            .iter()
            // A value that is not text cannot name one of our versions.
            .map(|v| v.to_str().unwrap_or("\"\""))
            .collect();
        Ok(IfMatchHeader(
            (!values.is_empty()).then(|| IfMatch::parse(&values.join(","))),
        ))
    }
}

/// The `Idempotency-Key` of a create, when sent; validated.
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKeyHeader(None));
        };
        let raw = String::from_utf8_lossy(value.as_bytes());
        Ok(IdempotencyKeyHeader(Some(IdempotencyKey::parse(&raw)?)))
    }
}

/// A JSON request body, `None` when the request has none. Refuses other
/// media types (415), bodies over [`BODY_LIMIT`] (413) and malformed JSON
/// (422 `json_invalid`, as FastAPI answers).
pub struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().is_ok_and(is_json_media_type));
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                tracing::debug!(%rejection, "unreadable request body");
                ApiError::BadBody
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        if declared_json == Some(false) {
            return Err(ApiError::UnsupportedMediaType);
        }
        serde_json::from_slice(&bytes)
            .map(|value| JsonBody(Some(value)))
            .map_err(|e| json_invalid(&bytes, &e).into())
    }
}

fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// FastAPI's answer to malformed JSON: the position of the error in `loc`.
fn json_invalid(bytes: &[u8], e: &serde_json::Error) -> ValidationErrors {
    // At end of input serde_json points at the last byte, Python past it.
    let position = if e.is_eof() {
        bytes.len()
    } else {
        byte_offset(bytes, e.line(), e.column())
    };
    ValidationErrors::single(
        Invalid::new("json_invalid", "JSON decode error")
            .with_ctx(json!({ "error": e.to_string() }))
            .at(loc!["body", position], json!({})),
    )
}

/// serde_json reports 1-based lines and columns; FastAPI reports an offset.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = bytes
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_with_parameters_and_suffixes_are_json() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
    }

    #[test]
    fn json_error_offsets_count_across_lines() {
        assert_eq!(byte_offset(b"{\n  x", 2, 3), 4);
        assert_eq!(byte_offset(b"{", 1, 1), 0);
        assert_eq!(byte_offset(b"", 5, 9), 0);
    }
}
