//! A flood of made-up keys and slow requests beside a legitimate tenant,
//! with the tenant's latency measured quiet and under attack.
//!
//! This test compares latencies, so it has a binary of its own: cargo runs
//! test binaries one after another, and no other test shares the cores
//! while it measures. The figures are printed (`-- --nocapture`);
//! docs/security.md records them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use uuid::Uuid;

use helpers::{Agent, Body, TestApp};
use hydracore::config::LimitSettings;

/// Where the legitimate tenant's requests come from, as the proxy in front
/// reports it.
const LEGITIMATE_ADDRESS: &str = "198.51.100.1";
/// Where the attacker's come from.
const ATTACKER_ADDRESS: &str = "203.0.113.66";

/// The latency below which `q` of the samples fall.
fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * q).ceil() as usize;
    samples[rank.saturating_sub(1).min(samples.len() - 1)]
}

/// One round of the agent mix as `agent`: create, read, advance, list.
/// Returns each request's latency and status.
async fn agent_round(app: &TestApp, agent: &Agent) -> Vec<(Duration, u16)> {
    let from = [("x-forwarded-for", LEGITIMATE_ADDRESS)];
    let key = Some(agent.key.as_str());
    let mut seen = Vec::new();
    let started = Instant::now();
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears"});
    let created = app
        .request(
            Method::POST,
            &agent.workflows(),
            key,
            Body::Json(body),
            &from,
        )
        .await;
    seen.push((started.elapsed(), created.status));
    let Some(id) = created.body["id"].as_str().map(str::to_owned) else {
        return seen;
    };
    let path = agent.workflow(&id);
    let started = Instant::now();
    let r = app
        .request(Method::GET, &path, key, Body::None, &from)
        .await;
    seen.push((started.elapsed(), r.status));
    let started = Instant::now();
    let advance = Body::Json(json!({"action": "contacted", "stage": "chasing"}));
    let r = app.request(Method::PATCH, &path, key, advance, &from).await;
    seen.push((started.elapsed(), r.status));
    let started = Instant::now();
    let list = format!("{}?per_page=20", agent.workflows());
    let r = app
        .request(Method::GET, &list, key, Body::None, &from)
        .await;
    seen.push((started.elapsed(), r.status));
    seen
}

