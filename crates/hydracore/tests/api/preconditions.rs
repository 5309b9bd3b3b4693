//! Optimistic concurrency: `ETag` is the version, `If-Match` guards writes.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Body, Credential, TestApp};

#[tokio::test]
async fn every_record_answer_carries_its_version_as_etag() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let r = app.get(&app.agent, &id).await;
    assert_eq!(
        (r.header("etag"), r.body["version"].clone()),
        (Some("\"1\""), json!(1))
    );
    let r = app.advance(&app.agent, &id, json!({"action": "a"})).await;
    assert_eq!(
        (r.header("etag"), r.body["version"].clone()),
        (Some("\"2\""), json!(2))
    );
    let r = app.suspend(&app.agent, &id, json!({"step": "s"})).await;
    assert_eq!(r.header("etag"), Some("\"3\""));
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.advance(&app.agent, &id, json!({"action": "first"}))
        .await;
    let path = app.agent.workflow(&id);
    let key = Some(app.agent.key.as_str());
    let stale = app
        .request(
            Method::PATCH,
            &path,
            key,
            Body::Json(json!({"action": "late"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(
        stale.body,
        json!({"detail": "Precondition failed: the workflow is at version 2"})
    );
    let w = app.get(&app.agent, &id).await.body;
    assert_eq!(
        (w["version"].clone(), w["history"].as_array().unwrap().len()),
        (json!(2), 2)
    );

    let fresh = app
        .request(
            Method::PATCH,
            &path,
            key,
            Body::Json(json!({"action": "on-time"})),
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!((fresh.status, fresh.header("etag")), (200, Some("\"3\"")));
    let any = app
        .request(
            Method::PATCH,
            &path,
            key,
            Body::Json(json!({"action": "any"})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(any.status, 200);
    let garbage = app
        .request(
            Method::PATCH,
            &path,
            key,
            Body::Json(json!({"action": "x"})),
            &[("if-match", "v4")],
        )
        .await;
    assert_eq!(garbage.status, 412);
}

#[tokio::test]
async fn suspend_resume_and_abort_honour_if_match() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let key = Some(app.agent.key.as_str());
    let suspend = format!("{}/suspend", app.agent.workflow(&id));
    let r = app
        .request(
            Method::POST,
            &suspend,
            key,
            Body::Json(json!({"step": "s"})),
            &[("if-match", "\"9\"")],
        )
        .await;
    assert_eq!(r.status, 412);
    let r = app
        .request(
            Method::POST,
            &suspend,
            key,
            Body::Json(json!({"step": "s"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    let resume = format!("{}/resume", app.agent.workflow(&id));
    assert_eq!(
        app.request(
            Method::POST,
            &resume,
            key,
            Body::None,
            &[("if-match", "\"1\"")]
        )
        .await
        .status,
        412
    );
    assert_eq!(
        app.request(
            Method::POST,
            &resume,
            key,
            Body::None,
            &[("if-match", "\"2\"")]
        )
        .await
        .status,
        200
    );

    let token = app.admin_jwt(app.agent.tenant_id, "alice");
    let abort = format!("/v1/workflows/{id}/abort");
    let r = app
        .request(
            Method::POST,
            &abort,
            Some(&token),
            Body::None,
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!(r.status, 412);
    let r = app
        .dashboard(Method::POST, &abort, &Credential::Bearer(token), Body::None)
        .await;
    assert_eq!((r.status, r.header("etag")), (200, Some("\"4\"")));
}

#[tokio::test]
async fn a_weak_etag_never_satisfies_if_match() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let path = app.agent.workflow(&id);
    let weak = app
        .request(
            Method::PATCH,
            &path,
            Some(app.agent.key.as_str()),
            Body::Json(json!({"action": "weakly"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(weak.status, 412);
    assert_eq!(app.get(&app.agent, &id).await.body["version"], json!(1));
}
