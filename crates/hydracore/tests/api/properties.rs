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

// Agent JSON comes back exactly as it was sent: every number literal with
// all its digits (serde_json's `arbitrary_precision`), strings through any
// escaping, key order. The strategies below write JSON *text*, so that the
// server reads literals such as `1E2`, `-0.0` or `"\u00E9"` as a client
// wrote them, not as serde_json would.

/// Number literals that come back byte for byte: no exponent.
fn exact_number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        // Beyond i64 and u64.
        "-?[1-9][0-9]{19,60}",
        // More digits than an f64 holds, trailing zeros kept.
        "-?(0|[1-9][0-9]{0,20})\\.[0-9]{17,40}",
        prop::sample::select(vec![
            "-0",
            "-0.0",
            "-0.000",
            "0.0",
            "100.000",
            "12345678901234567890123",
            "0.1000000000000000000001",
            "-98765432109876543210987654321",
            "-18446744073709551617",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Number literals with an exponent, some beyond f64's range.
fn exponent_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,20})?[eE][+-]?[0-9]{1,3}",
        prop::sample::select(vec!["1e2", "2.5E-7", "1e400", "-1E+400", "1E-400", "-0e0"])
            .prop_map(str::to_owned),
    ]
}

/// How serde_json writes an exponent back: a lowercase `e` and its sign.
/// The digits, the sign of the number and the fraction are as sent.
fn as_written_back(literal: &str) -> String {
    let literal = literal.replace('E', "e");
    match literal.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with(['+', '-']) => {
            format!("{mantissa}e+{exponent}")
        }
        _ => literal,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Escaping {
    /// Only what JSON requires, with the short escapes (`\n`, `\"`).
    Minimal,
    /// Also every non-ASCII character as `\uXXXX` (surrogate pairs), and `\/`.
    NonAscii,
    /// Every character as `\uXXXX`, upper-case hex.
    Everything,
}

/// A JSON string literal for `text`, escaped as `escaping` says.
fn string_literal(text: &str, escaping: Escaping) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        let escape_all =
            escaping == Escaping::Everything || (escaping == Escaping::NonAscii && !c.is_ascii());
        if escape_all {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if escaping == Escaping::NonAscii => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text with the characters that need escaping made likely. No NUL: both
/// backends refuse it (PostgreSQL cannot store it).
fn any_text() -> impl Strategy<Value = String> {
    let character = prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{1}', '\u{1f}', '\u{7f}',
            'é', '€', 'ß', '日', '😀', '\u{2028}', '\u{feff}', '\u{fffd}', '\u{10ffff}',
        ]),
        2 => prop::char::range('a', 'z'),
    ]
    .prop_filter("no NUL", |c| *c != '\0');
    vec(character, 0..10).prop_map(|chars| chars.into_iter().collect())
}

fn any_string_literal() -> impl Strategy<Value = String> {
    let escaping = prop::sample::select(vec![
        Escaping::Minimal,
        Escaping::NonAscii,
        Escaping::Everything,
    ]);
    (any_text(), escaping).prop_map(|(text, escaping)| string_literal(&text, escaping))
}

/// `{"k": v, ...}` from member strategies, as text.
fn object_text(values: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    vec((any_string_literal(), values), 0..5).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!("{{{}}}", members.join(", "))
    })
}

/// Any JSON value, as text: nested objects and arrays of numbers of every
/// kind, strings with escapes, booleans and null.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        1 => Just("null".to_owned()),
        1 => Just("true".to_owned()),
        1 => Just("false".to_owned()),
        3 => exact_number_literal(),
        2 => exponent_literal(),
        3 => any_string_literal(),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(|items| format!("[{}]", items.join(",\n "))),
            object_text(inner),
        ]
    })
}

fn parsed(text: &str) -> Result<Value, TestCaseError> {
    serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))
}

