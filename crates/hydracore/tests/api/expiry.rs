//! Expiry: overdue live workflows become `expired`, by the system.

use std::time::Duration;

use hydracore_storage::{SweepJob, Workflows};
use serde_json::json;

use crate::helpers::TestApp;

const PAST: &str = "2020-01-01T00:00:00Z";

#[tokio::test]
async fn a_sweep_expires_overdue_live_workflows_only() {
    // Only this test's own sweep may run: the background sweeper could
    // otherwise expire `done` before it completes, or hold a row locked
    // (skipped here) while this test reads it.
    let app = TestApp::spawn_with(|s| s.sweep_interval = Duration::from_secs(3600)).await;
    let overdue = app
        .create_with(&app.agent, json!({"expires_at": PAST}))
        .await;
    let later = app
        .create_with(&app.agent, json!({"expires_at": "2999-01-01T00:00:00Z"}))
        .await;
    let done = app
        .create_with(&app.agent, json!({"expires_at": PAST}))
        .await;
    app.advance(
        &app.agent,
        &done,
        json!({"action": "finish", "status": "completed"}),
    )
    .await;
    let suspended = app
        .create_with(&app.agent, json!({"expires_at": PAST}))
        .await;
    app.suspend(&app.agent, &suspended, json!({"step": "s"}))
        .await;

    hydracore::sweeper::sweep_once(&Workflows::new(app.store.clone()))
        .await
        .unwrap();

    let w = app.get(&app.agent, &overdue).await.body;
    assert_eq!(w["status"], "expired");
    assert!(w["completed_at"].is_string());
    let last = &w["history"][1];
    assert_eq!(
        (last["action"].clone(), last["actor"].clone()),
        (json!("expired"), json!("system"))
    );
    assert_eq!(
        app.get(&app.agent, &suspended).await.body["status"],
        "expired"
    );
    assert_eq!(app.get(&app.agent, &later).await.body["status"], "active");
    let done = app.get(&app.agent, &done).await.body;
    assert_eq!(
        (
            done["status"].clone(),
            done["history"].as_array().unwrap().len()
        ),
        (json!("completed"), 2)
    );
    assert_eq!(
        app.advance(&app.agent, &overdue, json!({"action": "late"}))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn the_background_sweeper_expires_without_anyone_reading() {
    let mut app = TestApp::spawn().await;
    let id = app
        .create_with(&app.agent, json!({"expires_at": PAST}))
        .await;
    // Two finished sweeps after the create: the second started after it.
    let start = *app.sweeps.borrow_and_update();
    tokio::time::timeout(
        Duration::from_secs(10),
        app.sweeps.wait_for(|n| *n >= start + 2),
    )
    .await
    .expect("the sweeper runs")
    .unwrap();
    assert_eq!(app.get(&app.agent, &id).await.body["status"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweepers_running_at_once_expire_each_workflow_once() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(
            app.create_with(&app.agent, json!({"expires_at": PAST}))
                .await,
        );
    }
    let workflows = Workflows::new(app.store.clone());
    let sweeps = (0..4).map(|_| {
        let workflows = workflows.clone();
        tokio::spawn(async move { workflows.sweep_due(SweepJob::Expire, 25).await.unwrap() })
    });
    let mut expired: u64 = 0;
    for sweep in sweeps {
        expired += sweep.await.unwrap();
    }
    expired += hydracore::sweeper::sweep_once(&Workflows::new(app.store.clone()))
        .await
        .unwrap();
    // The app's own background sweeper races them too: none may double up.
    assert!(expired <= 60, "{expired} expiries for 60 workflows");
    for id in &ids {
        let w = app.get(&app.agent, id).await.body;
        let entries = w["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "expired")
            .count();
        assert_eq!(
            (w["status"].clone(), entries),
            (json!("expired"), 1),
            "{id}"
        );
    }
}
