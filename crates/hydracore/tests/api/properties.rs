//! Property tests: random operation sequences keep the invariants, and
//! random bodies and query strings never produce a 500.

use hydracore_domain::merge::merge_patch;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::helpers::{Body, Credential, TestApp};

/// A small JSON object to merge: few keys, so patches collide and delete.
fn patch() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::from),
        prop_oneof![Just(Value::Null), any::<i8>().prop_map(Value::from)]
            .prop_map(|x| json!({ "x": x })),
    ];
    btree_map(prop::sample::select(vec!["a", "b", "c", "d"]), leaf, 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

#[derive(Debug, Clone)]
enum Op {
    Advance {
        status: Option<&'static str>,
        patch: Map<String, Value>,
    },
    Suspend,
    Resume(Map<String, Value>),
    Abort,
}

fn op() -> impl Strategy<Value = Op> {
    let status = prop::option::weighted(
        0.3,
        prop::sample::select(vec![
            "active",
            "paused",
            "awaiting_approval",
            "suspended",
            "completed",
            "failed",
        ]),
    );
    prop_oneof![
        6 => (status, patch()).prop_map(|(status, patch)| Op::Advance { status, patch }),
        2 => Just(Op::Suspend),
        2 => patch().prop_map(Op::Resume),
        1 => Just(Op::Abort),
    ]
}

const TERMINAL: [&str; 4] = ["completed", "expired", "cancelled", "failed"];

/// What the service must hold after each operation.
struct Model {
    state: Value,
    status: String,
    entries: usize,
}

async fn run_sequence(
    app: &TestApp,
    admin: &Credential,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let initial = json!({"a": 1});
    let id = app
        .create_with(&app.agent, json!({ "workflow_state": initial }))
        .await;
    let mut model = Model {
        state: initial,
        status: "active".into(),
        entries: 1,
    };
    for op in ops {
        let terminal = TERMINAL.contains(&model.status.as_str());
        let (response, expected) = match &op {
            Op::Advance { status, patch } => {
                let mut body = json!({"action": "step", "workflow_state": patch});
                if let Some(s) = status {
                    body["status"] = json!(s);
                }
                let ok = !terminal;
                if ok {
                    merge_patch(&mut model.state, &Value::Object(patch.clone()));
                    if let Some(s) = status {
                        model.status = (*s).into();
                    }
                }
                (app.advance(&app.agent, &id, body).await, ok)
            }
            Op::Suspend => {
                let ok = !terminal && model.status != "suspended";
                if ok {
                    model.status = "suspended".into();
                }
                (
                    app.suspend(&app.agent, &id, json!({"step": "review"}))
                        .await,
                    ok,
                )
            }
            Op::Resume(data) => {
                let ok = model.status == "suspended";
                if ok {
                    merge_patch(&mut model.state, &Value::Object(data.clone()));
                    model.status = "active".into();
                }
                (
                    app.resume(&app.agent, &id, Some(json!({"resume_data": data})))
                        .await,
                    ok,
                )
            }
            Op::Abort => {
                let ok = !terminal;
                if ok {
                    model.status = "cancelled".into();
                }
                let path = format!("/v1/workflows/{id}/abort");
                (
                    app.dashboard(Method::POST, &path, admin, Body::None).await,
                    ok,
                )
            }
        };
        prop_assert_eq!(
            response.status,
            if expected { 200 } else { 409 },
            "{:?}: {}",
            op,
            response.body
        );
        if expected {
            model.entries += 1;
        }
        let w = app.get(&app.agent, &id).await.body;
        let history = w["history"].as_array().cloned().unwrap_or_default();
        let seqs: Vec<i64> = history.iter().filter_map(|e| e["seq"].as_i64()).collect();
        prop_assert_eq!(
            seqs,
            (1..=model.entries as i64).collect::<Vec<_>>(),
            "history seq contiguous"
        );
        prop_assert_eq!(w["status"].as_str(), Some(model.status.as_str()));
        prop_assert_eq!(
            &w["workflow_state"],
            &model.state,
            "state is the fold of the merges"
        );
        let is_terminal = TERMINAL.contains(&model.status.as_str());
        prop_assert_eq!(
            w["completed_at"].is_string(),
            is_terminal,
            "completed_at iff terminal"
        );
        prop_assert_eq!(w["version"].as_i64(), Some(model.entries as i64));
    }
    Ok(())
}

#[test]
fn random_operation_sequences_keep_every_invariant() {
    let runtime = Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "prop-admin"));
    let config = ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in vec(op(), 1..20))| {
        runtime.block_on(run_sequence(&app, &admin, ops))?;
    });
}

/// Any JSON, biased toward the shapes and edge values validation meets.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(u64::MAX)),
        ".{0,12}".prop_map(Value::from),
        Just(json!("\u{0}")),
        Just(json!(Uuid::new_v4())),
        Just(json!("2026-01-01T00:00:00Z")),
        prop::sample::select(vec!["lead", "active", "suspended", "9999-99-99T99:99:99"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body with the routes' own field names and random values.
fn body_like_ours() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "customer_id",
        "workflow_type",
        "instance_id",
        "stage",
        "title",
        "reference",
        "assigned_to",
        "workflow_state",
        "next_action_at",
        "expires_at",
        "action",
        "action_detail",
        "actor",
        "approver_id",
        "escalation_level",
        "status",
        "step",
        "payload",
        "resume_data",
    ]);
    btree_map(names, any_json(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

#[test]
fn random_bodies_never_cause_a_server_error() {
    let runtime = Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let id = runtime.block_on(app.create_workflow(&app.agent));
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "fuzz"));
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let body = prop_oneof![body_like_ours(), any_json()];
    proptest!(config, |(body in body, route in 0..5usize)| {
        let r = runtime.block_on(async {
            match route {
                0 => app.create(&app.agent, body).await,
                1 => app.advance(&app.agent, &id, body).await,
                2 => app.suspend(&app.agent, &id, body).await,
                3 => app.resume(&app.agent, &id, Some(body)).await,
                _ => app.dashboard(Method::POST, &format!("/v1/workflows/{id}/suspend"), &admin, Body::Json(body)).await,
            }
        });
        prop_assert!(r.status < 500, "{} on route {}: {}", r.status, route, r.body);
    });
}

#[test]
fn random_bytes_and_query_strings_never_cause_a_server_error() {
    let runtime = Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let admin = Credential::Bearer(app.admin_jwt(app.agent.tenant_id, "fuzz"));
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let names = prop::sample::select(vec![
        "page",
        "per_page",
        "status",
        "workflow_type",
        "customer_id",
        "reference",
        "instance_id",
        "x",
    ]);
    proptest!(config, |(bytes in vec(any::<u8>(), 0..64), pairs in vec((names, ".{0,10}"), 0..5))| {
        let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).finish();
        let (raw, internal, dashboard) = runtime.block_on(async {
            let raw = app
                .request(Method::POST, &app.agent.workflows(), Some(&app.agent.key), Body::Raw { content_type: Some("application/json"), bytes: bytes.clone() }, &[])
                .await;
            let internal = app.list(&app.agent, &query).await;
            let dashboard = app.dashboard(Method::GET, &format!("/v1/workflows?{query}"), &admin, Body::None).await;
            (raw, internal, dashboard)
        });
        for r in [raw, internal, dashboard] {
            prop_assert!(r.status < 500, "{}: {}", r.status, r.body);
        }
    });
}
