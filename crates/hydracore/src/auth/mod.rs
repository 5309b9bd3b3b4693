//! Credentials: opaque keys (proxy and tenant API keys) and JWTs.

pub mod jwt;
pub mod keys;

/// The API key scopes, in the original platform's `<resource>:<verb>` form.
pub const SCOPE_READ: &str = "workflows:read";
pub const SCOPE_WRITE: &str = "workflows:write";
pub const ALL_SCOPES: [&str; 2] = [SCOPE_READ, SCOPE_WRITE];
