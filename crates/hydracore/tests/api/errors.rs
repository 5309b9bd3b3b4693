//! Malformed requests: clear 4xx answers, nothing written, never a 500.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Body, TestApp};

#[tokio::test]
async fn malformed_json_is_a_json_invalid_422_with_its_position() {
    let app = TestApp::spawn().await;
    let r = app
        .request(
            Method::POST,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::Raw {
                content_type: Some("application/json"),
                bytes: b"{\"customer_id\": ".to_vec(),
            },
            &[],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("json_invalid".into(), json!(["body", 16]))]
    );
    assert_eq!(r.body["detail"][0]["msg"], "JSON decode error");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let r = app
        .request(
            Method::POST,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::Raw {
                content_type: Some("text/plain"),
                bytes: b"customer_id=1".to_vec(),
            },
            &[],
        )
        .await;
    assert_eq!(r.status, 415);
    assert!(r.body["detail"].is_string());
}

#[tokio::test]
async fn a_missing_body_is_a_missing_body_422() {
    let app = TestApp::spawn().await;
    let r = app
        .request(
            Method::POST,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("missing".into(), json!(["body"]))]
    );
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(1024 * 1024 + 1);
    let body = json!({"customer_id": uuid::Uuid::new_v4(), "workflow_type": "lead", "title": big});
    let r = app.create(&app.agent, body).await;
    assert_eq!(r.status, 413);
    assert!(r.body["detail"].as_str().unwrap().contains("1 MiB"));
    assert_eq!(app.list(&app.agent, "").await.body["total"], 0);
}

#[tokio::test]
async fn a_non_uuid_path_segment_is_a_path_422() {
    let app = TestApp::spawn().await;
    let r = app.get(&app.agent, "not-a-uuid").await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("uuid_parsing".into(), json!(["path", "workflow_id"]))]
    );
}

#[tokio::test]
async fn an_unknown_path_is_404_and_a_wrong_method_is_405_in_json() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, "/nowhere", None, Body::None, &[])
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (404, json!({"detail": "Not Found"}))
    );
    let r = app
        .request(
            Method::DELETE,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (405, json!({"detail": "Method Not Allowed"}))
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_callers() {
    let app = TestApp::spawn().await;
    let r = app.get(&app.agent, &uuid::Uuid::new_v4().to_string()).await;
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let r = app
        .request(
            Method::GET,
            "/nowhere",
            None,
            Body::None,
            &[("x-request-id", "trace-123")],
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("trace-123"));
}
