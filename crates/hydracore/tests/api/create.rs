use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Body, TestApp};

#[tokio::test]
async fn creating_a_workflow_answers_201_with_location_and_the_full_record() {
    let app = TestApp::spawn().await;
    let customer = Uuid::new_v4();
    let r = app
        .create(
            &app.agent,
            json!({
                "customer_id": customer, "workflow_type": "rent_arrears", "stage": "intake",
                "title": "Arrears flat 3", "reference": "PROP-1", "assigned_to": "agent-a",
                "workflow_state": {"amount": 1200}, "expires_at": "2030-01-01T00:00:00+01:00"
            }),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(r.header("location"), Some(app.agent.workflow(id).as_str()));
    assert_eq!(r.header("etag"), Some("\"1\""));
    let b = &r.body;
    assert_eq!(b["tenant_id"], json!(app.agent.tenant_id));
    assert_eq!(b["instance_id"], json!(app.agent.instance_id));
    assert_eq!(b["customer_id"], json!(customer));
    assert_eq!(b["status"], "active");
    assert_eq!(b["escalation_level"], 0);
    assert_eq!(b["workflow_state"], json!({"amount": 1200}));
    assert_eq!(b["expires_at"], "2029-12-31T23:00:00.000000Z");
    assert_eq!(b["completed_at"], json!(null));
    assert_eq!(b["last_action_at"], json!(null));
    for field in ["approver_id", "next_action_at", "created_at", "updated_at"] {
        assert!(b.get(field).is_some(), "missing {field}");
    }
    assert!(b["created_at"].as_str().unwrap().ends_with('Z'));
    let history = b["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["seq"], 1);
    assert_eq!(history[0]["action"], "created");
    assert_eq!(
        history[0]["actor"],
        format!("instance:{}", app.agent.instance_id)
    );
    assert_eq!(history[0]["to_status"], "active");
    assert_eq!(history[0]["to_stage"], "intake");
}

#[tokio::test]
async fn a_create_without_state_starts_with_an_empty_object() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    assert_eq!(
        app.get(&app.agent, &id).await.body["workflow_state"],
        json!({})
    );
}

#[tokio::test]
async fn a_create_needs_customer_id_and_workflow_type() {
    let app = TestApp::spawn().await;
    let r = app.create(&app.agent, json!({"title": "x"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![
            ("missing".into(), json!(["body", "customer_id"])),
            ("missing".into(), json!(["body", "workflow_type"])),
        ]
    );
    assert_eq!(r.body["detail"][0]["msg"], "Field required");
    assert_eq!(r.body["detail"][0]["input"], json!({"title": "x"}));
}

#[tokio::test]
async fn an_unknown_workflow_type_is_an_enum_error_listing_the_ten_types() {
    let app = TestApp::spawn().await;
    let r = app
        .create(
            &app.agent,
            json!({"customer_id": Uuid::new_v4(), "workflow_type": "party"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("enum".into(), json!(["body", "workflow_type"]))]
    );
    let msg = r.body["detail"][0]["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("Input should be 'lead', 'rent_arrears'"),
        "{msg}"
    );
    assert_eq!(r.body["detail"][0]["input"], "party");
}

#[tokio::test]
async fn every_bad_field_of_a_create_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let r = app
        .create(
            &app.agent,
            json!({"customer_id": "nope", "workflow_type": "lead", "workflow_state": [], "next_action_at": "soon", "title": 5}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![
            ("uuid_parsing".into(), json!(["body", "customer_id"])),
            ("string_type".into(), json!(["body", "title"])),
            ("dict_type".into(), json!(["body", "workflow_state"])),
            ("datetime_parsing".into(), json!(["body", "next_action_at"])),
        ]
    );
}

#[tokio::test]
async fn a_body_instance_id_that_contradicts_the_path_is_refused() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead", "instance_id": Uuid::new_v4()});
    let r = app.create(&app.agent, body).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![("value_error".into(), json!(["body", "instance_id"]))]
    );

    let same = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead", "instance_id": app.agent.instance_id});
    assert_eq!(app.create(&app.agent, same).await.status, 201);
}

#[tokio::test]
async fn tenant_id_always_comes_from_the_instance_never_the_body() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead", "tenant_id": Uuid::new_v4()});
    let r = app.create(&app.agent, body).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["tenant_id"], json!(app.agent.tenant_id));
}

#[tokio::test]
async fn a_create_with_prefer_minimal_answers_204_with_location_and_etag_only() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "viewing"});
    let r = app
        .request(
            Method::POST,
            &app.agent.workflows(),
            Some(&app.agent.key),
            Body::Json(body),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, json!(null));
    assert_eq!(r.header("etag"), Some("\"1\""));
    let location = r.header("location").unwrap().to_owned();
    let id = location.rsplit('/').next().unwrap();
    assert_eq!(
        app.get(&app.agent, id).await.body["workflow_type"],
        "viewing"
    );
}

#[tokio::test]
async fn text_postgres_cannot_store_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead", "workflow_state": {"a": {"b\u{0}": 1}}});
    let r = app.create(&app.agent, body).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![(
            "value_error".into(),
            json!(["body", "workflow_state", "a", "b\u{0}"])
        )]
    );
    let r = app
        .create(
            &app.agent,
            json!({"customer_id": Uuid::new_v4(), "workflow_type": "lead", "title": "a\u{0}"}),
        )
        .await;
    assert_eq!(
        r.validation_errors(),
        vec![("value_error".into(), json!(["body", "title"]))]
    );
    assert_eq!(app.list(&app.agent, "").await.body["total"], 0);
}
