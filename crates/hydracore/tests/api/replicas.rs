//! Two replicas (the built binary, twice) on one database: what one
//! change, one expiry and one idempotent create look like when both race
//! for it, and that killing one mid-load loses no acknowledged write. On
//! PostgreSQL, directly or through PgBouncer in transaction pooling
//! (`HYDRACORE_TEST_BACKEND=pgbouncer`); SQLite has one replica.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::hydracore_json;
use crate::helpers::{postgres_server, through_pgbouncer, TestDatabase};
use crate::process::ServerProcess;

/// Two servers on one new database, with an instance and its proxy key.
struct TwoReplicas {
    _database: TestDatabase,
    servers: Vec<ServerProcess>,
    instance_id: String,
    key: String,
    client: reqwest::Client,
}

impl TwoReplicas {
    /// `None` on SQLite, after saying so.
    async fn start() -> Option<TwoReplicas> {
        if postgres_server().is_none() {
            println!(
                "NOTE: two replicas need PostgreSQL (HYDRACORE_TEST_BACKEND=postgres or \
                 pgbouncer); skipped"
            );
            return None;
        }
        let (database, db) = TestDatabase::create().await;
        let tenant = Uuid::new_v4().to_string();
        let instance = hydracore_json(&db, &["instances", "create", "--tenant", &tenant]);
        let instance_id = instance["id"].as_str().unwrap().to_owned();
        let key = hydracore_json(&db, &["keys", "create-proxy", "--instance", &instance_id]);
        // Through PgBouncer the replicas LISTEN on the server itself.
        let listen = database.direct_url().filter(|_| through_pgbouncer());
        let mut env = vec![("HYDRACORE_SWEEP_INTERVAL", "50ms")];
        if let Some(listen) = &listen {
            env.push(("HYDRACORE_DB_LISTEN_URL", listen));
        }
        let mut servers = Vec::new();
        for _ in 0..2 {
            servers.push(ServerProcess::start_with(&db, "warn,hydracore::cli=info", &env).await);
        }
        Some(TwoReplicas {
            _database: database,
            servers,
            instance_id,
            key: key["key"].as_str().unwrap().to_owned(),
            client: reqwest::Client::new(),
        })
    }

    /// The workflows route on replica `n`.
    fn workflows(&self, n: usize) -> String {
        format!(
            "{}/internal/v1/instances/{}/workflows",
            self.servers[n].base_url, self.instance_id
        )
    }

