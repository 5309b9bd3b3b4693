use serde_json::{json, Value};
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

/// Every id of a cursor walk over `path` (a list URL with its query), and
/// how many pages it took.
async fn walk(app: &TestApp, path: &str, credential: &Credential) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut url = path.to_owned();
    loop {
        let r = app
            .dashboard(Method::GET, &url, credential, Body::None)
            .await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        pages += 1;
        ids.extend(r.workflow_ids());
        match r.body["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}&cursor={cursor}"),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn a_cursor_walk_reads_every_match_once_while_workflows_are_created_meanwhile() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    let mut even = Vec::new();
    for n in 0..7 {
        let reference = if n % 2 == 0 { "EVEN" } else { "ODD" };
        let id = app
            .create_with(&app.agent, json!({"reference": reference}))
            .await;
        if n % 2 == 0 {
            even.push(id.clone());
        }
        ids.push(id);
    }
    ids.reverse();
    even.reverse();
    let agent = Credential::Bearer(app.agent.key.clone());
    let (walked, pages) = walk(
        &app,
        &format!("{}?per_page=3", app.agent.workflows()),
        &agent,
    )
    .await;
    assert_eq!((walked, pages), (ids.clone(), 3));

    // Rows created after the walk started come before its cursor: the walk
    // neither repeats nor skips what it set out to read.
    let first = app.list(&app.agent, "per_page=3").await;
    assert_eq!(first.workflow_ids(), ids[0..3]);
    app.create_workflow(&app.agent).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let next = app
        .list(&app.agent, &format!("per_page=3&cursor={cursor}"))
        .await;
    assert_eq!(next.workflow_ids(), ids[3..6]);
    assert_eq!(next.body["total"], 8);

    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let walked = walk(&app, "/v1/workflows?reference=EVEN&per_page=2", &admin).await;
    assert_eq!(walked, (even, 2));
}

#[tokio::test]
async fn the_last_page_has_no_next_cursor_and_a_full_one_before_it_has() {
    let app = TestApp::spawn().await;
    for _ in 0..4 {
        app.create_workflow(&app.agent).await;
    }
    let full = app.list(&app.agent, "per_page=2&page=1").await;
    assert!(full.body["next_cursor"].is_string());
    let last = app.list(&app.agent, "per_page=2&page=2").await;
    assert_eq!(last.body["next_cursor"], Value::Null);
    let status = app
        .list(&app.agent, "status=active&per_page=2&page=2")
        .await;
    assert_eq!(status.body["next_cursor"], Value::Null);
    let status = app.list(&app.agent, "status=active&per_page=3").await;
    assert!(status.body["next_cursor"].is_string());
}

#[tokio::test]
async fn a_page_deeper_than_ten_thousand_rows_is_refused_with_a_pointer_to_cursors() {
    let app = TestApp::spawn().await;
    let r = app.list(&app.agent, "per_page=100&page=101").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.validation_errors()[0].0, "value_error");
    assert!(r.body["detail"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("next_cursor"));
    assert_eq!(
        app.list(&app.agent, "per_page=100&page=100").await.status,
        200
    );
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let r = app
        .dashboard(Method::GET, "/v1/workflows?page=10001", &admin, Body::None)
        .await;
    assert_eq!(r.status, 422);
    let r = app.list(&app.agent, "cursor=not-a-cursor").await;
    assert_eq!(r.status, 422);
}
