//! Per-operation latency histograms (microseconds) and status counts, and
//! the reports made of them: a table for people, JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No HTTP answer: connect, send or read failed (or timed out).
    Transport,
}

/// The samples of one operation.
#[derive(Debug, Clone)]
pub struct OpStats {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
}

impl OpStats {
    fn record(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Status(status) => {
                *self.statuses.entry(status).or_default() += 1;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us.saturating_record(micros.max(1));
            }
            Outcome::Transport => self.transport_errors += 1,
        }
    }

    fn merge(&mut self, other: &OpStats) -> anyhow::Result<()> {
        self.latency_us.add(&other.latency_us)?;
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        Ok(())
    }
}

/// Samples of every operation a task (or a whole run) made, in the order
/// the operations first appeared.
#[derive(Debug, Clone)]
pub struct Recorder {
    template: Histogram<u64>,
    ops: Vec<(&'static str, OpStats)>,
}

impl Recorder {
    pub fn new() -> anyhow::Result<Self> {
        // 1 µs .. 1 h, 3 significant digits.
        let template = Histogram::new_with_bounds(1, 3_600_000_000, 3)?;
        Ok(Self {
            template,
            ops: Vec::new(),
        })
    }

    fn entry(&mut self, op: &'static str) -> &mut OpStats {
        let index = match self.ops.iter().position(|(name, _)| *name == op) {
            Some(index) => index,
            None => {
                self.ops.push((
                    op,
                    OpStats {
                        latency_us: Histogram::new_from(&self.template),
                        statuses: BTreeMap::new(),
                        transport_errors: 0,
                    },
                ));
                self.ops.len() - 1
            }
        };
        &mut self.ops[index].1
    }

    pub fn record(&mut self, op: &'static str, outcome: Outcome, latency: Duration) {
        self.entry(op).record(outcome, latency);
    }

    pub fn merge(&mut self, other: &Recorder) -> anyhow::Result<()> {
        for (op, stats) in &other.ops {
            self.entry(op).merge(stats)?;
        }
        Ok(())
    }

    /// The report of these samples over a measured `duration`, operations
    /// in `ORDER` first, then any others, and a total line.
    pub fn report(&self, duration: Duration) -> anyhow::Result<(Vec<OpReport>, OpReport)> {
        const ORDER: [&str; 6] = ["create", "advance", "get", "list", "suspend", "resume"];
        let rank = |op: &str| ORDER.iter().position(|o| *o == op).unwrap_or(ORDER.len());
        let mut ops: Vec<&(&'static str, OpStats)> = self.ops.iter().collect();
        ops.sort_by_key(|(op, _)| rank(op));
        let mut total = OpStats {
            latency_us: Histogram::new_from(&self.template),
            statuses: BTreeMap::new(),
            transport_errors: 0,
        };
        let mut lines = Vec::new();
        for (op, stats) in ops {
            total.merge(stats)?;
            lines.push(OpReport::new(op, stats, duration));
        }
        Ok((lines, OpReport::new("total", &total, duration)))
    }
}

/// One line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub op: String,
    /// Requests answered (any status) plus transport errors.
    pub count: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Everything else: non-2xx answers and transport errors.
    pub errors: u64,
    /// Non-2xx answers by status code.
    pub errors_by_status: BTreeMap<String, u64>,
    pub transport_errors: u64,
    /// All requests (`count`) per second of the measured window.
    pub req_per_s: f64,
    /// Latency of the requests that got an HTTP answer, in milliseconds.
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl OpReport {
    fn new(op: &str, stats: &OpStats, duration: Duration) -> Self {
        let answered: u64 = stats.statuses.values().sum();
        let ok: u64 = stats
            .statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let errors_by_status = stats
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        let count = answered + stats.transport_errors;
        let h = &stats.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let secs = duration.as_secs_f64();
        Self {
            op: op.to_owned(),
            count,
            ok,
            errors: count - ok,
            errors_by_status,
            transport_errors: stats.transport_errors,
            req_per_s: if secs > 0.0 { count as f64 / secs } else { 0.0 },
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }

    fn errors_text(&self) -> String {
        let mut parts: Vec<String> = self
            .errors_by_status
            .iter()
            .map(|(status, n)| format!("{status}:{n}"))
            .collect();
        if self.transport_errors > 0 {
            parts.push(format!("io:{}", self.transport_errors));
        }
        if parts.is_empty() {
            "0".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

/// The human table of a report.
pub fn table(ops: &[OpReport], total: &OpReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}  errors",
        "op", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for line in ops.iter().chain(std::iter::once(total)) {
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
            line.op,
            line.count,
            line.req_per_s,
            line.p50_ms,
            line.p95_ms,
            line.p99_ms,
            line.max_ms,
            line.errors_text()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_status_and_latency_percentiles_come_out_in_ms() {
        let mut a = Recorder::new().expect("recorder");
        for i in 1..=100u64 {
            a.record("get", Outcome::Status(200), Duration::from_millis(i));
        }
        let mut b = Recorder::new().expect("recorder");
        b.record("get", Outcome::Status(404), Duration::from_millis(1));
        b.record("create", Outcome::Transport, Duration::from_millis(1));
        a.merge(&b).expect("merge");
        let (ops, total) = a.report(Duration::from_secs(10)).expect("report");
        assert_eq!(ops[0].op, "create");
        assert_eq!(ops[0].transport_errors, 1);
        let get = &ops[1];
        assert_eq!((get.count, get.ok, get.errors), (101, 100, 1));
        assert_eq!(get.errors_by_status.get("404"), Some(&1));
        assert!((get.p50_ms - 50.0).abs() < 0.5, "{}", get.p50_ms);
        assert!((get.p99_ms - 99.0).abs() < 0.5, "{}", get.p99_ms);
        assert_eq!(total.count, 102);
        assert!((total.req_per_s - 10.2).abs() < 1e-9);
        assert!(table(&ops, &total).contains("404:1"));
    }
}
