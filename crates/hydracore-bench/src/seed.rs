//! Bulk loading straight into the schema (after the backend's own
//! migrations): SQLite in big transactions of multi-row INSERTs,
//! PostgreSQL with `INSERT ... SELECT FROM unnest(...)` batches.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use uuid::Uuid;

use crate::db::{connect_postgres, is_postgres};

/// A raw connection to the benchmark database, for seeding and sampling.
pub enum Db {
    /// rusqlite is blocking: each call runs on a `spawn_blocking` thread,
    /// which takes the connection for its duration.
    Sqlite(Arc<Mutex<Connection>>),
    Postgres(tokio_postgres::Client),
}

impl Db {
    /// Connects for bulk work: durability relaxed for this connection only
    /// (SQLite `synchronous=OFF`, PostgreSQL `synchronous_commit=off`).
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if is_postgres(url) {
            let client = connect_postgres(url)
                .await
                .context("connecting to PostgreSQL")?;
            client.batch_execute("SET synchronous_commit = off").await?;
            return Ok(Db::Postgres(client));
        }
        let path = sqlite_path(url)?;
        let conn = tokio::task::spawn_blocking(move || open_sqlite(&path))
            .await
            .context("opening the SQLite database")?
            .context("opening the SQLite database")?;
        Ok(Db::Sqlite(Arc::new(Mutex::new(conn))))
    }

    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(conn) => {
                let conn = Arc::into_inner(conn)
                    .context("the SQLite connection is still in use")?
                    .into_inner()
                    .map_err(|_| anyhow!("a SQLite call panicked holding the connection"))?;
                conn.close().map_err(|(_, e)| e)?;
            }
            // Dropping the client ends the session: its task sends the
            // terminate message and finishes.
            Db::Postgres(client) => drop(client),
        }
        Ok(())
    }
}

/// The file `url` names: `sqlite:PATH`, `sqlite://PATH` or a bare path,
/// any `?options` ignored (as the server reads it).
fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    if path.is_empty() || path.contains(":memory:") {
        anyhow::bail!("seeding needs a SQLite file, not {url}");
    }
    Ok(PathBuf::from(path))
}

/// The file is the server's, already created and migrated (in WAL mode):
/// not created here, so that a mistyped path fails instead of seeding a
/// new empty file. Foreign keys are checked as the server's writer checks
/// them; the long busy timeout rides out a running server's checkpoints.
fn open_sqlite(path: &std::path::Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// Runs `f` on the SQLite connection on a blocking thread.
async fn on_sqlite<R, F>(conn: &Arc<Mutex<Connection>>, f: F) -> anyhow::Result<R>
where
    R: Send + 'static,
    F: FnOnce(&mut Connection) -> anyhow::Result<R> + Send + 'static,
{
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        let mut conn = conn
            .lock()
            .map_err(|_| anyhow!("a SQLite call panicked holding the connection"))?;
        f(&mut conn)
    })
    .await
    .context("the SQLite task did not finish")?
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

/// Where rows go in time, and how they are cut into statements and
/// transactions.
#[derive(Debug, Clone, Copy)]
struct Plan {
    start: DateTime<Utc>,
    step_us: i64,
    /// Rows per statement.
    batch: u64,
    /// Rows per transaction: a whole number of batches.
    per_tx: u64,
}

impl Plan {
    /// Spread over the last 30 days.
    fn new(shape: &Shape) -> anyhow::Result<Plan> {
        let span_us: i64 = 30 * 24 * 3600 * 1_000_000;
        let batch = shape.batch.max(1) as u64;
        Ok(Plan {
            start: Utc::now() - chrono::Duration::microseconds(span_us),
            step_us: (span_us / i64::try_from(shape.workflows.max(1))?).max(1),
            batch,
            per_tx: (shape.transaction_rows.max(shape.batch.max(1)) as u64 / batch).max(1) * batch,
        })
    }

    /// The `[from, to)` row ranges of the transactions.
    fn transactions(self, total: u64) -> impl Iterator<Item = (u64, u64)> {
        chunks(0, total, self.per_tx)
    }

    /// The `[from, to)` row ranges of one transaction's statements.
    fn batches(self, from: u64, to: u64) -> impl Iterator<Item = (u64, u64)> {
        chunks(from, to, self.batch)
    }
}

