//! Starting the release `hydracore` binary, finding its address, and its
//! peak resident memory.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// The `hydracore` binary beside this one (both are built into the same
/// target directory).
pub fn hydracore_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating hydracore-bench's own executable")?;
    let dir = me
        .parent()
        .context("hydracore-bench's executable has no directory")?;
    let binary = dir.join("hydracore");
    if !binary.is_file() {
        bail!(
            "no hydracore binary at {}: run `cargo build --release -p hydracore` first \
             (or pass --target to use a running server)",
            binary.display()
        );
    }
    Ok(binary)
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database_url: String,
    pub jwt_secret: String,
    /// `HYDRACORE_DB_MAX_CONNECTIONS`; the server's default when `None`.
    pub max_connections: Option<u32>,
}

/// A running `hydracore serve`, stopped by [`Server::stop`] (or killed
/// when dropped).
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

const TAIL_LINES: usize = 20;

impl Server {
    pub async fn spawn(config: &ServerConfig) -> anyhow::Result<Server> {
        let binary = hydracore_binary()?;
        let mut command = Command::new(&binary);
        command
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .env("HYDRACORE_DATABASE_URL", &config.database_url)
            .env("HYDRACORE_JWT_SECRET", &config.jwt_secret)
            // Warnings only, plus the one "listening" line we wait for.
            .env("RUST_LOG", "warn,hydracore::cli=info")
            // The per-credential rate limit is for shared deployments: the
            // bench drives each instance through one proxy key, far above any
            // sensible per-client limit, and measures the server, not the
            // limiter's 429s.
            .env("HYDRACORE_RATE_LIMIT", "off")
            .env_remove("HYDRACORE_TENANT_RATE_LIMITS")
            .env_remove("HYDRACORE_CONFIG")
            .env_remove("HYDRACORE_LISTEN")
            .env_remove("HYDRACORE_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(n) = config.max_connections {
            command.env("HYDRACORE_DB_MAX_CONNECTIONS", n.to_string());
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (found, address) = oneshot::channel::<String>();
        let tail = Arc::clone(&stderr_tail);
        tokio::spawn(async move {
            let mut found = Some(found);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if found.is_some() {
                    if let Some(address) = listening_address(&line) {
                        if let Some(found) = found.take() {
                            let _ = found.send(address);
                        }
                        continue;
                    }
                }
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });
        let server = Server {
            child,
            pid,
            base_url: String::new(),
            stderr_tail,
        };
        match tokio::time::timeout(Duration::from_secs(60), address).await {
            Ok(Ok(base_url)) => Ok(Server { base_url, ..server }),
            Ok(Err(_)) => bail!(
                "the server exited before listening; its last log lines:\n{}",
                server.tail()
            ),
            Err(_) => bail!(
                "the server did not log \"listening\" within 60 s; its last log lines:\n{}",
                server.tail()
            ),
        }
    }

    /// The last lines the server logged (warnings and errors).
    pub fn tail(&self) -> String {
        self.stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.pid)
    }

    /// Reads the peak RSS, then stops the server (SIGTERM, then SIGKILL
    /// after 10 s) and returns that peak.
    pub async fn stop(mut self) -> Option<u64> {
        let peak = self.peak_rss_kib();
        let terminated = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let stopped = terminated
            && tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok();
        if !stopped {
            let _ = self.child.kill().await;
        }
        peak
    }
}

/// The `address` of a JSON "listening" log line.
fn listening_address(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = value
        .get("message")
        .or_else(|| value.pointer("/fields/message"))?;
    if message.as_str()? != "listening" {
        return None;
    }
    value
        .get("address")
        .or_else(|| value.pointer("/fields/address"))?
        .as_str()
        .map(str::to_owned)
}

/// `VmHWM` (peak resident set size) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let line = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"INFO","message":"listening","address":"http://127.0.0.1:4321","target":"hydracore::cli"}"#;
        assert_eq!(
            listening_address(line).as_deref(),
            Some("http://127.0.0.1:4321")
        );
        assert_eq!(
            listening_address(r#"{"message":"other","address":"x"}"#),
            None
        );
        assert_eq!(listening_address("not json"), None);
    }

    #[test]
    fn our_own_peak_rss_is_readable() {
        assert!(peak_rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
