//! Commit-to-stream latency: open Server-Sent Events streams of a tenant,
//! advance its workflows at a steady rate, and time each event from the
//! acknowledgement of the change that made it to its arrival on every
//! stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use reqwest::header::{ACCEPT, ETAG};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::load::Agent;

/// Which change made an event: its workflow and the version it wrote.
type Change = (Uuid, i64);

/// What one run measures.
pub struct Plan {
    /// Where the changes are written.
    pub writer: String,
    /// Where the streams read (the writer itself, or another replica).
    pub reader: String,
    pub agent: Agent,
    /// An admin JWT of the agent's tenant, for `/v1/events`.
    pub admin_jwt: String,
    pub streams: usize,
    pub workflows: usize,
    /// Changes per second.
    pub rate: u32,
    pub duration: Duration,
    /// The reading server's pid, for its memory.
    pub reader_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Measured {
    pub streams: usize,
    pub changes: usize,
    /// Deliveries expected (changes × streams) and those seen.
    pub expected: usize,
    pub delivered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The reading server's resident memory before the streams opened and
    /// with all of them open.
    pub rss_before_kib: Option<u64>,
    pub rss_streaming_kib: Option<u64>,
}

impl Measured {
    pub fn text(&self) -> String {
        let rss = match (self.rss_before_kib, self.rss_streaming_kib) {
            (Some(before), Some(open)) => format!(
                "; reader RSS {:.1} MiB before the streams, {:.1} MiB with them open",
                before as f64 / 1024.0,
                open as f64 / 1024.0
            ),
            _ => String::new(),
        };
        format!(
            "{} stream(s), {} changes: {} of {} deliveries; commit to stream p50 {:.2} ms, \
             p99 {:.2} ms, max {:.2} ms{rss}",
            self.streams,
            self.changes,
            self.delivered,
            self.expected,
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        )
    }
}

pub async fn measure(plan: &Plan) -> anyhow::Result<Measured> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.streams + 16)
        .build()?;
    let workflows_path = format!(
        "{}/internal/v1/instances/{}/workflows",
        plan.writer, plan.agent.instance_id
    );
    let mut ids = Vec::new();
    for n in 0..plan.workflows.max(1) {
        let created: Value = client
            .post(&workflows_path)
            .bearer_auth(&plan.agent.key)
            .json(
                &json!({"customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears",
                          "title": format!("Stream bench {n}")}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.push(
            created["id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .context("a create answer without an id")?,
        );
    }
    // Streams start after the newest event so far, so that they see only
    // this run's advances.
    let mut after: Option<String> = None;
    loop {
        let from = after.as_deref().map(|a| format!("&after={a}"));
        let page: Value = client
            .get(format!(
                "{}/v1/events?limit=500{}",
                plan.reader,
                from.unwrap_or_default()
            ))
            .bearer_auth(&plan.admin_jwt)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if page["events"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        after = page["next_after"].as_str().map(str::to_owned);
    }

    let rss_before_kib = plan.reader_pid.and_then(current_rss_kib);
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(Change, Instant)>();
    let mut readers = Vec::new();
    for _ in 0..plan.streams {
        let mut request = client
            .get(format!("{}/v1/events", plan.reader))
            .bearer_auth(&plan.admin_jwt)
            .header(ACCEPT, "text/event-stream");
        if let Some(after) = &after {
            request = request.header("last-event-id", after);
        }
        let response = request.send().await?.error_for_status()?;
        readers.push(tokio::spawn(read_stream(response, seen_tx.clone())));
    }
    drop(seen_tx);
    let rss_streaming_kib = plan.reader_pid.and_then(current_rss_kib);

    let acked: Arc<Mutex<HashMap<Change, Instant>>> = Arc::default();
    let interval = Duration::from_secs(1) / plan.rate.max(1);
    let mut ticker = tokio::time::interval(interval);
    let started = Instant::now();
    let mut step = 0usize;
    while started.elapsed() < plan.duration {
        ticker.tick().await;
        let id = ids[step % ids.len()];
        step += 1;
        let response = client
            .patch(format!("{workflows_path}/{id}"))
            .bearer_auth(&plan.agent.key)
            .header("prefer", "return=minimal")
            .json(&json!({"action": "contacted", "action_detail": {"step": step}}))
            .send()
            .await?;
        let at = Instant::now();
        if !response.status().is_success() {
            bail!("an advance answered {}", response.status());
        }
        let version = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse::<i64>().ok())
            .context("an advance answer without an ETag")?;
        if let Ok(mut acked) = acked.lock() {
            acked.insert((id, version), at);
        }
    }
    let changes = step;
    // Every delivery has had time to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for reader in &readers {
        reader.abort();
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut delivered = 0usize;
    let acked = acked
        .lock()
        .map_err(|_| anyhow::anyhow!("a writer panicked"))?
        .clone();
    while let Some((change, arrived)) = seen_rx.recv().await {
        if let Some(at) = acked.get(&change) {
            delivered += 1;
            // An event may arrive before the writer has read its answer.
            let micros = arrived.saturating_duration_since(*at).as_micros();
            latency.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Measured {
        streams: plan.streams,
        changes,
        expected: changes * plan.streams,
        delivered,
        p50_ms: ms(latency.value_at_quantile(0.5)),
        p99_ms: ms(latency.value_at_quantile(0.99)),
        max_ms: ms(latency.max()),
        rss_before_kib,
        rss_streaming_kib,
    })
}

/// Reads a stream's events until it ends or is aborted, sending each
/// one's change and arrival time.
async fn read_stream(
    mut response: reqwest::Response,
    seen: mpsc::UnboundedSender<(Change, Instant)>,
) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let arrived = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(data.trim_start()) else {
                continue;
            };
            let change = (
                event["workflow_id"].as_str().and_then(|s| s.parse().ok()),
                event["version"].as_i64(),
            );
            if let (Some(id), Some(version)) = change {
                let _ = seen.send(((id, version), arrived));
            }
        }
    }
}

/// The resident memory of process `pid` now (`VmRSS`), in KiB.
fn current_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
