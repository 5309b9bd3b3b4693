//! On a Citus cluster (`HYDRACORE_TEST_BACKEND=citus`): `migrate`
//! distributes the schema by tenant, row-level security holds on every
//! worker, and every request of the API runs on one worker. Elsewhere
//! these tests pass with a note.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::hydracore_json;
use crate::helpers::citus_cluster::{self, connect, ExtraWorker};
use crate::helpers::{backend, Agent, Backend, Body, Credential, TestApp};

fn on_citus() -> bool {
    if backend() == Backend::Citus {
        return true;
    }
    println!("NOTE: Citus tests run with HYDRACORE_TEST_BACKEND=citus; skipped");
    false
}

/// The database name in a URL.
fn database_of(url: &str) -> &str {
    let path = url.rsplit('/').next().unwrap_or_default();
    path.split('?').next().unwrap_or_default()
}

#[tokio::test]
async fn migrate_distributes_every_tenant_table_by_tenant_id_in_one_colocation_group() {
    if !on_citus() {
        return;
    }
    let app = TestApp::spawn().await;
    let coordinator = connect(&app.database_url).await;
    let rows = coordinator
        .query(
            "SELECT logicalrelid::regclass::text, partmethod::text, colocationid, \
                    column_to_column_name(logicalrelid, partkey) \
             FROM pg_dist_partition ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut distributed = Vec::new();
    let mut reference = Vec::new();
    let mut groups = std::collections::BTreeSet::new();
    for row in &rows {
        let (table, method): (String, String) = (row.get(0), row.get(1));
        if method == "h" {
            assert_eq!(
                row.get::<_, Option<String>>(3).as_deref(),
                Some("tenant_id")
            );
            groups.insert(row.get::<_, i32>(2));
            distributed.push(table);
        } else {
            reference.push(table);
        }
    }
    distributed.sort();
    assert_eq!(
        distributed,
        [
            "events",
            "idempotency_keys",
            "instances",
            "ui_tokens",
            "webhook_deliveries",
            "webhook_endpoints",
            "workflow_counts",
            "workflow_history",
            "workflows"
        ]
    );
    assert_eq!(groups.len(), 1, "all co-located: {groups:?}");
    assert_eq!(reference, ["credentials", "events_purged"]);

    // Again, on the distributed database: nothing to do, and it says how.
    let report = hydracore_json(&app.database_url, &["migrate"]);
    assert_eq!(report["migrated"], json!(true));
    assert_eq!(report["distribution"]["workers"], json!(2));
    assert_eq!(report["distribution"]["distributed_by"], json!("tenant_id"));
    assert_eq!(
        report["distribution"]["reference"],
        json!(["credentials", "events_purged"])
    );
}

#[tokio::test]
async fn on_every_worker_a_tenant_sees_only_its_own_rows_and_cannot_write_anothers() {
    if !on_citus() {
        return;
    }
    let app = TestApp::spawn().await;
    let other = app.new_agent(Uuid::new_v4()).await;
    let ours = app.create_workflow(&app.agent).await;
    app.create_workflow(&other).await;
    let coordinator = connect(&app.database_url).await;
    let placements = coordinator
        .query(
            "SELECT table_name::text, shard_name, nodeport FROM citus_shards \
             WHERE table_name IN ('workflows'::regclass, 'workflow_history'::regclass)",
            &[],
        )
        .await
        .unwrap();
    let database = database_of(&app.database_url);
    let cluster = citus_cluster::cluster().await;
    let mut seen = Vec::new();
    for url in cluster.worker_urls(database) {
        let mut worker = connect(&url).await;
        let port: i32 = worker
            .query_one("SELECT current_setting('port')::int", &[])
            .await
            .unwrap()
            .get(0);
        for placement in placements.iter().filter(|p| p.get::<_, i32>(2) == port) {
            let (table, shard): (String, String) = (placement.get(0), placement.get(1));
            let tx = worker.transaction().await.unwrap();
            tx.batch_execute(&format!(
                "SET LOCAL ROLE hydracore_app; SET LOCAL hydracore.tenant_id = '{}'",
                app.agent.tenant_id
            ))
            .await
            .unwrap();
            for row in tx
                .query(&format!("SELECT tenant_id FROM {shard}"), &[])
                .await
                .unwrap()
            {
                let tenant: Uuid = row.get(0);
                assert_eq!(tenant, app.agent.tenant_id, "{table} on port {port}");
                seen.push(table.clone());
            }
            if table == "workflows" {
                let refused = tx
                    .execute(
                        &format!(
                            "UPDATE {shard} SET title = 'taken' WHERE tenant_id = '{}'",
                            other.tenant_id
                        ),
                        &[],
                    )
                    .await
                    .unwrap();
                assert_eq!(refused, 0, "another tenant's rows are not there to change");
            }
            tx.rollback().await.unwrap();
        }
    }
    seen.sort();
    assert_eq!(seen, ["workflow_history", "workflows"], "ours: {ours}");
    // The other tenant's rows are there, for who may see them.
    let all: i64 = coordinator
        .query_one("SELECT count(*) FROM workflows", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(all, 2);
}

/// Every request below would fail if it ran a statement on more than one
/// worker: the database makes such a statement an error, except where the
/// login's own cross-tenant jobs run (kept quiet here).
#[tokio::test]
async fn every_request_of_the_api_runs_each_statement_on_one_worker() {
    if !on_citus() {
        return;
    }
    let quiet = |settings: &mut hydracore::config::Settings| {
        settings.sweep_interval = Duration::from_secs(3600);
        settings.webhooks.poll_interval = Duration::from_secs(3600);
    };
    let mut app = TestApp::spawn_with(quiet).await;
    // From here on, a new connection to this database refuses a statement
    // across workers: a replica started now serves the requests below.
    let name = database_of(&app.database_url).to_owned();
    let probe = connect(&app.database_url).await;
    probe
        .batch_execute(&format!(
            "ALTER DATABASE {name} SET citus.multi_task_query_log_level = 'error'"
        ))
        .await
        .unwrap();
    let probe = connect(&app.database_url).await;
    let multi = probe.query("SELECT count(*) FROM workflows", &[]).await;
    assert!(
        multi.is_err_and(|e| format!("{e:?}").contains("multi-task query")),
        "a statement across workers is refused"
    );
    let mut settings =
        hydracore::config::Settings::for_tests(&app.database_url, crate::helpers::JWT_SECRET);
    quiet(&mut settings);
    let replica = hydracore::startup::App::build(&settings).await.unwrap();
    app.base_url = format!("http://{}", replica.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(replica.run(async {
        let _ = stopped.await;
    }));

    let agent = &app.agent;
    let admin = Credential::Bearer(app.admin_jwt(agent.tenant_id, "ann"));
    let ok = |what: &str, status: u16, body: &Value| {
        assert!((200..300).contains(&status), "{what}: {status} {body}");
    };

    let created = app
        .request(
            Method::POST,
            &agent.workflows(),
            Some(&agent.key),
            Body::Json(json!({"customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears"})),
            &[("idempotency-key", "one")],
        )
        .await;
    ok("create", created.status, &created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let second = app.create_workflow(agent).await;

    for (what, r) in [
        ("get", app.get(agent, &id).await),
        ("list", app.list(agent, "").await),
        ("list one status", app.list(agent, "status=active").await),
        (
            "list by type",
            app.list(agent, "workflow_type=rent_arrears").await,
        ),
        (
            "advance",
            app.advance(agent, &id, json!({"action": "called", "stage": "contact"}))
                .await,
        ),
        (
            "suspend",
            app.suspend(
                agent,
                &id,
                json!({"step": "approve", "assigned_to": "managers",
                       "due_at": (chrono::Utc::now() + chrono::Duration::hours(4)).to_rfc3339(),
                       "resume_schema": {"type": "object"}}),
            )
            .await,
        ),
        (
            "history",
            app.request(
                Method::GET,
                &format!("{}/history", agent.workflow(&id)),
                Some(&agent.key),
                Body::None,
                &[],
            )
            .await,
        ),
        (
            "events",
            app.request(
                Method::GET,
                &format!("/internal/v1/instances/{}/events", agent.instance_id),
                Some(&agent.key),
                Body::None,
                &[],
            )
            .await,
        ),
    ] {
        ok(what, r.status, &r.body);
    }

    let webhook = app
        .dashboard(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Body::Json(
                json!({"url": "http://127.0.0.1:9/in", "event_types": ["workflow.completed"]}),
            ),
        )
        .await;
    ok("create a webhook", webhook.status, &webhook.body);
    let webhook_id = webhook.body["id"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (Method::GET, "/v1/workflows".to_owned(), None),
        (
            Method::GET,
            "/v1/workflows?status=suspended".to_owned(),
            None,
        ),
        (Method::GET, "/v1/workflows/suspended".to_owned(), None),
        (Method::GET, format!("/v1/workflows/{id}"), None),
        (Method::GET, format!("/v1/workflows/{id}/history"), None),
        (Method::GET, "/v1/decisions".to_owned(), None),
        (
            Method::GET,
            "/v1/decisions?assigned_to=managers".to_owned(),
            None,
        ),
        (Method::GET, "/v1/decisions/summary".to_owned(), None),
        (Method::GET, "/v1/events".to_owned(), None),
        (Method::GET, "/v1/webhooks".to_owned(), None),
        (Method::GET, format!("/v1/webhooks/{webhook_id}"), None),
        (
            Method::GET,
            format!("/v1/webhooks/{webhook_id}/deliveries"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/workflows/{id}/approval-links"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/workflows/{id}/resume"),
            Some(json!({"resume_data": {"approved": true}})),
        ),
        (
            Method::POST,
            format!("/v1/workflows/{second}/abort"),
            Some(json!({"reason": "duplicate"})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{webhook_id}"), None),
    ] {
        let body = body.map_or(Body::None, Body::Json);
        let r = app.dashboard(method.clone(), &path, &admin, body).await;
        ok(&format!("{method} {path}"), r.status, &r.body);
    }
}

/// Creates and advances workflows of `agent` until `stop`, and says which
/// writes were acknowledged (each workflow's newest acknowledged version)
/// and which answers were not a success.
async fn keep_writing(
    app: Arc<TestApp>,
    agent: Agent,
    stop: Arc<AtomicBool>,
) -> (HashMap<String, i64>, Vec<u16>) {
    let (mut acknowledged, mut failures) = (HashMap::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "viewing"});
        let created = app.create(&agent, body).await;
        if created.status != 201 {
            failures.push(created.status);
            continue;
        }
        let id = created.body["id"].as_str().unwrap().to_owned();
        acknowledged.insert(id.clone(), 1);
        for step in 0..2 {
            let r = app
                .advance(&agent, &id, json!({"action": format!("step {step}")}))
                .await;
            if r.status == 200 {
                acknowledged.insert(id.clone(), r.body["version"].as_i64().unwrap());
            } else {
                failures.push(r.status);
            }
        }
    }
    (acknowledged, failures)
}

/// With writes going on, a third worker joins and the shards rebalance
/// onto it, then one tenant moves to a shard of its own on it: no
/// acknowledged write is lost and no request fails but with a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_grows_a_worker_and_isolates_a_tenant_under_load_without_losing_a_write() {
    if !on_citus() {
        return;
    }
    let app = Arc::new(TestApp::spawn().await);
    let mut agents = vec![app.agent.clone()];
    for _ in 0..5 {
        agents.push(app.new_agent(Uuid::new_v4()).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = agents
        .iter()
        .map(|agent| {
            tokio::spawn(keep_writing(
                Arc::clone(&app),
                agent.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let database = database_of(&app.database_url).to_owned();
    let cluster = citus_cluster::cluster().await;
    let worker = ExtraWorker::start();
    worker.create_database(&database, cluster.user()).await;
    let coordinator = connect(&app.database_url).await;
    coordinator
        .execute("SELECT citus_add_node('127.0.0.1', $1)", &[&worker.port])
        .await
        .unwrap();
    // Moves block writes to the shard they move for a moment: these
    // nodes run with wal_level = replica, which logical moves need more of.
    // Two statements: the background job starts when the first commits.
    coordinator
        .batch_execute("SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')")
        .await
        .unwrap();
    coordinator
        .batch_execute("SELECT citus_rebalance_wait()")
        .await
        .unwrap();
    let on_new: i64 = coordinator
        .query_one(
            "SELECT count(*) FROM citus_shards WHERE nodeport = $1",
            &[&worker.port],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        on_new > 0,
        "the new worker holds shards after the rebalance"
    );

    let big = &agents[0];
    let isolated: i64 = coordinator
        .query_one(
            &format!(
                "SELECT isolate_tenant_to_new_shard('instances', '{}'::uuid, 'CASCADE', \
                 shard_transfer_mode => 'block_writes')",
                big.tenant_id
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let from: i32 = coordinator
        .query_one(
            "SELECT nodeport FROM citus_shards WHERE shardid = $1",
            &[&isolated],
        )
        .await
        .unwrap()
        .get(0);
    if from != worker.port {
        coordinator
            .execute(
                "SELECT citus_move_shard_placement($1, '127.0.0.1', $2, '127.0.0.1', $3, \
                 shard_transfer_mode => 'block_writes')",
                &[&isolated, &from, &worker.port],
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    for (agent, writer) in agents.iter().zip(writers) {
        let (acknowledged, failed) = writer.await.unwrap();
        failures.extend(failed);
        assert!(!acknowledged.is_empty(), "writes went on throughout");
        for (id, version) in acknowledged {
            let r = app.get(agent, &id).await;
            assert_eq!(r.status, 200, "acknowledged workflow {id} is there");
            assert!(r.body["version"].as_i64().unwrap() >= version, "{id}");
        }
    }
    assert!(
        failures.iter().all(|s| *s == 503),
        "only retryable failures: {failures:?}"
    );
    // The isolated tenant is served from its own shard on the new worker.
    let placed: Vec<i32> = coordinator
        .query(
            "SELECT DISTINCT nodeport FROM citus_shards WHERE shardid = $1",
            &[&isolated],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(placed, [worker.port]);
    let id = app.create_workflow(big).await;
    assert_eq!(app.get(big, &id).await.status, 200);
    drop(coordinator);
    drop(app);
}
