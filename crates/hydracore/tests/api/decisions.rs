//! Decisions: a suspension that says what answer it expects, who should
//! give it and by when; answers checked against the schema; overdue
//! decisions escalated once per due time; the inbox that lists them.

use std::time::Duration;

use hydracore_storage::Workflows;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Body, Credential, TestApp, TestResponse};

/// A manager's approval of a payment plan: the schema of the answer.
fn plan_schema() -> Value {
    json!({
        "type": "object",
        "required": ["approved"],
        "properties": {
            "approved": {"type": "boolean"},
            "plan": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["amount", "due"],
                    "properties": {"amount": {"type": "number", "exclusiveMinimum": 0},
                                   "due": {"type": "string"}}
                }
            }
        }
    })
}

fn in_seconds(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

/// A server whose background sweeper stays out of the way: tests sweep
/// themselves.
async fn quiet_app() -> TestApp {
    TestApp::spawn_with(|s| s.sweep_interval = Duration::from_secs(3600)).await
}

async fn admin_resume(
    app: &TestApp,
    credential: &Credential,
    id: &str,
    data: Value,
) -> TestResponse {
    app.dashboard(
        Method::POST,
        &format!("/v1/workflows/{id}/resume"),
        credential,
        Body::Json(json!({"resume_data": data})),
    )
    .await
}

fn admin(app: &TestApp) -> Credential {
    Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"))
}

#[tokio::test]
async fn a_suspension_carries_its_schema_assignee_and_due_time_until_it_ends() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    let due = in_seconds(4 * 3600);
    let r = app
        .suspend(
            &app.agent,
            &id,
            json!({"step": "approve_payment_plan", "payload": {"arrears": 1200},
                   "resume_schema": plan_schema(), "assigned_to": "managers",
                   "due_at": due, "escalate_every": "PT1H", "max_escalation_level": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let record = app.get(&app.agent, &id).await.body;
    assert_eq!(record["resume_schema"], plan_schema());
    assert_eq!(record["assigned_to"], json!("managers"));
    assert!(record["next_action_at"].is_string());
    assert_eq!(
        (
            record["escalate_every"].clone(),
            record["max_escalation_level"].clone()
        ),
        (json!(3600), json!(2))
    );

    let r = app
        .resume(
            &app.agent,
            &id,
            Some(json!({"resume_data": {"approved": true}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let record = app.get(&app.agent, &id).await.body;
    assert_eq!(
        (
            record["resume_schema"].clone(),
            record["escalate_every"].clone(),
            record["max_escalation_level"].clone()
        ),
        (Value::Null, Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn a_bad_schema_or_escalation_is_a_422_naming_the_field_and_changes_nothing() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    for (body, field) in [
        (
            json!({"step": "s", "resume_schema": {"type": 12}}),
            "resume_schema",
        ),
        (
            json!({"step": "s", "resume_schema": {"$ref": "https://example.com/s.json"}}),
            "resume_schema",
        ),
        (
            json!({"step": "s", "resume_schema": {"description": "x".repeat(70_000)}}),
            "resume_schema",
        ),
        (json!({"step": "s", "escalate_every": 30}), "escalate_every"),
        (
            json!({"step": "s", "escalate_every": "P1M"}),
            "escalate_every",
        ),
        (
            json!({"step": "s", "escalate_every": 60, "max_escalation_level": 11}),
            "max_escalation_level",
        ),
        (
            json!({"step": "s", "max_escalation_level": 2}),
            "max_escalation_level",
        ),
        (
            json!({"step": "s", "assigned_to": "a".repeat(256)}),
            "assigned_to",
        ),
    ] {
        let r = app.suspend(&app.agent, &id, body).await;
        assert_eq!(r.status, 422, "{field}");
        assert_eq!(r.validation_errors()[0].1, json!(["body", field]));
    }
    let record = app.get(&app.agent, &id).await.body;
    assert_eq!(
        (record["status"].clone(), record["version"].clone()),
        (json!("active"), json!(1))
    );
}

#[tokio::test]
async fn an_answer_that_fails_the_schema_lists_each_violation_and_leaves_the_decision_open() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(
        &app.agent,
        &id,
        json!({"step": "approve", "resume_schema": plan_schema()}),
    )
    .await;
    let bad =
        json!({"approved": "yes", "plan": [{"amount": 0, "due": "2027-01-01"}, {"amount": 5}]});
    for r in [
        app.resume(&app.agent, &id, Some(json!({"resume_data": bad})))
            .await,
        admin_resume(&app, &admin(&app), &id, bad.clone()).await,
    ] {
        assert_eq!(r.status, 422, "{}", r.body);
        let mut found = r.validation_errors();
        found.sort_by_key(|(_, loc)| loc.to_string());
        assert_eq!(
            found,
            vec![
                (
                    "type".to_owned(),
                    json!(["body", "resume_data", "approved"])
                ),
                (
                    "exclusiveMinimum".to_owned(),
                    json!(["body", "resume_data", "plan", 0, "amount"])
                ),
                (
                    "required".to_owned(),
                    json!(["body", "resume_data", "plan", 1])
                ),
            ]
        );
    }
    let record = app.get(&app.agent, &id).await.body;
    assert_eq!(
        (record["status"].clone(), record["version"].clone()),
        (json!("suspended"), json!(2))
    );
    let good = admin_resume(
        &app,
        &admin(&app),
        &id,
        json!({"approved": true, "plan": []}),
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.body);
}

#[tokio::test]
async fn a_dashboard_resume_records_the_deciding_key_as_approver() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let (key_id, key) = app
        .api_key(app.agent.tenant_id, &["workflows:read", "workflows:write"])
        .await;
    let r = admin_resume(&app, &Credential::ApiKey(key), &id, json!({})).await;
    assert_eq!(r.status, 200);
    let record = app.get(&app.agent, &id).await.body;
    assert_eq!(record["approver_id"], json!(key_id));

    // A JWT whose subject is a UUID decides as that UUID.
    let other = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &other, json!({"step": "approve"}))
        .await;
    let person = Uuid::new_v4();
    let jwt = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, &person.to_string()));
    admin_resume(&app, &jwt, &other, json!({})).await;
    assert_eq!(
        app.get(&app.agent, &other).await.body["approver_id"],
        json!(person)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overdue_decision_escalates_once_per_due_time_even_with_sweepers_racing() {
    let app = quiet_app().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = app.create_workflow(&app.agent).await;
        app.suspend(
            &app.agent,
            &id,
            json!({"step": "approve", "due_at": in_seconds(-1), "escalate_every": 3600,
                   "max_escalation_level": 3}),
        )
        .await;
        ids.push(id);
    }
    let not_due = app.create_workflow(&app.agent).await;
    app.suspend(
        &app.agent,
        &not_due,
        json!({"step": "approve", "due_at": in_seconds(3600), "escalate_every": 60}),
    )
    .await;

    let sweeps = (0..4).map(|_| {
        let workflows = Workflows::new(app.store.clone());
        tokio::spawn(async move { hydracore::sweeper::sweep_once(&workflows).await.unwrap() })
    });
    let mut escalated = 0;
    for sweep in sweeps {
        escalated += sweep.await.unwrap();
    }
    assert_eq!(escalated, 20);
    for id in &ids {
        let record = app.get(&app.agent, id).await.body;
        assert_eq!(record["escalation_level"], json!(1));
        let entries: Vec<&Value> = record["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "escalated")
            .collect();
        assert_eq!(entries.len(), 1, "{id}");
        assert_eq!(entries[0]["actor"], json!("system"));
        assert_eq!(entries[0]["principal"], json!("system"));
        assert_eq!(
            entries[0]["action_detail"],
            json!({"from_level": 0, "to_level": 1})
        );
    }
    assert_eq!(
        app.get(&app.agent, &not_due).await.body["escalation_level"],
        json!(0)
    );
}

#[tokio::test]
async fn at_its_maximum_a_decision_stays_overdue_and_escalates_no_more() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(
        &app.agent,
        &id,
        json!({"step": "approve", "due_at": in_seconds(-1), "escalate_every": 60,
               "max_escalation_level": 1}),
    )
    .await;
    let workflows = Workflows::new(app.store.clone());
    assert_eq!(hydracore::sweeper::sweep_once(&workflows).await.unwrap(), 1);
    assert_eq!(hydracore::sweeper::sweep_once(&workflows).await.unwrap(), 0);
    let inbox = app
        .dashboard(Method::GET, "/v1/decisions", &admin(&app), Body::None)
        .await;
    assert_eq!(inbox.body["decisions"][0]["overdue"], json!(true));
    assert_eq!(inbox.body["decisions"][0]["escalation_level"], json!(1));
}

#[tokio::test]
async fn the_inbox_lists_overdue_and_soonest_due_first_and_filters() {
    let app = quiet_app().await;
    let sibling = app.sibling_agent().await;
    let suspend = |agent, due: Option<String>, assignee: &'static str| {
        let app = &app;
        async move {
            let id = app.create_workflow(agent).await;
            let mut body = json!({"step": "approve", "assigned_to": assignee});
            if let Some(due) = due {
                body["due_at"] = json!(due);
            }
            let r = app.suspend(agent, &id, body).await;
            assert_eq!(r.status, 200, "{}", r.body);
            id
        }
    };
    let no_due = suspend(&app.agent, None, "ops").await;
    let later = suspend(&sibling, Some(in_seconds(7200)), "managers").await;
    let overdue = suspend(&app.agent, Some(in_seconds(-60)), "managers").await;
    let soon = suspend(&app.agent, Some(in_seconds(600)), "ops").await;
    let active = app.create_workflow(&app.agent).await;
    let stranger = app.new_agent(Uuid::new_v4()).await;
    suspend(&stranger, Some(in_seconds(-60)), "managers").await;

    let ids = |r: &TestResponse| -> Vec<String> {
        r.body["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |query: &'static str| {
        let app = &app;
        async move {
            app.dashboard(
                Method::GET,
                &format!("/v1/decisions{query}"),
                &admin(app),
                Body::None,
            )
            .await
        }
    };
    let all = get("").await;
    assert_eq!(all.status, 200);
    assert_eq!(
        ids(&all),
        vec![overdue.clone(), soon.clone(), later.clone(), no_due.clone()]
    );
    assert!(!ids(&all).contains(&active));
    let first = &all.body["decisions"][0];
    assert_eq!(
        (first["overdue"].clone(), first["assigned_to"].clone()),
        (json!(true), json!("managers"))
    );
    for field in [
        "id",
        "instance_id",
        "workflow_type",
        "title",
        "reference",
        "customer_id",
        "suspended_step",
        "suspend_payload",
        "resume_schema",
        "assigned_to",
        "due_at",
        "overdue",
        "escalation_level",
        "suspended_at",
        "version",
    ] {
        assert!(first.get(field).is_some(), "{field}");
    }
    assert_eq!(ids(&get("?overdue=true").await), vec![overdue.clone()]);
    assert_eq!(
        ids(&get("?overdue=false").await),
        vec![soon.clone(), later.clone(), no_due.clone()]
    );
    assert_eq!(
        ids(&get("?assigned_to=ops").await),
        vec![soon.clone(), no_due.clone()]
    );
    let by_instance = app
        .dashboard(
            Method::GET,
            &format!("/v1/decisions?instance_id={}", sibling.instance_id),
            &admin(&app),
            Body::None,
        )
        .await;
    assert_eq!(ids(&by_instance), vec![later.clone()]);
    assert_eq!(ids(&get("?step=other").await), Vec::<String>::new());
    assert_eq!(get("?overdue=maybe").await.status, 422);

    let summary = get("/summary").await;
    assert_eq!(summary.status, 200);
    assert_eq!(
        summary.body,
        json!({"total": 4, "overdue": 1, "by_assignee": [
            {"assigned_to": "managers", "total": 2, "overdue": 1},
            {"assigned_to": "ops", "total": 2, "overdue": 0},
        ]})
    );
}

#[tokio::test]
async fn the_summary_counts_each_assignee_by_name_then_the_unassigned() {
    let app = quiet_app().await;
    for (assignee, due) in [
        (Some("zoe"), -60),
        (None, -60),
        (Some("amy"), 600),
        (None, 600),
        (Some("zoe"), 600),
    ] {
        let id = app.create_workflow(&app.agent).await;
        let mut body = json!({"step": "approve", "due_at": in_seconds(due)});
        if let Some(assignee) = assignee {
            body["assigned_to"] = json!(assignee);
        }
        assert_eq!(app.suspend(&app.agent, &id, body).await.status, 200);
    }
    let summary = app
        .dashboard(
            Method::GET,
            "/v1/decisions/summary",
            &admin(&app),
            Body::None,
        )
        .await;
    assert_eq!(
        summary.body,
        json!({"total": 5, "overdue": 2, "by_assignee": [
            {"assigned_to": "amy", "total": 1, "overdue": 0},
            {"assigned_to": "zoe", "total": 2, "overdue": 1},
            {"assigned_to": null, "total": 2, "overdue": 1},
        ]})
    );
}

#[tokio::test]
async fn inbox_pages_neither_skip_nor_repeat_while_decisions_are_resumed_between_them() {
    let app = quiet_app().await;
    let mut expected = Vec::new();
    for n in 0..9 {
        let id = app.create_workflow(&app.agent).await;
        app.suspend(
            &app.agent,
            &id,
            json!({"step": "approve", "due_at": in_seconds(60 * (n + 1))}),
        )
        .await;
        expected.push(id);
    }
    let mut seen = Vec::new();
    let mut url = "/v1/decisions?limit=2".to_owned();
    loop {
        let r = app
            .dashboard(Method::GET, &url, &admin(&app), Body::None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page: Vec<String> = r.body["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        // Resume one decision already seen, and one not seen yet, between
        // pages.
        if let Some(done) = page.first() {
            app.resume(&app.agent, done, None).await;
        }
        seen.extend(page);
        let ahead = expected.iter().rev().find(|id| !seen.contains(id)).cloned();
        if let (Some(ahead), 4) = (ahead, seen.len()) {
            app.resume(&app.agent, &ahead, None).await;
            expected.retain(|id| *id != ahead);
        }
        match r.body["next_cursor"].as_str() {
            Some(cursor) => url = format!("/v1/decisions?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_double_clicked_approval_gets_the_first_answer_instead_of_a_409() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    let key = [("idempotency-key", "approve-42")];
    let path = format!("{}/suspend", app.agent.workflow(&id));
    let body = json!({"step": "approve"});
    let agent_key = Some(app.agent.key.as_str());
    let first = app
        .request(
            Method::POST,
            &path,
            agent_key,
            Body::Json(body.clone()),
            &key,
        )
        .await;
    let again = app
        .request(Method::POST, &path, agent_key, Body::Json(body), &key)
        .await;
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    let resume = |data: Value| {
        let app = &app;
        let id = id.clone();
        async move {
            app.request(
                Method::POST,
                &format!("/v1/workflows/{id}/resume"),
                Some(&app.admin_jwt(app.agent.tenant_id, "alice")),
                Body::Json(json!({"resume_data": data})),
                &[("idempotency-key", "click-1")],
            )
            .await
        }
    };
    let first = resume(json!({"approved": true})).await;
    let second = resume(json!({"approved": true})).await;
    assert_eq!((first.status, second.status), (200, 200), "{}", second.body);
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(second.header("etag"), first.header("etag"));
    let other_body = resume(json!({"approved": false})).await;
    assert_eq!(other_body.status, 422);
    assert_eq!(
        other_body.validation_errors()[0].1,
        json!(["header", "idempotency-key"])
    );

    let record = app.get(&app.agent, &id).await.body;
    let resumes = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "resumed")
        .count();
    assert_eq!((resumes, record["version"].clone()), (1, json!(3)));

    // An abort retried with its key answers as the first did.
    let abort = || {
        let app = &app;
        let id = id.clone();
        async move {
            app.request(
                Method::POST,
                &format!("/v1/workflows/{id}/abort"),
                Some(&app.admin_jwt(app.agent.tenant_id, "alice")),
                Body::None,
                &[("idempotency-key", "abort-1")],
            )
            .await
        }
    };
    let (first, second) = (abort().await, abort().await);
    assert_eq!(
        (first.status, second.status, second.body == first.body),
        (200, 200, true)
    );
}

#[tokio::test]
async fn a_refused_action_frees_its_key_for_a_retry() {
    let app = quiet_app().await;
    let id = app.create_workflow(&app.agent).await;
    let path = format!("{}/resume", app.agent.workflow(&id));
    let key = [("idempotency-key", "resume-early")];
    let agent_key = Some(app.agent.key.as_str());
    let early = app
        .request(Method::POST, &path, agent_key, Body::None, &key)
        .await;
    assert_eq!(early.status, 409);
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let retry = app
        .request(Method::POST, &path, agent_key, Body::None, &key)
        .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert!(retry.header("idempotent-replayed").is_none());
}
