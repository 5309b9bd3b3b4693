//! Events: every create and change becomes one event, read in order as
//! pages or as a Server-Sent Events stream that resumes where it left off.

use std::time::Duration;

use futures::StreamExt;
use hydracore_storage::Workflows;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Agent, Body, Credential, TestApp, TestResponse};

fn types(page: &TestResponse) -> Vec<String> {
    page.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn agent_events(app: &TestApp, agent: &Agent, query: &str) -> TestResponse {
    let path = format!("/internal/v1/instances/{}/events{query}", agent.instance_id);
    app.request(Method::GET, &path, Some(&agent.key), Body::None, &[])
        .await
}

/// The page `read` answers once it holds `n` events. On PostgreSQL an
/// event is readable once every transaction older than it has ended, in
/// the whole cluster (other tests' included): a moment after its commit.
async fn settled<F>(n: usize, read: impl Fn() -> F) -> TestResponse
where
    F: std::future::Future<Output = TestResponse>,
{
    for _ in 0..50 {
        let page = read().await;
        if page.status != 200 || types(&page).len() >= n {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    read().await
}

#[tokio::test]
async fn every_change_is_one_event_in_order_with_the_record_after_it() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.advance(&app.agent, &id, json!({"action": "contacted"}))
        .await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    app.resume(&app.agent, &id, None).await;
    app.advance(
        &app.agent,
        &id,
        json!({"action": "done", "status": "completed"}),
    )
    .await;
    let other = app.create_workflow(&app.agent).await;
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    app.dashboard(
        Method::POST,
        &format!("/v1/workflows/{other}/abort"),
        &admin,
        Body::None,
    )
    .await;

    let page = settled(7, || {
        app.dashboard(Method::GET, "/v1/events", &admin, Body::None)
    })
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        types(&page),
        [
            "workflow.created",
            "workflow.advanced",
            "workflow.suspended",
            "workflow.resumed",
            "workflow.completed",
            "workflow.created",
            "workflow.aborted"
        ]
    );
    let suspended = &page.body["events"][2];
    assert_eq!(suspended["workflow_id"], json!(id));
    assert_eq!(suspended["version"], json!(3));
    assert_eq!(suspended["instance_id"], json!(app.agent.instance_id));
    assert_eq!(suspended["tenant_id"], json!(app.agent.tenant_id));
    assert_eq!(
        suspended["actor"],
        json!(format!("instance:{}", app.agent.instance_id))
    );
    assert_eq!(suspended["data"]["status"], json!("suspended"));
    assert_eq!(suspended["data"]["suspended_step"], json!("approve"));
    assert!(suspended["data"].get("history").is_none());
    assert!(suspended["occurred_at"].is_string());

    // Pages: after the last one read, and filters.
    let first = app
        .dashboard(Method::GET, "/v1/events?limit=3", &admin, Body::None)
        .await;
    let after = first.body["next_after"].as_str().unwrap();
    let rest = app
        .dashboard(
            Method::GET,
            &format!("/v1/events?after={after}"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(types(&first).len() + types(&rest).len(), 7);
    assert_eq!(types(&rest)[0], "workflow.resumed");
    let of_other = app
        .dashboard(
            Method::GET,
            &format!("/v1/events?workflow_id={other}"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(types(&of_other), ["workflow.created", "workflow.aborted"]);
    let created = app
        .dashboard(
            Method::GET,
            "/v1/events?type=workflow.created&type=workflow.completed",
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(
        types(&created),
        ["workflow.created", "workflow.completed", "workflow.created"]
    );
    let bad = app
        .dashboard(Method::GET, "/v1/events?type=nope", &admin, Body::None)
        .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn a_proxy_key_sees_its_instances_events_and_an_api_key_its_tenants() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let stranger = app.new_agent(Uuid::new_v4()).await;
    app.create_workflow(&app.agent).await;
    app.create_workflow(&sibling).await;
    app.create_workflow(&stranger).await;
    let mine = settled(1, || agent_events(&app, &app.agent, "")).await;
    assert_eq!(types(&mine).len(), 1);
    let siblings = settled(1, || agent_events(&app, &sibling, "")).await;
    assert_eq!(types(&siblings).len(), 1);
    let (_, key) = app.api_key(app.agent.tenant_id, &["workflows:read"]).await;
    let key = Credential::ApiKey(key);
    let tenant = settled(2, || {
        app.dashboard(Method::GET, "/v1/events", &key, Body::None)
    })
    .await;
    assert_eq!(types(&tenant).len(), 2);
    let wrong_path = format!("/internal/v1/instances/{}/events", sibling.instance_id);
    let r = app
        .request(
            Method::GET,
            &wrong_path,
            Some(&app.agent.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
}

/// The events of an open stream, `n` of them, as (id, type).
async fn read_stream(response: reqwest::Response, n: usize) -> Vec<(String, String)> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            if let (Some(id), Some(kind)) = (field("id:"), field("event:")) {
                events.push((id, kind));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_stream_pushes_new_events_and_resumes_after_the_last_one_it_saw() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let url = format!(
        "{}/internal/v1/instances/{}/events",
        app.base_url, app.agent.instance_id
    );
    let open = |last: Option<String>| {
        let mut request = app
            .client()
            .get(&url)
            .bearer_auth(&app.agent.key)
            .header("accept", "text/event-stream");
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        request.send()
    };
    let stream = open(None).await.unwrap();
    assert_eq!(stream.status(), 200);
    let reader = tokio::spawn(read_stream(stream, 3));
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.advance(&app.agent, &id, json!({"action": "a"})).await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let seen = reader.await.unwrap();
    let kinds: Vec<&str> = seen.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "workflow.created",
            "workflow.advanced",
            "workflow.suspended"
        ]
    );

    // Disconnected; meanwhile the workflow moves on; resumed after the last
    // event seen, every later one comes once.
    app.resume(&app.agent, &id, None).await;
    app.advance(&app.agent, &id, json!({"action": "b"})).await;
    let resumed = open(Some(seen[2].0.clone())).await.unwrap();
    let later = read_stream(resumed, 2).await;
    let kinds: Vec<&str> = later.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, ["workflow.resumed", "workflow.advanced"]);
}

#[tokio::test]
async fn a_resume_point_older_than_the_retention_is_410_not_a_silent_gap() {
    let app = TestApp::spawn_with(|s| {
        s.sweep_interval = Duration::from_secs(3600);
        s.event_retention = Duration::from_millis(1);
    })
    .await;
    app.create_workflow(&app.agent).await;
    let page = settled(1, || agent_events(&app, &app.agent, "")).await;
    let old: Value = page.body["events"][0]["id"].clone();
    app.create_workflow(&app.agent).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let workflows =
        Workflows::new(app.store.clone()).with_event_retention(Duration::from_millis(1));
    hydracore::sweeper::sweep_once(&workflows).await.unwrap();
    let gone = agent_events(
        &app,
        &app.agent,
        &format!("?after={}", old.as_str().unwrap()),
    )
    .await;
    assert_eq!(gone.status, 410, "{}", gone.body);
    assert!(gone.body["detail"].as_str().unwrap().contains("retention"));
}

#[tokio::test]
async fn streams_past_the_servers_limit_are_answered_503_until_one_closes() {
    let app = TestApp::spawn_with(|s| s.limits.max_streams = 1).await;
    let url = format!(
        "{}/internal/v1/instances/{}/events",
        app.base_url, app.agent.instance_id
    );
    let open = || {
        app.client()
            .get(&url)
            .bearer_auth(&app.agent.key)
            .header("accept", "text/event-stream")
            .send()
    };
    let first = open().await.unwrap();
    assert_eq!(first.status(), 200);
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    // A page of JSON is no stream: it is still answered.
    let page = agent_events(&app, &app.agent, "").await;
    assert_eq!(page.status, 200);

    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        let r = open().await.unwrap();
        if r.status() == 200 {
            reopened = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the closed stream's place is given back"
    );
}
