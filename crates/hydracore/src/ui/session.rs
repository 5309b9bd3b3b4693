//! Who is signed in to the web page: a session opened with a tenant API
//! key, an admin JWT or a one-time sign-in link, kept server-side
//! (`ui_tokens`) and named by an opaque cookie.
//!
//! The cookie is `HttpOnly` and `SameSite=Strict` (and `Secure` when the
//! page is served over https), so no other site's page can send it; every
//! state-changing form carries the session's own token as well.

use std::marker::PhantomData;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hydracore_domain::{Principal, Scope};
use hydracore_storage::ui_tokens::{SessionDetail, TokenText};
use hydracore_storage::{CredentialKind, UiTokenKind};

use super::UiError;
use crate::auth::{keys, ALL_SCOPES};
use crate::http::auth::{find_live_credential, RequiredScope};
use crate::http::error::ApiError;
use crate::http::AppState;

pub const COOKIE: &str = "hydracore_session";
/// The form token of the sign-in form, before there is a session.
pub const SIGN_IN_COOKIE: &str = "hydracore_sign_in";
/// How long a `ui-link` sign-in link works.
pub const SIGN_IN_LINK_TTL: Duration = Duration::from_secs(10 * 60);

/// The web page's settings.
#[derive(Debug, Clone)]
pub struct UiSettings {
    /// How long a session lasts from sign-in.
    pub session_ttl: Duration,
    /// The longest an approval link may be made to last.
    pub approval_link_max_ttl: Duration,
    /// Where users reach the server (`https://...`), for the links it
    /// prints and hands out, and to mark cookies `Secure`; without it,
    /// links name the request's `Host`.
    pub public_url: Option<String>,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            approval_link_max_ttl: Duration::from_secs(7 * 24 * 3600),
            public_url: None,
        }
    }
}

/// A signed-in user of the page, allowed the scope `S`.
pub struct UiSession<S> {
    pub scope: Scope,
    pub principal: Principal,
    /// The form token the session's forms carry.
    pub csrf: String,
    pub token: TokenText,
    scopes: Vec<String>,
    _scope: PhantomData<S>,
}

impl<S> UiSession<S> {
    /// Whether the session holds `scope` (to show or hide what needs it).
    pub fn may(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The JWT `sub` of an admin, for "assigned to me".
    pub fn subject(&self) -> Option<&str> {
        match &self.principal {
            Principal::User(sub) => Some(sub),
            _ => None,
        }
    }

    /// Whether `posted` is this session's form token.
    pub fn check_form(&self, posted: Option<&str>) -> Result<(), UiError> {
        match posted {
            Some(token) if keys::same_secret(token, &self.csrf) => Ok(()),
            _ => Err(UiError::Csrf),
        }
    }
}

impl<S: RequiredScope> FromRequestParts<AppState> for UiSession<S> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(COOKIE)
            .and_then(|c| TokenText::parse(c.value()))
            .ok_or(UiError::SignIn)?;
        let found = state
            .ui_tokens
            .find(&token, UiTokenKind::Session)
            .await
            .map_err(UiError::from)?
            .ok_or(UiError::SignIn)?;
        let detail: SessionDetail =
            serde_json::from_value(found.detail).map_err(|_| UiError::SignIn)?;
        let principal: Principal = detail.principal.parse().map_err(|_| UiError::SignIn)?;
        let mut scope = Scope::tenant(token.tenant_id());
        if let Some(hash) = &detail.key_hash {
            // The session lives only as long as the key it was opened with.
            let live = state
                .store
                .find_credential(&STANDARD.decode(hash).map_err(|_| UiError::SignIn)?)
                .await
                .map_err(UiError::from)?
                .filter(|c| !c.is_revoked());
            let Some(credential) = live else {
                let _ = state.ui_tokens.end(&token).await;
                return Err(UiError::SignIn);
            };
            scope = scope.by_key(credential.id);
        }
        if !detail.scopes.iter().any(|s| s == S::SCOPE) {
            return Err(UiError::Forbidden(
                "Your sign-in does not allow this: it lacks the scope it needs.",
            ));
        }
        state
            .limits
            .admit(scope.tenant_id, || principal.to_string())
            .map_err(UiError::Api)?;
        Ok(Self {
            scope,
            principal,
            csrf: detail.csrf,
            token,
            scopes: detail.scopes,
            _scope: PhantomData,
        })
    }
}

/// What the sign-in form was given: a tenant API key or an admin JWT.
pub async fn session_for(state: &AppState, credential: &str) -> Result<SessionStart, UiError> {
    let credential = credential.trim();
    let refused = || UiError::BadSignIn;
    if credential.split('.').count() == 3 {
        let verifier = state.jwt.as_ref().ok_or_else(refused)?;
        let verified = verifier.verify(credential).map_err(|_| refused())?;
        if verified.role != "admin" {
            return Err(refused());
        }
        return Ok(SessionStart {
            tenant_id: verified.tenant_id,
            detail: SessionDetail {
                principal: Principal::User(verified.sub).to_string(),
                scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                key_hash: None,
                csrf: keys::random_secret(),
            },
        });
    }
    let key = find_live_credential(state, credential, CredentialKind::Api)
        .await
        .map_err(|e| match e {
            ApiError::Unauthorized(_) => refused(),
            other => UiError::Api(other),
        })?;
    Ok(SessionStart {
        tenant_id: key.tenant_id,
        detail: SessionDetail {
            principal: Principal::ApiKey(key.id).to_string(),
            scopes: key.scopes.clone(),
            key_hash: Some(STANDARD.encode(keys::hash(credential))),
            csrf: keys::random_secret(),
        },
    })
}

/// A session about to be opened.
pub struct SessionStart {
    pub tenant_id: uuid::Uuid,
    pub detail: SessionDetail,
}

/// Opens `start`'s session and answers the cookie that names it.
pub async fn open(
    state: &AppState,
    start: &SessionStart,
    secure: bool,
) -> Result<Cookie<'static>, UiError> {
    let (token, _) = state
        .ui_tokens
        .issue(
            start.tenant_id,
            UiTokenKind::Session,
            &start.detail,
            state.ui.session_ttl,
        )
        .await
        .map_err(UiError::from)?;
    Ok(cookie(COOKIE, token.to_string(), secure))
}

/// A cookie only this site's pages send, and no script reads.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

/// A sign-in link's detail: a session for the whole tenant, as a JWT
/// admin has, named `sub`.
pub fn admin_sign_in(sub: &str) -> SessionDetail {
    SessionDetail {
        principal: Principal::User(sub.to_owned()).to_string(),
        scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        key_hash: None,
        csrf: keys::random_secret(),
    }
}

/// A one-time sign-in link to the web page at `public_url`, for an admin
/// of `tenant_id` named `sub`, and when it stops working.
pub async fn sign_in_link(
    store: std::sync::Arc<dyn hydracore_storage::Store>,
    tenant_id: uuid::Uuid,
    sub: &str,
    public_url: &str,
) -> Result<(String, hydracore_domain::Timestamp), hydracore_storage::StoreError> {
    let tokens = hydracore_storage::UiTokens::new(store);
    let (token, expires_at) = tokens
        .issue(
            tenant_id,
            UiTokenKind::SignIn,
            &admin_sign_in(sub),
            SIGN_IN_LINK_TTL,
        )
        .await?;
    let base = public_url.trim_end_matches('/');
    Ok((format!("{base}/ui/sign-in/{token}"), expires_at))
}
