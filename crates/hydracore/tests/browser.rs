//! The web page in a real browser: starts `hydracore serve` on SQLite and
//! runs the Playwright suites of `tests/browser/` in Debian's headless
//! Chromium against it. Without Chromium, node or the suites' npm packages
//! it says so in a NOTE and passes, so that a plain `cargo test` works on a
//! bare machine; with `HYDRACORE_BROWSER_TESTS=required` (as `.ci/run`
//! sets) a missing piece fails instead.
//!
//! `HYDRACORE_UI_SCREENSHOTS=docs/ui` also writes the screenshots of
//! `docs/ui/` (a path relative to the repository's root).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use serde_json::Value;

/// Signs the suites' admin JWTs; the server verifies them with it.
const JWT_SECRET: &str = "browser-tests-secret-that-is-long-enough-for-hs256";

fn main() -> ExitCode {
    let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("HYDRACORE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let missing = missing_pieces(&suites, &chromium);
    if !missing.is_empty() {
        let required = std::env::var("HYDRACORE_BROWSER_TESTS").as_deref() == Ok("required");
        println!(
            "NOTE: the browser suites (tests/browser) were NOT run: {}.",
            missing.join("; ")
        );
        println!(
            "      Install them with: apt-get install chromium chromium-driver && npm ci --prefix crates/hydracore/tests/browser"
        );
        return if required {
            println!("HYDRACORE_BROWSER_TESTS=required: failing.");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }

    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return fail(&format!("a temporary directory: {e}")),
    };
    let database_url = format!("sqlite:{}", dir.path().join("hydracore.db").display());
    let server = match Server::start(&database_url, dir.path()) {
        Ok(server) => server,
        Err(e) => return fail(&e),
    };

    let mut files: Vec<PathBuf> = std::fs::read_dir(&suites)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut node = Command::new("node");
    // One suite at a time: each drives its own Chromium, and the machine
    // is shared.
    node.args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .args(&files)
        .current_dir(&suites)
        .env("HC_BASE_URL", &server.base_url)
        .env("HC_DATABASE_URL", &database_url)
        .env("HC_BIN", env!("CARGO_BIN_EXE_hydracore"))
        .env(
            "HC_UI_LINK",
            server.demo["ui_link"].as_str().unwrap_or_default(),
        )
        .env(
            "HC_TENANT_ID",
            server.demo["tenant_id"].as_str().unwrap_or_default(),
        )
        .env("HC_CHROMIUM", &chromium)
        .env("HYDRACORE_JWT_SECRET", JWT_SECRET);
    if let Some(to) = std::env::var_os("HYDRACORE_UI_SCREENSHOTS") {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        node.env("HC_SCREENSHOTS", root.join(to));
    }
    println!(
        "Browser suites: Chromium at {}, hydracore at {}",
        chromium.display(),
        server.base_url
    );
    let status = node.status();
    drop(server);
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => fail(&format!("the browser suites failed ({status})")),
        Err(e) => fail(&format!("running node: {e}")),
    }
}

fn fail(why: &str) -> ExitCode {
    eprintln!("browser suites: {why}");
    ExitCode::FAILURE
}

/// What the suites need that this machine lacks, as words for the NOTE.
fn missing_pieces(suites: &Path, chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!("no Chromium at {}", chromium.display()));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("no `node` on PATH".to_owned());
    }
    for package in ["playwright-core", "axe-core"] {
        if !suites.join("node_modules").join(package).exists() {
            missing.push(format!("no {package} in tests/browser/node_modules"));
        }
    }
    missing
}

/// A `hydracore serve --demo` on its own SQLite file and a free port,
/// killed when dropped.
struct Server {
    child: Child,
    base_url: String,
    demo: Value,
}

impl Server {
    fn start(database_url: &str, dir: &Path) -> Result<Self, String> {
        let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_hydracore"))
            .args(["--json", "serve", "--listen", "127.0.0.1:0", "--demo"])
            .env("HYDRACORE_DATABASE_URL", database_url)
            .env("HYDRACORE_JWT_SECRET", JWT_SECRET)
            .env("HYDRACORE_SQLITE_SYNC", "normal")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting hydracore serve: {e}"))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let demo: Value = match (read, serde_json::from_str::<Value>(&line)) {
            (Some(Ok(_)), Ok(demo)) => demo,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!("hydracore serve --demo printed {line:?}\n{log}"));
            }
        };
        let base_url = demo["base_url"].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            child,
            base_url,
            demo,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
