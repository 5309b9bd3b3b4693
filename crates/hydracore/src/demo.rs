//! `serve --demo`: one tenant, one instance and working credentials, so a
//! newcomer can call the API at once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{jwt, ALL_SCOPES};
use crate::provision;
use hydracore_storage::Store;

pub struct DemoCredentials {
    pub tenant_id: Uuid,
    pub instance_id: Uuid,
    pub proxy_key: String,
    pub api_key: String,
    pub admin_jwt: String,
    /// Signs in to the web page once, within ten minutes.
    pub ui_link: String,
}

/// `public_url`: where the web page is reached, for its sign-in link.
pub async fn seed(
    store: Arc<dyn Store>,
    jwt_secret: &str,
    public_url: &str,
) -> anyhow::Result<DemoCredentials> {
    let store_ref = store.as_ref();
    let tenant_id = Uuid::new_v4();
    let instance =
        provision::create_instance(store_ref, tenant_id, Some("demo-agent".into())).await?;
    let proxy = provision::create_proxy_key(store_ref, instance.id).await?;
    let scopes: Vec<String> = ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let api = provision::create_api_key(store_ref, tenant_id, &scopes).await?;
    let (admin_jwt, _) = jwt::mint_hs256(
        jwt_secret,
        tenant_id,
        "admin",
        "demo-admin",
        Duration::from_secs(24 * 3600),
    )?;
    let (ui_link, _) =
        crate::ui::session::sign_in_link(Arc::clone(&store), tenant_id, "demo-admin", public_url)
            .await?;
    Ok(DemoCredentials {
        tenant_id,
        instance_id: instance.id,
        proxy_key: proxy.key,
        api_key: api.key,
        admin_jwt,
        ui_link,
    })
}

impl DemoCredentials {
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "base_url": base_url,
            "tenant_id": self.tenant_id,
            "instance_id": self.instance_id,
            "proxy_key": self.proxy_key,
            "api_key": self.api_key,
            "admin_jwt": self.admin_jwt,
            "ui_link": self.ui_link,
        })
    }

    pub fn to_text(&self, base_url: &str) -> String {
        format!(
            "HydraCore demo data (the keys are shown this once):\n\
             \n  tenant     {}\n  instance   {}\n  proxy key  {}\n  API key    {}\n  admin JWT  {}\n\
             \nThe web page (this link signs you in once, within ten minutes):\n\n  {}\n\
             \nTry it:\n\
             \n  export HC={base_url} INSTANCE={} PROXY_KEY={}\
             \n  curl -s -X POST $HC/internal/v1/instances/$INSTANCE/workflows \\\
             \n    -H \"Authorization: Bearer $PROXY_KEY\" -H 'Content-Type: application/json' \\\
             \n    -d '{{\"customer_id\": \"{}\", \"workflow_type\": \"rent_arrears\"}}'\n",
            self.tenant_id,
            self.instance_id,
            self.proxy_key,
            self.api_key,
            self.admin_jwt,
            self.ui_link,
            self.instance_id,
            self.proxy_key,
            Uuid::new_v4(),
        )
    }
}
