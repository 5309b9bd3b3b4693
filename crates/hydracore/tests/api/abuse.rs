//! Attacks on a shared deployment, each beside what the others see. The
//! figures each test measures are printed (`cargo test -- --nocapture`
//! shows them); docs/security.md records them. The flood beside a
//! legitimate tenant, which compares latencies, is in `tests/under_attack`.

use std::time::Instant;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Body, TestApp};

#[tokio::test]
async fn a_thousand_entries_of_64_kib_keep_a_record_small_and_page_exactly_once() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let path = app.agent.workflow(&id);
    let key = Some(app.agent.key.as_str());
    let note = "x".repeat(64 * 1024 - 64);
    for n in 2..=1_000 {
        let body = json!({"action": "noted", "action_detail": {"n": n, "note": note}});
        let r = app
            .request(
                Method::PATCH,
                &path,
                key,
                Body::Json(body),
                &[("prefer", "return=minimal")],
            )
            .await;
        assert_eq!(r.status, 204, "entry {n}: {}", r.body);
    }

    let started = Instant::now();
    let response = app
        .client()
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(&app.agent.key)
        .send()
        .await
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    let took = started.elapsed();
    let record: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        bytes.len() < 1024 * 1024,
        "a get answers {} bytes",
        bytes.len()
    );
    assert_eq!(record["history_total"], json!(1_000));
    let embedded = record["history"].as_array().unwrap();
    assert_eq!(embedded.last().unwrap()["seq"], json!(1_000));

    let list = app.list(&app.agent, "per_page=100").await;
    assert_eq!(list.status, 200);

    let mut seqs = Vec::new();
    let mut pages = 0;
    let mut after = 0;
    loop {
        let r = app
            .request(
                Method::GET,
                &format!("{path}/history?after={after}&limit=1000"),
                key,
                Body::None,
                &[],
            )
            .await;
        assert_eq!(r.status, 200);
        pages += 1;
        seqs.extend(
            r.body["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match r.body["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seqs, (1..=1_000).collect::<Vec<i64>>());
    println!(
        "abuse history: 1,000 entries of 64 KiB; a get answers {} bytes ({} entries embedded) in \
         {took:?}; the history routes page through all of them in {pages} pages",
        bytes.len(),
        embedded.len()
    );
}
