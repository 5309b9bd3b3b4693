//! Bulk loading straight into the schema (after the backend's own
//! migrations): SQLite in big transactions of multi-row INSERTs,
//! PostgreSQL with `INSERT ... SELECT FROM unnest(...)` batches.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteSynchronous};
use sqlx::{Connection, Executor, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use crate::db::is_postgres;

/// A raw connection to the benchmark database, for seeding and sampling.
pub enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Db {
    /// Connects for bulk work: durability relaxed for this connection only
    /// (SQLite `synchronous=OFF`, PostgreSQL `synchronous_commit=off`).
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if is_postgres(url) {
            let mut conn = PgConnection::connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            conn.execute("SET synchronous_commit = off").await?;
            return Ok(Db::Postgres(conn));
        }
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite:{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .synchronous(SqliteSynchronous::Off)
            .busy_timeout(Duration::from_secs(30));
        let conn = SqliteConnection::connect_with(&options)
            .await
            .context("opening the SQLite database")?;
        Ok(Db::Sqlite(conn))
    }

    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(c) => c.close().await?,
            Db::Postgres(c) => c.close().await?,
        }
        Ok(())
    }
}

/// How seeded workflows are shaped.
#[derive(Debug, Clone)]
pub struct Shape {
    pub tenant_id: Uuid,
    pub instances: Vec<Uuid>,
    pub workflows: u64,
    /// Share of `active` workflows, 0..=1 (when `active_per_instance` is unset).
    pub active_share: f64,
    /// Exactly this many `active` workflows per instance, spread evenly
    /// through time.
    pub active_per_instance: Option<u64>,
    /// Rows per INSERT statement.
    pub batch: usize,
    /// Rows per transaction (SQLite).
    pub transaction_rows: usize,
}

/// Statuses of the non-active rest, in rotation (terminal ones get
/// `completed_at`, suspended ones a step).
const OTHER_STATUSES: [&str; 6] = [
    "completed",
    "suspended",
    "awaiting_approval",
    "completed",
    "paused",
    "cancelled",
];
const TYPES: [&str; 5] = [
    "rent_arrears",
    "maintenance",
    "viewing",
    "lead",
    "invoice_chase",
];

struct SeedRow {
    id: Uuid,
    instance_id: Uuid,
    customer_id: Uuid,
    workflow_type: &'static str,
    status: &'static str,
    title: String,
    reference: String,
    created_at: DateTime<Utc>,
}

impl SeedRow {
    fn terminal(&self) -> bool {
        matches!(
            self.status,
            "completed" | "cancelled" | "failed" | "expired"
        )
    }
}

/// Whether row `j` (0-based) of `per` rows of one instance is active.
fn is_active(j: u64, per: u64, shape: &Shape) -> bool {
    match shape.active_per_instance {
        Some(m) => {
            let m = u128::from(m.min(per));
            let (j, per) = (u128::from(j), u128::from(per.max(1)));
            (j + 1) * m / per > j * m / per
        }
        None => {
            // A fixed pseudo-random permutation of 0..100.
            let bucket = (j.wrapping_mul(7919)) % 100;
            (bucket as f64) < shape.active_share * 100.0
        }
    }
}

/// A time-ordered (v7) id for `at`.
pub fn v7_at(at: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, at.timestamp_subsec_nanos());
    Uuid::new_v7(ts)
}

fn rows(shape: &Shape, from: u64, to: u64, start: DateTime<Utc>, step_us: i64) -> Vec<SeedRow> {
    let n_instances = shape.instances.len().max(1) as u64;
    (from..to)
        .map(|i| {
            let instance = (i % n_instances) as usize;
            let j = i / n_instances;
            // Rows of instance k: j = 0 .. ceil((N - k) / n).
            let per = (shape.workflows + n_instances - 1 - instance as u64) / n_instances;
            let status = if is_active(j, per, shape) {
                "active"
            } else {
                OTHER_STATUSES[(j % OTHER_STATUSES.len() as u64) as usize]
            };
            let created_at =
                start + chrono::Duration::microseconds(step_us.saturating_mul(i as i64));
            SeedRow {
                id: v7_at(created_at),
                instance_id: shape.instances[instance],
                customer_id: Uuid::new_v4(),
                workflow_type: TYPES[(i % TYPES.len() as u64) as usize],
                status,
                title: format!("Seeded workflow {i}"),
                reference: format!("SEED-{i:08}"),
                created_at,
            }
        })
        .collect()
}

