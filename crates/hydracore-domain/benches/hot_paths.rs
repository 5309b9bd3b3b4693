//! Criterion benchmarks of the pure functions on every request's path:
//! JSON Merge Patch, request validation, and record serialisation.
//!
//!     cargo bench -p hydracore-domain
//!     cargo bench -p hydracore-domain -- --quick   # a short smoke run

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hydracore_domain::merge::merge_patch;
use hydracore_domain::request::{AdvanceWorkflow, CreateWorkflow};
use hydracore_domain::transition::{self, Command};
use hydracore_domain::{Principal, Timestamp, Workflow};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// A realistic 30-key workflow state: scalars, nested objects and arrays.
fn state_30() -> Value {
    let mut state = Map::new();
    for i in 0..20 {
        state.insert(format!("field_{i:02}"), json!(format!("value {i}")));
    }
    state.insert("amount_due".into(), json!(1200.5));
    state.insert("currency".into(), json!("GBP"));
    state.insert("attempts".into(), json!(3));
    state.insert("opted_in".into(), json!(true));
    state.insert(
        "property".into(),
        json!({"ref": "P-0042", "address": {"line1": "3 Harbour Lane", "city": "Leith", "postcode": "EH6 6QJ"}}),
    );
    state.insert(
        "tenant_contact".into(),
        json!({"name": "A. Tenant", "phone": "+44 7700 900123", "email": "tenant@example.com"}),
    );
    state.insert("contacts".into(), json!(["sms", "email", "call"]));
    state.insert("plan".into(), json!([400, 400, 400]));
    state.insert("notes".into(), json!("Promised to pay on Friday."));
    state.insert(
        "flags".into(),
        json!({"vulnerable": false, "disputed": false}),
    );
    Value::Object(state)
}

/// An advance's typical patch: a few changed keys, one nested, one deleted.
fn patch() -> Value {
    json!({
        "attempts": 4,
        "last_contact": "sms",
        "property": {"address": {"postcode": "EH6 6QK"}},
        "flags": {"disputed": true},
        "notes": null,
    })
}

fn create_body() -> Value {
    json!({
        "customer_id": "160c0c4b-9966-4dc1-a916-8407eb10d74e",
        "workflow_type": "rent_arrears",
        "stage": "intake",
        "title": "Arrears, flat 3",
        "reference": "REF-000042",
        "assigned_to": "agent-7",
        "next_action_at": "2030-01-01T09:00:00Z",
        "workflow_state": {"amount_due": 1200, "currency": "GBP", "contacts": ["sms", "email"]},
    })
}

fn advance_body() -> Value {
    json!({
        "action": "contacted",
        "stage": "chasing",
        "action_detail": {"channel": "sms", "attempt": 2},
        "escalation_level": 1,
        "workflow_state": {"last_contact": "sms", "attempts": 2},
    })
}

/// A workflow with `entries` history entries (one `created`, then
/// advances), built by the domain's own transitions.
fn workflow_with_history(entries: usize) -> Workflow {
    let instance = Uuid::new_v4();
    let create = CreateWorkflow::from_json(&create_body(), instance).expect("valid create");
    let mut workflow = transition::create(
        Uuid::new_v4(),
        Uuid::new_v4(),
        instance,
        create,
        &Principal::Instance(instance),
        Timestamp::now(),
    );
    let mut history = workflow.history.clone();
    let agent = Principal::Instance(instance);
    let advance = Command::Advance(Box::new(
        AdvanceWorkflow::from_json(&advance_body()).expect("valid"),
    ));
    while history.len() < entries {
        let change = transition::apply(workflow, &advance, &agent, None, Timestamp::now())
            .expect("an active workflow advances");
        history.push(change.entry);
        workflow = change.workflow;
    }
    workflow.history = history;
    workflow
}

fn merge(c: &mut Criterion) {
    let state = state_30();
    let patch = patch();
    c.bench_function("merge_patch/30_keys", |b| {
        b.iter_batched(
            || state.clone(),
            |mut target| {
                merge_patch(&mut target, black_box(&patch));
                target
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

fn validation(c: &mut Criterion) {
    let create = create_body();
    let advance = advance_body();
    let instance = Uuid::new_v4();
    c.bench_function("validate/create_workflow", |b| {
        b.iter(|| CreateWorkflow::from_json(black_box(&create), instance))
    });
    c.bench_function("validate/advance_workflow", |b| {
        b.iter(|| AdvanceWorkflow::from_json(black_box(&advance)))
    });
}

/// A record's serialisation, with `N` history entries (`entries/N`).
fn serialisation(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialise_workflow");
    for entries in [1usize, 20, 200] {
        let workflow = workflow_with_history(entries);
        assert_eq!(workflow.history.len(), entries);
        group.bench_with_input(BenchmarkId::new("entries", entries), &workflow, |b, w| {
            b.iter(|| serde_json::to_vec(black_box(w)).expect("serialises"))
        });
    }
    group.finish();
}

criterion_group!(benches, merge, validation, serialisation);
criterion_main!(benches);
