//! The binary as operators run it: signals, logs, configuration files.

use std::process::Stdio;
use std::time::Duration;

use futures::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::cli::hydracore_json;
use crate::helpers::TestDatabase;

/// Upper bound on any wait for the server: a hung server fails the test
/// instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);
const SECRET: &str = "process-test-secret-of-at-least-32-bytes";

/// `hydracore serve` as a child process, with its log lines in order.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) base_url: String,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl ServerProcess {
    async fn start(database_url: &str, rust_log: &str) -> Self {
        Self::start_with(database_url, rust_log, &[]).await
    }

    /// [`ServerProcess::start`] with further environment variables.
    pub(crate) async fn start_with(
        database_url: &str,
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hydracore"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env("HYDRACORE_DATABASE_URL", database_url)
            .env("HYDRACORE_JWT_SECRET", SECRET)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("server starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProcess {
            child,
            base_url: String::new(),
            lines,
            seen: Vec::new(),
        };
        let listening = server.wait_for(|l| l.contains("\"listening\"")).await;
        let log: Value = serde_json::from_str(&listening).expect("JSON log line");
        server.base_url = log["address"].as_str().expect("address logged").to_owned();
        server
    }

    /// The next log line matching `predicate`, waiting at most [`PATIENCE`].
    async fn wait_for(&mut self, predicate: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if predicate(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("log line not seen; got:\n{}", self.seen.join("\n")),
        }
    }

    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub(crate) fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Waits for the exit and returns every log line the server wrote.
    pub(crate) async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("exits in time")
            .expect("waited");
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }
}

/// A database on the suite's backend with one instance and its proxy key,
/// made by the CLI.
async fn provisioned() -> (TestDatabase, String, String, String) {
    let (database, db) = TestDatabase::create().await;
    let tenant = Uuid::new_v4().to_string();
    let instance = hydracore_json(&db, &["instances", "create", "--tenant", &tenant]);
    let instance_id = instance["id"].as_str().unwrap().to_owned();
    let key = hydracore_json(&db, &["keys", "create-proxy", "--instance", &instance_id]);
    (
        database,
        db,
        instance_id,
        key["key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_cleanly() {
    let (_database, db, instance_id, key) = provisioned().await;
    let mut server = ServerProcess::start(&db, "hydracore=debug").await;

    // The body arrives in two parts; the request is in flight in between.
    let (mut body_tx, body_rx) =
        futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "approval"})
        .to_string()
        .into_bytes();
    let (first, rest) = body.split_at(10);
    body_tx.send(Ok(first.to_vec())).await.unwrap();
    let request = reqwest::Client::new()
        .post(format!(
            "{}/internal/v1/instances/{instance_id}/workflows",
            server.base_url
        ))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("x-request-id", "slow-request-1")
        .body(reqwest::Body::wrap_stream(body_rx))
        .send();
    let response = tokio::spawn(request);

    server
        .wait_for(|l| l.contains("request started") && l.contains("slow-request-1"))
        .await;
    server.terminate();
    server.wait_for(|l| l.contains("shutting down")).await;
    body_tx.send(Ok(rest.to_vec())).await.unwrap();
    drop(body_tx);

    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let (status, logs) = server.exit().await;
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(logs.contains("\"stopped\""), "{logs}");

    // The answered write is in the database.
    let store = hydracore_storage::connect(&db, &hydracore_storage::StoreOptions::default())
        .await
        .unwrap();
    let instances = store.list_instances().await.unwrap();
    let scope = hydracore_domain::Scope::instance(instances[0].tenant_id, instances[0].id);
    let id = Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    let stored = store
        .get_workflow(scope, id, hydracore_storage::WithHistory::No)
        .await
        .unwrap();
    assert_eq!(stored.map(|w| w.workflow_type.as_str()), Some("approval"));
}

