//! Hostile bodies: refused with a 4xx, never a 500, nothing written.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Body, TestApp};

fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!([v]);
    }
    v
}

#[tokio::test]
async fn bodies_nested_deeper_than_64_levels_are_refused_anywhere_in_the_body() {
    let app = TestApp::spawn().await;
    let customer = uuid::Uuid::new_v4();
    let ok = app.create(&app.agent, json!({"customer_id": customer, "workflow_type": "lead", "workflow_state": {"a": nested(62)}})).await;
    assert_eq!(ok.status, 201);
    for body in [
        json!({"customer_id": customer, "workflow_type": "lead", "workflow_state": {"a": nested(70)}}),
        json!({"customer_id": customer, "workflow_type": "lead", "ignored": nested(100)}),
    ] {
        let r = app.create(&app.agent, body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("64 levels"));
    }
    let deeper_than_the_parser = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = app
        .request(
            Method::POST,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::Raw {
                content_type: Some("application/json"),
                bytes: deeper_than_the_parser.into_bytes(),
            },
            &[],
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(app.list(&app.agent, "").await.body["total"], 1);
}

#[tokio::test]
async fn bodies_with_more_than_ten_thousand_keys_are_refused() {
    let app = TestApp::spawn().await;
    let wide: serde_json::Map<String, Value> =
        (0..10_001).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = app
        .create(&app.agent, json!({"customer_id": uuid::Uuid::new_v4(), "workflow_type": "lead", "workflow_state": wide}))
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body["detail"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("10000"));
    assert_eq!(app.list(&app.agent, "").await.body["total"], 0);
}
