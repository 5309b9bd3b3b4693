//! Dashboard JWTs: the claims we read, and minting for development.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims HydraCore reads from a dashboard token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: Uuid,
    pub role: String,
    pub exp: i64,
    pub iat: i64,
}

/// Mints an HS256 token, as `hydracore token` and `serve --demo` do.
pub fn mint_hs256(
    secret: &str,
    tenant_id: Uuid,
    role: &str,
    sub: &str,
    ttl: std::time::Duration,
) -> anyhow::Result<(String, Claims)> {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs())?;
    let claims = Claims {
        sub: sub.to_owned(),
        tenant_id,
        role: role.to_owned(),
        iat: now,
        exp: now.saturating_add(ttl),
    };
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?;
    Ok((token, claims))
}
