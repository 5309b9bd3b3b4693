//! The embedded backend: one SQLite file in WAL mode, driven by rusqlite.
//!
//! Writes go through one thread that owns the write connection
//! ([`writer`]): the writes of this process queue there and are committed
//! in batches with `BEGIN IMMEDIATE`, and a writer in another process (the
//! command line next to a running server) waits on `busy_timeout`. Reads run
//! on reader threads with connections of their own ([`readers`]) and never
//! block on writes, as WAL allows.

mod checkpointer;
mod credentials;
mod idempotency;
mod readers;
mod rows;
mod ui_tokens;
mod webhooks;
mod workflow_writes;
mod workflows;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use hydracore_domain::decision::InboxQuery;
use hydracore_domain::event::{Event, EventId, EventQuery};
use hydracore_domain::idempotency::{Claim, IdempotencyKey};
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{HistoryQuery, ListQuery};
use hydracore_domain::webhook::{Delivery, Webhook, WebhookSecret};
use hydracore_domain::{Scope, Status, Timestamp, Workflow};
use rusqlite::{params, Connection, OpenFlags};
use uuid::Uuid;

use self::readers::Readers;
use self::writer::Writer;

use crate::migrate::{self, Applied};
use crate::webhooks::{AttemptReport, DueDelivery};
use crate::{
    ChangeOutcome, Credential, HistorySlice, InboxCount, InlineHistory, Instance, NewCredential,
    PoolStats, Rule, Store, StoreError, StoreOptions, SweepJob, WithHistory, WorkflowPage,
};

/// How long a write waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: Readers,
    writer: Writer,
    path: PathBuf,
    /// How many of a record's newest history entries it embeds.
    history_inline: InlineHistory,
    history_page_bytes: i32,
}

impl SqliteStore {
    /// Opens `url` (`sqlite:PATH`, `sqlite://PATH` or a bare path), creating
    /// the file and running migrations as needed.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let path = path_of(url)?;
        migrate_file(path.clone()).await?;
        let writer = Writer::start(&path, options.acquire_timeout, options.sqlite_sync)?;
        let reader = Readers::start(
            &path,
            reader_threads(options.max_connections),
            options.acquire_timeout,
        )?;
        Ok(Self {
            reader,
            writer,
            path,
            history_inline: InlineHistory::new(
                options.history_inline,
                options.history_inline_bytes,
            ),
            history_page_bytes: i32::try_from(options.history_page_bytes).unwrap_or(i32::MAX),
        })
    }

    /// Runs the migrations only (they also run on every connect).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate_file(self.path.clone()).await
    }
}

/// Statements kept prepared on each rusqlite connection.
const STATEMENT_CACHE: usize = 64;

/// A rusqlite connection to an existing (migrated, WAL) database, as the
/// writer, the readers and the checkpointer each open theirs. `NO_MUTEX`:
/// each connection is used by one thread only.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Reader threads: `max_connections`, but no more than the CPUs. A read
/// of a local file keeps its CPU busy, so more readers than CPUs only take
/// turns.
fn reader_threads(max_connections: u32) -> u32 {
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    max_connections.clamp(1, cpus.max(1))
}

/// Creates the file if needed, puts it in WAL mode and runs the migrations,
/// on a connection of its own that is closed afterwards.
async fn migrate_file(path: PathBuf) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        let conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        ensure_wal(&conn)?;
        run_migrations(&conn)
    })
    .await
    .map_err(|e| StoreError::Config(format!("the SQLite migrations did not finish: {e}")))?
}

/// Puts the file in WAL mode, once. WAL is a property of the file and
/// stays; asking for it on every connection would need a lock SQLite
/// cannot wait for, and fail with "database is locked" whenever another
/// process (a running server) has the file open.
fn ensure_wal(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    Ok(())
}

