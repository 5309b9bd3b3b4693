//! Authentication extractors. Each refuses with 401 or 403 only (or 429
//! when the credential, or the client address after failed attempts, is
//! over its rate: `limits`); why it refused is logged at debug, never told
//! to the client.

use std::marker::PhantomData;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use hydracore_domain::{Principal, Scope};
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
    /// Who history records behind the agent's changes.
    pub fn principal(&self) -> Principal {
        Principal::Instance(self.instance_id)
    }
}

impl FromRequestParts<AppState> for ProxyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate_proxy(parts, state, KeyScope::PathInstance).await
    }
}

/// The agent runtime by its proxy key alone, where no path names an
/// instance (`/mcp`): the key's instance is the scope.
#[derive(Debug, Clone)]
pub struct ProxyKeyAuth(pub ProxyAuth);

impl FromRequestParts<AppState> for ProxyKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate_proxy(parts, state, KeyScope::KeyInstance)
            .await
            .map(ProxyKeyAuth)
    }
}

/// Which instance a proxy key must belong to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyScope {
    /// The path's `{instance_id}`, else 403.
    PathInstance,
    /// Its own.
    KeyInstance,
}

async fn authenticate_proxy(
    parts: &mut Parts,
    state: &AppState,
    key_scope: KeyScope,
) -> Result<ProxyAuth, ApiError> {
    let address = client_address(parts, state);
    state.limits.check_address(address)?;
    let Some(token) = bearer_token(parts) else {
        tracing::debug!("no bearer token");
        state.limits.failed(address);
        return Err(ApiError::Unauthorized("Not authenticated"));
    };
    let credential = find_live_credential(state, token, CredentialKind::Proxy)
        .await
        .inspect_err(|e| {
            // Only a refused key counts, not a database that is away.
            if matches!(e, ApiError::Unauthorized(_)) {
                state.limits.failed(address);
            }
        })?;
    let instance_id = match key_scope {
        KeyScope::PathInstance => path_uuid(parts, state, "instance_id").await?,
        // A proxy key always has an instance; one without would match none.
        KeyScope::KeyInstance => credential.instance_id.unwrap_or_default(),
    };
    if credential.instance_id != Some(instance_id) {
        tracing::debug!(credential = %credential.id, %instance_id, "proxy key of another instance");
        state.limits.failed(address);
        return Err(ApiError::Forbidden(
            "This key is not valid for this instance",
        ));
    }
    state.limits.admit(credential.tenant_id, || {
        Principal::Instance(instance_id).to_string()
    })?;
    Ok(ProxyAuth {
        scope: Scope::instance(credential.tenant_id, instance_id).by_key(credential.id),
        instance_id,
    })
}

/// `Authorization: Bearer <token>`, if that is what the request carries.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The address the request came from, when the server knows it: the
/// connection's peer, or behind a trusted proxy the address it appended
/// last to `X-Forwarded-For` (earlier entries are the client's to write).
fn client_address(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    if state.limits.trust_forwarded_for {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|a| a.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The unrevoked credential of `kind` whose key is `key`, or 401.
pub async fn find_live_credential(
    state: &AppState,
    key: &str,
    kind: CredentialKind,
) -> Result<Credential, ApiError> {
    let hash = keys::hash(key);
    if state.limits.known_unknown(&hash) {
        tracing::debug!("unknown key (remembered)");
        return Err(ApiError::Unauthorized("Invalid credentials"));
    }
    let credential = state.store.find_credential(&hash).await?;
    if credential.is_none() {
        state.limits.remember_unknown(hash);
    }
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

/// Routes that read webhook endpoints and deliveries.
pub struct WebhooksRead;
/// Routes that change webhook endpoints or retry deliveries.
pub struct WebhooksWrite;

impl RequiredScope for WebhooksRead {
    const SCOPE: &'static str = crate::auth::SCOPE_WEBHOOKS_READ;
}

impl RequiredScope for WebhooksWrite {
    const SCOPE: &'static str = crate::auth::SCOPE_WEBHOOKS_WRITE;
}

/// A tenant admin, by JWT (`Authorization: Bearer`) or tenant API key
/// (`X-Api-Key`), allowed the route's scope `S`. When both are sent,
/// `Authorization` is used.
pub struct AdminAuth<S> {
    pub scope: Scope,
    /// Recorded in the history of what this admin does.
    pub principal: Principal,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for AdminAuth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let address = client_address(parts, state);
        state.limits.check_address(address)?;
        let admin = authenticate_admin::<S>(parts, state)
            .await
            .inspect_err(|e| {
                if matches!(e, ApiError::Unauthorized(_) | ApiError::Forbidden(_)) {
                    state.limits.failed(address);
                }
            })?;
        state
            .limits
            .admit(admin.scope.tenant_id, || admin.principal.to_string())?;
        Ok(admin)
    }
}

/// The admin `parts` authenticate, allowed the route's scope `S`.
async fn authenticate_admin<S: RequiredScope>(
    parts: &Parts,
    state: &AppState,
) -> Result<AdminAuth<S>, ApiError> {
    let (scope, principal) = if let Some(token) = bearer_token(parts) {
        let (tenant_id, sub) = admin_from_jwt(state, token)?;
        (Scope::tenant(tenant_id), Principal::User(sub))
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
            Principal::ApiKey(credential.id),
        )
    } else {
        tracing::debug!("no JWT and no API key");
        return Err(ApiError::Unauthorized("Not authenticated"));
    };
    Ok(AdminAuth {
        scope,
        principal,
        _scope: PhantomData,
    })
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
