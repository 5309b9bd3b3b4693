//! MCP clients that nobody here wrote, against a real server: the Python
//! MCP SDK over streamable HTTP (`tests/mcp/agent_loop_http.py`) and the
//! TypeScript SDK through `hydracore mcp` on stdio
//! (`tests/mcp/agent_loop_stdio.mjs`). Each runs an agent's whole loop.
//!
//! The SDKs are not Rust crates: a client that is not installed is named
//! in a NOTE and not run, so a plain `cargo test` passes without them.
//! Install them (as `.ci/run` does) with
//!
//!     python3 -m venv target/mcp-venv
//!     target/mcp-venv/bin/pip install -r crates/hydracore/tests/mcp/requirements.txt
//!     npm ci --prefix crates/hydracore/tests/mcp
//!
//! and run `HYDRACORE_TEST_PYTHON=target/mcp-venv/bin/python cargo test -p hydracore --test mcp_clients`.
//! With `HYDRACORE_TEST_MCP_CLIENTS_REQUIRED` set, a client that is not
//! installed fails the test instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use hydracore::config::Settings;
use hydracore::provision;
use hydracore::startup::App;
use serde_json::json;
use tokio::process::Command;
use uuid::Uuid;

const JWT_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run())
}

/// What the scripts need to know, as their environment.
struct Server {
    env: Vec<(&'static str, String)>,
}

async fn run() -> ExitCode {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
    let python = std::env::var("HYDRACORE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let python_ready = succeeds(Command::new(&python).args(["-c", "import mcp, httpx2"])).await;
    let node_ready = scripts
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
        && succeeds(Command::new("node").arg("--version")).await;
    let mut suites: Vec<(&str, Command)> = Vec::new();
    if python_ready {
        let mut command = Command::new(&python);
        command.arg(scripts.join("agent_loop_http.py"));
        suites.push(("python mcp SDK, streamable HTTP", command));
    } else {
        println!(
            "NOTE: the Python MCP SDK client test was NOT run: `{python} -c 'import mcp'` failed. \
             Install it: python3 -m venv target/mcp-venv && target/mcp-venv/bin/pip install -r \
             crates/hydracore/tests/mcp/requirements.txt, then set \
             HYDRACORE_TEST_PYTHON=target/mcp-venv/bin/python"
        );
    }
    if node_ready {
        let mut command = Command::new("node");
        command.arg(scripts.join("agent_loop_stdio.mjs"));
        suites.push(("TypeScript MCP SDK, stdio", command));
    } else {
        println!(
            "NOTE: the TypeScript MCP SDK client test was NOT run: node or its packages are \
             missing. Install them: npm ci --prefix crates/hydracore/tests/mcp"
        );
    }
    // CI installs both and sets this, so that a broken install fails
    // instead of passing with a NOTE.
    let required = std::env::var_os("HYDRACORE_TEST_MCP_CLIENTS_REQUIRED").is_some();
    if required && !(python_ready && node_ready) {
        println!("NOTE: HYDRACORE_TEST_MCP_CLIENTS_REQUIRED is set, but a client is not installed");
        println!("mcp_clients: 0 passed, 1 failed");
        return ExitCode::FAILURE;
    }
    if suites.is_empty() {
        return ExitCode::SUCCESS;
    }

    let database = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", database.path().join("mcp.db").display());
    let app = App::build(&Settings::for_tests(&url, JWT_SECRET))
        .await
        .expect("app builds");
    let server = Server::of(&app).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    let (mut passed, mut failed) = (0, 0);
    for (name, mut command) in suites {
        command
            .envs(server.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("HC_BIN", env!("CARGO_BIN_EXE_hydracore"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output()).await;
        match output {
            Ok(Ok(output)) if output.status.success() => {
                passed += 1;
                println!("ok: {name}");
                print!("{}", indent(&output.stdout));
            }
            Ok(Ok(output)) => {
                failed += 1;
                println!("FAILED: {name} ({})", output.status);
                print!("{}", indent(&output.stdout));
                print!("{}", indent(&output.stderr));
            }
            Ok(Err(e)) => {
                failed += 1;
                println!("FAILED: {name}: could not run: {e}");
            }
            Err(_) => {
                failed += 1;
                println!("FAILED: {name}: still running after {SCRIPT_TIMEOUT:?}");
            }
        }
    }
    drop(stop);
    let _ = serving.await;
    println!("mcp_clients: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Server {
    /// A tenant with two instances, a key each, and an admin token.
    async fn of(app: &App) -> Self {
        let store = app.store();
        let tenant_id = Uuid::new_v4();
        let mut keys = Vec::new();
        for _ in 0..2 {
            let instance = provision::create_instance(store.as_ref(), tenant_id, None)
                .await
                .expect("instance");
            let issued = provision::create_proxy_key(store.as_ref(), instance.id)
                .await
                .expect("proxy key");
            keys.push(issued.key);
        }
        let exp = chrono::Utc::now().timestamp() + 3600;
        let admin = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": "mcp-test-admin", "tenant_id": tenant_id, "role": "admin", "exp": exp}),
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .expect("token");
        let url = format!("http://{}", app.local_addr().expect("bound"));
        Self {
            env: vec![
                ("HC_URL", url),
                ("HC_PROXY_KEY", keys[0].clone()),
                ("HC_OTHER_PROXY_KEY", keys[1].clone()),
                ("HC_ADMIN_JWT", admin),
            ],
        }
    }
}

async fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

fn indent(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect()
}
