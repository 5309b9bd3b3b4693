use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Body, Credential, TestApp};

#[tokio::test]
async fn a_request_without_a_key_is_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, &app.agent.workflows(), None, Body::None, &[])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.body, json!({"detail": "Not authenticated"}));
}

#[tokio::test]
async fn an_unknown_key_or_another_scheme_is_401() {
    let app = TestApp::spawn().await;
    let r = app
        .request(
            Method::GET,
            &app.agent.workflows(),
            Some("hcp_nope"),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let basic = format!("Basic {}", app.agent.key);
    let r = app
        .request(
            Method::GET,
            &app.agent.workflows(),
            None,
            Body::None,
            &[("authorization", basic.as_str())],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let app = TestApp::spawn().await;
    assert_eq!(app.list(&app.agent, "").await.status, 200);
    assert!(app.store.revoke_credential(app.agent.key_id).await.unwrap());
    assert_eq!(app.list(&app.agent, "").await.status, 401);
}

/// A key that has just worked may be answered from memory on its next
/// lookup (the PostgreSQL backend caches them); every route that reads or
/// writes data must still refuse it the moment it is revoked. Each route
/// gets a key of its own, used once just before.
#[tokio::test]
async fn a_key_revoked_right_after_use_is_refused_on_every_data_route() {
    let app = TestApp::spawn().await;
    let tenant = app.agent.tenant_id;
    for route in ["get", "list", "advance", "suspend", "create"] {
        let agent = app.new_agent(tenant).await;
        let id = app.create_workflow(&agent).await;
        assert!(app.store.revoke_credential(agent.key_id).await.unwrap());
        let status = match route {
            "get" => app.get(&agent, &id).await.status,
            "list" => app.list(&agent, "").await.status,
            "advance" => {
                app.advance(&agent, &id, json!({"action": "x"}))
                    .await
                    .status
            }
            "suspend" => app.suspend(&agent, &id, json!({"step": "x"})).await.status,
            "create" => {
                app.create(
                    &agent,
                    json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"}),
                )
                .await
                .status
            }
            _ => {
                let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"});
                app.request(
                    Method::POST,
                    &agent.workflows(),
                    Some(&agent.key),
                    Body::Json(body),
                    &[("idempotency-key", "revoked-retry")],
                )
                .await
                .status
            }
        };
        assert_eq!(status, 401, "{route}");
        // Nothing the revoked key tried landed.
        let (_, reader) = app.api_key(tenant, &["workflows:read"]).await;
        let mine = format!("/v1/workflows?instance_id={}", agent.instance_id);
        let r = app
            .dashboard(Method::GET, &mine, &Credential::ApiKey(reader), Body::None)
            .await;
        assert_eq!(r.body["total"], 1, "{route}");
        assert_eq!(r.body["workflows"][0]["version"], 1, "{route}");
    }
    let id = app.create_workflow(&app.agent).await;
    for (method, path) in [
        (Method::GET, format!("/v1/workflows/{id}")),
        (Method::GET, "/v1/workflows".to_owned()),
        (Method::GET, "/v1/workflows/suspended".to_owned()),
        (Method::POST, format!("/v1/workflows/{id}/abort")),
    ] {
        let (key_id, key) = app
            .api_key(tenant, &["workflows:read", "workflows:write"])
            .await;
        let key = Credential::ApiKey(key);
        let used = app
            .dashboard(Method::GET, "/v1/workflows", &key, Body::None)
            .await;
        assert_eq!(used.status, 200);
        assert!(app.store.revoke_credential(key_id).await.unwrap());
        let r = app.dashboard(method, &path, &key, Body::None).await;
        assert_eq!(r.status, 401, "{path}");
    }
    // Nothing the revoked keys tried landed.
    let r = app.get(&app.agent, &id).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["history"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_key_used_on_another_instances_path_is_403_on_every_route() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let id = app.create_workflow(&sibling).await;
    let key = Some(app.agent.key.as_str());
    let routes = [
        (Method::GET, sibling.workflows(), Body::None),
        (
            Method::POST,
            sibling.workflows(),
            Body::Json(json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"})),
        ),
        (Method::GET, sibling.workflow(&id), Body::None),
        (
            Method::PATCH,
            sibling.workflow(&id),
            Body::Json(json!({"action": "x"})),
        ),
        (
            Method::POST,
            format!("{}/suspend", sibling.workflow(&id)),
            Body::Json(json!({"step": "x"})),
        ),
        (
            Method::POST,
            format!("{}/resume", sibling.workflow(&id)),
            Body::None,
        ),
    ];
    for (method, path, body) in routes {
        let r = app.request(method.clone(), &path, key, body, &[]).await;
        assert_eq!(r.status, 403, "{method} {path}");
        assert!(r.body["detail"].is_string());
    }
    let w = app.get(&sibling, &id).await.body;
    assert_eq!(w["history"].as_array().unwrap().len(), 1);
    assert_eq!(app.list(&sibling, "").await.body["total"], 1);
}

#[tokio::test]
async fn an_api_key_is_not_a_proxy_key() {
    let app = TestApp::spawn().await;
    let api = hydracore::provision::create_api_key(
        app.store.as_ref(),
        app.agent.tenant_id,
        &["workflows:read".into()],
    )
    .await
    .unwrap();
    let r = app
        .request(
            Method::GET,
            &app.agent.workflows(),
            Some(&api.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
}
