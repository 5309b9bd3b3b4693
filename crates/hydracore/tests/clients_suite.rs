//! The client libraries' own tests (clients/python with pytest,
//! clients/typescript with node's test runner), each against a real
//! `hydracore serve`, run by `cargo test` when their packages are installed;
//! otherwise a NOTE says they were not run and how to install them.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn repo() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn runs(command: &mut Command) -> bool {
    command
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// A Python with httpx and pytest: HYDRACORE_CLIENTS_PYTHON, else the venv of
/// clients/python/.venv.
fn python() -> Option<PathBuf> {
    let chosen = std::env::var_os("HYDRACORE_CLIENTS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("clients/python/.venv/bin/python"));
    runs(Command::new(&chosen).args(["-c", "import httpx, pytest"])).then_some(chosen)
}

/// Node, with the TypeScript package's devDependencies installed.
fn node() -> Option<PathBuf> {
    let installed = repo().join("clients/typescript/node_modules/typescript/bin/tsc");
    (installed.exists() && runs(Command::new("node").arg("--version"))).then(|| "node".into())
}

fn run(name: &str, command: &mut Command) -> bool {
    println!("{name}: {command:?}");
    let ok = command
        .env("HYDRACORE_BIN", env!("CARGO_BIN_EXE_hydracore"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("{name}: FAILED");
    }
    ok
}

fn main() -> ExitCode {
    let mut ok = true;
    match python() {
        Some(python) => {
            ok &= run(
                "Python client",
                Command::new(python)
                    .env("PYTHONDONTWRITEBYTECODE", "1")
                    .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
                    .arg(repo().join("clients/python")),
            );
        }
        None => {
            println!(
                "NOTE: the Python client's tests were NOT run: no Python with httpx and pytest."
            );
            println!("      Install them with: python3 -m venv clients/python/.venv && clients/python/.venv/bin/pip install -r clients/python/requirements-test.txt");
        }
    }
    match node() {
        Some(node) => {
            let dir = repo().join("clients/typescript");
            let mut tests: Vec<PathBuf> = std::fs::read_dir(dir.join("test"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
                .collect();
            tests.sort();
            ok &= run(
                "TypeScript client (build)",
                Command::new(&node).current_dir(&dir).args([
                    "node_modules/typescript/bin/tsc",
                    "-p",
                    "tsconfig.json",
                ]),
            ) && run(
                "TypeScript client",
                Command::new(&node)
                    .current_dir(&dir)
                    .arg("--test")
                    .args(tests),
            );
        }
        None => {
            println!("NOTE: the TypeScript client's tests were NOT run: clients/typescript/node_modules is not installed.");
            println!("      Install it with: (cd clients/typescript && npm ci)");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
