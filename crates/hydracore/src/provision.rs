//! Provisioning instances and credentials: shared by the command line,
//! `serve --demo` and the tests.

use hydracore_domain::Timestamp;
use hydracore_storage::{Credential, CredentialKind, Instance, NewCredential, Store};
use uuid::Uuid;

use crate::auth::{keys, ALL_SCOPES};

pub async fn create_instance(
    store: &dyn Store,
    tenant_id: Uuid,
    name: Option<String>,
) -> anyhow::Result<Instance> {
    let instance = Instance {
        id: Uuid::now_v7(),
        tenant_id,
        name,
        created_at: Timestamp::now(),
    };
    store.create_instance(&instance).await?;
    Ok(instance)
}

/// A new credential and its key, which exists nowhere else after this.
pub struct IssuedKey {
    pub credential: Credential,
    pub key: String,
}

async fn issue(
    store: &dyn Store,
    kind: CredentialKind,
    tenant_id: Uuid,
    instance_id: Option<Uuid>,
    scopes: Vec<String>,
) -> anyhow::Result<IssuedKey> {
    let minted = keys::mint(kind);
    let credential = Credential {
        id: Uuid::now_v7(),
        kind,
        tenant_id,
        instance_id,
        scopes,
        key_prefix: minted.prefix,
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    store
        .create_credential(&NewCredential {
            credential: credential.clone(),
            key_hash: minted.hash,
        })
        .await?;
    Ok(IssuedKey {
        credential,
        key: minted.key,
    })
}

pub async fn create_proxy_key(store: &dyn Store, instance_id: Uuid) -> anyhow::Result<IssuedKey> {
    let instance = store
        .get_instance(instance_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no instance {instance_id}"))?;
    issue(
        store,
        CredentialKind::Proxy,
        instance.tenant_id,
        Some(instance.id),
        Vec::new(),
    )
    .await
}

/// A tenant API key; `scopes` must be among [`ALL_SCOPES`].
pub async fn create_api_key(
    store: &dyn Store,
    tenant_id: Uuid,
    scopes: &[String],
) -> anyhow::Result<IssuedKey> {
    if let Some(unknown) = scopes.iter().find(|s| !ALL_SCOPES.contains(&s.as_str())) {
        anyhow::bail!(
            "unknown scope {unknown:?}; known scopes: {}",
            ALL_SCOPES.join(", ")
        );
    }
    if scopes.is_empty() {
        anyhow::bail!("an API key needs at least one scope");
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    issue(store, CredentialKind::Api, tenant_id, None, scopes).await
}
