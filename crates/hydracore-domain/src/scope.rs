//! Who may see which workflows.

use uuid::Uuid;

/// The slice of data one request may touch: always one tenant, and for the
/// agent runtime one instance of it. Every storage query is bounded by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub tenant_id: Uuid,
    pub instance_id: Option<Uuid>,
    /// The API key (credential) the request came with, if any. Storage
    /// checks in the request's own transaction that it is still unrevoked,
    /// so a backend may answer key lookups from a cache and a revocation
    /// still stops every read and write at once.
    pub credential_id: Option<Uuid>,
}

impl Scope {
    pub fn instance(tenant_id: Uuid, instance_id: Uuid) -> Self {
        Self {
            tenant_id,
            instance_id: Some(instance_id),
            credential_id: None,
        }
    }

    pub fn tenant(tenant_id: Uuid) -> Self {
        Self {
            tenant_id,
            instance_id: None,
            credential_id: None,
        }
    }

    /// The same scope, reached with the key of `credential_id`.
    pub fn by_key(self, credential_id: Uuid) -> Self {
        Self {
            credential_id: Some(credential_id),
            ..self
        }
    }
}
