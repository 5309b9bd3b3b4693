//! The dashboard API: credentials, tenant isolation, admin actions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Body, Credential, TestApp, JWT_SECRET};

/// A dashboard route and what it answers when allowed.
struct Route {
    name: &'static str,
    method: Method,
    path: fn(&str) -> String,
    body: fn() -> Body,
    writes: bool,
    /// Whether its target must be suspended first.
    needs_suspended: bool,
    lists: bool,
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            name: "list",
            method: Method::GET,
            path: |_| "/v1/workflows".into(),
            body: || Body::None,
            writes: false,
            needs_suspended: false,
            lists: true,
        },
        Route {
            name: "suspended",
            method: Method::GET,
            path: |_| "/v1/workflows/suspended".into(),
            body: || Body::None,
            writes: false,
            needs_suspended: true,
            lists: true,
        },
        Route {
            name: "get",
            method: Method::GET,
            path: |id| format!("/v1/workflows/{id}"),
            body: || Body::None,
            writes: false,
            needs_suspended: false,
            lists: false,
        },
        Route {
            name: "abort",
            method: Method::POST,
            path: |id| format!("/v1/workflows/{id}/abort"),
            body: || Body::None,
            writes: true,
            needs_suspended: false,
            lists: false,
        },
        Route {
            name: "suspend",
            method: Method::POST,
            path: |id| format!("/v1/workflows/{id}/suspend"),
            body: || Body::Json(json!({"step": "review"})),
            writes: true,
            needs_suspended: false,
            lists: false,
        },
        Route {
            name: "resume",
            method: Method::POST,
            path: |id| format!("/v1/workflows/{id}/resume"),
            body: || Body::Json(json!({"resume_data": {"ok": true}})),
            writes: true,
            needs_suspended: true,
            lists: false,
        },
    ]
}

/// What a credential case must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Status(u16),
    Allowed,
    /// A valid credential of another tenant: lists are empty, records 404.
    OtherTenant,
    /// An API key with one scope: allowed where it has it, else 403.
    OnlyScope {
        writes: bool,
    },
}

