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
