//! The web page over HTTP, as a browser without JavaScript uses it:
//! sessions, forms with their tokens, escaping, and approval links. The
//! browser tests (tests/browser) drive the same pages in Chromium.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Body, Credential, TestApp};

/// A browser: keeps the cookies the server sets, follows no redirects.
struct Browser {
    client: reqwest::Client,
    base_url: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Page {
    /// The value of the first hidden `name` field.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&marker).expect("field on the page") + marker.len();
        let len = self.html[start..].find('"').expect("closing quote");
        self.html[start..start + len].to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base_url: app.base_url.clone(),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: &[(&str, &str)]) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        };
        let mut request = self.client.request(method.clone(), url);
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header("cookie", header.join("; "));
        }
        if method == Method::POST {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        Page {
            status: response.status(),
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookies,
            headers,
            html: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, &[]).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, form).await
    }

    /// Signs in through the form with an API key or JWT.
    async fn sign_in(&mut self, credential: &str) -> Page {
        let form = self.get("/ui/sign-in").await;
        let csrf = form.hidden("csrf");
        self.post(
            "/ui/sign-in",
            &[("csrf", csrf.as_str()), ("credential", credential)],
        )
        .await
    }
}

fn payment_plan_schema() -> Value {
    json!({
        "type": "object",
        "required": ["approved", "channel"],
        "properties": {
            "approved": {"type": "boolean"},
            "amount": {"type": "number", "minimum": 1},
            "channel": {"enum": ["email", "sms"]}
        }
    })
}

/// A workflow of the app's agent suspended for a payment plan; its id.
async fn suspended_for_a_plan(app: &TestApp, title: &str) -> String {
    let id = app
        .create_with(
            &app.agent,
            json!({"title": title, "workflow_state": {"amount_due": 1200}}),
        )
        .await;
    let suspended = app
        .suspend(
            &app.agent,
            &id,
            json!({"step": "manager_approval",
                   "payload": {"question": "Approve a 3-month plan?", "amount": 1200},
                   "resume_schema": payment_plan_schema(),
                   "assigned_to": "ann"}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    id
}

async fn record(app: &TestApp, id: &str) -> Value {
    app.get(&app.agent, id).await.body
}

/// A browser signed in as an admin of the agent's tenant, named `sub`.
async fn admin_browser(app: &TestApp, sub: &str) -> Browser {
    let mut browser = Browser::new(app);
    let token = app.admin_jwt(app.agent.tenant_id, sub);
    let signed_in = browser.sign_in(&token).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.html
    );
    browser
}

#[tokio::test]
async fn the_root_leads_to_the_page_and_the_page_to_sign_in() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let root = browser.get("/").await;
    assert_eq!(root.location.as_deref(), Some("/ui/"));
    let inbox = browser.get("/ui/").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER);
    assert_eq!(inbox.location.as_deref(), Some("/ui/sign-in"));
}

