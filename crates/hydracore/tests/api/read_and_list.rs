use serde_json::json;
use uuid::Uuid;

use reqwest::Method;

use crate::helpers::{Body, Credential, TestApp};

#[tokio::test]
async fn a_workflow_reads_back_as_it_was_created() {
    let app = TestApp::spawn().await;
    let created = app
        .create(&app.agent, json!({"customer_id": Uuid::new_v4(), "workflow_type": "maintenance", "reference": "JOB-9"}))
        .await;
    let id = created.body["id"].as_str().unwrap();
    let read = app.get(&app.agent, id).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created.body);
    assert_eq!(read.header("etag"), Some("\"1\""));
}

#[tokio::test]
async fn an_unknown_workflow_is_404() {
    let app = TestApp::spawn().await;
    let r = app.get(&app.agent, &Uuid::new_v4().to_string()).await;
    assert_eq!(
        (r.status, r.body),
        (404, json!({"detail": "Workflow not found"}))
    );
}

#[tokio::test]
async fn a_workflow_of_another_instance_of_the_same_tenant_is_404() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let id = app.create_workflow(&sibling).await;
    assert_eq!(app.get(&app.agent, &id).await.status, 404);
    assert_eq!(
        app.advance(&app.agent, &id, json!({"action": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(
        app.suspend(&app.agent, &id, json!({"step": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(app.resume(&app.agent, &id, None).await.status, 404);
    assert_eq!(app.get(&sibling, &id).await.status, 200);
}

#[tokio::test]
async fn a_list_is_newest_first_with_the_exact_total_and_pages() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.create_workflow(&app.agent).await);
    }
    ids.reverse();
    let first = app.list(&app.agent, "per_page=2").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["total"], 5);
    assert_eq!(first.body["page"], 1);
    assert_eq!(first.body["per_page"], 2);
    assert_eq!(first.workflow_ids(), ids[0..2]);
    let third = app.list(&app.agent, "per_page=2&page=3").await;
    assert_eq!(third.workflow_ids(), ids[4..5]);
    assert_eq!(third.body["total"], 5);
    let beyond = app.list(&app.agent, "per_page=2&page=99").await;
    assert_eq!(
        (
            beyond.body["workflows"].clone(),
            beyond.body["total"].clone()
        ),
        (json!([]), json!(5))
    );
    let defaults = app.list(&app.agent, "").await;
    assert_eq!(
        (
            defaults.body["page"].clone(),
            defaults.body["per_page"].clone()
        ),
        (json!(1), json!(20))
    );
    assert_eq!(
        defaults.body["workflows"][0]["history"][0]["action"],
        "created"
    );
}

#[tokio::test]
async fn a_status_list_pages_newest_first_with_its_exact_total() {
    let app = TestApp::spawn().await;
    let mut active = Vec::new();
    for _ in 0..5 {
        active.push(app.create_workflow(&app.agent).await);
    }
    let suspended = app.create_workflow(&app.agent).await;
    let response = app
        .suspend(&app.agent, &suspended, json!({"step": "approve"}))
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    active.reverse();
    let page = |query: &'static str| {
        let app = &app;
        async move {
            let response = app.list(&app.agent, query).await;
            assert_eq!(response.status, 200, "{:?}", response.body);
            (response.workflow_ids(), response.body)
        }
    };
    let (first, body) = page("status=active&per_page=2").await;
    assert_eq!(
        (first, body["total"].clone()),
        (active[0..2].to_vec(), json!(5))
    );
    assert_eq!(body["workflows"][0]["history"][0]["action"], "created");
    let (third, body) = page("status=active&per_page=2&page=3").await;
    assert_eq!(
        (third, body["total"].clone()),
        (active[4..5].to_vec(), json!(5))
    );
    let (beyond, body) = page("status=active&per_page=2&page=99").await;
    assert_eq!((beyond, body["total"].clone()), (vec![], json!(5)));
    let (none, body) = page("status=completed").await;
    assert_eq!((none, body["total"].clone()), (vec![], json!(0)));
    let (only, body) = page("status=suspended").await;
    assert_eq!(
        (only, body["total"].clone()),
        (vec![suspended.clone()], json!(1))
    );
    assert_eq!(body["workflows"][0]["suspended_step"], "approve");
    assert_eq!(body["workflows"][0]["history"][1]["action"], "suspended");

    // The dashboard's list of one instance in one status pages alike.
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let path = format!(
        "/v1/workflows?instance_id={}&status=active&per_page=2&page=2",
        app.agent.instance_id
    );
    let response = app.dashboard(Method::GET, &path, &admin, Body::None).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    assert_eq!(
        (response.workflow_ids(), response.body["total"].clone()),
        (active[2..4].to_vec(), json!(5))
    );
}

#[tokio::test]
async fn a_list_filters_by_customer_type_status_and_reference() {
    let app = TestApp::spawn().await;
    let customer = Uuid::new_v4();
    let a = app
        .create_with(
            &app.agent,
            json!({"customer_id": customer, "workflow_type": "lead", "reference": "R1"}),
        )
        .await;
    let b = app
        .create_with(&app.agent, json!({"workflow_type": "lead"}))
        .await;
    app.create_with(
        &app.agent,
        json!({"workflow_type": "viewing", "reference": "R1"}),
    )
    .await;
    app.suspend(&app.agent, &b, json!({"step": "ok"})).await;

    let ids = |query: &str| {
        let app = &app;
        let query = query.to_owned();
        async move {
            let r = app.list(&app.agent, &query).await;
            assert_eq!(r.status, 200, "{query}: {:?}", r.body);
            let ids = r.workflow_ids();
            assert_eq!(r.body["total"], ids.len());
            ids
        }
    };
    assert_eq!(
        ids(&format!("customer_id={customer}")).await,
        vec![a.clone()]
    );
    assert_eq!(ids("workflow_type=lead").await.len(), 2);
    assert_eq!(ids("status=suspended").await, vec![b.clone()]);
    assert_eq!(ids("reference=R1").await.len(), 2);
    assert_eq!(ids("reference=R1&workflow_type=lead").await, [a]);
    assert_eq!(ids("status=completed").await.len(), 0);
}

/// Text that would end or escape an SQL string literal matches only itself.
#[tokio::test]
async fn a_reference_filter_matches_quotes_backslashes_and_unicode_only_as_themselves() {
    let app = TestApp::spawn().await;
    let references = [
        "O'Brien",
        "x' OR '1'='1",
        "back\\slash\\",
        "E'\\x27'",
        "$$; SELECT 1; $$",
        "Zoë — 家賃 🏠",
    ];
    let mut created = Vec::new();
    for reference in references {
        created.push(
            app.create_with(
                &app.agent,
                json!({"workflow_type": "lead", "reference": reference}),
            )
            .await,
        );
    }
    for (reference, id) in references.iter().zip(&created) {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("reference", reference)
            .finish();
        let r = app.list(&app.agent, &query).await;
        assert_eq!(r.status, 200, "{reference}: {:?}", r.body);
        assert_eq!(r.body["total"], 1, "{reference}");
        assert_eq!(r.body["workflows"][0]["id"], id.as_str(), "{reference}");
        assert_eq!(r.body["workflows"][0]["reference"], *reference);
    }
}

#[tokio::test]
async fn a_list_shows_only_the_instances_own_workflows() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let other_tenant = app.new_agent(Uuid::new_v4()).await;
    app.create_workflow(&sibling).await;
    app.create_workflow(&other_tenant).await;
    let mine = app.create_workflow(&app.agent).await;
    let r = app.list(&app.agent, "").await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["workflows"][0]["id"], mine);
}

