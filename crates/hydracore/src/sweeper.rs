//! The background sweeper: expires overdue workflows (history `expired`,
//! actor `system`), escalates overdue decisions (history `escalated`),
//! forgets idempotency keys past their 24 hours and events past their
//! retention, and deletes the web page's expired sessions and links.
//!
//! Every replica runs one; the storage backends make that safe (each
//! workflow expires once, each due time escalates once). Work per tick is bounded so that a backlog is
//! worked off over several ticks instead of in one long run.

use std::time::Duration;

use hydracore_domain::Timestamp;
use hydracore_storage::{StoreError, SweepJob, UiTokens, Workflows};
use tokio::sync::watch;

/// Workflows expired or escalated per batch.
pub const BATCH: u32 = 500;
/// Batches per tick, at most.
const MAX_BATCHES: u32 = 20;

/// One sweep: expires, then escalates, what is due (up to the bounds of
/// each) and purges old keys. Returns how many workflows it changed.
pub async fn sweep_once(workflows: &Workflows) -> Result<u64, StoreError> {
    let mut changed = 0;
    // Each job runs whatever became of the one before; the first error is
    // the sweep's answer.
    let mut failed = None;
    for job in [SweepJob::Expire, SweepJob::Escalate] {
        for _ in 0..MAX_BATCHES {
            match workflows.sweep_due(job, BATCH).await {
                Ok(n) => {
                    changed += n;
                    if n < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    failed.get_or_insert(e);
                    break;
                }
            }
        }
    }
    if let Err(e) = workflows.purge_idempotency_keys(BATCH).await {
        failed.get_or_insert(e);
    }
    for _ in 0..MAX_BATCHES {
        match workflows.purge_events(BATCH).await {
            Ok(n) if n < u64::from(BATCH) => break,
            Ok(_) => {}
            Err(e) => {
                failed.get_or_insert(e);
                break;
            }
        }
    }
    failed.map_or(Ok(changed), Err)
}

/// Sweeps every `interval` until `stop` turns true, counting finished
/// sweeps in `done` (tests wait on it instead of sleeping).
pub async fn run(
    workflows: Workflows,
    tokens: UiTokens,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    done: watch::Sender<u64>,
) {
    // The first sweep one interval after start, like every later one.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        match sweep_once(&workflows).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired overdue workflows"),
            Err(e) => tracing::warn!(error = %e, "sweep failed; retrying next tick"),
        }
        if let Err(e) = tokens.purge(Timestamp::now(), BATCH).await {
            tracing::warn!(error = %e, "purging expired web page tokens failed; retrying next tick");
        }
        done.send_modify(|n| *n += 1);
    }
}
