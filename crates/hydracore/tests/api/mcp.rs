//! `/mcp`: the Model Context Protocol over streamable HTTP, spoken here as
//! plain JSON-RPC. The real SDKs' loops are `tests/mcp_clients.rs`.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Agent, Body, Credential, TestApp, TestResponse};

const ACCEPT: (&str, &str) = ("accept", "application/json, text/event-stream");

async fn rpc(app: &TestApp, key: Option<&str>, method: &str, params: Value) -> TestResponse {
    let message = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    app.request(Method::POST, "/mcp", key, Body::Json(message), &[ACCEPT])
        .await
}

/// A tool call's result (`structuredContent` and `isError`), which must
/// come back as a JSON-RPC result, never an HTTP or protocol error.
async fn call(app: &TestApp, agent: &Agent, tool: &str, arguments: Value) -> (Value, bool) {
    let response = rpc(
        app,
        Some(&agent.key),
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let result = &response.body["result"];
    assert!(result.is_object(), "{:?}", response.body);
    (
        result["structuredContent"].clone(),
        result["isError"] == json!(true),
    )
}

async fn ok(app: &TestApp, agent: &Agent, tool: &str, arguments: Value) -> Value {
    let (content, is_error) = call(app, agent, tool, arguments).await;
    assert!(!is_error, "{tool}: {content}");
    content
}

async fn refused(app: &TestApp, agent: &Agent, tool: &str, arguments: Value) -> Value {
    let (content, is_error) = call(app, agent, tool, arguments).await;
    assert!(is_error, "{tool} should be refused: {content}");
    content
}

fn new_workflow() -> Value {
    json!({"customer_id": Uuid::new_v4(), "workflow_type": "approval"})
}

async fn admin_resume(app: &TestApp, agent: &Agent, id: &str, data: Value) -> TestResponse {
    let token = app.admin_jwt(agent.tenant_id, "manager");
    app.dashboard(
        Method::POST,
        &format!("/v1/workflows/{id}/resume"),
        &Credential::Bearer(token),
        Body::Json(json!({"resume_data": data})),
    )
    .await
}

#[tokio::test]
async fn a_wrong_key_is_refused_before_any_message() {
    let app = TestApp::spawn().await;
    let admin = app.admin_jwt(app.agent.tenant_id, "manager");
    for key in [None, Some("hcp_not_a_key"), Some(admin.as_str())] {
        let response = rpc(&app, key, "tools/list", json!({})).await;
        assert_eq!(response.status, 401, "{key:?}: {:?}", response.body);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert!(response.body["detail"].is_string(), "{:?}", response.body);
    }
    // Not even a malformed message is read.
    let garbage = app
        .request(
            Method::POST,
            "/mcp",
            Some("hcp_not_a_key"),
            Body::Raw {
                content_type: Some("application/json"),
                bytes: b"{not json".to_vec(),
            },
            &[ACCEPT],
        )
        .await;
    assert_eq!(garbage.status, 401);
}

#[tokio::test]
async fn the_tools_take_the_http_apis_request_bodies() {
    let app = TestApp::spawn().await;
    let listed = rpc(&app, Some(&app.agent.key), "tools/list", json!({})).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let tools = listed.body["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "create_workflow",
            "get_workflow",
            "list_workflows",
            "advance_workflow",
            "ask_human",
            "wait_for_human",
            "complete_workflow"
        ]
    );
    let openapi = app
        .request(Method::GET, "/openapi.json", None, Body::None, &[])
        .await
        .body;
    let schema =
        |tool: &str| tools.iter().find(|t| t["name"] == tool).expect("tool")["inputSchema"].clone();
    let fields = |schema: &Value| -> Vec<String> {
        let mut keys: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let body = |name: &str| openapi["components"]["schemas"][name].clone();
    let mut create = fields(&body("CreateWorkflow"));
    create.retain(|f| f != "instance_id");
    assert_eq!(fields(&schema("create_workflow")), create);
    let ask = fields(&schema("ask_human"));
    for field in fields(&body("SuspendWorkflow")) {
        assert!(ask.contains(&field), "ask_human lacks {field}");
    }
    assert!(ask.contains(&"question".to_owned()));
    assert!(!schema("ask_human").to_string().contains("\"$ref\":"));
}

#[tokio::test]
async fn a_refused_tool_call_carries_the_apis_detail_not_a_500() {
    let app = TestApp::spawn().await;
    let agent = &app.agent;
    let invalid = refused(
        &app,
        agent,
        "create_workflow",
        json!({"workflow_type": "x"}),
    )
    .await;
    assert_eq!(invalid["status"], 422);
    let locs: Vec<Value> = invalid["detail"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["arguments", "customer_id"]),
            json!(["arguments", "workflow_type"])
        ]
    );

    let missing = refused(
        &app,
        agent,
        "get_workflow",
        json!({"workflow_id": Uuid::new_v4()}),
    )
    .await;
    assert_eq!(
        missing,
        json!({"status": 404, "detail": "Workflow not found"})
    );

    let no_id = refused(&app, agent, "advance_workflow", json!({"action": "x"})).await;
    assert_eq!(no_id["status"], 422);
    assert_eq!(
        no_id["detail"][0]["loc"],
        json!(["arguments", "workflow_id"])
    );
    assert_eq!(
        no_id["detail"][1]["loc"],
        json!(["arguments", "expected_version"])
    );

    let unknown = rpc(
        &app,
        Some(&agent.key),
        "tools/call",
        json!({"name": "drop_tables", "arguments": {}}),
    )
    .await;
    assert_eq!(unknown.status, 200);
    assert!(unknown.body["error"]["code"].is_i64(), "{:?}", unknown.body);
}