/// Loads `shape.workflows` workflows, each with its one `created` history
/// entry, spread over the last 30 days. Returns how long it took.
pub async fn seed(db: &mut Db, shape: &Shape) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let span_us: i64 = 30 * 24 * 3600 * 1_000_000;
    let start = Utc::now() - chrono::Duration::microseconds(span_us);
    let step_us = (span_us / i64::try_from(shape.workflows.max(1))?).max(1);
    let batch = shape.batch.max(1) as u64;
    let per_tx = (shape.transaction_rows.max(shape.batch.max(1)) as u64 / batch).max(1) * batch;
    let mut done = 0u64;
    let mut last_report = Instant::now();
    while done < shape.workflows {
        let tx_end = (done + per_tx).min(shape.workflows);
        match db {
            Db::Sqlite(conn) => {
                let mut tx = conn.begin().await?;
                let mut from = done;
                while from < tx_end {
                    let to = (from + batch).min(tx_end);
                    let rows = rows(shape, from, to, start, step_us);
                    sqlite_insert(&mut tx, shape.tenant_id, &rows).await?;
                    from = to;
                }
                tx.commit().await?;
            }
            Db::Postgres(conn) => {
                let mut tx = conn.begin().await?;
                let mut from = done;
                while from < tx_end {
                    let to = (from + batch).min(tx_end);
                    let rows = rows(shape, from, to, start, step_us);
                    postgres_insert(&mut tx, shape.tenant_id, &rows).await?;
                    from = to;
                }
                tx.commit().await?;
            }
        }
        done = tx_end;
        if last_report.elapsed() >= Duration::from_secs(5) {
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "  {done} / {} workflows ({rate:.0} rows/s)",
                shape.workflows
            );
            last_report = Instant::now();
        }
    }
    if let Db::Postgres(conn) = db {
        conn.execute("ANALYZE workflows").await?;
        conn.execute("ANALYZE workflow_history").await?;
    } else if let Db::Sqlite(conn) = db {
        conn.execute("ANALYZE").await?;
    }
    Ok(started.elapsed())
}

async fn sqlite_insert(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    rows: &[SeedRow],
) -> anyhow::Result<()> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, status, \
         stage, title, reference, escalation_level, workflow_state, suspended_step, suspended_at, \
         created_at, updated_at, completed_at, version) ",
    );
    q.push_values(rows, |mut b, r| {
        let at = r.created_at.timestamp_micros();
        let suspended = r.status == "suspended";
        b.push_bind(r.id)
            .push_bind(tenant_id)
            .push_bind(r.instance_id)
            .push_bind(r.customer_id)
            .push_bind(r.workflow_type)
            .push_bind(r.status)
            .push("'intake'")
            .push_bind(&r.title)
            .push_bind(&r.reference)
            .push("0")
            .push("'{\"amount_due\":1200,\"currency\":\"GBP\"}'")
            .push_bind(suspended.then_some("approve_payment_plan"))
            .push_bind(suspended.then_some(at))
            .push_bind(at)
            .push_bind(at)
            .push_bind(r.terminal().then_some(at))
            .push("1");
    });
    q.build().execute(&mut *conn).await?;
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail, \
         actor, from_status, to_status, from_stage, to_stage, entry) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(tenant_id)
            .push_bind(r.id)
            .push("1")
            .push_bind(r.created_at.timestamp_micros())
            .push("'created'")
            .push("NULL")
            .push_bind(format!("instance:{}", r.instance_id))
            .push("NULL")
            .push("'active'")
            .push("NULL")
            .push("'intake'")
            .push_bind(created_entry(r));
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

