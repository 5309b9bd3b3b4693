//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go through one thread that owns the write connection
//! ([`writer`]): the writes of this process queue there and are committed
//! in batches with `BEGIN IMMEDIATE`, and a writer in another process (the
//! command line next to a running server) waits on `busy_timeout`. Reads run
//! on reader threads with connections of their own ([`readers`]) and never
//! block on writes, as WAL allows. Both drive SQLite through rusqlite; sqlx
//! only runs the migrations here.

mod checkpointer;
mod credentials;
mod idempotency;
mod readers;
mod rows;
mod workflow_writes;
mod workflows;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use hydracore_domain::idempotency::{Claim, IdempotencyKey};
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::ListQuery;
use hydracore_domain::transition::{Change, Command};
use hydracore_domain::{Scope, Status, Workflow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use self::readers::Readers;
use self::writer::Writer;

use crate::{
    Credential, Instance, NewCredential, PoolStats, Store, StoreError, StoreOptions, WithHistory,
    WorkflowPage,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a write waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: Readers,
    writer: Writer,
    options: SqliteConnectOptions,
}

impl SqliteStore {
    /// Opens `url` (`sqlite:PATH`, `sqlite://PATH` or a bare path), creating
    /// the file and running migrations as needed.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let connect = connect_options(url)?;
        migrate(&connect).await?;
        let writer = Writer::start(connect.get_filename(), options.acquire_timeout)?;
        let reader = Readers::start(
            connect.get_filename(),
            reader_threads(options.max_connections),
            options.acquire_timeout,
        )?;
        Ok(Self {
            reader,
            writer,
            options: connect,
        })
    }

    /// Runs the migrations only (they also run on every connect).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.options).await
    }
}

/// Statements kept prepared on each rusqlite connection.
const STATEMENT_CACHE: usize = 64;

/// A rusqlite connection to an existing (migrated, WAL) database, as the
/// writer, the readers and the checkpointer each open theirs. `NO_MUTEX`:
/// each connection is used by one thread only.
fn open_connection(path: &std::path::Path) -> Result<rusqlite::Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Reader threads: `max_connections`, but no more than the CPUs. A read
/// of a local file keeps its CPU busy; more readers than CPUs only take
/// turns (on 2 CPUs, 2 readers served 16,078 gets/s with a p99 of 3.9 ms
/// on a million workflows, 8 readers 13,473 with 5.9 ms; docs/benchmarks.md).
fn reader_threads(max_connections: u32) -> u32 {
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    max_connections.clamp(1, cpus.max(1))
}

/// Creates the file if needed, puts it in WAL mode and runs the migrations,
/// on a connection of its own that is closed afterwards.
async fn migrate(options: &SqliteConnectOptions) -> Result<(), StoreError> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let migrated = match ensure_wal(&pool).await {
        Ok(()) => MIGRATOR
            .run(&pool)
            .await
            .map_err(crate::error::migrate_error),
        Err(e) => Err(e),
    };
    pool.close().await;
    migrated
}

/// Puts the file in WAL mode, once. WAL is a property of the file and
/// stays; asking for it on every connection would need a lock SQLite
/// cannot wait for, and fail with "database is locked" whenever another
/// process (a running server) has the file open.
async fn ensure_wal(pool: &SqlitePool) -> Result<(), StoreError> {
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(pool)
            .await?;
    }
    Ok(())
}

fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Config(
            "an in-memory SQLite database cannot be shared by the server's connections; give a file path".into(),
        ));
    }
    let options = if url.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL {url:?}: {e}")))?
    } else {
        SqliteConnectOptions::new().filename(url)
    };
    Ok(options
        .create_if_missing(true)
        // In WAL mode NORMAL loses no committed transaction when the
        // process dies, only (at worst) the last ones on power loss.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true))
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
                    idempotency::complete(conn, tenant, instance, &key, workflow.id)?;
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

    async fn expire_due(&self, limit: u32) -> Result<u64, StoreError> {
        self.writer
            .write(move |conn| workflow_writes::expire_due(conn, limit))
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
        self.reader
            .read(move |conn| workflows::get(conn, scope, id, history))
            .await
    }

    async fn list_workflows(
        &self,
        scope: Scope,
        query: &ListQuery,
    ) -> Result<WorkflowPage, StoreError> {
        let query = query.clone();
        self.reader
            .read(move |conn| workflows::list(conn, scope, &query))
            .await
    }

    async fn list_suspended(&self, scope: Scope) -> Result<Vec<SuspendedWorkflow>, StoreError> {
        self.reader
            .read(move |conn| workflows::list_suspended(conn, scope))
            .await
    }

    async fn change_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        command: &Command,
        actor: &str,
        if_match: Option<&IfMatch>,
        history: WithHistory,
    ) -> Result<Change, StoreError> {
        let (command, actor, if_match) = (command.clone(), actor.to_owned(), if_match.cloned());
        let mut change = self
            .writer
            .write(move |conn| {
                let if_match = if_match.as_ref();
                workflow_writes::change(conn, scope, id, &command, &actor, if_match)
            })
            .await?;
        if history == WithHistory::Yes {
            let (tenant, version) = (scope.tenant_id, change.workflow.version);
            change.workflow.history = self
                .reader
                .read(move |conn| workflows::history_of(conn, tenant, id, version))
                .await?;
        }
        Ok(change)
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
}