#[tokio::test]
async fn a_retried_tool_call_never_applies_twice() {
    let app = TestApp::spawn().await;
    let agent = &app.agent;
    let body = new_workflow();
    let first = ok(&app, agent, "create_workflow", body.clone()).await;
    let again = ok(&app, agent, "create_workflow", body).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(app.total(agent, "").await, 1);
    let id = first["id"].as_str().expect("id").to_owned();

    let ask = json!({"workflow_id": id, "expected_version": 1, "step": "approve",
                     "question": "Go ahead?"});
    let mut asked = ok(&app, agent, "ask_human", ask.clone()).await;
    let mut again = ok(&app, agent, "ask_human", ask).await;
    // The same decision; each answer carries a link to it.
    for answer in [&mut asked, &mut again] {
        let link = answer
            .as_object_mut()
            .and_then(|a| a.remove("approval_url"));
        assert!(link.is_some_and(|l| l.as_str().is_some_and(|l| l.contains("/ui/approve/"))));
    }
    assert_eq!(again, asked);
    assert_eq!(asked["version"], 2);
    assert_eq!(asked["decision_id"], json!(id));

    let resumed = admin_resume(&app, agent, &id, json!({"ok": true})).await;
    assert_eq!(resumed.status, 200, "{:?}", resumed.body);
    let advance = json!({"workflow_id": id, "expected_version": 3, "action": "noted"});
    assert_eq!(
        ok(&app, agent, "advance_workflow", advance.clone()).await["version"],
        4
    );
    let stale = refused(&app, agent, "advance_workflow", advance).await;
    assert_eq!(
        stale,
        json!({"status": 412, "detail": "Precondition failed: the workflow is at version 4"})
    );
    let record = app.get(agent, &id).await.body;
    let actions: Vec<&str> = record["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["created", "suspended", "resumed", "noted"]);
}

#[tokio::test]
async fn wait_for_human_answers_waiting_then_the_persons_answer() {
    let app = TestApp::spawn().await;
    let agent = &app.agent;
    let id = ok(&app, agent, "create_workflow", new_workflow()).await["id"].clone();
    let unasked = ok(&app, agent, "wait_for_human", json!({"workflow_id": id})).await;
    assert_eq!(unasked["status"], "not_asked");
    let schema = json!({"type": "object", "required": ["approved"],
                        "properties": {"approved": {"type": "boolean"}}});
    ok(
        &app,
        agent,
        "ask_human",
        json!({"workflow_id": id, "expected_version": 1, "step": "approve",
               "question": "Refund?", "payload": {"amount": 120}, "resume_schema": schema}),
    )
    .await;
    let record = app.get(agent, id.as_str().expect("id")).await.body;
    assert_eq!(
        record["suspend_payload"],
        json!({"amount": 120, "question": "Refund?"})
    );

    let wait = json!({"workflow_id": id, "timeout_seconds": 0});
    let waiting = ok(&app, agent, "wait_for_human", wait.clone()).await;
    assert_eq!(waiting["status"], "waiting");

    let id = id.as_str().expect("id");
    let wrong = admin_resume(&app, agent, id, json!({"approved": "yes"})).await;
    assert_eq!(wrong.status, 422, "{:?}", wrong.body);
    let right = admin_resume(&app, agent, id, json!({"approved": true})).await;
    assert_eq!(right.status, 200, "{:?}", right.body);

    let answered = ok(&app, agent, "wait_for_human", wait).await;
    assert_eq!(answered["status"], "answered");
    assert_eq!(answered["resume_data"], json!({"approved": true}));
    assert_eq!(answered["answered_by"], "manager");
}

#[tokio::test]
async fn another_instances_key_sees_none_of_it() {
    let app = TestApp::spawn().await;
    let other = app.sibling_agent().await;
    let id = ok(&app, &app.agent, "create_workflow", new_workflow()).await["id"].clone();

    let hidden = refused(&app, &other, "get_workflow", json!({"workflow_id": id})).await;
    assert_eq!(hidden["status"], 404);
    assert_eq!(
        ok(&app, &other, "list_workflows", json!({})).await["total"],
        0
    );
    let ask = json!({"workflow_id": id, "expected_version": 1, "step": "approve"});
    assert_eq!(refused(&app, &other, "ask_human", ask).await["status"], 404);

    let uri = format!("hydracore://workflows/{}", id.as_str().expect("id"));
    let read = rpc(
        &app,
        Some(&other.key),
        "resources/read",
        json!({"uri": uri}),
    )
    .await;
    assert!(read.body["error"].is_object(), "{:?}", read.body);
    let owner = rpc(
        &app,
        Some(&app.agent.key),
        "resources/read",
        json!({"uri": uri}),
    )
    .await;
    let text = owner.body["result"]["contents"][0]["text"]
        .as_str()
        .expect("text");
    let record: Value = serde_json::from_str(text).expect("record");
    assert_eq!(record["id"], id);
}

/// `hydracore mcp` with `key`, relaying to `app`.
fn stdio_relay(app: &TestApp, key: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hydracore"))
        .args(["mcp", "--server", &app.base_url])
        .env("HYDRACORE_PROXY_KEY", key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("hydracore mcp starts")
}

#[tokio::test]
async fn the_stdio_command_relays_to_the_running_server() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let app = TestApp::spawn().await;
    let mut relay = stdio_relay(&app, &app.agent.key);
    let mut stdin = relay.stdin.take().expect("stdin");
    let mut lines = BufReader::new(relay.stdout.take().expect("stdout")).lines();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "create_workflow", "arguments": new_workflow()}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "get_workflow", "arguments": {"workflow_id": "nope"}}}),
    ];
    for message in messages {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .expect("written");
    }
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 3 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("an answer in time")
            .expect("read")
            .expect("a line");
        let answer: Value = serde_json::from_str(&line).expect("JSON-RPC");
        answers.insert(answer["id"].as_i64().expect("id"), answer);
    }
    assert_eq!(answers[&1]["result"]["serverInfo"]["name"], "hydracore");
    let created = &answers[&2]["result"]["structuredContent"];
    assert_eq!(created["instance_id"], json!(app.agent.instance_id));
    assert_eq!(app.total(&app.agent, "").await, 1);
    let refused = &answers[&3]["result"];
    assert_eq!(refused["isError"], true);
    assert_eq!(refused["structuredContent"]["status"], 422);
}

#[tokio::test]
async fn the_stdio_command_stops_at_once_on_a_wrong_key() {
    let app = TestApp::spawn().await;
    let relay = stdio_relay(&app, "hcp_not_a_key");
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), relay.wait_with_output())
        .await
        .expect("it stops")
        .expect("output");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "stdout is MCP's only");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("401"), "{stderr}");
}