#[tokio::test]
async fn a_one_time_link_signs_in_once_into_an_inbox_that_lists_the_suspension() {
    let app = TestApp::spawn().await;
    suspended_for_a_plan(&app, "Arrears, flat 3").await;
    let (url, _) = hydracore::ui::session::sign_in_link(
        app.store.clone(),
        app.agent.tenant_id,
        "ann",
        &app.base_url,
    )
    .await
    .unwrap();
    let mut browser = Browser::new(&app);
    let landing = browser.get(&url).await;
    assert_eq!(landing.status, StatusCode::OK);
    let used = browser.post(&url, &[]).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER);
    let cookie = used
        .set_cookies
        .iter()
        .find(|c| c.starts_with("hydracore_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let inbox = browser.get("/ui/").await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.html.contains("Arrears, flat 3"));
    assert!(inbox.html.contains("Approve a 3-month plan?"));
    assert!(inbox.html.contains("Assigned to ann"));

    let again = Browser::new(&app).post(&url, &[]).await;
    assert_eq!(again.status, StatusCode::GONE, "a sign-in link works once");
}

#[tokio::test]
async fn cookies_are_secure_when_the_page_is_served_over_https() {
    let app = TestApp::spawn_with(|s| s.ui.public_url = Some("https://hc.example".into())).await;
    let mut browser = Browser::new(&app);
    let form = browser.get("/ui/sign-in").await;
    assert!(
        !form.set_cookies.is_empty(),
        "the sign-in form sets its cookie"
    );
    assert!(form.set_cookies.iter().all(|c| c.contains("Secure")));
}

#[tokio::test]
async fn every_page_forbids_framing_inline_script_and_referrers() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Headers").await;
    let mut browser = admin_browser(&app, "ann").await;
    for path in [
        "/ui/sign-in",
        "/ui/",
        "/ui/workflows",
        &format!("/ui/workflows/{id}"),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let header = |name: &str| {
            page.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let csp = header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        assert!(!page.html.contains("<script>"), "{path}: no inline script");
    }
}

#[tokio::test]
async fn a_wrong_answer_is_shown_beside_its_field_and_a_right_one_resumes_the_workflow() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Plan").await;
    let approver = Uuid::new_v4().to_string();
    let mut browser = admin_browser(&app, &approver).await;
    let page = browser.get(&format!("/ui/workflows/{id}")).await;
    assert!(
        page.html.contains("id=\"f-amount\""),
        "a field per property"
    );
    assert!(
        page.html.contains("<option value=\"sms\""),
        "an enum is a select"
    );
    let (csrf, version) = (page.hidden("csrf"), page.hidden("version"));
    let path = format!("/ui/workflows/{id}/resume");

    let wrong = browser
        .post(
            &path,
            &[("csrf", &csrf), ("version", &version), ("amount", "0")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.html.contains("id=\"e-amount\""), "{}", wrong.html);
    assert!(
        wrong.html.contains("less than the minimum"),
        "{}",
        wrong.html
    );
    assert!(
        wrong.html.contains("id=\"e-channel\""),
        "the missing field named"
    );
    assert_eq!(record(&app, &id).await["status"], "suspended");

    let right = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("approved", "true"),
                ("amount", "400"),
                ("channel", "sms"),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.html);
    assert_eq!(right.location, Some(format!("/ui/?answered={id}")));
    let inbox = browser.get(right.location.as_deref().unwrap()).await;
    assert!(inbox.html.contains("Answered: Plan"));
    assert!(
        !inbox.html.contains(&format!("/ui/workflows/{id}\"")),
        "left the inbox"
    );

    let w = record(&app, &id).await;
    assert_eq!(w["status"], "active");
    assert_eq!(w["approver_id"], json!(approver));
    assert_eq!(w["workflow_state"]["amount"], json!(400));
    let last = w["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "resumed");
    assert_eq!(last["actor"], json!(approver));
}

#[tokio::test]
async fn a_forged_post_without_the_form_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Forged").await;
    let mut browser = admin_browser(&app, "ann").await;
    for form in [
        vec![("approved", "true")],
        vec![("approved", "true"), ("csrf", "guessed")],
    ] {
        let forged = browser
            .post(&format!("/ui/workflows/{id}/resume"), &form)
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
    }
    let aborted = browser
        .post(
            &format!("/ui/workflows/{id}/abort"),
            &[("confirm", "yes"), ("reason", "x")],
        )
        .await;
    assert_eq!(aborted.status, StatusCode::FORBIDDEN);
    assert_eq!(record(&app, &id).await["status"], "suspended");
}

#[tokio::test]
async fn a_decision_on_a_stale_page_is_refused_with_a_reload_never_applied() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Stale").await;
    let mut browser = admin_browser(&app, "ann").await;
    let page = browser.get(&format!("/ui/workflows/{id}")).await;
    let (csrf, version) = (page.hidden("csrf"), page.hidden("version"));
    // Someone else answers, and the agent suspends it again.
    app.resume(
        &app.agent,
        &id,
        Some(json!({"resume_data": {"approved": false, "channel": "sms"}})),
    )
    .await;
    app.suspend(
        &app.agent,
        &id,
        json!({"step": "second_look", "resume_schema": payment_plan_schema()}),
    )
    .await;
    let late = browser
        .post(
            &format!("/ui/workflows/{id}/resume"),
            &[("csrf", &csrf), ("version", &version), ("approved", "true")],
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(late.html.contains("This workflow changed"), "{}", late.html);
    let w = record(&app, &id).await;
    assert_eq!(
        (w["status"].clone(), w["suspended_step"].clone()),
        (json!("suspended"), json!("second_look"))
    );
}

#[tokio::test]
async fn abort_needs_a_confirmation_and_a_reason_and_keeps_the_reason() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Abort me").await;
    let mut browser = admin_browser(&app, "ann").await;
    let page = browser.get(&format!("/ui/workflows/{id}")).await;
    let (csrf, version) = (page.hidden("csrf"), page.hidden("version"));
    let path = format!("/ui/workflows/{id}/abort");
    let unconfirmed = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("reason", "paid in full"),
            ],
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(record(&app, &id).await["status"], "suspended");
    let confirmed = browser
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("version", &version),
                ("reason", "paid in full"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
    let w = record(&app, &id).await;
    assert_eq!(w["status"], "cancelled");
    let last = w["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action_detail"], json!({"reason": "paid in full"}));
}

