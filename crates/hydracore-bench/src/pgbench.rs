//! The PostgreSQL baseline: `pgbench -N` (simple-update, no branch/teller
//! updates) in a scratch database on the same server.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::process::Command;
use uuid::Uuid;

use crate::db::{create_postgres_database, drop_postgres_database, redact, with_database};

#[derive(Debug, Clone)]
pub struct PgbenchConfig {
    pub binary: String,
    /// Any database URL of the server; the scratch database sits beside it.
    pub server: String,
    pub scale: u32,
    pub clients: u32,
    pub threads: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgbenchResult {
    pub tps: f64,
    pub scale: u32,
    pub clients: u32,
    pub threads: u32,
    pub duration_s: f64,
    pub command: String,
}

/// `pgbench -i -s SCALE` then `pgbench -N -c CLIENTS -j THREADS -M prepared
/// -T DURATION` in a new database, dropped afterwards.
pub async fn run(config: &PgbenchConfig) -> anyhow::Result<PgbenchResult> {
    let name = format!("hc_pgbench_{}", Uuid::new_v4().simple());
    create_postgres_database(&config.server, &name).await?;
    let result = run_in(config, &with_database(&config.server, &name)).await;
    let dropped = drop_postgres_database(&config.server, &name).await;
    let result = result?;
    dropped?;
    Ok(result)
}

async fn run_in(config: &PgbenchConfig, url: &str) -> anyhow::Result<PgbenchResult> {
    eprintln!("pgbench: initialising scale {} ...", config.scale);
    let init = Command::new(&config.binary)
        .args(["-i", "-q", "-s", &config.scale.to_string(), url])
        .output()
        .await
        .with_context(|| format!("running {} (is pgbench installed?)", config.binary))?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        );
    }
    let seconds = config.duration.as_secs().max(1);
    let args = [
        "-N".to_owned(),
        "-c".to_owned(),
        config.clients.to_string(),
        "-j".to_owned(),
        config.threads.to_string(),
        "-M".to_owned(),
        "prepared".to_owned(),
        "-T".to_owned(),
        seconds.to_string(),
    ];
    eprintln!("pgbench: {} for {seconds} s ...", args.join(" "));
    let out = Command::new(&config.binary)
        .args(&args)
        .arg(url)
        .output()
        .await
        .with_context(|| format!("running {}", config.binary))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tps = parse_tps(&stdout).with_context(|| format!("no \"tps = \" in:\n{stdout}"))?;
    Ok(PgbenchResult {
        tps,
        scale: config.scale,
        clients: config.clients,
        threads: config.threads,
        duration_s: seconds as f64,
        command: format!("pgbench {} {}", args.join(" "), redact(url)),
    })
}

/// The figure of pgbench's `tps = 1234.5 (without initial connection time)`.
pub fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .rev()
        .filter_map(|line| line.trim().strip_prefix("tps = "))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tps_is_read_from_pgbench_output() {
        let out = "number of transactions actually processed: 1234\n\
                   latency average = 2.5 ms\n\
                   initial connection time = 10.1 ms\n\
                   tps = 4567.891234 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(4567.891234));
        assert_eq!(parse_tps("nothing"), None);
    }
}