fn chunks(from: u64, to: u64, size: u64) -> impl Iterator<Item = (u64, u64)> {
    (from..to)
        .step_by(usize::try_from(size.max(1)).unwrap_or(usize::MAX))
        .map(move |a| (a, (a + size).min(to)))
}

/// A progress line every few seconds.
struct Progress {
    started: Instant,
    last: Instant,
    total: u64,
}

impl Progress {
    fn new(started: Instant, total: u64) -> Progress {
        Progress {
            started,
            last: Instant::now(),
            total,
        }
    }

    fn done(&mut self, done: u64) {
        if self.last.elapsed() >= Duration::from_secs(5) {
            let rate = done as f64 / self.started.elapsed().as_secs_f64();
            eprintln!("  {done} / {} workflows ({rate:.0} rows/s)", self.total);
            self.last = Instant::now();
        }
    }
}

/// Loads `shape.workflows` workflows, each with its one `created` history
/// entry, spread over the last 30 days. Returns how long it took.
pub async fn seed(db: &mut Db, shape: &Shape) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let plan = Plan::new(shape)?;
    match db {
        Db::Sqlite(conn) => {
            let shape = shape.clone();
            on_sqlite(conn, move |conn| {
                let mut progress = Progress::new(started, shape.workflows);
                for (tx_from, tx_to) in plan.transactions(shape.workflows) {
                    let tx = conn.transaction()?;
                    for (from, to) in plan.batches(tx_from, tx_to) {
                        let rows = rows(&shape, from, to, plan.start, plan.step_us);
                        sqlite_insert(&tx, shape.tenant_id, &rows)?;
                    }
                    tx.commit()?;
                    progress.done(tx_to);
                }
                // No ANALYZE: the server never runs it, so its databases
                // have no sqlite_stat tables. With them, the bundled SQLite
                // (built with STAT4) prepares every statement that compares
                // an indexed column with a parameter again on each run with
                // new values: at a million rows that cut list requests per
                // second to a fifth, a figure no server database would show.
                Ok(())
            })
            .await?;
        }
        Db::Postgres(client) => {
            // Prepared once: each batch then costs one round trip.
            let workflows = client.prepare(POSTGRES_WORKFLOWS).await?;
            let history = client.prepare(POSTGRES_HISTORY).await?;
            let mut progress = Progress::new(started, shape.workflows);
            for (tx_from, tx_to) in plan.transactions(shape.workflows) {
                let tx = client.transaction().await?;
                for (from, to) in plan.batches(tx_from, tx_to) {
                    let rows = rows(shape, from, to, plan.start, plan.step_us);
                    postgres_insert(&tx, (&workflows, &history), shape.tenant_id, &rows).await?;
                }
                tx.commit().await?;
                progress.done(tx_to);
            }
            client
                .batch_execute("ANALYZE workflows; ANALYZE workflow_history")
                .await?;
        }
    }
    Ok(started.elapsed())
}

/// `(?, ?, ...), (?, ?, ...), ...`: `rows` copies of `row`.
fn values(row: &str, rows: usize) -> String {
    let mut sql = String::with_capacity((row.len() + 2) * rows);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql
}

/// The columns of a seeded SQLite row computed rather than borrowed from
/// its [`SeedRow`] (the binds borrow them).
struct SqliteComputed {
    at: i64,
    suspended_step: Option<&'static str>,
    suspended_at: Option<i64>,
    completed_at: Option<i64>,
}

