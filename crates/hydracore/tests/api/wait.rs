//! Waiting for a change: a read with `If-None-Match` answers 304 while the
//! record is at that version, and with `Prefer: wait=N` holds the request
//! until a change (200 with the new record) or N seconds (304).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Body, TestApp};

#[tokio::test]
async fn a_read_at_the_version_the_client_has_is_304_and_another_is_200() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let path = app.agent.workflow(&id);
    let key = Some(app.agent.key.as_str());
    let same = app
        .request(
            Method::GET,
            &path,
            key,
            Body::None,
            &[("if-none-match", "\"1\"")],
        )
        .await;
    assert_eq!((same.status, same.header("etag")), (304, Some("\"1\"")));
    let weak = app
        .request(
            Method::GET,
            &path,
            key,
            Body::None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(weak.status, 304);
    let older = app
        .request(
            Method::GET,
            &path,
            key,
            Body::None,
            &[("if-none-match", "\"0\"")],
        )
        .await;
    assert_eq!(
        (older.status, older.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
}

#[tokio::test]
async fn an_agent_waiting_for_the_human_gets_the_record_as_soon_as_it_is_resumed() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let waiting = {
        let client = app.client().clone();
        let url = format!("{}{}", app.base_url, app.agent.workflow(&id));
        let key = app.agent.key.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client
                .get(url)
                .bearer_auth(key)
                .header("if-none-match", "\"2\"")
                .header("prefer", "wait=20")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = app.admin_jwt(app.agent.tenant_id, "alice");
    let resumed = app
        .request(
            Method::POST,
            &format!("/v1/workflows/{id}/resume"),
            Some(&admin),
            Body::Json(json!({"resume_data": {"approved": true}})),
            &[],
        )
        .await;
    assert_eq!(resumed.status, 200);
    let (status, record, took) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(record["status"], json!("active"));
    assert_eq!(record["workflow_state"]["approved"], json!(true));
    assert!(took < Duration::from_secs(5), "woke after {took:?}");
}

#[tokio::test]
async fn a_wait_without_a_change_ends_in_304_after_its_time_capped_by_the_setting() {
    let app = TestApp::spawn_with(|s| s.limits.max_wait = Duration::from_secs(1)).await;
    let id = app.create_workflow(&app.agent).await;
    let started = Instant::now();
    let r = app
        .request(
            Method::GET,
            &app.agent.workflow(&id),
            Some(&app.agent.key),
            Body::None,
            &[("if-none-match", "\"1\""), ("prefer", "wait=30")],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.status, 304);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