#[tokio::test]
async fn values_from_a_workflow_render_as_text_never_as_markup() {
    let app = TestApp::spawn().await;
    let hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    let id = app
        .create_with(
            &app.agent,
            json!({"title": hostile, "stage": hostile,
                   "workflow_state": {"note": hostile, "link": "javascript:alert(3)"}}),
        )
        .await;
    let suspended = app.suspend(
        &app.agent,
        &id,
        json!({"step": "check_it", "payload": {"question": hostile}, "assigned_to": hostile,
               "resume_schema": {"type": "object", "properties": {"a\"><svg onload=alert(4)>": {"type": "string", "title": hostile}}}}),
    )
    .await;
    assert_eq!(suspended.status, 200, "{:?}", suspended.body);
    let mut browser = admin_browser(&app, "ann").await;
    for path in [
        "/ui/".to_owned(),
        format!("/ui/workflows/{id}"),
        "/ui/workflows".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.html.contains("<script>alert"), "{path}");
        assert!(!page.html.contains("<img src=x"), "{path}");
        assert!(!page.html.contains("<svg"), "{path}");
        assert!(!page.html.contains("href=\"javascript:"), "{path}");
        assert!(
            page.html.contains("&#60;script&#62;alert(1)"),
            "{path}: shown as text"
        );
    }
}

#[tokio::test]
async fn another_tenants_workflow_is_not_found_on_the_page() {
    let app = TestApp::spawn().await;
    let other = app.new_agent(Uuid::new_v4()).await;
    let theirs = app.create_workflow(&other).await;
    let mut browser = admin_browser(&app, "ann").await;
    assert_eq!(
        browser.get(&format!("/ui/workflows/{theirs}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        browser.get("/ui/workflows/not-a-uuid").await.status,
        StatusCode::NOT_FOUND
    );
    let page = browser.get("/ui/workflows").await;
    assert!(!page.html.contains(&theirs));
}

#[tokio::test]
async fn a_revoked_keys_session_ends_at_its_next_request() {
    let app = TestApp::spawn().await;
    let (key_id, key) = app
        .api_key(app.agent.tenant_id, &["workflows:read", "workflows:write"])
        .await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&key).await.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/ui/").await.status, StatusCode::OK);
    assert!(app.store.revoke_credential(key_id).await.unwrap());
    let after = browser.get("/ui/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location.as_deref(), Some("/ui/sign-in"));
}

#[tokio::test]
async fn a_read_only_key_sees_the_decision_but_cannot_answer_it() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Read only").await;
    let (_, key) = app.api_key(app.agent.tenant_id, &["workflows:read"]).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&key).await;
    let page = browser.get(&format!("/ui/workflows/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Approve a 3-month plan?"));
    assert!(!page.html.contains("/resume\""), "no decide form");
    let csrf = page.hidden("csrf");
    let tried = browser
        .post(
            &format!("/ui/workflows/{id}/resume"),
            &[("csrf", &csrf), ("approved", "true")],
        )
        .await;
    assert_eq!(tried.status, StatusCode::FORBIDDEN);
    assert_eq!(record(&app, &id).await["status"], "suspended");
}