fn sqlite_insert(conn: &Connection, tenant_id: Uuid, rows: &[SeedRow]) -> anyhow::Result<()> {
    let computed: Vec<SqliteComputed> = rows
        .iter()
        .map(|r| {
            let at = r.created_at.timestamp_micros();
            let suspended = r.status == "suspended";
            SqliteComputed {
                at,
                suspended_step: suspended.then_some("approve_payment_plan"),
                suspended_at: suspended.then_some(at),
                completed_at: r.terminal().then_some(at),
            }
        })
        .collect();
    let sql = format!(
        "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, status, \
         stage, title, reference, escalation_level, workflow_state, suspended_step, suspended_at, \
         created_at, updated_at, completed_at, version) VALUES {}",
        values(
            "(?, ?, ?, ?, ?, ?, 'intake', ?, ?, 0, '{\"amount_due\":1200,\"currency\":\"GBP\"}', \
             ?, ?, ?, ?, ?, 1)",
            rows.len()
        )
    );
    let mut binds: Vec<&dyn ToSql> = Vec::with_capacity(rows.len() * 13);
    for (r, c) in rows.iter().zip(&computed) {
        binds.extend([
            &r.id as &dyn ToSql,
            &tenant_id,
            &r.instance_id,
            &r.customer_id,
            &r.workflow_type,
            &r.status,
            &r.title,
            &r.reference,
            &c.suspended_step,
            &c.suspended_at,
            &c.at,
            &c.at,
            &c.completed_at,
        ]);
    }
    // Cached: every full batch is the same statement.
    conn.prepare_cached(&sql)?.execute(binds.as_slice())?;

    let computed: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.created_at.timestamp_micros(),
                format!("instance:{}", r.instance_id),
                created_entry(r),
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail, \
         actor, from_status, to_status, from_stage, to_stage, principal, entry) VALUES {}",
        values(
            "(?, ?, 1, ?, 'created', NULL, ?, NULL, 'active', NULL, 'intake', ?, ?)",
            rows.len()
        )
    );
    let mut binds: Vec<&dyn ToSql> = Vec::with_capacity(rows.len() * 6);
    for (r, (at, actor, entry)) in rows.iter().zip(&computed) {
        // The agent's own key acted: actor and principal are the same.
        binds.extend([&tenant_id as &dyn ToSql, &r.id, at, actor, actor, entry]);
    }
    conn.prepare_cached(&sql)?.execute(binds.as_slice())?;
    Ok(())
}

/// The workflows of a batch, as parallel arrays. `workflow_state` is an
/// untyped literal, which takes the column's type (`json` or `jsonb`).
const POSTGRES_WORKFLOWS: &str = "\
    INSERT INTO workflows (tenant_id, id, instance_id, customer_id, workflow_type, status, \
    stage, title, reference, escalation_level, workflow_state, suspended_step, suspended_at, \
    created_at, updated_at, completed_at, version) \
    SELECT $1::uuid, u.id, u.instance_id, u.customer_id, u.workflow_type, u.status, 'intake', \
           u.title, u.reference, 0, '{\"amount_due\":1200,\"currency\":\"GBP\"}', \
           CASE WHEN u.status = 'suspended' THEN 'approve_payment_plan' END, \
           CASE WHEN u.status = 'suspended' THEN u.at END, u.at, u.at, \
           CASE WHEN u.status IN ('completed', 'cancelled', 'failed', 'expired') THEN u.at END, \
           1 \
    FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], \
                $8::text[], $9::timestamptz[]) \
         AS u(id, instance_id, customer_id, workflow_type, status, title, reference, at)";

/// Their `created` history entries.
const POSTGRES_HISTORY: &str = "\
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail, \
    actor, from_status, to_status, from_stage, to_stage, principal, entry) \
    SELECT $1::uuid, u.id, 1, u.at, 'created', NULL, 'instance:' || u.instance_id, NULL, \
           'active', NULL, 'intake', 'instance:' || u.instance_id, u.entry \
    FROM unnest($2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[]) \
         AS u(id, instance_id, at, entry)";