/// One case: a workflow created with `state`, advanced with a patch of new
/// keys (`added`, one exact and one exponent literal) and `detail`, read back.
async fn round_trip(
    app: &TestApp,
    raw: &reqwest::Client,
    state: String,
    added: Vec<String>,
    exact: String,
    exponent: String,
    detail: String,
) -> Result<(), TestCaseError> {
    let json_body = |text: String| Body::Raw {
        content_type: Some("application/json"),
        bytes: text.into_bytes(),
    };
    let create = format!(
        r#"{{"customer_id": "{}", "workflow_type": "rent_arrears", "workflow_state": {state}}}"#,
        Uuid::new_v4()
    );
    let r = app
        .request(
            Method::POST,
            &app.agent.workflows(),
            Some(&app.agent.key),
            json_body(create),
            &[],
        )
        .await;
    prop_assert_eq!(r.status, 201, "{}", r.body);
    let mut expected = parsed(&state)?;
    prop_assert_eq!(&r.body["workflow_state"], &expected, "as created");
    let id = r.body["id"].as_str().unwrap_or_default().to_owned();

    let mut patch: Vec<String> = added
        .iter()
        .enumerate()
        .map(|(i, value)| format!(r#""added {i}": {value}"#))
        .collect();
    patch.push(format!(r#""exact_number": {exact}"#));
    patch.push(format!(r#""exponent": {exponent}"#));
    let patch = format!("{{{}}}", patch.join(", "));
    let advance = format!(
        r#"{{"action": "recorded", "action_detail": {detail}, "workflow_state": {patch}}}"#
    );
    let r = app
        .request(
            Method::PATCH,
            &app.agent.workflow(&id),
            Some(&app.agent.key),
            json_body(advance),
            &[],
        )
        .await;
    prop_assert_eq!(r.status, 200, "{}", r.body);
    merge_patch(&mut expected, &parsed(&patch)?);
    prop_assert_eq!(&r.body["workflow_state"], &expected, "as advanced");

    let r = app.get(&app.agent, &id).await;
    prop_assert_eq!(r.status, 200, "{}", r.body);
    let state = &r.body["workflow_state"];
    // Numbers compare by their text (arbitrary_precision); the rendering
    // also compares key order.
    prop_assert_eq!(state, &expected, "as read");
    prop_assert_eq!(state.to_string(), expected.to_string(), "in the same order");
    prop_assert_eq!(&r.body["history"][1]["action_detail"], &parsed(&detail)?);

    // And in the answer's own bytes, not through a client's parser.
    let text = raw
        .get(format!("{}{}", app.base_url, app.agent.workflow(&id)))
        .bearer_auth(&app.agent.key)
        .send()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .text()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (key, literal) in [
        ("exact_number", exact.clone()),
        ("exponent", as_written_back(&exponent)),
    ] {
        let member = format!(r#""{key}":{literal}"#);
        prop_assert!(
            text.contains(&format!("{member},")) || text.contains(&format!("{member}}}")),
            "{} not in {}",
            member,
            text
        );
    }
    Ok(())
}

#[test]
fn agent_json_comes_back_exactly_as_it_was_sent() {
    let runtime = Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let raw = reqwest::Client::new();
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let case = (
        object_text(json_text()),
        vec(json_text(), 1..4),
        exact_number_literal(),
        exponent_literal(),
        json_text(),
    );
    proptest!(config, |((state, added, exact, exponent, detail) in case)| {
        runtime.block_on(round_trip(&app, &raw, state, added, exact, exponent, detail))?;
    });
}

/// The literals the property's raw comparison relies on, checked against
/// serde_json itself.
#[test]
fn exponents_are_written_back_with_a_lowercase_e_and_a_sign() {
    for (sent, back) in [
        ("1e2", "1e+2"),
        ("2.5E-7", "2.5e-7"),
        ("-1E+400", "-1e+400"),
        ("12345678901234567890123", "12345678901234567890123"),
        ("-0.0", "-0.0"),
    ] {
        assert_eq!(as_written_back(sent), back);
        let value: Value = serde_json::from_str(sent).unwrap();
        assert_eq!(value.to_string(), back);
    }
    assert_eq!(
        string_literal("é😀\n\"/", Escaping::Everything),
        r#""\u00E9\uD83D\uDE00\u000A\u0022\u002F""#
    );
    let decoded: Value =
        serde_json::from_str(&string_literal("é😀\n\"/\u{1}", Escaping::NonAscii)).unwrap();
    assert_eq!(decoded, json!("é😀\n\"/\u{1}"));
}
