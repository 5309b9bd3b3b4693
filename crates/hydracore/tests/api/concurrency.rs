use futures::future::join_all;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_advances_of_one_workflow_all_land_in_order() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let responses = join_all((0..50).map(|i| {
        let (app, id) = (&app, &id);
        async move {
            app.advance(
                &app.agent,
                id,
                json!({"action": format!("step-{i}"), "workflow_state": {format!("k{i}"): i}}),
            )
            .await
            .status
        }
    }))
    .await;
    assert!(responses.iter().all(|s| *s == 200), "{responses:?}");

    let w = app.get(&app.agent, &id).await.body;
    let state = w["workflow_state"].as_object().unwrap();
    assert_eq!(state.len(), 50);
    for i in 0..50 {
        assert_eq!(state[&format!("k{i}")], i);
    }
    let seqs: Vec<i64> = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=51).collect::<Vec<_>>());
    assert_eq!(w["version"], 51);
}

/// How many concurrent resumes the race test fires; raise it to measure
/// (`HYDRACORE_TEST_RACERS=2000`).
fn racers() -> usize {
    std::env::var("HYDRACORE_TEST_RACERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resumes_of_one_suspension_give_exactly_one_success() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let n = racers();
    let statuses = join_all((0..n).map(|i| {
        let (app, id) = (&app, &id);
        async move {
            app.resume(
                &app.agent,
                id,
                Some(json!({"resume_data": {format!("r{i}"): true}})),
            )
            .await
            .status
        }
    }))
    .await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let conflict = statuses.iter().filter(|s| **s == 409).count();
    println!("{n} concurrent resumes: {ok} x 200, {conflict} x 409");
    assert_eq!((ok, conflict), (1, n - 1), "{statuses:?}");
    let w = app.get(&app.agent, &id).await.body;
    let resumed = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "resumed")
        .count();
    assert_eq!(resumed, 1);
    assert_eq!(
        w["workflow_state"].as_object().unwrap().len(),
        1,
        "only the winner's data merged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abort_racing_resumes_leaves_one_consistent_outcome() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    app.suspend(&app.agent, &id, json!({"step": "approve"}))
        .await;
    let admin = crate::helpers::Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let abort_path = format!("/v1/workflows/{id}/abort");
    let (aborts, resumes) = tokio::join!(
        join_all((0..20).map(|_| app.dashboard(
            reqwest::Method::POST,
            &abort_path,
            &admin,
            crate::helpers::Body::None
        ))),
        join_all((0..20).map(|_| app.resume(&app.agent, &id, None))),
    );
    let ok_aborts = aborts.iter().filter(|r| r.status == 200).count();
    let ok_resumes = resumes.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok_aborts, 1,
        "an abort always wins once: resumed or not, the workflow is live until then"
    );
    assert!(ok_resumes <= 1);
    let w = app.get(&app.agent, &id).await.body;
    assert_eq!(w["status"], "cancelled");
    let seqs: Vec<i64> = w["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=(3 + ok_resumes as i64)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_status_changes_in_one_instance_all_land_and_keep_totals_exact() {
    // Suspends (active → suspended) racing resumes (suspended → active) in
    // one instance move the same two per-status counts in opposite
    // directions: the shape that deadlocks if the counts were locked in
    // different orders.
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(app.create_workflow(&app.agent).await);
    }
    let (to_resume, to_suspend) = ids.split_at(20);
    for id in to_resume {
        app.suspend(&app.agent, id, json!({"step": "approve"}))
            .await;
    }
    let resumes = to_resume.iter().map(|id| {
        let app = &app;
        async move { app.resume(&app.agent, id, None).await.status }
    });
    let suspends = to_suspend.iter().map(|id| {
        let app = &app;
        async move {
            app.suspend(&app.agent, id, json!({"step": "approve"}))
                .await
                .status
        }
    });
    let (resumed, suspended) = futures::join!(join_all(resumes), join_all(suspends));
    assert!(resumed.iter().all(|s| *s == 200), "{resumed:?}");
    assert!(suspended.iter().all(|s| *s == 200), "{suspended:?}");
    assert_eq!(app.total(&app.agent, "status=active").await, 20);
    assert_eq!(app.total(&app.agent, "status=suspended").await, 20);
    assert_eq!(app.total(&app.agent, "").await, 40);
}
