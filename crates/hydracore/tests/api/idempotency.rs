//! `Idempotency-Key` on create: retries return the first answer.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Agent, Body, TestApp, TestResponse};

async fn create_with_key(app: &TestApp, agent: &Agent, key: &str, body: Value) -> TestResponse {
    app.request(
        Method::POST,
        &agent.workflows(),
        Some(&agent.key),
        Body::Json(body),
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn a_retried_create_returns_the_first_record_without_a_second_workflow() {
    let app = TestApp::spawn().await;
    let body =
        json!({"customer_id": Uuid::new_v4(), "workflow_type": "invoice_chase", "title": "INV-7"});
    let first = create_with_key(&app, &app.agent, "create-inv-7", body.clone()).await;
    assert_eq!(first.status, 201);
    // Same request, keys in another order.
    let reordered: Value = serde_json::from_str(&format!(
        "{{\"title\": \"INV-7\", \"workflow_type\": \"invoice_chase\", \"customer_id\": {}}}",
        body["customer_id"]
    ))
    .unwrap();
    let retry = create_with_key(&app, &app.agent, "create-inv-7", reordered).await;
    assert_eq!(retry.status, 201);
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.list(&app.agent, "").await.body["total"], 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"});
    assert_eq!(
        create_with_key(&app, &app.agent, "k1", body).await.status,
        201
    );
    let other = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"});
    let r = create_with_key(&app, &app.agent, "k1", other).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("value_error".into(), json!(["header", "idempotency-key"]))]
    );
    assert_eq!(app.list(&app.agent, "").await.body["total"], 1);
}

#[tokio::test]
async fn a_retry_while_the_first_is_in_flight_is_409() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"});
    // The first request has claimed the key and not finished.
    let key = hydracore_domain::idempotency::IdempotencyKey::parse("k-busy").unwrap();
    let fingerprint = hydracore_domain::idempotency::fingerprint(&body);
    app.store
        .claim_idempotency_key(
            hydracore_domain::Scope::instance(app.agent.tenant_id, app.agent.instance_id),
            app.agent.instance_id,
            &key,
            &fingerprint,
        )
        .await
        .unwrap();
    let r = create_with_key(&app, &app.agent, "k-busy", body).await;
    assert_eq!(r.status, 409);
    assert!(r.body["detail"].as_str().unwrap().contains("in progress"));
    assert_eq!(app.list(&app.agent, "").await.body["total"], 0);
}

#[tokio::test]
async fn keys_are_scoped_to_the_instance() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"});
    let a = create_with_key(&app, &app.agent, "shared", body.clone()).await;
    let b = create_with_key(&app, &sibling, "shared", body).await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.body["id"], b.body["id"]);
}

#[tokio::test]
async fn an_invalid_body_does_not_use_up_the_key_and_a_bad_key_is_422() {
    let app = TestApp::spawn().await;
    let r = create_with_key(&app, &app.agent, "k2", json!({"workflow_type": "lead"})).await;
    assert_eq!(r.status, 422);
    let r = create_with_key(
        &app,
        &app.agent,
        "k2",
        json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"}),
    )
    .await;
    assert_eq!(r.status, 201);
    let long = "k".repeat(300);
    let r = create_with_key(
        &app,
        &app.agent,
        &long,
        json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"}),
    )
    .await;
    assert_eq!(
        r.validation_errors(),
        vec![("value_error".into(), json!(["header", "idempotency-key"]))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_make_one_workflow() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead"});
    let answers = futures::future::join_all(
        (0..20).map(|_| create_with_key(&app, &app.agent, "k-race", body.clone())),
    )
    .await;
    let created: Vec<&TestResponse> = answers.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    assert!(
        answers.iter().all(|r| r.status == 201 || r.status == 409),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(created
        .iter()
        .all(|r| r.body["id"] == created[0].body["id"]));
    assert_eq!(app.list(&app.agent, "").await.body["total"], 1);
}