    async fn create(&self, n: usize, extra: Value) -> String {
        let mut body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let r = self
            .client
            .post(self.workflows(n))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn get(&self, n: usize, id: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}/{id}", self.workflows(n)))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// How many of workflow `id`'s history entries are `action`.
    async fn entries(&self, id: &str, action: &str) -> usize {
        let (_, w) = self.get(0, id).await;
        w["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resume_raced_on_two_replicas_is_applied_once() {
    let Some(replicas) = TwoReplicas::start().await else {
        return;
    };
    let replicas = Arc::new(replicas);
    for _ in 0..10 {
        let id = replicas.create(0, json!({})).await;
        let suspended = replicas
            .client
            .post(format!("{}/{id}/suspend", replicas.workflows(1)))
            .bearer_auth(&replicas.key)
            .json(&json!({"step": "approve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(suspended.status(), 200);
        let resumes: Vec<_> = (0..8)
            .map(|n| {
                let (replicas, id) = (Arc::clone(&replicas), id.clone());
                tokio::spawn(async move {
                    replicas
                        .client
                        .post(format!("{}/{id}/resume", replicas.workflows(n % 2)))
                        .bearer_auth(&replicas.key)
                        .json(&json!({"resume_data": {"by": n}}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for resume in resumes {
            statuses.push(resume.await.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409], "{id}");
        assert_eq!(replicas.entries(&id, "resumed").await, 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_workflows_are_expired_once_by_two_replicas_sweeping_at_once() {
    let Some(replicas) = TwoReplicas::start().await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            replicas
                .create(n % 2, json!({"expires_at": "2000-01-01T00:00:00Z"}))
                .await,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        loop {
            let (_, w) = replicas.get(0, id).await;
            if w["status"] == "expired" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} was not expired: {w}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Both sweepers keep running meanwhile: none may expire one twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in &ids {
        assert_eq!(replicas.entries(id, "expired").await, 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotent_create_sent_to_two_replicas_at_once_creates_one_workflow() {
    let Some(replicas) = TwoReplicas::start().await else {
        return;
    };
    let replicas = Arc::new(replicas);
    for round in 0..10 {
        let key = format!("race-{round}");
        let body = json!({"customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears"});
        let creates: Vec<_> = (0..8)
            .map(|n| {
                let (replicas, key, body) = (Arc::clone(&replicas), key.clone(), body.clone());
                tokio::spawn(async move {
                    let r = replicas
                        .client
                        .post(replicas.workflows(n % 2))
                        .bearer_auth(&replicas.key)
                        .header("idempotency-key", key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    (status, r.json::<Value>().await.unwrap())
                })
            })
            .collect();
        let mut created = Vec::new();
        for create in creates {
            let (status, body) = create.await.unwrap();
            // A retry that meets the first still in flight is told so.
            match status {
                201 => created.push(body["id"].clone()),
                409 => {}
                other => panic!("{other}: {body}"),
            }
        }
        created.dedup();
        assert_eq!(created.len(), 1, "round {round}: {created:?}");
    }
    let page = replicas
        .client
        .get(format!("{}?per_page=100", replicas.workflows(0)))
        .bearer_auth(&replicas.key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(page["total"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_load_loses_no_acknowledged_write() {
    let Some(replicas) = TwoReplicas::start().await else {
        return;
    };
    let replicas = Arc::new(replicas);
    // Every answered write: a create (version 1) or a change (its version).
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let (replicas, acked, stop) =
                (Arc::clone(&replicas), Arc::clone(&acked), Arc::clone(&stop));
            tokio::spawn(async move {
                let url = replicas.workflows(n % 2);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body =
                        json!({"customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears"});
                    let Ok(r) = replicas
                        .client
                        .post(&url)
                        .bearer_auth(&replicas.key)
                        .json(&body)
                        .send()
                        .await
                    else {
                        // Its replica is gone: nothing more to acknowledge.
                        return;
                    };
                    if r.status() != 201 {
                        continue;
                    }
                    let Ok(w) = r.json::<Value>().await else {
                        return;
                    };
                    let id = w["id"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push((id.clone(), 1));
                    let Ok(r) = replicas
                        .client
                        .patch(format!("{url}/{id}"))
                        .bearer_auth(&replicas.key)
                        .json(&json!({"action": "step"}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if r.status() != 200 {
                        continue;
                    }
                    let Ok(w) = r.json::<Value>().await else {
                        return;
                    };
                    acked
                        .lock()
                        .unwrap()
                        .push((id, w["version"].as_i64().unwrap()));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().unwrap().len();
    replicas.servers[1].signal("-KILL");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(before_kill > 20, "too little load: {before_kill} writes");
    assert!(
        acked.len() > before_kill,
        "the surviving replica kept answering"
    );
    for (id, version) in &acked {
        let (status, w) = replicas.get(0, id).await;
        assert_eq!(status, 200, "acknowledged {id} is missing");
        assert!(
            w["version"].as_i64().unwrap() >= *version,
            "{id}: version {} after an acknowledged {version}",
            w["version"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_waiting_on_one_replica_wakes_at_once_on_the_others_change() {
    let Some(replicas) = TwoReplicas::start().await else {
        return;
    };
    for round in 0..3 {
        let id = replicas.create(0, json!({})).await;
        let waiting = {
            let (client, url, key) = (
                replicas.client.clone(),
                format!("{}/{id}", replicas.workflows(0)),
                replicas.key.clone(),
            );
            tokio::spawn(async move {
                let r = client
                    .get(url)
                    .bearer_auth(key)
                    .header("if-none-match", "\"1\"")
                    .header("prefer", "wait=10")
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), Instant::now())
            })
        };
        // The wait has reached the server before the change is made.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let changed = replicas
            .client
            .patch(format!("{}/{id}", replicas.workflows(1)))
            .bearer_auth(&replicas.key)
            .json(&json!({"action": "step"}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200);
        let acknowledged = Instant::now();
        let (status, woken) = waiting.await.unwrap();
        assert_eq!(status, 200, "round {round}");
        // Polling would take up to a second: the other replica told it.
        let after = woken.saturating_duration_since(acknowledged);
        assert!(
            after < Duration::from_millis(400),
            "round {round}: {after:?}"
        );
    }
}
