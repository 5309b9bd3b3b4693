//! Who may see which workflows.

use uuid::Uuid;

/// The slice of data one request may touch: always one tenant, and for the
/// agent runtime one instance of it. Every storage query is bounded by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub tenant_id: Uuid,
    pub instance_id: Option<Uuid>,
}

impl Scope {
    pub fn instance(tenant_id: Uuid, instance_id: Uuid) -> Self {
        Self {
            tenant_id,
            instance_id: Some(instance_id),
        }
    }

    pub fn tenant(tenant_id: Uuid) -> Self {
        Self {
            tenant_id,
            instance_id: None,
        }
    }
}
