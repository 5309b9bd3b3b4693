//! Authentication extractors. Each refuses with 401 or 403 only; why it
//! refused is logged at debug, never told to the client.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hydracore_domain::Scope;
use hydracore_storage::{Credential, CredentialKind};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::path_uuid;
use super::AppState;
use crate::auth::keys;

/// The agent runtime, authenticated by the proxy key of the path's instance.
#[derive(Debug, Clone)]
pub struct ProxyAuth {
    pub scope: Scope,
    pub instance_id: Uuid,
}

impl ProxyAuth {
    /// Who history names when the request does not say.
    pub fn actor(&self) -> String {
        format!("instance:{}", self.instance_id)
    }
}

impl FromRequestParts<AppState> for ProxyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer_token(parts) else {
            tracing::debug!("no bearer token");
            return Err(ApiError::Unauthorized("Not authenticated"));
        };
        let credential = find_live_credential(state, token, CredentialKind::Proxy).await?;
        let instance_id = path_uuid(parts, state, "instance_id").await?;
        if credential.instance_id != Some(instance_id) {
            tracing::debug!(credential = %credential.id, %instance_id, "proxy key of another instance");
            return Err(ApiError::Forbidden(
                "This key is not valid for this instance",
            ));
        }
        Ok(ProxyAuth {
            scope: Scope::instance(credential.tenant_id, instance_id).by_key(credential.id),
            instance_id,
        })
    }
}

/// `Authorization: Bearer <token>`, if that is what the request carries.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The unrevoked credential of `kind` whose key is `key`, or 401.
pub async fn find_live_credential(
    state: &AppState,
    key: &str,
    kind: CredentialKind,
) -> Result<Credential, ApiError> {
    let credential = state.store.find_credential(&keys::hash(key)).await?;
    match credential {
        Some(c) if c.kind == kind && !c.is_revoked() => Ok(c),
        Some(c) => {
            tracing::debug!(credential = %c.id, revoked = c.is_revoked(), kind = c.kind.as_str(), "credential refused");
            Err(ApiError::Unauthorized("Invalid credentials"))
        }
        None => {
            tracing::debug!("unknown key");
            Err(ApiError::Unauthorized("Invalid credentials"))
        }
    }
}

/// The scope an API key needs for a route; a JWT admin holds both.
pub trait RequiredScope: Send + Sync {
    const SCOPE: &'static str;
}

/// Routes that read: list and get.
pub struct Read;
/// Routes that act: abort, suspend, resume.
pub struct Write;

impl RequiredScope for Read {
    const SCOPE: &'static str = crate::auth::SCOPE_READ;
}

impl RequiredScope for Write {
    const SCOPE: &'static str = crate::auth::SCOPE_WRITE;
}

/// A tenant admin, by JWT (`Authorization: Bearer`) or tenant API key
/// (`X-Api-Key`), allowed the route's scope `S`. When both are sent,
/// `Authorization` is used.
pub struct AdminAuth<S> {
    pub scope: Scope,
    /// Named in the history of what this admin does.
    pub actor: String,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for AdminAuth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (scope, actor) = if let Some(token) = bearer_token(parts) {
            let (tenant_id, actor) = admin_from_jwt(state, token)?;
            (Scope::tenant(tenant_id), actor)
        } else if let Some(key) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            let credential = find_live_credential(state, key.trim(), CredentialKind::Api).await?;
            if !credential.has_scope(S::SCOPE) {
                tracing::debug!(credential = %credential.id, needs = S::SCOPE, "API key lacks the scope");
                return Err(ApiError::Forbidden(
                    "This API key lacks the scope this route needs",
                ));
            }
            (
                Scope::tenant(credential.tenant_id).by_key(credential.id),
                format!("api_key:{}", credential.id),
            )
        } else {
            tracing::debug!("no JWT and no API key");
            return Err(ApiError::Unauthorized("Not authenticated"));
        };
        Ok(AdminAuth {
            scope,
            actor,
            _scope: PhantomData,
        })
    }
}

fn admin_from_jwt(state: &AppState, token: &str) -> Result<(Uuid, String), ApiError> {
    let Some(verifier) = &state.jwt else {
        tracing::debug!("bearer token on a dashboard route, but no JWT key is configured");
        return Err(ApiError::Unauthorized("Invalid credentials"));
    };
    let verified = verifier.verify(token).map_err(|reason| {
        tracing::debug!(%reason, "JWT refused");
        ApiError::Unauthorized("Invalid credentials")
    })?;
    if verified.role != ADMIN_ROLE {
        tracing::debug!(role = %verified.role, sub = %verified.sub, "JWT role is not admin");
        return Err(ApiError::Forbidden("Admin role required"));
    }
    Ok((verified.tenant_id, verified.sub))
}

const ADMIN_ROLE: &str = "admin";