/// Applies the pending migrations, each in a transaction of its own that
/// also records it; `BEGIN IMMEDIATE` makes a concurrent migrator (another
/// process starting on the same file) wait, then find nothing to do.
fn run_migrations(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY NOT NULL, \
         name TEXT NOT NULL, checksum BLOB NOT NULL, \
         applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        migrate::TABLE
    ))?;
    loop {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = next_migration(conn);
        match step {
            Ok(true) => conn.execute_batch("COMMIT")?,
            Ok(false) => {
                conn.execute_batch("COMMIT")?;
                return Ok(());
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

/// Applies the first pending migration, if any; `false` when none is left.
fn next_migration(conn: &Connection) -> Result<bool, StoreError> {
    let applied = conn
        .prepare(migrate::SELECT_APPLIED)?
        .query_map([], |row| {
            Ok(Applied {
                version: row.get(0)?,
                checksum: row.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let Some(next) = migrate::next(migrate::SQLITE, &applied)? else {
        return Ok(false);
    };
    conn.execute_batch(next.sql)?;
    conn.execute(
        &format!(
            "INSERT INTO {} (version, name, checksum) VALUES (?1, ?2, ?3)",
            migrate::TABLE
        ),
        params![next.version, next.name, next.checksum()],
    )?;
    Ok(true)
}

/// The file `url` names.
fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    // Options after `?` (as other tools write them) are not ours to honour.
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Config(
            "an in-memory SQLite database cannot be shared by the server's connections; give a file path".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.reader
            .read(|conn| Ok(conn.execute_batch("SELECT 1")?))
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        // The read connections; the writer's one is always open.
        let (in_use, idle) = self.reader.stats();
        PoolStats {
            in_use,
            idle,
            shared: 0,
        }
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        self.reader.read(workflows::count_by_status).await
    }

    async fn insert_workflow(
        &self,
        _scope: Scope,
        workflow: &Workflow,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError> {
        let workflow = workflow.clone();
        let key = idempotency_key.cloned();
        self.writer
            .write(move |conn| {
                workflow_writes::insert(conn, &workflow)?;
                if let Some(key) = key {
                    let (tenant, instance) = (workflow.tenant_id, workflow.instance_id);
                    idempotency::complete(conn, tenant, instance, &key, workflow.id, None)?;
                }
                Ok(())
            })
            .await
    }

    async fn claim_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &IdempotencyKey,
        fingerprint: &[u8],
    ) -> Result<Claim, StoreError> {
        let (tenant_id, key, fingerprint) = (scope.tenant_id, key.clone(), fingerprint.to_vec());
        self.writer
            .write(move |conn| idempotency::claim(conn, tenant_id, instance_id, &key, &fingerprint))
            .await
    }

    async fn complete_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &IdempotencyKey,
        workflow_id: Uuid,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (tenant_id, key, answer) = (scope.tenant_id, key.clone(), answer.clone());
        self.writer
            .write(move |conn| {
                idempotency::complete(
                    conn,
                    tenant_id,
                    instance_id,
                    &key,
                    workflow_id,
                    Some(&answer),
                )
            })
            .await
    }

    async fn release_idempotency_key(
        &self,
        tenant_id: Uuid,
        instance_id: Uuid,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer
            .write(move |conn| idempotency::release(conn, tenant_id, instance_id, &key))
            .await
    }

    async fn due(
        &self,
        job: SweepJob,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Scope, Uuid)>, StoreError> {
        self.reader
            .read(move |conn| workflows::due(conn, job, now, limit))
            .await
    }

    async fn purge_idempotency_keys(&self, limit: u32) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| idempotency::purge(conn, limit))
            .await
    }

    async fn get_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        history: WithHistory,
    ) -> Result<Option<Workflow>, StoreError> {
        let entries = history.inline(self.history_inline);
        self.reader
            .read(move |conn| workflows::get(conn, scope, id, entries))
            .await
    }

    async fn list_workflows(
        &self,
        scope: Scope,
        query: &ListQuery,
    ) -> Result<WorkflowPage, StoreError> {
        let query = query.clone();
        let entries = WithHistory::Yes.inline(self.history_inline);
        self.reader
            .read(move |conn| workflows::list(conn, scope, &query, entries))
            .await
    }

    async fn history_page(
        &self,
        scope: Scope,
        id: Uuid,
        page: HistoryQuery,
    ) -> Result<Option<HistorySlice>, StoreError> {
        let bytes = self.history_page_bytes;
        self.reader
            .read(move |conn| workflows::history_page(conn, scope, id, page, bytes))
            .await
    }

    async fn list_inbox(
        &self,
        scope: Scope,
        query: &InboxQuery,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Workflow>, StoreError> {
        let query = query.clone();
        self.reader
            .read(move |conn| workflows::list_inbox(conn, scope, &query, now, limit))
            .await
    }

    async fn count_inbox(
        &self,
        scope: Scope,
        now: Timestamp,
    ) -> Result<Vec<InboxCount>, StoreError> {
        self.reader
            .read(move |conn| workflows::count_inbox(conn, scope, now))
            .await
    }

    async fn list_events(
        &self,
        scope: Scope,
        query: &EventQuery,
    ) -> Result<Option<Vec<Event>>, StoreError> {
        let query = query.clone();
        self.reader
            .read(move |conn| {
                // One read transaction: the purge mark and the page agree.
                let tx = conn.unchecked_transaction()?;
                let purged = workflows::events_purged_through(&tx)?;
                if purged.is_some_and(|purged| query.after.unwrap_or_default() < purged) {
                    return Ok(None);
                }
                let events = workflows::list_events(&tx, scope, &query)?;
                tx.commit()?;
                Ok(Some(events))
            })
            .await
    }

    async fn events_now(&self, tenant_id: Uuid) -> Result<Option<EventId>, StoreError> {
        self.reader
            .read(move |conn| {
                let tx = conn.unchecked_transaction()?;
                let purged = workflows::events_purged_through(&tx)?;
                Ok(workflows::newest_event(&tx, tenant_id)?.max(purged))
            })
            .await
    }

    async fn purge_events(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| workflows::purge_events(conn, before, limit))
            .await
    }

    async fn list_suspended(
        &self,
        scope: Scope,
        limit: u32,
    ) -> Result<Vec<SuspendedWorkflow>, StoreError> {
        self.reader
            .read(move |conn| workflows::list_suspended(conn, scope, limit))
            .await
    }

    async fn change_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        rule: Rule,
        history: WithHistory,
    ) -> Result<ChangeOutcome, StoreError> {
        let mut outcome = self
            .writer
            .write(move |conn| workflow_writes::change(conn, scope, id, rule.as_ref()))
            .await?;
        if let (ChangeOutcome::Changed(change), WithHistory::Yes) = (&mut outcome, history) {
            let (tenant, version) = (scope.tenant_id, change.workflow.version);
            let entries = history.inline(self.history_inline);
            change.workflow.history = self
                .reader
                .read(move |conn| workflows::history_of(conn, tenant, id, version, entries))
                .await?;
        }
        Ok(outcome)
    }

    async fn create_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        let instance = instance.clone();
        self.writer
            .write(move |conn| credentials::insert_instance(conn, &instance))
            .await
    }

    async fn get_instance(&self, id: Uuid) -> Result<Option<Instance>, StoreError> {
        let mut found = self
            .reader
            .read(move |conn| credentials::list_instances(conn, Some(id)))
            .await?;
        Ok(found.pop())
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        self.reader
            .read(|conn| credentials::list_instances(conn, None))
            .await
    }

    async fn create_credential(&self, credential: &NewCredential) -> Result<(), StoreError> {
        let credential = credential.clone();
        self.writer
            .write(move |conn| credentials::insert_credential(conn, &credential))
            .await
    }

    async fn find_credential(&self, key_hash: &[u8]) -> Result<Option<Credential>, StoreError> {
        let key_hash = key_hash.to_vec();
        self.reader
            .read(move |conn| credentials::find_credential(conn, &key_hash))
            .await
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>, StoreError> {
        self.reader.read(credentials::list_credentials).await
    }

    async fn revoke_credential(&self, id: Uuid) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| credentials::revoke_credential(conn, id))
            .await
    }

    async fn insert_webhook(
        &self,
        scope: Scope,
        webhook: &Webhook,
        secret: &WebhookSecret,
        max_per_tenant: u32,
    ) -> Result<bool, StoreError> {
        let (webhook, secret) = (webhook.clone(), secret.clone());
        self.writer
            .write(move |conn| webhooks::insert(conn, scope, &webhook, &secret, max_per_tenant))
            .await
    }

    async fn get_webhook(&self, scope: Scope, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        self.reader
            .read(move |conn| webhooks::get(conn, scope, id))
            .await
    }

    async fn list_webhooks(&self, scope: Scope) -> Result<Vec<Webhook>, StoreError> {
        self.reader
            .read(move |conn| webhooks::list(conn, scope))
            .await
    }

    async fn update_webhook(&self, scope: Scope, webhook: &Webhook) -> Result<bool, StoreError> {
        let webhook = webhook.clone();
        self.writer
            .write(move |conn| webhooks::update(conn, scope, &webhook))
            .await
    }

    async fn delete_webhook(&self, scope: Scope, id: Uuid) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| webhooks::delete(conn, scope, id))
            .await
    }

    async fn set_webhook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &WebhookSecret,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let secret = secret.clone();
        self.writer
            .write(move |conn| webhooks::set_secret(conn, scope, id, &secret, now))
            .await
    }

    async fn list_deliveries(
        &self,
        scope: Scope,
        webhook_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.reader
            .read(move |conn| webhooks::list_deliveries(conn, scope, webhook_id, limit))
            .await
    }

    async fn retry_delivery(
        &self,
        scope: Scope,
        webhook_id: Uuid,
        delivery_id: Uuid,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError> {
        self.writer
            .write(move |conn| webhooks::retry(conn, scope, webhook_id, delivery_id, now))
            .await
    }

    /// A read first: only an endpoint behind makes a write.
    async fn enqueue_deliveries(&self, limit: u32) -> Result<u64, StoreError> {
        if !self.reader.read(webhooks::any_behind).await? {
            return Ok(0);
        }
        let now = Timestamp::now();
        self.writer
            .write(move |conn| webhooks::enqueue(conn, limit, now))
            .await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        // A read first: only a due delivery makes a write.
        if limit == 0 || !self.reader.read(move |c| webhooks::any_due(c, now)).await? {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |conn| webhooks::claim(conn, now, lease_until, limit))
            .await
    }

    async fn record_attempt(&self, report: &AttemptReport) -> Result<(), StoreError> {
        let report = report.clone();
        self.writer
            .write(move |conn| webhooks::record(conn, &report))
            .await
    }

    async fn purge_deliveries(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| webhooks::purge(conn, before, limit))
            .await
    }

    async fn insert_ui_token(&self, token: &crate::UiToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.writer
            .write(move |conn| ui_tokens::insert(conn, &token))
            .await
    }

    async fn get_ui_token(
        &self,
        scope: Scope,
        hash: &[u8],
    ) -> Result<Option<crate::UiToken>, StoreError> {
        let hash = hash.to_vec();
        self.reader
            .read(move |conn| ui_tokens::get(conn, scope, &hash))
            .await
    }

    async fn end_ui_token(
        &self,
        scope: Scope,
        hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let hash = hash.to_vec();
        self.writer
            .write(move |conn| ui_tokens::end(conn, scope, &hash, now))
            .await
    }

    async fn purge_ui_tokens(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| ui_tokens::purge(conn, before, limit))
            .await
    }
}
