//! The production backend: PostgreSQL with row-level security.
//!
//! Two kinds of work share one pool (`pool`, which also says why it is not
//! sqlx's). Requests (the methods a handler calls with a tenant in hand,
//! plus `ping`) run in a transaction that first switches to the NOLOGIN
//! role [`APP_ROLE`] and sets the tenant transaction-locally, so row-level
//! security bounds every query they make and nothing outlives the
//! transaction on the pooled connection; the role and tenant travel in the
//! message that opens it (`session`).
//! `insert_workflow`, `get_workflow`, a change's write, a list of one
//! instance in one status and `find_credential` do the same inside one
//! database function each (migrations 0003, 0005 and 0007 to 0010;
//! `find_credential` with the key's hash
//! in place of a tenant), in one round trip and with cached plans. The
//! reads among them (a get, a change's read, the list) do not take a
//! pooled connection: they go on a few connections that carry many calls
//! at once (`pipelined`, which says why).
//! `change_workflow` is a get and a version-checked write, or the write
//! alone when it can start from the record this replica wrote last
//! (`last_written`).
//! Key lookups are then answered from memory (`key_cache`): each request
//! made with a key checks it unrevoked in its own first message.
//! Administrative methods (instances and credential management, used by the
//! command line) run as the login role, which the migrations let span
//! tenants.

mod credentials;
mod idempotency;
mod key_cache;
mod last_written;
mod pipelined;
mod pool;
mod rows;
mod session;
mod workflows;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use hydracore_domain::idempotency::{Claim, IdempotencyKey};
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::ListQuery;
use hydracore_domain::transition::{Change, Command};
use hydracore_domain::{Scope, Status, Workflow};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use uuid::Uuid;

use self::key_cache::KeyCache;
use self::last_written::LastWritten;
use self::pipelined::Pipelined;
use self::pool::Pool;
use self::session::{Access, Mode};
use crate::{
    Credential, Instance, NewCredential, PoolStats, Store, StoreError, StoreOptions, WithHistory,
    WorkflowPage,
};

pub use self::session::APP_ROLE;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
    reads: Arc<Pipelined>,
    keys: Arc<KeyCache>,
    last_written: Arc<LastWritten>,
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), runs the
    /// migrations and checks that requests will really be bound by
    /// row-level security before accepting any.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        // The URL may carry a password: the message names the problem only.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let pipelined = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = Pool::new(connect, options.max_connections, options.acquire_timeout)?;
        let store = Self {
            pool,
            reads: Arc::new(Pipelined::new(
                pipelined,
                pipelined_connections(options.max_connections),
                options.acquire_timeout,
                options.read_call_timeout,
            )),
            keys: Arc::new(KeyCache::default()),
            last_written: Arc::new(LastWritten::default()),
        };
        store
            .with_conn(async |conn| store.prepare(conn).await)
            .await?;
        // Opens a pipelined connection now, so that a URL it reads
        // differently from the pool fails the start, not every read.
        store.reads.call(async |_| Ok(())).await?;
        Ok(store)
    }

    /// The migrations, then the check that row-level security binds
    /// requests.
    async fn prepare(&self, conn: &mut PgConnection) -> Result<(), StoreError> {
        MIGRATOR
            .run_direct(conn)
            .await
            .map_err(crate::error::migrate_error)?;
        session::check_app_role(conn).await
    }

    /// Runs `op` on a connection of its own, which goes back to the pool
    /// or is closed by how `op` ends (`pool`).
    async fn with_conn<T>(
        &self,
        op: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.pool.checkout().await?;
        let result = op(c.conn()).await;
        c.settle(self.noting_revocation(result))
    }

    /// Runs `body` in a request transaction for `access` on a connection
    /// of its own: committed if it succeeds, else rolled back.
    async fn in_transaction<T>(
        &self,
        access: Access,
        mode: Mode,
        body: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(async |conn| {
            let mut tx = session::begin(conn, access, mode).await?;
            let done = body(&mut tx).await;
            session::finish(tx, done).await
        })
        .await
    }

    /// Runs `body` in a transaction as the login (administrative work,
    /// which spans tenants): committed if it succeeds, else rolled back.
    async fn in_login_transaction<T>(
        &self,
        body: impl AsyncFnOnce(&mut PgConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(async |conn| {
            let mut tx = sqlx::Connection::begin(conn).await?;
            let done = body(&mut tx).await;
            session::finish(tx, done).await
        })
        .await
    }

    /// Passes `result` on; when it says the request's key is revoked, the
    /// key cache is emptied so that the key's next lookup says so too.
    fn noting_revocation<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::KeyRevoked) = &result {
            self.keys.clear();
        }
        result
    }

    /// A connection of the store's pool, for tests that inspect what a
    /// request leaves on it. It goes back to the pool when dropped.
    pub async fn pooled_connection(
        &self,
    ) -> Result<impl std::ops::DerefMut<Target = PgConnection>, StoreError> {
        self.pool.lend().await
    }
}