#[tokio::test]
async fn a_wrong_key_and_a_proxy_key_do_not_sign_in() {
    let app = TestApp::spawn().await;
    for credential in ["hc_api_nope", app.agent.key.as_str(), "a.b.c"] {
        let mut browser = Browser::new(&app);
        let refused = browser.sign_in(credential).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{credential}");
        assert!(refused.html.contains("was not accepted"));
    }
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let mut browser = admin_browser(&app, "ann").await;
    let page = browser.get("/ui/").await;
    let session = browser.cookies.clone();
    let out = browser
        .post("/ui/sign-out", &[("csrf", &page.hidden("csrf"))])
        .await;
    assert_eq!(out.location.as_deref(), Some("/ui/sign-in"));
    // The old cookie, replayed, no longer works.
    browser.cookies = session;
    assert_eq!(browser.get("/ui/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_list_filters_by_status_and_pages() {
    let app = TestApp::spawn().await;
    suspended_for_a_plan(&app, "Waiting one").await;
    app.create_with(&app.agent, json!({"title": "Running one"}))
        .await;
    let mut browser = admin_browser(&app, "ann").await;
    let suspended = browser
        .get("/ui/workflows?status=suspended&workflow_type=")
        .await;
    assert!(suspended.html.contains("Waiting one"));
    assert!(!suspended.html.contains("Running one"));
    let bad = browser.get("/ui/workflows?status=sideways").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn approval_link(app: &TestApp, id: &str, body: Value) -> crate::helpers::TestResponse {
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "ann"));
    app.dashboard(
        Method::POST,
        &format!("/v1/workflows/{id}/approval-links"),
        &admin,
        Body::Json(body),
    )
    .await
}

#[tokio::test]
async fn an_approval_link_answers_once_without_signing_in_and_names_its_creator() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "By e-mail").await;
    let made = approval_link(&app, &id, json!({"expires_in": 3600, "note": "From Bob"})).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let url = made.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/ui/approve/", app.base_url)));

    let mut stranger = Browser::new(&app);
    let page = stranger.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Approve a 3-month plan?") && page.html.contains("From Bob"));
    assert!(!page.html.contains("/abort"), "only the decision");

    let wrong = stranger.post(&url, &[("amount", "-5")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.html.contains("id=\"e-amount\""));
    let right = stranger
        .post(
            &url,
            &[
                ("approved", "true"),
                ("amount", "300"),
                ("channel", "email"),
            ],
        )
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.html);
    assert!(right.html.contains("Thank you"));
    assert_eq!(
        stranger.post(&url, &[("approved", "true")]).await.status,
        StatusCode::GONE
    );
    assert_eq!(stranger.get(&url).await.status, StatusCode::GONE);

    let w = record(&app, &id).await;
    assert_eq!(w["status"], "active");
    let last = w["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "ann via approval link");
    assert!(
        last["principal"].as_str().unwrap().ends_with(":user:ann"),
        "{last}"
    );
}

#[tokio::test]
async fn an_approval_link_dies_with_its_suspension_and_is_only_made_for_one() {
    let app = TestApp::spawn().await;
    let id = suspended_for_a_plan(&app, "Answered elsewhere").await;
    let url = approval_link(&app, &id, json!({})).await.body["url"]
        .as_str()
        .unwrap()
        .to_owned();
    app.resume(
        &app.agent,
        &id,
        Some(json!({"resume_data": {"approved": true, "channel": "sms"}})),
    )
    .await;
    app.suspend(&app.agent, &id, json!({"step": "again"})).await;
    let mut stranger = Browser::new(&app);
    assert_eq!(
        stranger.get(&url).await.status,
        StatusCode::GONE,
        "bound to the old suspension"
    );
    assert_eq!(stranger.post(&url, &[]).await.status, StatusCode::GONE);
    assert_eq!(record(&app, &id).await["suspended_step"], "again");

    let running = app.create_workflow(&app.agent).await;
    assert_eq!(approval_link(&app, &running, json!({})).await.status, 409);
    let theirs = app
        .create_workflow(&app.new_agent(Uuid::new_v4()).await)
        .await;
    assert_eq!(approval_link(&app, &theirs, json!({})).await.status, 404);
    let too_long = approval_link(&app, &id, json!({"expires_in": 60 * 24 * 3600})).await;
    assert_eq!(too_long.status, 422);
    // A token that is not one, or one for another tenant's link, is gone.
    assert_eq!(
        stranger.get("/ui/approve/nonsense").await.status,
        StatusCode::GONE
    );
}

#[tokio::test]
async fn the_page_hears_its_tenants_events_from_now_on_in_its_session() {
    let app = TestApp::spawn().await;
    let past = app.create_workflow(&app.agent).await;
    // PostgreSQL lists an event once the transactions older than its own
    // have ended, anywhere on the server: wait until this one is listed.
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "ann"));
    while app
        .dashboard(Method::GET, "/v1/events", &admin, Body::None)
        .await
        .body["events"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let browser = admin_browser(&app, "ann").await;
    let cookie: Vec<String> = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut stream = browser
        .client
        .get(format!("{}/ui/events", app.base_url))
        .header("cookie", cookie.join("; "))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let id = app.create_workflow(&app.agent).await;
    let mut seen = String::new();
    while !seen.contains(&id) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: workflow.created"));
    assert!(
        !seen.contains(&past),
        "a page shows the past already: {seen}"
    );
    let signed_out = Browser::new(&app).get("/ui/events").await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
}
