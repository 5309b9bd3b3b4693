use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_suspended_workflow_resumes_with_the_humans_data_merged() {
    let app = TestApp::spawn().await;
    let id = app
        .create_with(
            &app.agent,
            json!({"workflow_state": {"amount": 900, "note": "x"}}),
        )
        .await;

    let r = app
        .suspend(
            &app.agent,
            &id,
            json!({"step": "approve_payment_plan", "payload": {"plan": [300, 300, 300]}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"id": id, "message": "Workflow suspended at step 'approve_payment_plan'", "status": "suspended"})
    );
    let w = app.get(&app.agent, &id).await.body;
    assert_eq!(w["status"], "suspended");
    assert_eq!(w["suspended_step"], "approve_payment_plan");
    assert_eq!(w["suspend_payload"], json!({"plan": [300, 300, 300]}));
    assert!(w["suspended_at"].is_string() && w["last_action_at"].is_string());

    let r = app
        .resume(
            &app.agent,
            &id,
            Some(json!({"resume_data": {"approved": true, "note": null}})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"id": id, "message": "Workflow resumed from step 'approve_payment_plan'", "status": "active"})
    );
    let w = app.get(&app.agent, &id).await.body;
    assert_eq!(w["status"], "active");
    assert_eq!(
        w["workflow_state"],
        json!({"amount": 900, "approved": true})
    );
    assert_eq!(w["suspended_step"], json!(null));
    let history = w["history"].as_array().unwrap();
    let actions: Vec<&str> = history
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "suspended", "resumed"]);
    assert_eq!(history[2]["action_detail"]["step"], "approve_payment_plan");
    assert_eq!(
        (
            history[2]["from_status"].clone(),
            history[2]["to_status"].clone()
        ),
        (json!("suspended"), json!("active"))
    );
    let seqs: Vec<i64> = history.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[tokio::test]
async fn a_resume_without_a_body_resumes_with_no_data() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &id, json!({"step": "wait"})).await;
    let r = app.resume(&app.agent, &id, None).await;
    assert_eq!((r.status, r.body["status"].clone()), (200, json!("active")));
}

#[tokio::test]
async fn suspending_twice_or_resuming_an_active_workflow_is_409() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    assert_eq!(
        app.resume(&app.agent, &id, Some(json!({}))).await.status,
        409
    );
    assert_eq!(
        app.suspend(&app.agent, &id, json!({"step": "a"}))
            .await
            .status,
        200
    );
    let again = app.suspend(&app.agent, &id, json!({"step": "b"})).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body,
        json!({"detail": "Workflow is already suspended"})
    );
    assert_eq!(app.get(&app.agent, &id).await.body["suspended_step"], "a");
}

#[tokio::test]
async fn a_suspend_needs_a_step_of_one_to_a_hundred_characters() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    for (body, kind) in [
        (json!({"payload": 1}), "missing"),
        (json!({"step": ""}), "string_too_short"),
        (json!({"step": "s".repeat(101)}), "string_too_long"),
    ] {
        let r = app.suspend(&app.agent, &id, body).await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.validation_errors(),
            vec![(kind.to_owned(), json!(["body", "step"]))]
        );
    }
    assert_eq!(app.get(&app.agent, &id).await.body["status"], "active");
}

#[tokio::test]
async fn resume_data_must_be_an_object() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &id, json!({"step": "a"})).await;
    let r = app
        .resume(&app.agent, &id, Some(json!({"resume_data": [1]})))
        .await;
    assert_eq!(
        r.validation_errors(),
        vec![("dict_type".into(), json!(["body", "resume_data"]))]
    );
    assert_eq!(app.get(&app.agent, &id).await.body["status"], "suspended");
}

#[tokio::test]
async fn patching_into_suspended_records_no_step_and_patching_out_ends_it() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let r = app
        .advance(
            &app.agent,
            &id,
            json!({"action": "hold", "status": "suspended"}),
        )
        .await;
    assert_eq!(r.body["status"], "suspended");
    assert_eq!(r.body["suspended_step"], json!(null));
    assert!(r.body["suspended_at"].is_string());
    let r = app
        .advance(&app.agent, &id, json!({"action": "go", "status": "active"}))
        .await;
    assert_eq!(r.body["suspended_at"], json!(null));
}
