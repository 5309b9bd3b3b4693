//! What operators rely on: docs, health, readiness, metrics.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Body, TestApp};

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_without_external_assets() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, "/docs/", None, Body::None, &[])
        .await;
    assert_eq!(r.status, 200);
    let html = r.body["raw"].as_str().unwrap().to_owned();
    assert!(html.contains("swagger-ui"), "{html}");
    for line in html
        .lines()
        .filter(|l| l.contains("src=") || l.contains("href="))
    {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "external asset: {line}"
        );
    }
    let script = app
        .request(
            Method::GET,
            "/docs/swagger-ui-bundle.js",
            None,
            Body::None,
            &[],
        )
        .await;
    assert_eq!(script.status, 200);
    assert!(script
        .header("content-type")
        .unwrap()
        .contains("javascript"));
}

#[tokio::test]
async fn health_and_readiness_answer_and_readiness_fails_without_a_database() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, "/healthz", None, Body::None, &[])
        .await;
    assert_eq!((r.status, r.body), (200, json!({"status": "ok"})));
    let r = app
        .request(Method::GET, "/readyz", None, Body::None, &[])
        .await;
    assert_eq!((r.status, r.body), (200, json!({"status": "ready"})));
    app.store.close().await;
    let r = app
        .request(Method::GET, "/readyz", None, Body::None, &[])
        .await;
    assert_eq!(r.status, 503);
    assert!(r.body["detail"].as_str().unwrap().contains("unavailable"));
    assert_eq!(
        app.request(Method::GET, "/healthz", None, Body::None, &[])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_report_pool_and_statuses() {
    let app = TestApp::spawn_with(|s| s.metrics.token = Some("metrics-token".into())).await;
    let id = app.create_workflow(&app.agent).await;
    app.get(&app.agent, &id).await;
    let r = app
        .request(
            Method::GET,
            "/metrics",
            Some("metrics-token"),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.body["raw"].as_str().unwrap().to_owned();
    for expected in [
        r#"hydracore_http_requests_total{method="POST",route="/internal/v1/instances/{instance_id}/workflows",status="201"}"#,
        r#"hydracore_http_request_duration_seconds_bucket{method="GET",route="/internal/v1/instances/{instance_id}/workflows/{workflow_id}",status="200",le="0.005"}"#,
        r#"hydracore_db_connections{state="idle"}"#,
        r#"hydracore_db_connections{state="in_use"}"#,
        r#"hydracore_db_connections{state="shared"}"#,
        r#"hydracore_workflows{status="active"}"#,
        r#"hydracore_workflows{status="cancelled"}"#,
    ] {
        assert!(text.contains(expected), "missing {expected}");
    }
    assert!(!text.contains(&id), "raw paths never become labels");
}