/// `rounds` rounds of the agent mix on each of `workers` concurrent
/// workers.
async fn agent_mix(
    app: &TestApp,
    agent: &Agent,
    workers: usize,
    rounds: usize,
) -> Vec<(Duration, u16)> {
    let runs = (0..workers).map(|_| async {
        let mut seen = Vec::new();
        for _ in 0..rounds {
            seen.extend(agent_round(app, agent).await);
        }
        seen
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Holds a create open by sending its body a byte at a time until it is
/// dropped; the request is in flight all along.
async fn slow_request(address: SocketAddr, path: String, key: String) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return;
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {key}\r\n\
         x-forwarded-for: {ATTACKER_ADDRESS}\r\ncontent-type: application/json\r\n\
         content-length: 100000\r\n\r\n{{"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    loop {
        if stream.write_all(b" ").await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 2,000 requests with made-up keys, 16 at a time. Returns their statuses
/// and how long they took.
async fn flood(url: String) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let client = reqwest::Client::new();
    let requests = (0..2_000).map(|_| {
        let request = client
            .get(&url)
            .bearer_auth(format!("hcp_{}", Uuid::new_v4().simple()))
            .header("x-forwarded-for", ATTACKER_ADDRESS);
        async move {
            request
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    });
    let statuses = futures::stream::iter(requests)
        .buffer_unordered(16)
        .collect()
        .await;
    (statuses, started.elapsed())
}

/// The attack, on a thread and runtime of its own as if from another
/// machine, so that the attacker's client never queues the tenant's
/// requests behind its own: 50 slow requests held until `stop`, and the
/// flood.
fn attack(
    app: &TestApp,
    attacker: &Agent,
    victim: &Agent,
    stop: oneshot::Receiver<()>,
) -> std::thread::JoinHandle<(Vec<u16>, Duration)> {
    let address: SocketAddr = app.base_url.trim_start_matches("http://").parse().unwrap();
    let (path, key) = (attacker.workflows(), attacker.key.clone());
    let url = format!("{}{}", app.base_url, victim.workflows());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let slow: Vec<_> = (0..50)
                .map(|_| tokio::spawn(slow_request(address, path.clone(), key.clone())))
                .collect();
            let flooded = flood(url).await;
            let _ = stop.await;
            for request in slow {
                request.abort();
            }
            flooded
        })
    })
}

// The server runs on this test's runtime: two workers, as on the two cores
// of a small deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_keys_and_slow_requests_leave_a_legitimate_tenant_unharmed() {
    // The limits as deployed, behind a proxy that appends X-Forwarded-For.
    let app = TestApp::spawn_with(|s| {
        s.limits = LimitSettings {
            trust_forwarded_for: true,
            ..LimitSettings::default()
        }
    })
    .await;
    let tenant = app.new_agent(Uuid::new_v4()).await;
    let attacker = app.new_agent(Uuid::new_v4()).await;
    let (workers, rounds) = (4, 25);
    // A first round warms what a server warms (connections, caches).
    agent_mix(&app, &tenant, workers, 2).await;

    let quiet = agent_mix(&app, &tenant, workers, rounds).await;

    let (stop, stopped) = oneshot::channel();
    let attack = attack(&app, &attacker, &tenant, stopped);
    let attacked = agent_mix(&app, &tenant, workers, rounds).await;
    let _ = stop.send(());
    let (flood, flood_took) = tokio::task::spawn_blocking(move || attack.join().unwrap())
        .await
        .unwrap();

    let server_errors = |seen: &[(Duration, u16)]| seen.iter().filter(|(_, s)| *s >= 500).count();
    assert_eq!((server_errors(&quiet), server_errors(&attacked)), (0, 0));
    assert!(
        attacked.iter().all(|(_, s)| *s < 400),
        "the tenant is never refused"
    );
    let refused = flood.iter().filter(|s| **s == 429).count();
    let unauthorized = flood.iter().filter(|s| **s == 401).count();
    assert_eq!(
        refused + unauthorized,
        2_000,
        "the flood gets 401 then 429 only"
    );
    // Past its budget of failed attempts (a burst of 50, then 10 a second)
    // the address is refused from memory, with no key lookup, until the
    // budget has refilled; up to 16 requests in flight may pass the check
    // together each time the block lifts.
    let refills = flood_took.as_secs() as usize / 5 + 1;
    let budget = 50 + refills * (50 + 16);
    assert!(
        unauthorized <= budget,
        "{unauthorized} × 401 in {flood_took:?}, {refused} × 429"
    );
    let mut quiet: Vec<Duration> = quiet.into_iter().map(|(d, _)| d).collect();
    let mut attacked: Vec<Duration> = attacked.into_iter().map(|(d, _)| d).collect();
    let (quiet_p50, quiet_p99) = (percentile(&mut quiet, 0.5), percentile(&mut quiet, 0.99));
    let (attacked_p50, attacked_p99) = (
        percentile(&mut attacked, 0.5),
        percentile(&mut attacked, 0.99),
    );
    println!(
        "abuse flood: legitimate tenant p50/p99 quiet {quiet_p50:?}/{quiet_p99:?}, under attack \
         {attacked_p50:?}/{attacked_p99:?} ({} requests each); flood: {unauthorized} × 401, \
         {refused} × 429 in {flood_took:?}; 50 slow requests held",
        quiet.len()
    );
    // The attacker's client shares the test's two cores with the server
    // and the tenant: a small absolute slack keeps the scheduler's noise
    // on a debug build from failing the run; the ratio is printed above.
    let bound = (quiet_p99 * 3).max(quiet_p99 + Duration::from_millis(100));
    assert!(
        attacked_p99 < bound,
        "p99 under attack {attacked_p99:?} against {quiet_p99:?} quiet"
    );
}
