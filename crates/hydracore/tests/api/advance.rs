use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Body, TestApp};

#[tokio::test]
async fn an_advance_merges_state_changes_fields_and_appends_history() {
    let app = TestApp::spawn().await;
    let id = app
        .create_with(&app.agent, json!({"stage": "intake", "workflow_state": {"contact": {"email": "a@b.c", "phone": "1"}, "tries": 0}}))
        .await;
    let approver = Uuid::new_v4();
    let r = app
        .advance(
            &app.agent,
            &id,
            json!({
                "action": "contacted", "action_detail": {"channel": "sms"}, "stage": "chasing",
                "status": "awaiting_approval", "escalation_level": 2, "approver_id": approver,
                "assigned_to": "bob", "next_action_at": "2031-05-06T07:08:09Z",
                "workflow_state": {"contact": {"phone": null, "sms": true}, "tries": 1}
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(
        b["workflow_state"],
        json!({"contact": {"email": "a@b.c", "sms": true}, "tries": 1})
    );
    assert_eq!(b["stage"], "chasing");
    assert_eq!(b["status"], "awaiting_approval");
    assert_eq!(b["escalation_level"], 2);
    assert_eq!(b["approver_id"], json!(approver));
    assert_eq!(b["assigned_to"], "bob");
    assert_eq!(b["next_action_at"], "2031-05-06T07:08:09.000000Z");
    assert!(b["last_action_at"].is_string());
    assert_eq!(r.header("etag"), Some("\"2\""));
    let entry = &b["history"][1];
    assert_eq!(entry["seq"], 2);
    assert_eq!(entry["action"], "contacted");
    assert_eq!(entry["action_detail"], json!({"channel": "sms"}));
    assert_eq!(
        entry["actor"],
        format!("instance:{}", app.agent.instance_id)
    );
    assert_eq!(
        (entry["from_status"].clone(), entry["to_status"].clone()),
        (json!("active"), json!("awaiting_approval"))
    );
    assert_eq!(
        (entry["from_stage"].clone(), entry["to_stage"].clone()),
        (json!("intake"), json!("chasing"))
    );
}

#[tokio::test]
async fn an_advance_names_the_actor_the_agent_gives() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let r = app
        .advance(
            &app.agent,
            &id,
            json!({"action": "approved", "actor": "agent:arrears-bot"}),
        )
        .await;
    assert_eq!(r.body["history"][1]["actor"], "agent:arrears-bot");
}

#[tokio::test]
async fn null_clears_a_nullable_field_and_means_no_change_for_the_others() {
    let app = TestApp::spawn().await;
    let id = app
        .create_with(&app.agent, json!({"stage": "a", "assigned_to": "x"}))
        .await;
    let r = app
        .advance(&app.agent, &id, json!({"action": "reset", "stage": null, "status": null, "escalation_level": null, "workflow_state": null}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["stage"], json!(null));
    assert_eq!(r.body["assigned_to"], "x");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["escalation_level"], 0);
    assert_eq!(r.body["workflow_state"], json!({}));
}

#[tokio::test]
async fn an_advance_needs_an_action_of_one_to_a_hundred_characters() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    for (body, kind) in [
        (json!({}), "missing"),
        (json!({"action": ""}), "string_too_short"),
        (json!({"action": "x".repeat(101)}), "string_too_long"),
        (json!({"action": 7}), "string_type"),
    ] {
        let r = app.advance(&app.agent, &id, body).await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.validation_errors(),
            vec![(kind.to_owned(), json!(["body", "action"]))]
        );
    }
    let r = app
        .advance(
            &app.agent,
            &id,
            json!({"action": "x", "status": "done", "escalation_level": -1}),
        )
        .await;
    assert_eq!(
        r.validation_errors(),
        vec![
            (
                "greater_than_equal".into(),
                json!(["body", "escalation_level"])
            ),
            ("enum".into(), json!(["body", "status"])),
        ]
    );
    assert_eq!(
        app.get(&app.agent, &id).await.body["history"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn moving_to_a_terminal_status_completes_the_workflow_and_closes_it() {
    let app = TestApp::spawn().await;
    for terminal in ["completed", "expired", "cancelled", "failed"] {
        let id = app.create_workflow(&app.agent).await;
        let r = app
            .advance(
                &app.agent,
                &id,
                json!({"action": "finish", "status": terminal}),
            )
            .await;
        assert_eq!(r.body["status"], terminal);
        assert!(r.body["completed_at"].is_string());
        let again = app
            .advance(&app.agent, &id, json!({"action": "more"}))
            .await;
        assert_eq!(again.status, 409, "{terminal}");
        assert!(again.body["detail"].as_str().unwrap().contains(terminal));
        assert_eq!(
            app.suspend(&app.agent, &id, json!({"step": "s"}))
                .await
                .status,
            409
        );
        assert_eq!(app.resume(&app.agent, &id, None).await.status, 409);
        assert_eq!(
            app.get(&app.agent, &id).await.body["history"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}

#[tokio::test]
async fn an_advance_with_prefer_minimal_answers_204_with_location_and_etag() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let r = app
        .request(
            Method::PATCH,
            &app.agent.workflow(&id),
            Some(&app.agent.key),
            Body::Json(json!({"action": "poke"})),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(r.header("location"), Some(app.agent.workflow(&id).as_str()));
    assert_eq!(r.header("preference-applied"), Some("return=minimal"));
    assert_eq!(
        app.get(&app.agent, &id).await.body["history"][1]["action"],
        "poke"
    );
}