#[tokio::test]
async fn secrets_never_appear_in_the_logs_even_at_trace_level() {
    let (_database, db, instance_id, proxy_key) = provisioned().await;
    let tenant = hydracore_json(&db, &["instances", "list"])["instances"][0]["tenant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let api_key = hydracore_json(&db, &["keys", "create-api", "--tenant", &tenant])["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt = {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hydracore"))
            .args(["--json", "token", "--tenant", &tenant])
            .env("HYDRACORE_DATABASE_URL", &db)
            .env("HYDRACORE_JWT_SECRET", SECRET)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let wrong_key = format!("hcp_{}", "W".repeat(43));
    // The machine's PostgreSQL trusts local logins and ignores a password,
    // so one can be put in the URL to check it is never logged.
    let db_password = "db-password-that-must-not-leak";
    let db = db.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{db_password}@"),
        1,
    );
    let mut server = ServerProcess::start(&db, "trace").await;
    let client = reqwest::Client::new();
    let internal = format!(
        "{}/internal/v1/instances/{instance_id}/workflows",
        server.base_url
    );
    let dashboard = format!("{}/v1/workflows", server.base_url);
    let statuses = [
        client
            .get(&internal)
            .bearer_auth(&proxy_key)
            .send()
            .await
            .unwrap()
            .status(),
        client
            .get(&internal)
            .bearer_auth(&wrong_key)
            .send()
            .await
            .unwrap()
            .status(),
        client
            .get(&dashboard)
            .header("x-api-key", &api_key)
            .send()
            .await
            .unwrap()
            .status(),
        client
            .get(&dashboard)
            .bearer_auth(&jwt)
            .send()
            .await
            .unwrap()
            .status(),
        client
            .get(&dashboard)
            .bearer_auth(format!("{jwt}x"))
            .send()
            .await
            .unwrap()
            .status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 401, 200, 200, 401]);
    server
        .wait_for(|l| l.contains("\"request\"") && l.contains("401"))
        .await;
    server.terminate();
    let (_, logs) = server.exit().await;
    assert!(logs.contains("request"), "the server did log: {logs}");
    for (what, secret) in [
        ("proxy key", proxy_key.as_str()),
        ("wrong proxy key", wrong_key.as_str()),
        ("API key", api_key.as_str()),
        ("JWT", jwt.as_str()),
        ("JWT secret", SECRET),
        ("database password", db_password),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("hydracore.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run_with_config(config: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hydracore"));
    command.arg("--config").arg(config).args(args);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("HYDRACORE_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn a_config_file_sets_what_flags_and_variables_leave_unset() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file.db");
    let config = write_config(
        dir.path(),
        &format!("database_url = \"sqlite:{}\"\n", from_file.display()),
    );
    let out = run_with_config(&config, &["--json", "migrate"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(from_file.exists());

    let from_env = dir.path().join("from-env.db");
    let url = format!("sqlite:{}", from_env.display());
    let out = run_with_config(
        &config,
        &["--json", "migrate"],
        &[("HYDRACORE_DATABASE_URL", &url)],
    );
    assert!(out.status.success());
    assert!(from_env.exists(), "the variable wins over the file");
}

#[test]
fn an_invalid_or_unknown_setting_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "db_max_connections = 0\n");
    let out = run_with_config(&config, &["serve", "--listen", "127.0.0.1:0"], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--max-connections"), "{stderr}");

    let config = write_config(dir.path(), "lisen = \"0.0.0.0:80\"\n");
    let out = run_with_config(&config, &["migrate"], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown setting `lisen`") && stderr.contains("listen"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_write_survives_a_sigkill_during_load() {
    let (_database, db, instance_id, key) = provisioned().await;
    let server = ServerProcess::start(&db, "warn,hydracore::cli=info").await;
    let url = format!(
        "{}/internal/v1/instances/{instance_id}/workflows",
        server.base_url
    );
    let (acked_tx, mut acked) = tokio::sync::watch::channel(Vec::<String>::new());
    let acked_tx = std::sync::Arc::new(acked_tx);
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (url, key, acked_tx) = (url.clone(), key.clone(), acked_tx.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                loop {
                    let body =
                        json!({"customer_id": Uuid::new_v4(), "workflow_type": "maintenance"});
                    let Ok(r) = client.post(&url).bearer_auth(&key).json(&body).send().await else {
                        return;
                    };
                    if r.status() != 201 {
                        return;
                    }
                    let Ok(created) = r.json::<Value>().await else {
                        return;
                    };
                    let id = created["id"].as_str().unwrap_or_default().to_owned();
                    acked_tx.send_modify(|ids| ids.push(id));
                }
            })
        })
        .collect();
    tokio::time::timeout(PATIENCE, acked.wait_for(|ids| ids.len() >= 300))
        .await
        .expect("load runs")
        .unwrap();
    server.signal("-KILL");
    for writer in writers {
        writer.await.unwrap();
    }
    let (status, _) = server.exit().await;
    assert!(!status.success(), "killed");
    let acknowledged = acked.borrow().clone();

    let restarted = ServerProcess::start(&db, "warn,hydracore::cli=info").await;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/internal/v1/instances/{instance_id}/workflows",
        restarted.base_url
    );
    let mut lost = Vec::new();
    for id in &acknowledged {
        let r = client
            .get(format!("{url}/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            lost.push(id.clone());
        }
    }
    println!(
        "SIGKILL during load: {} writes answered 201, {} lost after restart",
        acknowledged.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "lost {} of {}: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    restarted.terminate();
    restarted.exit().await;
}
