//! Instances and the credentials that act for them.

use hydracore_domain::Timestamp;
use serde_json::Value;
use uuid::Uuid;

/// A deployed agent of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// The agent runtime's key, bound to one instance.
    Proxy,
    /// A tenant API key for the dashboard, with scopes.
    Api,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Proxy => "proxy",
            CredentialKind::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "proxy" => Some(CredentialKind::Proxy),
            "api" => Some(CredentialKind::Api),
            _ => None,
        }
    }
}

/// A stored credential: everything but the key, which is never kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: Uuid,
    pub kind: CredentialKind,
    pub tenant_id: Uuid,
    pub instance_id: Option<Uuid>,
    pub scopes: Vec<String>,
    pub key_prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl Credential {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// What `keys list --json` shows of it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "kind": self.kind.as_str(),
            "tenant_id": self.tenant_id,
            "instance_id": self.instance_id,
            "scopes": self.scopes,
            "key_prefix": self.key_prefix,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        })
    }
}

/// A credential about to be stored, with the hash of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredential {
    pub credential: Credential,
    pub key_hash: Vec<u8>,
}
