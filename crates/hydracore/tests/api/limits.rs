//! Limits that keep one client from hurting the others: a rate per
//! credential, a budget of failed authentications per address, a bounded
//! wait per request, and `/metrics` kept off the public port.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Body, TestApp};
use hydracore::http::limits::parse_rate;

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_the_wait_and_other_keys_do_not() {
    let app = TestApp::spawn_with(|s| {
        s.limits.per_credential = parse_rate("1/s:5").unwrap();
    })
    .await;
    let path = app.agent.workflows();
    let key = Some(app.agent.key.as_str());
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = app.request(Method::GET, &path, key, Body::None, &[]).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r
                .header("retry-after")
                .is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
            assert_eq!(r.header("ratelimit-limit"), Some("5"));
            assert_eq!(r.header("ratelimit-remaining"), Some("0"));
            assert!(r.header("ratelimit-reset").is_some());
            assert_eq!(
                r.body,
                json!({"detail": "Too many requests; retry after the time in Retry-After"})
            );
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );

    let other = app.new_agent(app.agent.tenant_id).await;
    let r = app
        .request(
            Method::GET,
            &other.workflows(),
            Some(&other.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "another instance's key has its own bucket");
}

#[tokio::test]
async fn an_address_that_keeps_sending_bad_keys_is_refused_before_any_lookup() {
    let app = TestApp::spawn_with(|s| {
        s.limits.failed_auth = parse_rate("1/s:10").unwrap();
    })
    .await;
    let path = app.agent.workflows();
    let mut statuses = Vec::new();
    for n in 0..30 {
        let garbage = format!("hcp_garbage_{n}");
        let r = app
            .request(Method::GET, &path, Some(&garbage), Body::None, &[])
            .await;
        statuses.push(r.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[11..].iter().all(|s| *s == 429), "{statuses:?}");
    // The address is refused whatever it sends, until its budget refills.
    let r = app
        .request(Method::GET, &path, Some(&app.agent.key), Body::None, &[])
        .await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_when_the_proxy_in_front_is_trusted() {
    for trusted in [false, true] {
        let app = TestApp::spawn_with(|s| {
            s.limits.failed_auth = parse_rate("1/s:3").unwrap();
            s.limits.trust_forwarded_for = trusted;
        })
        .await;
        let path = app.agent.workflows();
        for n in 0..5 {
            let garbage = format!("hcp_garbage_{n}");
            let from = [("x-forwarded-for", "203.0.113.9")];
            app.request(Method::GET, &path, Some(&garbage), Body::None, &from)
                .await;
        }
        // Another client behind the proxy; or, untrusted, the same peer
        // writing a header of its choosing.
        let from = [("x-forwarded-for", "192.0.2.1, 198.51.100.1")];
        let key = Some(app.agent.key.as_str());
        let r = app
            .request(Method::GET, &path, key, Body::None, &from)
            .await;
        assert_eq!(
            r.status,
            if trusted { 200 } else { 429 },
            "trusted: {trusted}"
        );
    }
}

#[tokio::test]
async fn metrics_are_not_served_on_the_api_port_without_a_token() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, "/metrics", None, Body::None, &[])
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn metrics_on_the_api_port_take_the_configured_bearer_token_only() {
    let app = TestApp::spawn_with(|s| {
        s.metrics.token = Some("metrics-secret".into());
    })
    .await;
    for wrong in [None, Some("nope")] {
        let r = app
            .request(Method::GET, "/metrics", wrong, Body::None, &[])
            .await;
        assert_eq!(r.status, 401);
    }
    let r = app
        .request(
            Method::GET,
            "/metrics",
            Some("metrics-secret"),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["raw"]
        .as_str()
        .unwrap()
        .contains("hydracore_http_requests_total"));
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("metrics.db").display());
    let mut settings =
        hydracore::config::Settings::for_tests(url, "0123456789abcdef0123456789abcdef");
    settings.metrics.listen = Some("127.0.0.1:0".into());
    let app = hydracore::startup::App::build(&settings).await.unwrap();
    let (api, metrics) = (app.local_addr().unwrap(), app.metrics_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("hydracore_db_connections"), "{text}");
    let on_api = reqwest::get(format!("http://{api}/metrics")).await.unwrap();
    assert_eq!(on_api.status(), 404, "still not on the API port");
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn more_requests_than_the_server_takes_at_once_are_answered_503_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.load.max_in_flight = 1;
        s.load.request_timeout = Some(Duration::from_secs(30));
    })
    .await;
    let path = app.agent.workflows();
    let key = app.agent.key.clone();
    let requests = (0..40).map(|_| {
        let (client, url, key) = (
            reqwest::Client::new(),
            format!("{}{path}", app.base_url),
            key.clone(),
        );
        tokio::spawn(async move {
            let r = client.get(url).bearer_auth(key).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers().get("retry-after").is_some(),
            )
        })
    });
    let mut answers = Vec::new();
    for r in requests {
        answers.push(r.await.unwrap());
    }
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 503),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(s, _)| *s == 200));
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == 503)
            .all(|(_, retry)| *retry),
        "every 503 says when to retry"
    );
}

#[tokio::test]
async fn an_oversized_history_entry_or_a_system_actor_is_a_422_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let big = "x".repeat(64 * 1024);
    for (body, field) in [
        (
            json!({"action": "note", "action_detail": {"text": big}}),
            "action_detail",
        ),
        (json!({"action": "note", "actor": "system"}), "actor"),
        (json!({"action": "note", "stage": "s".repeat(256)}), "stage"),
    ] {
        let r = app.advance(&app.agent, &id, body).await;
        assert_eq!(r.status, 422, "{field}");
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", field]));
    }
    assert_eq!(app.get(&app.agent, &id).await.body["version"], json!(1));
}

#[tokio::test]
async fn merges_that_would_grow_the_state_past_1_mib_are_a_422_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let chunk = "x".repeat(600 * 1024);
    let r = app
        .advance(
            &app.agent,
            &id,
            json!({"action": "a", "workflow_state": {"a": chunk}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .advance(
            &app.agent,
            &id,
            json!({"action": "b", "workflow_state": {"b": chunk}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("value_error".to_owned(), json!(["body", "workflow_state"]))]
    );
    let read = app.get(&app.agent, &id).await;
    assert_eq!(read.body["version"], json!(2));
    assert!(read.body["workflow_state"].get("b").is_none());
}
