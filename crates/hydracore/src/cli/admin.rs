//! The administrative commands.

use std::sync::Arc;

use anyhow::Context;
use hydracore_storage::{Store, StoreOptions};
use serde_json::json;

use super::{GlobalArgs, InstancesCommand, KeysCommand, Output, TokenArgs};
use crate::auth::jwt;
use crate::provision;

async fn open(global: &GlobalArgs) -> anyhow::Result<Arc<dyn Store>> {
    let options = StoreOptions {
        max_connections: 1,
        ca_file: global.database_ca_file.clone(),
        ..StoreOptions::default()
    };
    hydracore_storage::connect(&global.database_url, &options)
        .await
        .context("opening the database")
}

pub async fn migrate(global: &GlobalArgs, output: &Output) -> anyhow::Result<()> {
    // Opening the store runs the migrations (and distributes on Citus).
    let distribution = open(global).await?.distribution();
    let text = || match &distribution {
        None => "The database schema is up to date.".into(),
        Some(d) => format!(
            "The database schema is up to date, on Citus: {} distributed by {} over {} workers \
             ({} shards each, co-located); reference tables: {}.",
            d.distributed.join(", "),
            d.distributed_by,
            d.workers,
            d.shards,
            d.reference.join(", ")
        ),
    };
    output.emit(
        json!({ "migrated": true, "distribution": distribution }),
        text,
    );
    Ok(())
}

pub async fn instances(
    global: &GlobalArgs,
    command: InstancesCommand,
    output: &Output,
) -> anyhow::Result<()> {
    let store = open(global).await?;
    match command {
        InstancesCommand::Create { tenant, name } => {
            let i = provision::create_instance(store.as_ref(), tenant, name).await?;
            output.emit(
                json!({ "id": i.id, "tenant_id": i.tenant_id, "name": i.name, "created_at": i.created_at }),
                || format!("Created instance {} of tenant {}", i.id, i.tenant_id),
            );
        }
        InstancesCommand::List => {
            let all = store.list_instances().await?;
            let rows: Vec<_> = all
                .iter()
                .map(|i| json!({ "id": i.id, "tenant_id": i.tenant_id, "name": i.name, "created_at": i.created_at }))
                .collect();
            output.emit(json!({ "instances": rows }), || {
                let mut text = format!("{:<36}  {:<36}  {}\n", "ID", "TENANT", "NAME");
                for i in &all {
                    text += &format!(
                        "{:<36}  {:<36}  {}\n",
                        i.id,
                        i.tenant_id,
                        i.name.as_deref().unwrap_or("-")
                    );
                }
                text
            });
        }
    }
    Ok(())
}

pub async fn keys(
    global: &GlobalArgs,
    command: KeysCommand,
    output: &Output,
) -> anyhow::Result<()> {
    let store = open(global).await?;
    let issued = match command {
        KeysCommand::CreateProxy { instance } => {
            provision::create_proxy_key(store.as_ref(), instance).await?
        }
        KeysCommand::CreateApi { tenant, scopes } => {
            provision::create_api_key(store.as_ref(), tenant, &scopes).await?
        }
        KeysCommand::List => {
            let all = store.list_credentials().await?;
            let rows: Vec<_> = all.iter().map(|c| c.to_json()).collect();
            output.emit(json!({ "keys": rows }), || {
                let mut text = format!(
                    "{:<36}  {:<5}  {:<12}  {:<36}  {:<8}  SCOPES\n",
                    "ID", "KIND", "PREFIX", "TENANT", "STATE"
                );
                for c in &all {
                    let state = if c.is_revoked() { "revoked" } else { "active" };
                    text += &format!(
                        "{:<36}  {:<5}  {:<12}  {:<36}  {:<8}  {}\n",
                        c.id,
                        c.kind.as_str(),
                        c.key_prefix,
                        c.tenant_id,
                        state,
                        c.scopes.join(",")
                    );
                }
                text
            });
            return Ok(());
        }
        KeysCommand::Revoke { id } => {
            if !store.revoke_credential(id).await? {
                anyhow::bail!("no key {id}");
            }
            output.emit(json!({ "id": id, "revoked": true }), || {
                format!("Revoked key {id}")
            });
            return Ok(());
        }
    };
    let c = &issued.credential;
    output.emit(
        json!({
            "id": c.id,
            "key": issued.key,
            "kind": c.kind.as_str(),
            "tenant_id": c.tenant_id,
            "instance_id": c.instance_id,
            "scopes": c.scopes,
        }),
        || {
            format!(
                "Created {} key {}\n\n  {}\n\nStore it now: it is shown this once.",
                c.kind.as_str(),
                c.id,
                issued.key
            )
        },
    );
    Ok(())
}

pub fn token(global: &GlobalArgs, args: &TokenArgs, output: &Output) -> anyhow::Result<()> {
    let secret = global
        .jwt_secret()?
        .context("set HYDRACORE_JWT_SECRET (or --jwt-secret-file) to the server's JWT secret")?;
    let (token, claims) = jwt::mint_hs256(&secret, args.tenant, &args.role, &args.sub, args.ttl)?;
    output.emit(json!({ "token": token, "expires_at": claims.exp }), || {
        token.clone()
    });
    Ok(())
}

pub async fn ui_link(
    global: &GlobalArgs,
    args: &super::UiLinkArgs,
    output: &Output,
) -> anyhow::Result<()> {
    let store = open(global).await?;
    let (url, expires_at) =
        crate::ui::session::sign_in_link(store, args.tenant, &args.sub, &args.public_url).await?;
    output.emit(json!({ "url": url, "expires_at": expires_at }), || {
        url.clone()
    });
    Ok(())
}
