//! Prometheus metrics: request counts and latencies by route template,
//! database pool use, and workflows by status.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::Mutex;

use hydracore_domain::Status;
use hydracore_storage::Store;

const REQUESTS: &str = "hydracore_http_requests_total";
const LATENCY: &str = "hydracore_http_request_duration_seconds";
/// Counting workflows by status scans an index: do it at most this often.
const COUNTS_MAX_AGE: Duration = Duration::from_secs(15);

/// The process's recorder. Metrics are process-wide, as Prometheus scrapes
/// a process; several apps in one test process share it.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(LATENCY.to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Middleware: one count and one latency sample per request, labelled by
/// the route template (never the raw path, to bound cardinality).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(LATENCY, &labels).record(started.elapsed().as_secs_f64());
    response
}

type Counts = Vec<(Status, i64)>;

/// Workflow counts, refreshed when older than [`COUNTS_MAX_AGE`].
#[derive(Default)]
pub struct StatusCounts {
    last: Mutex<Option<(Instant, Counts)>>,
}

impl StatusCounts {
    async fn current(&self, store: &dyn Store) -> Counts {
        let mut last = self.last.lock().await;
        if let Some((at, counts)) = last.as_ref() {
            if at.elapsed() < COUNTS_MAX_AGE {
                return counts.clone();
            }
        }
        match store.count_by_status().await {
            Ok(counts) => {
                *last = Some((Instant::now(), counts.clone()));
                counts
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot count workflows for metrics");
                last.as_ref().map(|(_, c)| c.clone()).unwrap_or_default()
            }
        }
    }
}

/// The exposition text, with the gauges sampled now.
pub async fn render(store: &dyn Store, counts: &StatusCounts) -> String {
    let pool = store.pool_stats();
    metrics::gauge!("hydracore_db_connections", "state" => "in_use").set(f64::from(pool.in_use));
    metrics::gauge!("hydracore_db_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("hydracore_db_connections", "state" => "shared").set(f64::from(pool.shared));
    let counts = counts.current(store).await;
    for status in Status::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        // Gauges are f64; counts far beyond 2^53 are not a concern here.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("hydracore_workflows", "status" => status.as_str()).set(n as f64);
    }
    recorder().map(PrometheusHandle::render).unwrap_or_default()
}