#[tokio::test]
async fn list_paging_out_of_bounds_is_a_query_422() {
    let app = TestApp::spawn().await;
    for (query, kind, field) in [
        ("per_page=0", "greater_than_equal", "per_page"),
        ("per_page=101", "less_than_equal", "per_page"),
        ("page=0", "greater_than_equal", "page"),
        ("page=abc", "int_parsing", "page"),
        ("status=done", "enum", "status"),
        ("workflow_type=party", "enum", "workflow_type"),
        ("customer_id=42", "uuid_parsing", "customer_id"),
    ] {
        let r = app.list(&app.agent, query).await;
        assert_eq!(r.status, 422, "{query}");
        assert_eq!(
            r.validation_errors(),
            vec![(kind.to_owned(), json!(["query", field]))],
            "{query}"
        );
    }
    assert_eq!(
        app.list(&app.agent, "per_page=100&page=1").await.status,
        200
    );
}

#[tokio::test]
async fn list_totals_stay_exact_as_workflows_are_created_and_change_status() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let other_tenant = app.new_agent(Uuid::new_v4()).await;
    let mut mine = Vec::new();
    for _ in 0..6 {
        mine.push(app.create_workflow(&app.agent).await);
    }
    app.create_workflow(&sibling).await;
    app.create_workflow(&other_tenant).await;
    // Every kind of status change: PATCH, suspend, resume, abort.
    let changes = [
        app.advance(
            &app.agent,
            &mine[0],
            json!({"action": "done", "status": "completed"}),
        )
        .await,
        app.advance(
            &app.agent,
            &mine[1],
            json!({"action": "gave up", "status": "failed"}),
        )
        .await,
        app.advance(&app.agent, &mine[2], json!({"action": "no status change"}))
            .await,
        app.suspend(&app.agent, &mine[3], json!({"step": "approve"}))
            .await,
        app.suspend(&app.agent, &mine[4], json!({"step": "approve"}))
            .await,
        app.resume(&app.agent, &mine[4], None).await,
    ];
    for change in changes {
        assert_eq!(change.status, 200, "{:?}", change.body);
    }
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let abort = format!("/v1/workflows/{}/abort", mine[5]);
    let aborted = app
        .dashboard(Method::POST, &abort, &admin, Body::None)
        .await;
    assert_eq!(aborted.status, 200, "{:?}", aborted.body);

    assert_eq!(app.total(&app.agent, "").await, 6);
    assert_eq!(app.total(&app.agent, "status=active").await, 2);
    assert_eq!(app.total(&app.agent, "status=completed").await, 1);
    assert_eq!(app.total(&app.agent, "status=failed").await, 1);
    assert_eq!(app.total(&app.agent, "status=suspended").await, 1);
    assert_eq!(app.total(&app.agent, "status=cancelled").await, 1);
    assert_eq!(app.total(&app.agent, "status=expired").await, 0);
    // Filters the counts cannot answer are counted, and agree.
    assert_eq!(
        app.total(&app.agent, "status=active&workflow_type=lead")
            .await,
        0
    );

    let admin_total = |query: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let path = format!("/v1/workflows?{query}");
            app.dashboard(Method::GET, &path, admin, Body::None)
                .await
                .body["total"]
                .clone()
        }
    };
    assert_eq!(admin_total(String::new()).await, 7);
    assert_eq!(admin_total("status=active".into()).await, 3);
    let sibling_only = format!("instance_id={}&status=active", sibling.instance_id);
    assert_eq!(admin_total(sibling_only).await, 1);
}
