//! The command line, run as a process on the database of a running server.

use std::process::{Command, Output};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::TestApp;

pub fn hydracore(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hydracore"))
        .args(args)
        .env("HYDRACORE_DATABASE_URL", database_url)
        .env(
            "HYDRACORE_JWT_SECRET",
            "a-test-secret-that-is-long-enough-for-hs256",
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("hydracore runs")
}

/// Runs with `--json` and returns the one JSON object it printed.
pub fn hydracore_json(database_url: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = hydracore(database_url, &all);
    assert!(
        out.status.success(),
        "{args:?}: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "exactly one JSON line: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

#[tokio::test]
async fn keys_made_on_the_command_line_work_on_the_running_server_until_revoked() {
    let app = TestApp::spawn().await;
    let db = app.database_url.clone();
    let tenant = Uuid::new_v4().to_string();
    let instance = hydracore_json(
        &db,
        &["instances", "create", "--tenant", &tenant, "--name", "bot"],
    );
    assert_eq!(instance["tenant_id"], tenant.as_str());
    let instance_id = instance["id"].as_str().unwrap().to_owned();

    let key = hydracore_json(&db, &["keys", "create-proxy", "--instance", &instance_id]);
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with("hcp_"));

    let path = format!("/internal/v1/instances/{instance_id}/workflows");
    let r = app
        .request(
            reqwest::Method::GET,
            &path,
            Some(secret),
            crate::helpers::Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);

    let listed = hydracore_json(&db, &["keys", "list"]);
    let keys = listed["keys"].as_array().unwrap();
    let shown = keys.iter().find(|k| k["id"] == key["id"]).unwrap();
    assert_eq!(shown["kind"], "proxy");
    assert!(
        !listed.to_string().contains(secret),
        "keys list never shows a secret"
    );

    let revoked = hydracore_json(&db, &["keys", "revoke", key["id"].as_str().unwrap()]);
    assert_eq!(revoked["revoked"], true);
    let r = app
        .request(
            reqwest::Method::GET,
            &path,
            Some(secret),
            crate::helpers::Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 401);

    let instances = hydracore_json(&db, &["instances", "list"]);
    assert!(instances["instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == instance_id.as_str()));
}

#[tokio::test]
async fn api_keys_carry_the_requested_scopes_and_unknown_scopes_are_refused() {
    let app = TestApp::spawn().await;
    let db = app.database_url.clone();
    let tenant = Uuid::new_v4().to_string();
    let both = hydracore_json(&db, &["keys", "create-api", "--tenant", &tenant]);
    assert_eq!(both["scopes"], json!(["workflows:read", "workflows:write"]));
    assert!(both["key"].as_str().unwrap().starts_with("hck_"));
    let read = hydracore_json(
        &db,
        &[
            "keys",
            "create-api",
            "--tenant",
            &tenant,
            "--scopes",
            "workflows:read",
        ],
    );
    assert_eq!(read["scopes"], json!(["workflows:read"]));

    let out = hydracore(
        &db,
        &[
            "--json",
            "keys",
            "create-api",
            "--tenant",
            &tenant,
            "--scopes",
            "workflows:delete",
        ],
    );
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(error["error"].as_str().unwrap().contains("unknown scope"));
}

#[tokio::test]
async fn token_mints_a_jwt_with_the_configured_secret() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4().to_string();
    let token = hydracore_json(
        &app.database_url,
        &[
            "token", "--tenant", &tenant, "--sub", "alice", "--ttl", "10m",
        ],
    );
    let jwt = token["token"].as_str().unwrap();
    assert_eq!(jwt.split('.').count(), 3);
}

#[tokio::test]
async fn migrate_reports_an_up_to_date_schema_and_whether_it_is_distributed() {
    let app = TestApp::spawn().await;
    let report = hydracore_json(&app.database_url, &["migrate"]);
    assert_eq!(report["migrated"], json!(true));
    // On Citus, `citus::migrate_distributes_...` reads the rest.
    if crate::helpers::backend() != crate::helpers::Backend::Citus {
        assert_eq!(report["distribution"], Value::Null);
    }
}

#[tokio::test]
async fn ui_link_prints_a_link_that_signs_in_to_the_running_server_once() {
    let app = TestApp::spawn().await;
    let tenant = app.agent.tenant_id.to_string();
    let link = hydracore_json(
        &app.database_url,
        &[
            "ui-link",
            "--tenant",
            &tenant,
            "--public-url",
            &app.base_url,
        ],
    );
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/ui/sign-in/", app.base_url)),
        "{url}"
    );
    assert!(link["expires_at"].is_string());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let used = client.post(&url).send().await.unwrap();
    assert_eq!(used.status(), 303);
    assert!(used.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("hydracore_session="));
    assert_eq!(client.post(&url).send().await.unwrap().status(), 410);
}

#[test]
fn every_command_documents_itself() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["instances", "--help"],
        vec!["instances", "create", "--help"],
        vec!["instances", "list", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "create-proxy", "--help"],
        vec!["keys", "create-api", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["token", "--help"],
        vec!["ui-link", "--help"],
    ] {
        let out = hydracore("sqlite:unused.db", &args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
        assert!(text.contains("--json"), "{args:?} lists --json");
    }
}

#[test]
fn serve_refuses_to_start_with_a_jwt_secret_under_32_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_hydracore"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HYDRACORE_DATABASE_URL", &db)
        .env("HYDRACORE_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(
        !dir.path().join("x.db").exists(),
        "refused before touching the database"
    );
}

#[test]
fn the_jwt_secret_is_refused_on_the_command_line_where_ps_would_show_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_hydracore"))
        .args(["--jwt-secret", "0123456789abcdef0123456789abcdef", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--jwt-secret-file"), "{stderr}");
}

#[test]
fn a_jwt_secret_file_mints_tokens_like_the_variable() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "0123456789abcdef0123456789abcdef\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hydracore"))
        .args(["--json", "--jwt-secret-file"])
        .arg(file.path())
        .args(["token", "--tenant", "160c0c4b-9966-4dc1-a916-8407eb10d74e"])
        .env_remove("HYDRACORE_JWT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(token["token"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
}