async fn postgres_insert(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    rows: &[SeedRow],
) -> anyhow::Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let instances: Vec<Uuid> = rows.iter().map(|r| r.instance_id).collect();
    let customers: Vec<Uuid> = rows.iter().map(|r| r.customer_id).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.workflow_type).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let titles: Vec<&str> = rows.iter().map(|r| r.title.as_str()).collect();
    let references: Vec<&str> = rows.iter().map(|r| r.reference.as_str()).collect();
    let ats: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    sqlx::query(
        "INSERT INTO workflows (tenant_id, id, instance_id, customer_id, workflow_type, status, \
         stage, title, reference, escalation_level, workflow_state, suspended_step, suspended_at, \
         created_at, updated_at, completed_at, version) \
         SELECT $1, u.id, u.instance_id, u.customer_id, u.workflow_type, u.status, 'intake', \
                u.title, u.reference, 0, '{\"amount_due\": 1200, \"currency\": \"GBP\"}'::jsonb, \
                CASE WHEN u.status = 'suspended' THEN 'approve_payment_plan' END, \
                CASE WHEN u.status = 'suspended' THEN u.at END, u.at, u.at, \
                CASE WHEN u.status IN ('completed', 'cancelled', 'failed', 'expired') THEN u.at END, \
                1 \
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], \
                     $8::text[], $9::timestamptz[]) \
              AS u(id, instance_id, customer_id, workflow_type, status, title, reference, at)",
    )
    .bind(tenant_id)
    .bind(&ids)
    .bind(&instances)
    .bind(&customers)
    .bind(&types)
    .bind(&statuses)
    .bind(&titles)
    .bind(&references)
    .bind(&ats)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail, \
         actor, from_status, to_status, from_stage, to_stage, entry) \
         SELECT $1, u.id, 1, u.at, 'created', NULL, 'instance:' || u.instance_id, NULL, \
                'active', NULL, 'intake', u.entry \
         FROM unnest($2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[]) \
              AS u(id, instance_id, at, entry)",
    )
    .bind(tenant_id)
    .bind(&ids)
    .bind(&instances)
    .bind(&ats)
    .bind(rows.iter().map(created_entry).collect::<Vec<String>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored rendering of a seeded workflow's `created` entry: what the
/// service writes (and answers) for it.
fn created_entry(r: &SeedRow) -> String {
    let entry = hydracore_domain::HistoryEntry {
        seq: 1,
        at: hydracore_domain::Timestamp::new(r.created_at)
            .unwrap_or_else(hydracore_domain::Timestamp::now),
        action: "created".into(),
        action_detail: serde_json::Value::Null,
        actor: Some(format!("instance:{}", r.instance_id)),
        from_status: None,
        to_status: Some(hydracore_domain::Status::Active),
        from_stage: None,
        to_stage: Some("intake".into()),
    };
    serde_json::to_string(&entry).unwrap_or_default()
}

/// A new active workflow whose history already holds `entries` entries
/// (one `created`, then advances), with `version` to match,
/// as if it had been advanced `entries - 1` times, a year ago.
pub async fn long_history_workflow(
    db: &mut Db,
    tenant_id: Uuid,
    instance_id: Uuid,
    entries: i64,
) -> anyhow::Result<Uuid> {
    let entries = entries.max(1);
    // A year back, older than any seeded row: it counts in the lists' totals
    // but never lands on their first page, where its history would be
    // serialised into every list answer.
    let start = Utc::now() - chrono::Duration::days(365);
    let id = v7_at(start);
    let actor = format!("instance:{instance_id}");
    match db {
        Db::Sqlite(conn) => {
            let mut tx = conn.begin().await?;
            let at = start.timestamp_micros();
            sqlx::query(
                "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, \
                 status, stage, title, escalation_level, workflow_state, created_at, updated_at, \
                 last_action_at, version) \
                 VALUES (?1, ?2, ?3, ?4, 'rent_arrears', 'active', 'chasing', 'Long history', 0, \
                 '{\"amount_due\":1200}', ?5, ?6, ?6, ?7)",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(instance_id)
            .bind(Uuid::new_v4())
            .bind(at)
            .bind(at + entries * 1000)
            .bind(entries)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, \
                 action_detail, actor, from_status, to_status, from_stage, to_stage, entry) \
                 WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?4), \
                 e AS (SELECT n, ?3 + n * 1000 AS at, \
                        CASE n WHEN 1 THEN 'created' ELSE 'contacted' END AS action, \
                        CASE n WHEN 1 THEN NULL ELSE '{\"channel\":\"sms\",\"attempt\":' || n || '}' END AS detail, \
                        CASE n WHEN 1 THEN NULL ELSE 'active' END AS from_status, \
                        CASE n WHEN 1 THEN NULL ELSE 'chasing' END AS from_stage FROM s) \
                 SELECT ?1, ?2, n, at, action, detail, ?5, from_status, 'active', from_stage, 'chasing', \
                        json_object('seq', n, 'at', strftime('%Y-%m-%dT%H:%M:%S', at / 1000000, 'unixepoch') \
                          || printf('.%06dZ', at % 1000000), 'action', action, 'action_detail', json(detail), \
                          'actor', ?5, 'from_status', from_status, 'to_status', 'active', \
                          'from_stage', from_stage, 'to_stage', 'chasing') \
                 FROM e",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(at)
            .bind(entries)
            .bind(&actor)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Db::Postgres(conn) => {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO workflows (tenant_id, id, instance_id, customer_id, workflow_type, \
                 status, stage, title, escalation_level, workflow_state, created_at, updated_at, \
                 last_action_at, version) \
                 VALUES ($1, $2, $3, $4, 'rent_arrears', 'active', 'chasing', 'Long history', 0, \
                 '{\"amount_due\": 1200}', $5, $5 + $6::float8 * interval '1 ms', \
                 $5 + $6::float8 * interval '1 ms', $6)",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(instance_id)
            .bind(Uuid::new_v4())
            .bind(start)
            .bind(entries)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, \
                 action_detail, actor, from_status, to_status, from_stage, to_stage, entry) \
                 SELECT $1, $2, n, at, action, detail, $5, from_status, 'active', from_stage, 'chasing', \
                        json_build_object('seq', n, \
                          'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
                          'action', action, 'action_detail', detail, 'actor', $5, \
                          'from_status', from_status, 'to_status', 'active', \
                          'from_stage', from_stage, 'to_stage', 'chasing')::text \
                 FROM (SELECT n, $3 + n::float8 * interval '1 ms' AS at, \
                        CASE n WHEN 1 THEN 'created' ELSE 'contacted' END AS action, \
                        CASE n WHEN 1 THEN NULL \
                             ELSE jsonb_build_object('channel', 'sms', 'attempt', n) END AS detail, \
                        CASE n WHEN 1 THEN NULL ELSE 'active' END AS from_status, \
                        CASE n WHEN 1 THEN NULL ELSE 'chasing' END AS from_stage \
                       FROM generate_series(1::bigint, $4::bigint) AS n) AS e",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(start)
            .bind(entries)
            .bind(&actor)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    Ok(id)
}

/// Refreshes PostgreSQL's planner statistics of `url` (nothing to do for
/// SQLite, whose planner needs none).
pub async fn analyze(url: &str) -> anyhow::Result<()> {
    if is_postgres(url) {
        let mut conn = PgConnection::connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        conn.execute("ANALYZE").await?;
        conn.close().await?;
    }
    Ok(())
}

/// Up to `n` random workflow ids of an instance.
pub async fn sample_ids(db: &mut Db, instance_id: Uuid, n: i64) -> anyhow::Result<Vec<Uuid>> {
    let ids = match db {
        Db::Sqlite(conn) => {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT id FROM workflows WHERE instance_id = ?1 ORDER BY random() LIMIT ?2",
            )
            .bind(instance_id)
            .bind(n)
            .fetch_all(&mut *conn)
            .await?
        }
        Db::Postgres(conn) => {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT id FROM workflows WHERE instance_id = $1 ORDER BY random() LIMIT $2",
            )
            .bind(instance_id)
            .bind(n)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    Ok(ids)
}

/// The instance with the most workflows: `(instance, tenant, count)`.
pub async fn largest_instance(db: &mut Db) -> anyhow::Result<Option<(Uuid, Uuid, i64)>> {
    const SQL: &str = "SELECT instance_id, tenant_id, count(*) AS n FROM workflows \
                       GROUP BY instance_id, tenant_id ORDER BY n DESC LIMIT 1";
    let row = match db {
        Db::Sqlite(conn) => sqlx::query(SQL)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()?,
        Db::Postgres(conn) => sqlx::query(SQL)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()?,
    };
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(workflows: u64, instances: usize, active: Option<u64>) -> Shape {
        Shape {
            tenant_id: Uuid::new_v4(),
            instances: (0..instances).map(|_| Uuid::new_v4()).collect(),
            workflows,
            active_share: 0.7,
            active_per_instance: active,
            batch: 100,
            transaction_rows: 1000,
        }
    }

    #[test]
    fn the_active_share_and_the_exact_active_count_are_kept() {
        let s = shape(10_000, 1, None);
        let first = rows(&s, 0, 10_000, Utc::now(), 1);
        let active = first.iter().filter(|r| r.status == "active").count();
        assert_eq!(active, 7_000);

        let s = shape(10_001, 3, Some(400));
        let second = rows(&s, 0, 10_001, Utc::now(), 1);
        for instance in &s.instances {
            let active = second
                .iter()
                .filter(|r| r.instance_id == *instance && r.status == "active")
                .count();
            assert_eq!(active, 400);
        }
    }

    #[tokio::test]
    async fn sqlite_seeding_loads_rows_that_the_store_reads_back() {
        use hydracore_domain::{Scope, Status};
        use hydracore_storage::{StoreOptions, WithHistory};

        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite:{}", dir.path().join("seed.db").display());
        let store = hydracore_storage::connect(&url, &StoreOptions::default())
            .await
            .expect("store");
        let tenant = Uuid::new_v4();
        let instance = hydracore::provision::create_instance(store.as_ref(), tenant, None)
            .await
            .expect("instance");
        let mut db = Db::connect(&url).await.expect("db");
        let mut s = shape(2_500, 1, None);
        s.tenant_id = tenant;
        s.instances = vec![instance.id];
        seed(&mut db, &s).await.expect("seed");
        let long = long_history_workflow(&mut db, tenant, instance.id, 50)
            .await
            .expect("long");
        let ids = sample_ids(&mut db, instance.id, 10).await.expect("sample");
        assert_eq!(ids.len(), 10);
        assert_eq!(
            largest_instance(&mut db).await.expect("largest"),
            Some((instance.id, tenant, 2_501))
        );
        db.close().await.expect("close");

        let scope = Scope::instance(tenant, instance.id);
        let seeded = store
            .get_workflow(scope, ids[0], WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(seeded.history.len(), 1);
        let long = store
            .get_workflow(scope, long, WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");
        assert_eq!((long.history.len(), long.version), (50, 50));
        assert_eq!(long.status, Status::Active);
        store.close().await;
    }
}
