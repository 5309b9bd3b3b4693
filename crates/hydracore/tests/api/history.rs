//! A record embeds only its newest history entries; the history routes
//! page through all of them, exactly once each.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Body, TestApp};

/// Advances `id` until its version is `version`, with minimal answers.
async fn advance_to(app: &TestApp, id: &str, version: i64) {
    let path = app.agent.workflow(id);
    for n in 2..=version {
        let r = app
            .request(
                Method::PATCH,
                &path,
                Some(&app.agent.key),
                Body::Json(json!({"action": format!("step_{n}")})),
                &[("prefer", "return=minimal")],
            )
            .await;
        assert_eq!(r.status, 204);
    }
}

fn seqs(entries: &Value) -> Vec<i64> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_long_history_is_embedded_newest_first_cut_with_its_total_and_a_link() {
    let app = TestApp::spawn_with(|s| s.store.history_inline = 5).await;
    let id = app.create_workflow(&app.agent).await;
    advance_to(&app, &id, 12).await;

    let r = app.get(&app.agent, &id).await;
    assert_eq!(seqs(&r.body["history"]), vec![8, 9, 10, 11, 12]);
    assert_eq!(r.body["history_total"], json!(12));
    let link = format!("<{}/history>; rel=\"history\"", app.agent.workflow(&id));
    assert_eq!(r.header("link"), Some(link.as_str()));

    let admin = app
        .request(
            Method::GET,
            &format!("/v1/workflows/{id}"),
            Some(&app.admin_jwt(app.agent.tenant_id, "alice")),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(seqs(&admin.body["history"]), vec![8, 9, 10, 11, 12]);

    let list = app
        .request(
            Method::GET,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(list.body["workflows"][0]["history_total"], json!(12));
    assert_eq!(
        list.body["workflows"][0]["history"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_short_history_looks_as_the_original_service_answers_it() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let r = app.get(&app.agent, &id).await;
    assert!(r.body.get("history_total").is_none());
    assert_eq!(r.header("link"), None);
}

#[tokio::test]
async fn the_history_routes_page_through_every_entry_exactly_once() {
    let app = TestApp::spawn_with(|s| s.store.history_inline = 5).await;
    let id = app.create_workflow(&app.agent).await;
    advance_to(&app, &id, 23).await;
    let jwt = app.admin_jwt(app.agent.tenant_id, "alice");
    for (path, token) in [
        (
            format!("{}/history", app.agent.workflow(&id)),
            app.agent.key.clone(),
        ),
        (format!("/v1/workflows/{id}/history"), jwt),
    ] {
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = app
                .request(
                    Method::GET,
                    &format!("{path}?after={after}&limit=10"),
                    Some(&token),
                    Body::None,
                    &[],
                )
                .await;
            assert_eq!(page.status, 200, "{}", page.body);
            seen.extend(seqs(&page.body["entries"]));
            match page.body["next_after"].as_i64() {
                Some(next) => after = next,
                None => break,
            }
        }
        assert_eq!(seen, (1..=23).collect::<Vec<_>>(), "{path}");
    }
}

#[tokio::test]
async fn another_instances_or_tenants_history_is_not_found_and_bad_pages_are_422() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let other = app.new_agent(app.agent.tenant_id).await;
    let r = app
        .request(
            Method::GET,
            &format!("{}/history", other.workflow(&id)),
            Some(&other.key),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    let stranger = app.admin_jwt(uuid::Uuid::new_v4(), "mallory");
    let r = app
        .request(
            Method::GET,
            &format!("/v1/workflows/{id}/history"),
            Some(&stranger),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    for bad in ["limit=0", "limit=1001", "after=-1"] {
        let r = app
            .request(
                Method::GET,
                &format!("{}/history?{bad}", app.agent.workflow(&id)),
                Some(&app.agent.key),
                Body::None,
                &[],
            )
            .await;
        assert_eq!(r.status, 422, "{bad}");
    }
}

#[tokio::test]
async fn every_entry_records_who_was_authenticated_whatever_the_actor_says() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.advance(
        &app.agent,
        &id,
        json!({"action": "approved", "actor": "the-landlord"}),
    )
    .await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let (key_id, key) = app
        .api_key(app.agent.tenant_id, &["workflows:read", "workflows:write"])
        .await;
    let by_key = app
        .dashboard(
            Method::POST,
            &format!("/v1/workflows/{id}/resume"),
            &crate::helpers::Credential::ApiKey(key),
            Body::Json(json!({"resume_data": {}})),
        )
        .await;
    assert_eq!(by_key.status, 200);
    let admin = crate::helpers::Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let by_admin = app
        .dashboard(
            Method::POST,
            &format!("/v1/workflows/{id}/abort"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(by_admin.status, 200);

    let history = app.get(&app.agent, &id).await.body["history"].clone();
    let who: Vec<(Value, Value)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].clone(), e["principal"].clone()))
        .collect();
    let instance = json!(format!("instance:{}", app.agent.instance_id));
    let api_key = json!(format!("api_key:{key_id}"));
    assert_eq!(
        who,
        vec![
            (instance.clone(), instance.clone()),
            (json!("the-landlord"), instance.clone()),
            (instance.clone(), instance),
            (api_key.clone(), api_key),
            (json!("alice"), json!("user:alice")),
        ]
    );
    // A client cannot write the field: an unknown body field is ignored.
    let other = app.create_workflow(&app.agent).await;
    let r = app
        .advance(
            &app.agent,
            &other,
            json!({"action": "x", "principal": "system"}),
        )
        .await;
    assert_eq!(
        r.body["history"][1]["principal"],
        json!(format!("instance:{}", app.agent.instance_id))
    );
}