/// The pipelined connections beside a pool of `max_connections`: as many,
/// at least two. Calls on one connection wait for those ahead of them, so
/// a server process that is descheduled, or one slow call, holds up every
/// call behind it; more connections keep that queue short. On the
/// benchmark machine, on a million workflows, 8 instead of 4 halved a
/// get's p99 and cut the instance list's, at the same throughput; on a
/// fresh database a get's p99 also halved, for about 8 % less throughput
/// at saturation (docs/benchmarks.md, round 8, step 22). docs/scaling.md
/// counts them in a replica's connections.
fn pipelined_connections(max_connections: u32) -> usize {
    usize::try_from(max_connections).map_or(2, |n| n.max(2))
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // As the application role, so readiness also proves the role works.
        self.in_transaction(Access::Anonymous, Mode::Read, async |tx| {
            sqlx::query("SELECT 1").execute(tx).await?;
            Ok(())
        })
        .await
    }

    fn pool_stats(&self) -> PoolStats {
        let (in_use, idle) = self.pool.stats();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        PoolStats {
            in_use: count(in_use),
            idle: count(idle),
            shared: count(self.reads.open_connections()),
        }
    }

    async fn close(&self) {
        self.reads.close();
        self.pool.close().await;
    }

    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        // Metrics span tenants: as the login, not a request.
        self.with_conn(async |conn| workflows::count_by_status(conn).await)
            .await
    }

    async fn insert_workflow(
        &self,
        scope: Scope,
        workflow: &Workflow,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError> {
        self.with_conn(async |conn| {
            workflows::create(conn, scope, workflow, idempotency_key).await
        })
        .await?;
        self.last_written.remember(workflow);
        Ok(())
    }

    async fn claim_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &IdempotencyKey,
        fingerprint: &[u8],
    ) -> Result<Claim, StoreError> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            idempotency::claim(tx, scope.tenant_id, instance_id, key, fingerprint).await
        })
        .await
    }

    async fn release_idempotency_key(
        &self,
        tenant_id: Uuid,
        instance_id: Uuid,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        // Cleaning up after the caller's failed create: no key check, so
        // that a key revoked meanwhile still frees its claim.
        let scope = Scope::instance(tenant_id, instance_id);
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            idempotency::release(tx, tenant_id, instance_id, key).await
        })
        .await
    }

    async fn expire_due(&self, limit: u32) -> Result<u64, StoreError> {
        // Each expiry is its own transaction: it holds two count rows
        // (`workflow_counts`) until it commits, as a request's change does;
        // holding many across a batch could close a cycle with requests
        // that hold some of them, a deadlock.
        self.with_conn(async |conn| {
            workflows::expire_due(conn, &self.reads, limit, &self.last_written).await
        })
        .await
    }

    async fn purge_idempotency_keys(&self, limit: u32) -> Result<u64, StoreError> {
        self.in_login_transaction(async |tx| idempotency::purge(tx, limit).await)
            .await
    }

    async fn get_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        history: WithHistory,
    ) -> Result<Option<Workflow>, StoreError> {
        let got = self
            .reads
            .call(async |conn| workflows::get(conn, scope, id, history).await)
            .await;
        self.noting_revocation(got)
    }

    async fn list_workflows(
        &self,
        scope: Scope,
        query: &ListQuery,
    ) -> Result<WorkflowPage, StoreError> {
        // A deep page skips its offset row by row: in a transaction of
        // its own, not ahead of other requests' reads.
        let confined = workflows::one_instance_in_one_status(scope, query)
            .filter(|_| query.offset() <= pipelined::MAX_OFFSET);
        if let Some(confined) = confined {
            let page = self
                .reads
                .call(async |conn| workflows::list_one_status(conn, scope, confined, query).await)
                .await;
            return self.noting_revocation(page);
        }
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            workflows::list(tx, scope, query).await
        })
        .await
    }

    async fn list_suspended(&self, scope: Scope) -> Result<Vec<SuspendedWorkflow>, StoreError> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            workflows::list_suspended(tx, scope).await
        })
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
        let attempt = workflows::Attempt {
            scope,
            id,
            command,
            actor,
            if_match,
            history,
        };
        self.with_conn(async |conn| attempt.change(conn, &self.reads, &self.last_written).await)
            .await
    }

    async fn create_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        self.with_conn(async |conn| credentials::insert_instance(conn, instance).await)
            .await
    }

    async fn get_instance(&self, id: Uuid) -> Result<Option<Instance>, StoreError> {
        self.with_conn(async |conn| credentials::list_instances(conn, Some(id)).await)
            .await
            .map(|mut found| found.pop())
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        self.with_conn(async |conn| credentials::list_instances(conn, None).await)
            .await
    }

    async fn create_credential(&self, credential: &NewCredential) -> Result<(), StoreError> {
        self.in_login_transaction(async |tx| credentials::insert_credential(tx, credential).await)
            .await
    }

    async fn find_credential(&self, key_hash: &[u8]) -> Result<Option<Credential>, StoreError> {
        if let Some(credential) = self.keys.get(key_hash) {
            return Ok(Some(credential));
        }
        let found = self
            .with_conn(async |conn| credentials::find_credential(conn, key_hash).await)
            .await?;
        if let Some(credential) = &found {
            self.keys.insert(key_hash, credential);
        }
        Ok(found)
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>, StoreError> {
        self.with_conn(async |conn| credentials::list_credentials(conn).await)
            .await
    }

    async fn revoke_credential(&self, id: Uuid) -> Result<bool, StoreError> {
        self.with_conn(async |conn| credentials::revoke_credential(conn, id).await)
            .await
    }
}
