//! Credentials: opaque keys (proxy and tenant API keys) and JWTs.

pub mod jwt;
pub mod keys;

/// The API key scopes, in the original platform's `<resource>:<verb>` form.
pub const SCOPE_READ: &str = "workflows:read";
pub const SCOPE_WRITE: &str = "workflows:write";
/// Lists webhook endpoints and their deliveries.
pub const SCOPE_WEBHOOKS_READ: &str = "webhooks:read";
/// Creates, changes and deletes webhook endpoints, rotates their secrets
/// and retries deliveries.
pub const SCOPE_WEBHOOKS_WRITE: &str = "webhooks:write";
pub const ALL_SCOPES: [&str; 4] = [
    SCOPE_READ,
    SCOPE_WRITE,
    SCOPE_WEBHOOKS_READ,
    SCOPE_WEBHOOKS_WRITE,
];