fn unsigned(claims: &Value, alg: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[tokio::test]
async fn every_dashboard_route_answers_each_credential_case_with_the_exact_status() {
    let app = TestApp::spawn().await;
    let tenant = app.agent.tenant_id;
    let other = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut c = json!({"sub": "alice", "tenant_id": tenant, "role": "admin", "exp": now + 600});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let other_secret =
        jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-thirty-two-bytes-or-more");
    let hs512 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512);
    let (revoked_id, revoked_key) = app
        .api_key(tenant, &["workflows:read", "workflows:write"])
        .await;
    app.store.revoke_credential(revoked_id).await.unwrap();

    let cases: Vec<(&str, Credential, Expect)> = vec![
        ("no credential", Credential::None, Expect::Status(401)),
        (
            "malformed bearer",
            Credential::Bearer("not.a.jwt".into()),
            Expect::Status(401),
        ),
        (
            "expired JWT",
            Credential::Bearer(app.jwt(claims(json!({"exp": now - 120})))),
            Expect::Status(401),
        ),
        (
            "JWT expired within the leeway",
            Credential::Bearer(app.jwt(claims(json!({"exp": now - 10})))),
            Expect::Allowed,
        ),
        (
            "JWT without exp",
            Credential::Bearer(app.jwt(claims(json!({"exp": null})))),
            Expect::Status(401),
        ),
        (
            "wrong signature",
            Credential::Bearer(
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::default(),
                    &claims(json!({})),
                    &other_secret,
                )
                .unwrap(),
            ),
            Expect::Status(401),
        ),
        (
            "alg none",
            Credential::Bearer(unsigned(&claims(json!({})), "none")),
            Expect::Status(401),
        ),
        (
            "algorithm the configuration did not choose",
            Credential::Bearer(
                jsonwebtoken::encode(
                    &hs512,
                    &claims(json!({})),
                    &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
                )
                .unwrap(),
            ),
            Expect::Status(401),
        ),
        (
            "wrong role",
            Credential::Bearer(app.jwt(claims(json!({"role": "viewer"})))),
            Expect::Status(403),
        ),
        (
            "missing role",
            Credential::Bearer(app.jwt(claims(json!({"role": null})))),
            Expect::Status(401),
        ),
        (
            "missing tenant_id",
            Credential::Bearer(app.jwt(claims(json!({"tenant_id": null})))),
            Expect::Status(401),
        ),
        (
            "tenant_id not a uuid",
            Credential::Bearer(app.jwt(claims(json!({"tenant_id": "acme"})))),
            Expect::Status(401),
        ),
        (
            "other tenant's JWT",
            Credential::Bearer(app.admin_jwt(other, "mallory")),
            Expect::OtherTenant,
        ),
        (
            "other tenant's API key",
            Credential::ApiKey(
                app.api_key(other, &["workflows:read", "workflows:write"])
                    .await
                    .1,
            ),
            Expect::OtherTenant,
        ),
        (
            "revoked API key",
            Credential::ApiKey(revoked_key),
            Expect::Status(401),
        ),
        (
            "unknown API key",
            Credential::ApiKey("hck_unknown".into()),
            Expect::Status(401),
        ),
        (
            "read-only API key",
            Credential::ApiKey(app.api_key(tenant, &["workflows:read"]).await.1),
            Expect::OnlyScope { writes: false },
        ),
        (
            "write-only API key",
            Credential::ApiKey(app.api_key(tenant, &["workflows:write"]).await.1),
            Expect::OnlyScope { writes: true },
        ),
        (
            "proxy key as bearer",
            Credential::Bearer(app.agent.key.clone()),
            Expect::Status(401),
        ),
        (
            "proxy key as API key",
            Credential::ApiKey(app.agent.key.clone()),
            Expect::Status(401),
        ),
        (
            "admin JWT",
            Credential::Bearer(app.admin_jwt(tenant, "alice")),
            Expect::Allowed,
        ),
        (
            "API key with both scopes",
            Credential::ApiKey(
                app.api_key(tenant, &["workflows:read", "workflows:write"])
                    .await
                    .1,
            ),
            Expect::Allowed,
        ),
    ];

    let mut failures = Vec::new();
    for (case, credential, expect) in &cases {
        for route in routes() {
            let id = app.create_workflow(&app.agent).await;
            if route.needs_suspended {
                assert_eq!(
                    app.suspend(&app.agent, &id, json!({"step": "s"}))
                        .await
                        .status,
                    200
                );
            }
            let r = app
                .dashboard(
                    route.method.clone(),
                    &(route.path)(&id),
                    credential,
                    (route.body)(),
                )
                .await;
            let wanted = match *expect {
                Expect::Status(s) => s,
                Expect::Allowed => 200,
                Expect::OtherTenant if route.lists => 200,
                Expect::OtherTenant => 404,
                Expect::OnlyScope { writes } if writes == route.writes => 200,
                Expect::OnlyScope { .. } => 403,
            };
            if r.status != wanted {
                failures.push(format!(
                    "{case} / {}: wanted {wanted}, got {} {}",
                    route.name, r.status, r.body
                ));
                continue;
            }
            if r.status == 401 && r.header("www-authenticate") != Some("Bearer") {
                failures.push(format!(
                    "{case} / {}: 401 without WWW-Authenticate",
                    route.name
                ));
            }
            if matches!(expect, Expect::OtherTenant) && route.lists {
                let seen = if route.name == "list" {
                    r.body["workflows"].clone()
                } else {
                    r.body.clone()
                };
                if seen != json!([]) {
                    failures.push(format!(
                        "{case} / {}: saw another tenant's workflows",
                        route.name
                    ));
                }
            }
            if r.status != 200 && route.writes {
                let unchanged = app.get(&app.agent, &id).await.body["history"]
                    .as_array()
                    .unwrap()
                    .len();
                let expected_len = if route.needs_suspended { 2 } else { 1 };
                if unchanged != expected_len {
                    failures.push(format!(
                        "{case} / {}: a refused request changed the workflow",
                        route.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn authorization_wins_when_both_credentials_are_sent() {
    let app = TestApp::spawn().await;
    let (_, key) = app.api_key(app.agent.tenant_id, &["workflows:read"]).await;
    let r = app
        .request(
            Method::GET,
            "/v1/workflows",
            Some("not.a.jwt"),
            Body::None,
            &[("x-api-key", &key)],
        )
        .await;
    assert_eq!(r.status, 401);
    let jwt = app.admin_jwt(app.agent.tenant_id, "alice");
    let r = app
        .request(
            Method::GET,
            "/v1/workflows",
            Some(&jwt),
            Body::None,
            &[("x-api-key", "hck_bogus")],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn the_dashboard_lists_the_whole_tenant_and_filters_by_instance_and_reference() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let stranger = app.new_agent(Uuid::new_v4()).await;
    let mine = app
        .create_with(&app.agent, json!({"reference": "FLAT-1"}))
        .await;
    let theirs = app
        .create_with(
            &sibling,
            json!({"reference": "FLAT-2", "workflow_type": "viewing"}),
        )
        .await;
    app.create_workflow(&stranger).await;
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let list = |query: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let r = app
                .dashboard(
                    Method::GET,
                    &format!("/v1/workflows?{query}"),
                    admin,
                    Body::None,
                )
                .await;
            assert_eq!(r.status, 200, "{query}: {}", r.body);
            let ids = r.workflow_ids();
            assert_eq!(r.body["total"], ids.len());
            ids
        }
    };
    assert_eq!(
        list(String::new()).await,
        vec![theirs.clone(), mine.clone()]
    );
    assert_eq!(
        list(format!("instance_id={}", sibling.instance_id)).await,
        vec![theirs.clone()]
    );
    assert_eq!(list("reference=FLAT-1".into()).await, vec![mine.clone()]);
    assert_eq!(list("workflow_type=viewing".into()).await, vec![theirs]);
    let r = app
        .dashboard(
            Method::GET,
            "/v1/workflows?instance_id=nope&per_page=500",
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.validation_errors(),
        vec![
            ("uuid_parsing".into(), json!(["query", "instance_id"])),
            ("less_than_equal".into(), json!(["query", "per_page"])),
        ]
    );
    let r = app
        .dashboard(
            Method::GET,
            &format!("/v1/workflows/{mine}"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["history"][0]["action"].clone()),
        (200, json!("created"))
    );
}

#[tokio::test]
async fn the_suspended_list_is_newest_suspension_first_with_what_an_approver_needs() {
    let app = TestApp::spawn().await;
    let sibling = app.sibling_agent().await;
    let first = app
        .create_with(
            &sibling,
            json!({"title": "first", "reference": "R-1", "stage": "s1"}),
        )
        .await;
    let second = app.create_workflow(&app.agent).await;
    let resumed = app.create_workflow(&app.agent).await;
    let active = app.create_workflow(&app.agent).await;
    // Suspension order, not creation order, decides.
    app.suspend(&app.agent, &second, json!({"step": "wait"}))
        .await;
    app.suspend(
        &sibling,
        &first,
        json!({"step": "approve", "payload": {"amount": 5}}),
    )
    .await;
    app.suspend(&app.agent, &resumed, json!({"step": "x"}))
        .await;
    app.resume(&app.agent, &resumed, None).await;
    let stranger = app.new_agent(Uuid::new_v4()).await;
    let foreign = app.create_workflow(&stranger).await;
    app.suspend(&stranger, &foreign, json!({"step": "x"})).await;

    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let r = app
        .dashboard(Method::GET, "/v1/workflows/suspended", &admin, Body::None)
        .await;
    assert_eq!(r.status, 200);
    let items = r.body.as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|w| w["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert!(r.headers.get("x-truncated").is_none());
    let item = &items[0];
    for field in [
        "id",
        "instance_id",
        "customer_id",
        "workflow_type",
        "title",
        "reference",
        "stage",
        "suspended_step",
        "suspend_payload",
        "suspended_at",
    ] {
        assert!(item.get(field).is_some(), "missing {field}");
    }
    assert_eq!(item["instance_id"], json!(sibling.instance_id));
    assert_eq!(
        (
            item["title"].clone(),
            item["reference"].clone(),
            item["stage"].clone()
        ),
        (json!("first"), json!("R-1"), json!("s1"))
    );
    assert_eq!(
        (
            item["suspended_step"].clone(),
            item["suspend_payload"].clone()
        ),
        (json!("approve"), json!({"amount": 5}))
    );
    assert!(item["suspended_at"].is_string());
    assert!(!ids.contains(&active.as_str()));
}

#[tokio::test]
async fn the_suspended_list_answers_the_newest_up_to_its_limit_and_says_when_there_are_more() {
    let app = TestApp::spawn_with(|s| s.limits.suspended_max = 2).await;
    let mut suspended = Vec::new();
    for _ in 0..3 {
        let id = app.create_workflow(&app.agent).await;
        app.suspend(&app.agent, &id, json!({"step": "approve"}))
            .await;
        suspended.push(id);
    }
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let r = app
        .dashboard(Method::GET, "/v1/workflows/suspended", &admin, Body::None)
        .await;
    assert_eq!(r.status, 200);
    let ids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [suspended[2].as_str(), suspended[1].as_str()]);
    assert_eq!(r.header("x-truncated"), Some("true"));
}

#[tokio::test]
async fn an_admin_abort_cancels_names_the_admin_and_cannot_repeat() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice@agency"));
    let r = app
        .dashboard(
            Method::POST,
            &format!("/v1/workflows/{id}/abort"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"id": id, "message": "Workflow aborted", "status": "cancelled"})
    );
    let w = app.get(&app.agent, &id).await.body;
    assert_eq!(w["status"], "cancelled");
    assert!(w["completed_at"].is_string());
    let last = &w["history"][1];
    assert_eq!(
        (last["action"].clone(), last["actor"].clone()),
        (json!("aborted"), json!("alice@agency"))
    );
    assert_eq!(
        (last["from_status"].clone(), last["to_status"].clone()),
        (json!("active"), json!("cancelled"))
    );
    let again = app
        .dashboard(
            Method::POST,
            &format!("/v1/workflows/{id}/abort"),
            &admin,
            Body::None,
        )
        .await;
    assert_eq!(again.status, 409);
}

#[tokio::test]
async fn admin_suspend_and_resume_follow_the_agent_rules_and_name_the_api_key() {
    let app = TestApp::spawn().await;
    let id = app
        .create_with(&app.agent, json!({"workflow_state": {"a": 1}}))
        .await;
    let (key_id, key) = app.api_key(app.agent.tenant_id, &["workflows:write"]).await;
    let admin = Credential::ApiKey(key);
    let path = |action: &str| format!("/v1/workflows/{id}/{action}");
    assert_eq!(
        app.dashboard(Method::POST, &path("resume"), &admin, Body::None)
            .await
            .status,
        409
    );
    let r = app
        .dashboard(
            Method::POST,
            &path("suspend"),
            &admin,
            Body::Json(json!({"step": "legal_review"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].clone()),
        (200, json!("suspended"))
    );
    assert_eq!(
        app.dashboard(
            Method::POST,
            &path("suspend"),
            &admin,
            Body::Json(json!({"step": "again"}))
        )
        .await
        .status,
        409
    );
    let r = app
        .dashboard(
            Method::POST,
            &path("suspend"),
            &admin,
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(
        r.validation_errors(),
        vec![("missing".into(), json!(["body", "step"]))]
    );
    let r = app
        .dashboard(
            Method::POST,
            &path("resume"),
            &admin,
            Body::Json(json!({"resume_data": {"b": 2}})),
        )
        .await;
    assert_eq!(
        r.body["message"],
        "Workflow resumed from step 'legal_review'"
    );
    let w = app.get(&app.agent, &id).await.body;
    assert_eq!(w["workflow_state"], json!({"a": 1, "b": 2}));
    let actor = format!("api_key:{key_id}");
    assert_eq!(w["history"][1]["actor"], actor.as_str());
    assert_eq!(w["history"][2]["actor"], actor.as_str());
}

#[tokio::test]
async fn an_actor_in_an_admin_body_is_ignored() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow(&app.agent).await;
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "alice"));
    let body = Body::Json(json!({"step": "x", "actor": "someone-else"}));
    app.dashboard(
        Method::POST,
        &format!("/v1/workflows/{id}/suspend"),
        &admin,
        body,
    )
    .await;
    assert_eq!(
        app.get(&app.agent, &id).await.body["history"][1]["actor"],
        "alice"
    );
}
