//! Webhooks: endpoints registered by a tenant's admins get the tenant's
//! events as signed Standard Webhooks requests, at least once, in order per
//! workflow, retried until the receiver answers. The receivers here are
//! real HTTP servers on loopback.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Body, Credential, TestApp, TestResponse};

/// How a receiver answers its next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Status(u16),
    /// Answers 200 after this long (past the test's webhook timeout).
    Slow(Duration),
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
    /// What it was answered (a slow answer counts as the 200 it sent late).
    answered: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn workflow_and_version(&self) -> (String, i64) {
        let body = self.json();
        (
            body["data"]["workflow_id"].as_str().unwrap().to_owned(),
            body["data"]["version"].as_i64().unwrap(),
        )
    }
}

#[derive(Default)]
struct ReceiverState {
    /// Answers for the next requests, in order; then `then`.
    script: Vec<Answer>,
    then: Option<Answer>,
    received: Vec<Received>,
}

/// A webhook receiver: an axum server on a free loopback port.
#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    async fn start_on(address: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = shared.clone();
                async move { receive(&state, &headers, body).await }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{address}/hook"),
            state,
        }
    }

    /// Answers `answers` in order, then `then` to every further request.
    fn answer(&self, answers: &[Answer], then: Answer) {
        let mut state = self.state.lock().unwrap();
        state.script = answers.to_vec();
        state.then = Some(then);
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests answered 2xx.
    fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `n` requests were answered 2xx (at most `patience`).
    async fn wait_for_delivered(&self, n: usize, patience: Duration) -> Vec<Received> {
        self.wait_until(patience, |delivered| delivered.len() >= n)
            .await
    }

    /// The requests answered 2xx once `done` holds of them, or after
    /// `patience`.
    async fn wait_until(
        &self,
        patience: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + patience;
        loop {
            let delivered = self.delivered();
            if done(&delivered) || Instant::now() > deadline {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(state: &Mutex<ReceiverState>, headers: &HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answer = {
        let mut state = state.lock().unwrap();
        let answer = if state.script.is_empty() {
            state.then.unwrap_or(Answer::Status(200))
        } else {
            state.script.remove(0)
        };
        let answered = match answer {
            Answer::Status(code) => code,
            Answer::Slow(_) => 200,
        };
        state.received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            content_type: header("content-type"),
            body,
            answered,
        });
        answer
    };
    match answer {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
    }
}

/// Checks a delivery's signature as a receiver would, with Python's
/// standard library alone: an implementation independent of ours.
const PYTHON_VERIFY: &str = r#"
import base64, hashlib, hmac, sys
secret, msg_id, timestamp, header = sys.argv[1:5]
body = sys.stdin.buffer.read()
key = base64.b64decode(secret[len("whsec_"):])
signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
given = [s.split(",", 1)[1] for s in header.split(" ") if s.startswith("v1,")]
ok = any(hmac.compare_digest(expected, g) for g in given)
print("verified" if ok else "mismatch")
sys.exit(0 if ok else 1)
"#;

fn python_verifies(secret: &str, received: &Received) -> bool {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            PYTHON_VERIFY,
            secret,
            &received.id,
            &received.timestamp,
            &received.signature,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(received.body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "verified" && out.status.success()
}

fn admin(app: &TestApp) -> Credential {
    Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"))
}

async fn create_webhook(app: &TestApp, credential: &Credential, body: Value) -> TestResponse {
    app.dashboard(Method::POST, "/v1/webhooks", credential, Body::Json(body))
        .await
}

/// A new workflow of the test's agent, advanced `steps` times; its id.
async fn advanced_workflow(app: &TestApp, steps: usize) -> String {
    let workflow = app.create_workflow(&app.agent).await;
    for step in 0..steps {
        let change = json!({"action": format!("step-{step}")});
        let r = app.advance(&app.agent, &workflow, change).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    workflow
}

/// Registers `url` for every event type; returns its id and secret.
async fn register(app: &TestApp, url: &str) -> (String, String) {
    let all = [
        "workflow.created",
        "workflow.advanced",
        "workflow.suspended",
        "workflow.resumed",
        "workflow.aborted",
        "workflow.expired",
        "workflow.escalated",
        "workflow.completed",
    ];
    let r = create_webhook(app, &admin(app), json!({"url": url, "event_types": all})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn get_webhook(app: &TestApp, id: &str) -> TestResponse {
    app.dashboard(
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        &admin(app),
        Body::None,
    )
    .await
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let r = app
        .dashboard(
            Method::GET,
            &format!("/v1/webhooks/{id}/deliveries?limit=500"),
            &admin(app),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["deliveries"].as_array().unwrap().clone()
}

/// The endpoint's deliveries once `check` holds of them (or after 10 s):
/// an answer is recorded a moment after the receiver has sent it.
async fn deliveries_when(app: &TestApp, id: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = deliveries(app, id).await;
        if check(&listed) || Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds of the endpoint (at most `patience`).
async fn wait_for_webhook(
    app: &TestApp,
    id: &str,
    patience: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + patience;
    loop {
        let w = get_webhook(app, id).await.body;
        if check(&w) || Instant::now() > deadline {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_admin_creates_lists_reads_changes_and_deletes_an_endpoint_whose_secret_is_shown_once() {
    let app = TestApp::spawn().await;
    let admin = admin(&app);
    let created = create_webhook(
        &app,
        &admin,
        json!({"url": "https://hooks.example.com/in", "event_types": ["workflow.completed", "workflow.created"], "description": "billing"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/webhooks/{id}").as_str())
    );
    let secret = created.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(
        secret.len() >= "whsec_".len() + 32,
        "24+ random bytes: {secret}"
    );
    assert_eq!(
        created.body["event_types"],
        json!(["workflow.created", "workflow.completed"])
    );
    assert_eq!(created.body["enabled"], json!(true));

    let read = get_webhook(&app, &id).await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("secret").is_none(), "{}", read.body);
    assert_eq!(read.body["description"], json!("billing"));
    let listed = app
        .dashboard(Method::GET, "/v1/webhooks", &admin, Body::None)
        .await;
    assert_eq!(listed.body["webhooks"].as_array().unwrap().len(), 1);
    assert!(listed.body["webhooks"][0].get("secret").is_none());
    assert!(!listed.body.to_string().contains(secret));

    let changed = app
        .dashboard(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin,
            Body::Json(
                json!({"description": null, "event_types": ["workflow.aborted"], "enabled": false}),
            ),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["description"], Value::Null);
    assert_eq!(changed.body["event_types"], json!(["workflow.aborted"]));
    assert_eq!(changed.body["enabled"], json!(false));
    assert_eq!(changed.body["url"], json!("https://hooks.example.com/in"));

    let rotated = app
        .dashboard(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(get_webhook(&app, &id).await.body.get("secret").is_none());

    let deleted = app
        .dashboard(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(get_webhook(&app, &id).await.status, 404);
}

#[tokio::test]
async fn another_tenants_endpoint_and_deliveries_are_not_found() {
    let app = TestApp::spawn().await;
    let (id, _) = register(&app, "https://hooks.example.com/in").await;
    let stranger = Credential::Bearer(app.admin_jwt(Uuid::new_v4(), "mallory"));
    let delivery = Uuid::new_v4();
    for (method, path, body) in [
        (Method::GET, format!("/v1/webhooks/{id}"), Body::None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{id}"),
            Body::Json(json!({"enabled": false})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{id}"), Body::None),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/rotate-secret"),
            Body::None,
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{id}/deliveries"),
            Body::None,
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/deliveries/{delivery}/retry"),
            Body::None,
        ),
    ] {
        let r = app.dashboard(method.clone(), &path, &stranger, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    let theirs = app
        .dashboard(Method::GET, "/v1/webhooks", &stranger, Body::None)
        .await;
    assert_eq!(theirs.body["webhooks"], json!([]));
    assert_eq!(get_webhook(&app, &id).await.body["enabled"], json!(true));
}

#[tokio::test]
async fn api_keys_need_the_webhook_scopes() {
    let app = TestApp::spawn().await;
    let tenant = app.agent.tenant_id;
    let body = json!({"url": "https://hooks.example.com/in", "event_types": ["workflow.created"]});
    let (_, workflows_only) = app
        .api_key(tenant, &["workflows:read", "workflows:write"])
        .await;
    let (_, reader) = app.api_key(tenant, &["webhooks:read"]).await;
    let (_, writer) = app.api_key(tenant, &["webhooks:write"]).await;
    let workflows_only = Credential::ApiKey(workflows_only);
    let (reader, writer) = (Credential::ApiKey(reader), Credential::ApiKey(writer));

    assert_eq!(
        create_webhook(&app, &workflows_only, body.clone())
            .await
            .status,
        403
    );
    let listed = app
        .dashboard(Method::GET, "/v1/webhooks", &workflows_only, Body::None)
        .await;
    assert_eq!(listed.status, 403);
    assert_eq!(
        create_webhook(&app, &reader, body.clone()).await.status,
        403
    );
    assert_eq!(create_webhook(&app, &writer, body).await.status, 201);
    let listed = app
        .dashboard(Method::GET, "/v1/webhooks", &reader, Body::None)
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["webhooks"].as_array().unwrap().len(), 1);
    let none = app
        .dashboard(Method::GET, "/v1/webhooks", &Credential::None, Body::None)
        .await;
    assert_eq!(none.status, 401);
}

#[tokio::test]
async fn a_delivered_event_is_signed_as_standard_webhooks_say_and_python_verifies_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let before = app.create_workflow(&app.agent).await;
    let (id, secret) = register(&app, &receiver.url).await;
    let workflow = app.create_workflow(&app.agent).await;

    let got = receiver
        .wait_for_delivered(1, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 1, "only the event after the endpoint: {got:?}");
    let delivery = &got[0];
    assert!(delivery.content_type.starts_with("application/json"));
    assert!(
        delivery.signature.starts_with("v1,"),
        "{}",
        delivery.signature
    );
    let timestamp: i64 = delivery.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert!(
        python_verifies(&secret, delivery),
        "Python's hmac does not verify {delivery:?}"
    );
    let tampered = Received {
        body: delivery
            .body
            .replace("workflow.created", "workflow.aborted"),
        ..delivery.clone()
    };
    assert!(!python_verifies(&secret, &tampered));

    // The body: type, timestamp, and the event as /v1/events shows it.
    let body = delivery.json();
    assert_eq!(body["type"], json!("workflow.created"));
    assert_eq!(body["data"]["workflow_id"], json!(workflow));
    assert_ne!(body["data"]["workflow_id"], json!(before));
    let events = app
        .dashboard(
            Method::GET,
            &format!("/v1/events?workflow_id={workflow}"),
            &admin(&app),
            Body::None,
        )
        .await;
    assert_eq!(body["data"], events.body["events"][0]);
    assert_eq!(body["timestamp"], events.body["events"][0]["occurred_at"]);

    // The deliveries list names the attempt, and webhook-id is the delivery's id.
    let listed = deliveries_when(&app, &id, |l| {
        l.first().is_some_and(|d| d["status"] == json!("delivered"))
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], json!(delivery.id));
    assert_eq!(listed[0]["status"], json!("delivered"));
    assert_eq!(listed[0]["attempts"], json!(1));
    assert_eq!(listed[0]["last_status_code"], json!(200));
    assert!(listed[0]["last_latency_ms"].as_i64().is_some());
    assert_eq!(listed[0]["event_id"], events.body["events"][0]["id"]);

    // After a rotation, the new secret signs and the old one no longer does.
    let rotated = app
        .dashboard(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &admin(&app),
            Body::None,
        )
        .await;
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    app.create_workflow(&app.agent).await;
    let got = receiver
        .wait_for_delivered(2, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 2);
    assert!(python_verifies(&new_secret, &got[1]));
    assert!(!python_verifies(&secret, &got[1]));
}

#[tokio::test]
async fn a_receiver_that_fails_then_times_out_then_recovers_gets_every_event_in_order() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.timeout = Duration::from_millis(300);
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.answer(
        &[
            Answer::Status(500),
            Answer::Status(500),
            Answer::Status(503),
            Answer::Slow(Duration::from_secs(1)),
            Answer::Slow(Duration::from_secs(1)),
            Answer::Status(500),
        ],
        Answer::Status(200),
    );
    let (id, _) = register(&app, &receiver.url).await;
    let mut expected = BTreeMap::new();
    for _ in 0..3 {
        let workflow = advanced_workflow(&app, 3).await;
        expected.insert(workflow, vec![1, 2, 3, 4]);
    }

    // A slow answer is a 200 the sender gave up on: its delivery comes
    // again with the same webhook-id, so successes are counted by id.
    let delivered = receiver
        .wait_until(Duration::from_secs(20), |delivered| {
            delivered
                .iter()
                .map(|r| &r.id)
                .collect::<HashSet<_>>()
                .len()
                >= 12
        })
        .await;
    // Each event once among the successes, and a workflow's in order.
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut ids = HashSet::new();
    for r in &delivered {
        if ids.insert(r.id.clone()) {
            let (workflow, version) = r.workflow_and_version();
            seen.entry(workflow).or_default().push(version);
        }
    }
    assert_eq!(seen, expected, "delivered: {delivered:?}");
    // No later event of a workflow was even tried before its earlier one
    // succeeded (a timed-out attempt may have reached the receiver late).
    let mut done: HashMap<String, i64> = HashMap::new();
    for r in receiver.received() {
        let (workflow, version) = r.workflow_and_version();
        let last = done.entry(workflow).or_insert(0);
        assert!(
            version <= *last + 1,
            "v{version} tried after v{last} succeeded"
        );
        if r.answered == 200 {
            *last = (*last).max(version);
        }
    }

    let listed = deliveries_when(&app, &id, |l| {
        l.iter().all(|d| d["status"] == json!("delivered"))
    })
    .await;
    assert_eq!(listed.len(), 12);
    assert!(
        listed.iter().all(|d| d["status"] == json!("delivered")),
        "{listed:?}"
    );
    assert!(listed.iter().all(|d| d["last_status_code"] == json!(200)));
    let retried: i64 = listed
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap() - 1)
        .sum();
    assert!(retried >= 6, "the six failures are attempts: {listed:?}");
    let w = get_webhook(&app, &id).await.body;
    assert_eq!(w["enabled"], json!(true));
    assert_eq!(w["failing_since"], Value::Null);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_with_its_reason_until_it_is_enabled_again() {
    let app = TestApp::spawn_with(|s| s.metrics.token = Some("metrics-token".into())).await;
    let receiver = Receiver::start().await;
    receiver.answer(&[Answer::Status(410)], Answer::Status(200));
    let (id, _) = register(&app, &receiver.url).await;
    app.create_workflow(&app.agent).await;

    let w = wait_for_webhook(&app, &id, Duration::from_secs(10), |w| {
        w["enabled"] == json!(false)
    })
    .await;
    assert_eq!(w["enabled"], json!(false), "{w}");
    assert!(
        w["disabled_reason"].as_str().unwrap().contains("410"),
        "{w}"
    );
    assert!(w["disabled_at"].is_string());
    let listed = deliveries(&app, &id).await;
    assert_eq!(listed[0]["status"], json!("failed"));
    assert_eq!(listed[0]["last_status_code"], json!(410));

    // Disabled: later events wait.
    app.create_workflow(&app.agent).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);

    // Enabled again, it gets what waited; the given-up one on request.
    let enabled = app
        .dashboard(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin(&app),
            Body::Json(json!({"enabled": true})),
        )
        .await;
    assert_eq!(enabled.body["enabled"], json!(true));
    assert_eq!(enabled.body["disabled_reason"], Value::Null);
    assert_eq!(
        receiver
            .wait_for_delivered(1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    let gone = listed[0]["id"].as_str().unwrap();
    let retried = app
        .dashboard(
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/{gone}/retry"),
            &admin(&app),
            Body::None,
        )
        .await;
    assert_eq!(retried.status, 202, "{}", retried.body);
    assert_eq!(retried.body["status"], json!("pending"));
    assert_eq!(
        receiver
            .wait_for_delivered(2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
    let unknown = app
        .dashboard(
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/{}/retry", Uuid::new_v4()),
            &admin(&app),
            Body::None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let metrics = app
        .request(
            Method::GET,
            "/metrics",
            Some("metrics-token"),
            Body::None,
            &[],
        )
        .await;
    let text = metrics.body["raw"].as_str().unwrap();
    for outcome in ["gone", "delivered"] {
        let counter = format!(r#"hydracore_webhook_attempts_total{{outcome="{outcome}"}}"#);
        assert!(text.contains(&counter), "missing {counter}");
    }
}

#[tokio::test]
async fn an_endpoint_failing_for_longer_than_the_setting_is_disabled_with_a_reason() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.disable_after = Duration::from_millis(600);
        s.webhooks.retry_for = Duration::from_millis(400);
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.answer(&[], Answer::Status(500));
    let (id, _) = register(&app, &receiver.url).await;
    for _ in 0..3 {
        app.create_workflow(&app.agent).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let w = wait_for_webhook(&app, &id, Duration::from_secs(10), |w| {
        w["enabled"] == json!(false)
    })
    .await;
    assert_eq!(w["enabled"], json!(false), "{w}");
    let reason = w["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("failed for"), "{reason}");
    assert!(w["failing_since"].is_string());
    let listed = deliveries_when(&app, &id, |l| {
        l.iter().any(|d| d["status"] == json!("failed"))
    })
    .await;
    assert!(
        listed.iter().any(|d| d["status"] == json!("failed")),
        "given up after the retry period: {listed:?}"
    );
}

#[tokio::test]
async fn urls_must_be_https_and_public_unless_private_addresses_are_allowed() {
    let app = TestApp::spawn_with(|s| s.webhooks.allow_private = false).await;
    let admin = admin(&app);
    for url in [
        "http://hooks.example.com/in",
        "https://127.0.0.1/in",
        "https://10.0.0.8/in",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:8443/in",
        "https://localhost/in",
        "not a url",
    ] {
        let r = create_webhook(
            &app,
            &admin,
            json!({"url": url, "event_types": ["workflow.created"]}),
        )
        .await;
        assert_eq!(r.status, 422, "{url}: {}", r.body);
        assert_eq!(r.validation_errors()[0].1, json!(["body", "url"]), "{url}");
    }
    let r = create_webhook(
        &app,
        &admin,
        json!({"url": "https://hooks.example.com/in", "event_types": []}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.validation_errors()[0].1, json!(["body", "event_types"]));
    let listed = app
        .dashboard(Method::GET, "/v1/webhooks", &admin, Body::None)
        .await;
    assert_eq!(listed.body["webhooks"], json!([]), "nothing stored");
    let r = create_webhook(
        &app,
        &admin,
        json!({"url": "https://hooks.example.com/in", "event_types": ["workflow.created"]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, url) = (r.body["id"].as_str().unwrap(), "https://192.168.1.20/in");
    let r = app
        .dashboard(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin,
            Body::Json(json!({"url": url})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        get_webhook(&app, id).await.body["url"],
        json!("https://hooks.example.com/in")
    );

    // Allowed, as tests and local development set it.
    let open = TestApp::spawn().await;
    let r = create_webhook(
        &open,
        &Credential::Bearer(open.admin_jwt(open.agent.tenant_id, "dev")),
        json!({"url": "http://127.0.0.1:9/in", "event_types": ["workflow.created"]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn a_tenant_has_at_most_the_endpoints_and_url_and_description_lengths_the_settings_allow() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.max_endpoints = 2;
        s.webhooks.max_url_bytes = 64;
        s.webhooks.max_description_chars = 10;
    })
    .await;
    let admin = admin(&app);
    let body = |url: &str| json!({"url": url, "event_types": ["workflow.created"]});
    let long_url = format!("https://hooks.example.com/{}", "a".repeat(64));
    let r = create_webhook(&app, &admin, body(&long_url)).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors()[0],
        ("string_too_long".to_owned(), json!(["body", "url"]))
    );
    let r = create_webhook(
        &app,
        &admin,
        json!({"url": "https://a.example.com", "event_types": ["workflow.created"], "description": "eleven char"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors()[0],
        ("string_too_long".to_owned(), json!(["body", "description"]))
    );

    assert_eq!(
        create_webhook(&app, &admin, body("https://a.example.com"))
            .await
            .status,
        201
    );
    assert_eq!(
        create_webhook(&app, &admin, body("https://b.example.com"))
            .await
            .status,
        201
    );
    let third = create_webhook(&app, &admin, body("https://c.example.com")).await;
    assert_eq!(third.status, 422, "{}", third.body);
    assert!(third
        .body
        .to_string()
        .contains("at most 2 webhook endpoints"));
    let listed = app
        .dashboard(Method::GET, "/v1/webhooks", &admin, Body::None)
        .await;
    assert_eq!(listed.body["webhooks"].as_array().unwrap().len(), 2);
    // Another tenant has its own allowance.
    let other = Credential::Bearer(app.admin_jwt(Uuid::new_v4(), "bob"));
    assert_eq!(
        create_webhook(&app, &other, body("https://c.example.com"))
            .await
            .status,
        201
    );
}

/// A free loopback port, for a receiver that starts later.
async fn free_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_event_is_lost_when_the_server_is_killed_while_the_receiver_is_down() {
    killed_while_the_receiver_is_down(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_event_is_lost_when_two_replicas_are_killed_while_the_receiver_is_down() {
    if crate::helpers::backend() == crate::helpers::Backend::Sqlite {
        println!("NOTE: two replicas need PostgreSQL (HYDRACORE_TEST_BACKEND=postgres); skipped");
        return;
    }
    killed_while_the_receiver_is_down(2).await;
}

/// `replicas` servers on one database take 1,000 changes while the
/// receiver is down, are killed, and start again; then the receiver comes
/// up and gets every acknowledged change's event, each under one
/// webhook-id, in order per workflow.
async fn killed_while_the_receiver_is_down(replicas: usize) {
    use crate::cli::hydracore_json;
    use crate::helpers::TestDatabase;
    use crate::process::ServerProcess;

    const CHANGES: usize = 1000;
    let (_database, db) = TestDatabase::create().await;
    let tenant = Uuid::new_v4().to_string();
    let instance = hydracore_json(&db, &["instances", "create", "--tenant", &tenant]);
    let instance_id = instance["id"].as_str().unwrap().to_owned();
    let proxy = hydracore_json(&db, &["keys", "create-proxy", "--instance", &instance_id]);
    let proxy = proxy["key"].as_str().unwrap().to_owned();
    let admin = hydracore_json(
        &db,
        &[
            "keys",
            "create-api",
            "--tenant",
            &tenant,
            "--scopes",
            "webhooks:read,webhooks:write",
        ],
    );
    let admin = admin["key"].as_str().unwrap().to_owned();
    let env = [
        ("HYDRACORE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("HYDRACORE_WEBHOOK_TIMEOUT", "1s"),
        ("HYDRACORE_WEBHOOK_BACKOFF_BASE", "100ms"),
        ("HYDRACORE_WEBHOOK_BACKOFF_MAX", "300ms"),
        ("HYDRACORE_WEBHOOK_POLL_INTERVAL", "50ms"),
    ];
    let mut servers = Vec::new();
    for _ in 0..replicas {
        servers.push(ServerProcess::start_with(&db, "warn,hydracore::cli=info", &env).await);
    }
    let client = reqwest::Client::new();
    let receiver_address = free_port().await;
    let created = client
        .post(format!("{}/v1/webhooks", servers[0].base_url))
        .header("x-api-key", &admin)
        .json(&json!({
            "url": format!("http://{receiver_address}/hook"),
            "event_types": ["workflow.created", "workflow.advanced"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Writers, spread over the replicas, create workflows and advance each
    // four times; every answered write is one event to deliver.
    let urls: Vec<String> = servers
        .iter()
        .map(|server| {
            format!(
                "{}/internal/v1/instances/{instance_id}/workflows",
                server.base_url
            )
        })
        .collect();
    let (acked_tx, mut acked) = tokio::sync::watch::channel(Vec::<(String, i64)>::new());
    let acked_tx = Arc::new(acked_tx);
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let (url, key, acked_tx) =
                (urls[n % replicas].clone(), proxy.clone(), acked_tx.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                loop {
                    let body =
                        json!({"customer_id": Uuid::new_v4(), "workflow_type": "maintenance"});
                    let Ok(r) = client.post(&url).bearer_auth(&key).json(&body).send().await else {
                        return;
                    };
                    let Ok(w) = r.json::<Value>().await else {
                        return;
                    };
                    let Some(id) = w["id"].as_str().map(str::to_owned) else {
                        return;
                    };
                    acked_tx.send_modify(|a| a.push((id.clone(), 1)));
                    for step in 0..4 {
                        let change = json!({"action": format!("step-{step}")});
                        let Ok(r) = client
                            .patch(format!("{url}/{id}"))
                            .bearer_auth(&key)
                            .json(&change)
                            .send()
                            .await
                        else {
                            return;
                        };
                        let Ok(w) = r.json::<Value>().await else {
                            return;
                        };
                        let Some(version) = w["version"].as_i64() else {
                            return;
                        };
                        acked_tx.send_modify(|a| a.push((id.clone(), version)));
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(
        Duration::from_secs(60),
        acked.wait_for(|a| a.len() >= CHANGES),
    )
    .await
    .expect("load runs")
    .unwrap();
    for server in &servers {
        server.signal("-KILL");
    }
    for writer in writers {
        writer.await.unwrap();
    }
    for server in servers {
        let (status, _) = server.exit().await;
        assert!(!status.success(), "killed");
    }
    let acknowledged = acked.borrow().clone();

    let mut restarted = Vec::new();
    for _ in 0..replicas {
        restarted.push(ServerProcess::start_with(&db, "warn,hydracore::cli=info", &env).await);
    }
    let receiver = Receiver::start_on(receiver_address).await;
    let started = Instant::now();
    let delivered = receiver
        .wait_until(Duration::from_secs(60), |delivered| {
            let events: HashSet<(String, i64)> = delivered
                .iter()
                .map(Received::workflow_and_version)
                .collect();
            acknowledged.iter().all(|a| events.contains(a))
        })
        .await;
    let took = started.elapsed();

    let mut by_id: HashMap<String, (String, i64)> = HashMap::new();
    for r in &delivered {
        by_id.insert(r.id.clone(), r.workflow_and_version());
    }
    let events: HashSet<(String, i64)> = by_id.values().cloned().collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|a| !events.contains(a))
        .collect();
    println!(
        "SIGKILL of {replicas} replica(s) with the receiver down: {} changes answered, {} \
         delivered after restart in {:?} ({} requests answered 200, {} distinct webhook-ids), \
         {} lost",
        acknowledged.len(),
        events.len(),
        took,
        delivered.len(),
        by_id.len(),
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "lost {} of {}: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(by_id.len(), events.len(), "one webhook-id per event");
    // In order per workflow, counting each webhook-id's first success.
    let mut firsts = HashSet::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &delivered {
        if firsts.insert(r.id.clone()) {
            let (workflow, version) = r.workflow_and_version();
            let before = last.insert(workflow.clone(), version).unwrap_or(0);
            assert!(version > before, "{workflow}: v{version} after v{before}");
        }
    }
    for server in restarted {
        server.terminate();
        server.exit().await;
    }
}

#[tokio::test]
async fn a_url_is_checked_again_before_every_attempt() {
    use hydracore_domain::event::EventType;
    use hydracore_domain::webhook::{NewWebhook, WebhookSecret};
    let app = TestApp::spawn_with(|s| s.webhooks.allow_private = false).await;
    // Stored as a registration under other settings would have left it.
    let now = hydracore_domain::Timestamp::now();
    let webhook = NewWebhook {
        url: "https://localhost:9/hook".into(),
        event_types: vec![EventType::Created],
        description: None,
    }
    .registered(Uuid::new_v4(), now);
    let secret = WebhookSecret::from_key(&[7; 32]).unwrap();
    let scope = hydracore_domain::Scope::tenant(app.agent.tenant_id);
    assert!(app
        .store
        .insert_webhook(scope, &webhook, &secret, 20)
        .await
        .unwrap());
    app.create_workflow(&app.agent).await;

    let id = webhook.id.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let listed = deliveries(&app, &id).await;
        if listed
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(1) && d["last_error"].is_string())
            || Instant::now() > deadline
        {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed[0]["status"], json!("pending"), "{listed:?}");
    assert_eq!(listed[0]["last_status_code"], Value::Null);
    let error = listed[0]["last_error"].as_str().unwrap();
    assert!(error.contains("loopback"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_database_send_each_delivery_once_and_in_order() {
    let app = TestApp::spawn().await;
    // A second replica on the same database, with its own worker.
    let settings =
        hydracore::config::Settings::for_tests(&app.database_url, crate::helpers::JWT_SECRET);
    let replica = hydracore::startup::App::build(&settings).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let replica = tokio::spawn(replica.run(async {
        let _ = stopped.await;
    }));
    let receiver = Receiver::start().await;
    register(&app, &receiver.url).await;
    let mut expected = 0;
    for _ in 0..20 {
        advanced_workflow(&app, 2).await;
        expected += 3;
    }
    let delivered = receiver
        .wait_for_delivered(expected, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = receiver.received();
    let ids: HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(delivered.len(), expected);
    assert_eq!(received.len(), expected, "a delivery sent twice");
    assert_eq!(ids.len(), expected);
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &received {
        let (workflow, version) = r.workflow_and_version();
        let before = last.insert(workflow.clone(), version).unwrap_or(0);
        assert_eq!(
            version,
            before + 1,
            "{workflow}: v{version} after v{before}"
        );
    }
    drop(stop);
    replica.await.unwrap().unwrap();
}