async fn postgres_insert(
    tx: &tokio_postgres::Transaction<'_>,
    (workflows, history): (&tokio_postgres::Statement, &tokio_postgres::Statement),
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
    tx.execute(
        workflows,
        &[
            &tenant_id,
            &ids,
            &instances,
            &customers,
            &types,
            &statuses,
            &titles,
            &references,
            &ats,
        ],
    )
    .await?;
    let entries: Vec<String> = rows.iter().map(created_entry).collect();
    tx.execute(history, &[&tenant_id, &ids, &instances, &ats, &entries])
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
        principal: Some(format!("instance:{}", r.instance_id)),
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
    let customer_id = Uuid::new_v4();
    match db {
        Db::Sqlite(conn) => {
            on_sqlite(conn, move |conn| {
                let tx = conn.transaction()?;
                let at = start.timestamp_micros();
                tx.execute(
                    "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, \
                     status, stage, title, escalation_level, workflow_state, created_at, updated_at, \
                     last_action_at, version) \
                     VALUES (?1, ?2, ?3, ?4, 'rent_arrears', 'active', 'chasing', 'Long history', 0, \
                     '{\"amount_due\":1200}', ?5, ?6, ?6, ?7)",
                    params![id, tenant_id, instance_id, customer_id, at, at + entries * 1000, entries],
                )?;
                tx.execute(
                    "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, \
                     action_detail, actor, from_status, to_status, from_stage, to_stage, principal, \
                     entry) \
                     WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?4), \
                     e AS (SELECT n, ?3 + n * 1000 AS at, \
                            CASE n WHEN 1 THEN 'created' ELSE 'contacted' END AS action, \
                            CASE n WHEN 1 THEN NULL ELSE '{\"channel\":\"sms\",\"attempt\":' || n || '}' END AS detail, \
                            CASE n WHEN 1 THEN NULL ELSE 'active' END AS from_status, \
                            CASE n WHEN 1 THEN NULL ELSE 'chasing' END AS from_stage FROM s) \
                     SELECT ?1, ?2, n, at, action, detail, ?5, from_status, 'active', from_stage, 'chasing', ?5, \
                            json_object('seq', n, 'at', strftime('%Y-%m-%dT%H:%M:%S', at / 1000000, 'unixepoch') \
                              || printf('.%06dZ', at % 1000000), 'action', action, 'action_detail', json(detail), \
                              'actor', ?5, 'from_status', from_status, 'to_status', 'active', \
                              'from_stage', from_stage, 'to_stage', 'chasing', 'principal', ?5) \
                     FROM e",
                    params![tenant_id, id, at, entries, actor],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        }
        Db::Postgres(client) => {
            let tx = client.transaction().await?;
            let last = start + chrono::Duration::milliseconds(entries);
            // Constant JSON is an untyped literal and built JSON comes from
            // json_build_object: both fit a `json` or `jsonb` column.
            tx.execute(
                "INSERT INTO workflows (tenant_id, id, instance_id, customer_id, workflow_type, \
                 status, stage, title, escalation_level, workflow_state, created_at, updated_at, \
                 last_action_at, version) \
                 VALUES ($1, $2, $3, $4, 'rent_arrears', 'active', 'chasing', 'Long history', 0, \
                 '{\"amount_due\":1200}', $5, $6, $6, $7)",
                &[
                    &tenant_id,
                    &id,
                    &instance_id,
                    &customer_id,
                    &start,
                    &last,
                    &entries,
                ],
            )
            .await?;
            tx.execute(
                "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, \
                 action_detail, actor, from_status, to_status, from_stage, to_stage, principal, \
                 entry) \
                 SELECT $1::uuid, $2::uuid, n, at, action, detail, $5::text, from_status, 'active', \
                        from_stage, 'chasing', $5::text, \
                        json_build_object('seq', n, \
                          'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
                          'action', action, 'action_detail', detail, 'actor', $5::text, \
                          'from_status', from_status, 'to_status', 'active', \
                          'from_stage', from_stage, 'to_stage', 'chasing', \
                          'principal', $5::text)::text \
                 FROM (SELECT n, $3::timestamptz + n::float8 * interval '1 ms' AS at, \
                        CASE n WHEN 1 THEN 'created' ELSE 'contacted' END AS action, \
                        CASE n WHEN 1 THEN NULL \
                             ELSE json_build_object('channel', 'sms', 'attempt', n) END AS detail, \
                        CASE n WHEN 1 THEN NULL ELSE 'active' END AS from_status, \
                        CASE n WHEN 1 THEN NULL ELSE 'chasing' END AS from_stage \
                       FROM generate_series(1::bigint, $4::bigint) AS n) AS e",
                &[&tenant_id, &id, &start, &entries, &actor],
            )
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
        let client = connect_postgres(url)
            .await
            .context("connecting to PostgreSQL")?;
        client.batch_execute("ANALYZE").await?;
    }
    Ok(())
}

/// Up to `n` random workflow ids of an instance.
pub async fn sample_ids(db: &mut Db, instance_id: Uuid, n: i64) -> anyhow::Result<Vec<Uuid>> {
    let ids = match db {
        Db::Sqlite(conn) => {
            on_sqlite(conn, move |conn| {
                let mut statement = conn.prepare(
                    "SELECT id FROM workflows WHERE instance_id = ?1 ORDER BY random() LIMIT ?2",
                )?;
                let ids = statement
                    .query_map(params![instance_id, n], |row| row.get(0))?
                    .collect::<Result<Vec<Uuid>, _>>()?;
                Ok(ids)
            })
            .await?
        }
        Db::Postgres(client) => client
            .query(
                "SELECT id FROM workflows WHERE instance_id = $1 ORDER BY random() LIMIT $2",
                &[&instance_id, &n],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<Uuid>, _>>()?,
    };
    Ok(ids)
}

/// Up to `n` random references of an instance's workflows (seeded ones are
/// distinct: a reference filter then matches one row). With the tenant in
/// the condition, the instance's rows come from an index.
pub async fn sample_references(
    db: &mut Db,
    tenant_id: Uuid,
    instance_id: Uuid,
    n: i64,
) -> anyhow::Result<Vec<String>> {
    const SQLITE: &str = "SELECT reference FROM workflows \
                          WHERE tenant_id = ?1 AND instance_id = ?2 AND reference IS NOT NULL \
                          ORDER BY random() LIMIT ?3";
    const POSTGRES: &str = "SELECT reference FROM workflows \
                            WHERE tenant_id = $1 AND instance_id = $2 AND reference IS NOT NULL \
                            ORDER BY random() LIMIT $3";
    let references = match db {
        Db::Sqlite(conn) => {
            on_sqlite(conn, move |conn| {
                let mut statement = conn.prepare(SQLITE)?;
                let references = statement
                    .query_map(params![tenant_id, instance_id, n], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(references)
            })
            .await?
        }
        Db::Postgres(client) => client
            .query(POSTGRES, &[&tenant_id, &instance_id, &n])
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<String>, _>>()?,
    };
    Ok(references)
}

/// The instance with the most workflows: `(instance, tenant, count)`.
pub async fn largest_instance(db: &mut Db) -> anyhow::Result<Option<(Uuid, Uuid, i64)>> {
    const SQL: &str = "SELECT instance_id, tenant_id, count(*) AS n FROM workflows \
                       GROUP BY instance_id, tenant_id ORDER BY n DESC LIMIT 1";
    let row = match db {
        Db::Sqlite(conn) => {
            on_sqlite(conn, |conn| {
                Ok(conn
                    .query_row(SQL, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?)
            })
            .await?
        }
        Db::Postgres(client) => client
            .query_opt(SQL, &[])
            .await?
            .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()?,
    };
    Ok(row)
}

/// Makes the tenant hold at least `n` suspended decisions, turning its
/// oldest active workflows into them: due times spread over now ± 2 days
/// (about half overdue), 20 assignees. The status triggers keep the
/// per-status counts right; PostgreSQL then vacuums the table. Returns how
/// many the tenant then holds.
pub async fn decisions(db: &mut Db, tenant_id: Uuid, n: i64) -> anyhow::Result<i64> {
    const COUNT_SQLITE: &str =
        "SELECT count(*) FROM workflows WHERE tenant_id = ?1 AND status = 'suspended'";
    const COUNT_POSTGRES: &str =
        "SELECT count(*) FROM workflows WHERE tenant_id = $1 AND status = 'suspended'";
    const DAY_US: i64 = 86_400_000_000;
    let now = Utc::now().timestamp_micros();
    match db {
        Db::Sqlite(conn) => {
            on_sqlite(conn, move |conn| {
                let tx = conn.transaction()?;
                let have: i64 = tx.query_row(COUNT_SQLITE, params![tenant_id], |r| r.get(0))?;
                tx.execute(
                    "UPDATE workflows SET status = 'suspended', \
                     suspended_step = 'approve_payment_plan', \
                     suspend_payload = '{\"plan\":[400,400,400]}', suspended_at = created_at, \
                     assigned_to = printf('user%02d', abs(random()) % 20), \
                     next_action_at = ?2 - 2 * ?3 + abs(random()) % (4 * ?3), \
                     updated_at = ?2, version = version + 1 \
                     WHERE id IN (SELECT id FROM workflows \
                                  WHERE tenant_id = ?1 AND status = 'active' ORDER BY id LIMIT ?4)",
                    params![tenant_id, now, DAY_US, (n - have).max(0)],
                )?;
                let held: i64 = tx.query_row(COUNT_SQLITE, params![tenant_id], |r| r.get(0))?;
                tx.commit()?;
                Ok(held)
            })
            .await
        }
        Db::Postgres(client) => {
            let tx = client.transaction().await?;
            let have: i64 = tx
                .query_one(COUNT_POSTGRES, &[&tenant_id])
                .await?
                .try_get(0)?;
            tx.execute(
                "UPDATE workflows w SET status = 'suspended', \
                 suspended_step = 'approve_payment_plan', \
                 suspend_payload = '{\"plan\":[400,400,400]}', suspended_at = w.created_at, \
                 assigned_to = 'user' || lpad(floor(random() * 20)::int::text, 2, '0'), \
                 next_action_at = now() + (random() * 4 - 2) * interval '1 day', \
                 updated_at = now(), version = w.version + 1 \
                 FROM (SELECT id FROM workflows \
                       WHERE tenant_id = $1 AND status = 'active' ORDER BY id LIMIT $2) pick \
                 WHERE w.tenant_id = $1 AND w.id = pick.id",
                &[&tenant_id, &(n - have).max(0)],
            )
            .await?;
            let held: i64 = tx
                .query_one(COUNT_POSTGRES, &[&tenant_id])
                .await?
                .try_get(0)?;
            tx.commit().await?;
            if held > have {
                // What autovacuum does soon after: fresh statistics, and the
                // visibility map that index-only scans rely on.
                client.batch_execute("VACUUM (ANALYZE) workflows").await?;
            }
            Ok(held)
        }
    }
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

    /// Seeds through this module into the database at `url` (migrated by
    /// the store first, as the bench does), then reads back through the
    /// store.
    async fn seed_and_read_back(url: &str) {
        use hydracore_domain::{Scope, Status};
        use hydracore_storage::{StoreOptions, WithHistory};

        let store = hydracore_storage::connect(url, &StoreOptions::default())
            .await
            .expect("store");
        let tenant = Uuid::new_v4();
        let instance = hydracore::provision::create_instance(store.as_ref(), tenant, None)
            .await
            .expect("instance");
        let mut db = Db::connect(url).await.expect("db");
        let mut s = shape(2_500, 1, None);
        s.tenant_id = tenant;
        s.instances = vec![instance.id];
        seed(&mut db, &s).await.expect("seed");
        let long = long_history_workflow(&mut db, tenant, instance.id, 50)
            .await
            .expect("long");
        let ids = sample_ids(&mut db, instance.id, 10).await.expect("sample");
        assert_eq!(ids.len(), 10);
        let references = sample_references(&mut db, tenant, instance.id, 10)
            .await
            .expect("references");
        assert_eq!(references.len(), 10);
        assert!(references.iter().all(|r| r.starts_with("SEED-")));
        assert_eq!(
            largest_instance(&mut db).await.expect("largest"),
            Some((instance.id, tenant, 2_501))
        );
        db.close().await.expect("close");
        analyze(url).await.expect("analyze");

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
        assert_eq!(
            long.history[1].action_detail,
            serde_json::json!({"channel": "sms", "attempt": 2})
        );
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_seeding_loads_rows_that_the_store_reads_back() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite:{}", dir.path().join("seed.db").display());
        seed_and_read_back(&url).await;
    }

    #[tokio::test]
    async fn postgres_seeding_loads_rows_that_the_store_reads_back() {
        use crate::db::{
            create_postgres_database, drop_postgres_database, with_database,
            DEFAULT_POSTGRES_SERVER,
        };

        if tokio::net::TcpStream::connect("127.0.0.1:5432")
            .await
            .is_err()
        {
            eprintln!(
                "NOTE: no PostgreSQL on 127.0.0.1:5432; skipping the PostgreSQL seeding test"
            );
            return;
        }
        let name = format!("hc_bench_test_{}", Uuid::new_v4().simple());
        create_postgres_database(DEFAULT_POSTGRES_SERVER, &name)
            .await
            .expect("create database");
        let url = with_database(DEFAULT_POSTGRES_SERVER, &name);
        // Dropped even when an assertion fails.
        let outcome = tokio::spawn(async move { seed_and_read_back(&url).await }).await;
        drop_postgres_database(DEFAULT_POSTGRES_SERVER, &name)
            .await
            .expect("drop database");
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
