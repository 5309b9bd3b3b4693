//! The production backend: PostgreSQL with row-level security.
//!
//! Two kinds of work share one pool. Requests (the methods a handler
//! calls with a tenant in hand, plus `ping`) run in a transaction that
//! first switches to the NOLOGIN role [`APP_ROLE`] and sets the tenant
//! transaction-locally, so row-level security bounds every query they make
//! and nothing outlives the transaction on the pooled connection; the
//! role and tenant travel in the message that opens it (`session`).
//! `get_workflow`, a change's write and `find_credential` do the same
//! inside one database function each (migrations 0005 and 0003; the last
//! with the key's hash in place of a tenant), in one round trip and with
//! cached plans; `change_workflow` is a get and a version-checked write.
//! Key lookups are then answered from memory (`key_cache`): each request
//! made with a key checks it unrevoked in its own first message.
//! Administrative methods (instances and credential management, used by the
//! command line) run as the login role, which the migrations let span
//! tenants.

mod credentials;
mod idempotency;
mod key_cache;
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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use self::key_cache::KeyCache;
use self::session::{Access, Mode};
use crate::{
    Credential, Instance, NewCredential, PoolStats, Store, StoreError, StoreOptions, WithHistory,
    WorkflowPage,
};

pub use self::session::APP_ROLE;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    keys: Arc<KeyCache>,
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), runs the
    /// migrations and checks that requests will really be bound by
    /// row-level security before accepting any.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        // The URL may carry a password: the message names the problem only.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // A connection broken while the server was away is noticed
            // and replaced on its next checkout, so the pool heals by
            // itself once the server is back.
            .test_before_acquire(true)
            .connect_with(connect)
            .await?;
        let store = Self {
            pool,
            keys: Arc::new(KeyCache::default()),
        };
        store.migrate().await?;
        session::check_app_role(&store.pool).await?;
        Ok(store)
    }

    /// Runs the migrations only (they also run on every connect).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(crate::error::migrate_error)
    }

    /// A request transaction for `scope`.
    async fn begin(
        &self,
        scope: Scope,
        mode: Mode,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let begun = session::begin(&self.pool, Access::Scope(scope), mode).await;
        self.noting_revocation(begun)
    }

    /// Passes `result` on; when it says the request's key is revoked, the
    /// key cache is emptied so that the key's next lookup says so too.
    fn noting_revocation<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::KeyRevoked) = &result {
            self.keys.clear();
        }
        result
    }

    /// The pool itself, for tests that inspect what a request leaves on
    /// its connection.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // As the application role, so readiness also proves the role works.
        let mut tx = session::begin(&self.pool, Access::Anonymous, Mode::Read).await?;
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolStats {
            in_use: self.pool.size().saturating_sub(idle),
            idle,
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        // Metrics span tenants: as the login, not a request.
        let mut conn = self.pool.acquire().await?;
        workflows::count_by_status(&mut conn).await
    }

    async fn insert_workflow(
        &self,
        scope: Scope,
        workflow: &Workflow,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(scope, Mode::Write).await?;
        workflows::insert(&mut tx, workflow).await?;
        if let Some(key) = idempotency_key {
            let (tenant, instance) = (workflow.tenant_id, workflow.instance_id);
            idempotency::complete(&mut tx, tenant, instance, key, workflow.id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &IdempotencyKey,
        fingerprint: &[u8],
    ) -> Result<Claim, StoreError> {
        let tenant_id = scope.tenant_id;
        let mut tx = self.begin(scope, Mode::Write).await?;
        let claim = idempotency::claim(&mut tx, tenant_id, instance_id, key, fingerprint).await?;
        tx.commit().await?;
        Ok(claim)
    }

    async fn release_idempotency_key(
        &self,
        tenant_id: Uuid,
        instance_id: Uuid,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        // Cleaning up after the caller's failed create: no key check, so
        // that a key revoked meanwhile still frees its claim.
        let mut tx = self
            .begin(Scope::instance(tenant_id, instance_id), Mode::Write)
            .await?;
        idempotency::release(&mut tx, tenant_id, instance_id, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn expire_due(&self, limit: u32) -> Result<u64, StoreError> {
        // Each expiry is its own transaction: it holds two count rows
        // (`workflow_counts`) until it commits, as a request's change does;
        // holding many across a batch could close a cycle with requests
        // that hold some of them, a deadlock.
        let mut conn = self.pool.acquire().await?;
        workflows::expire_due(&mut conn, limit).await
    }

    async fn purge_idempotency_keys(&self, limit: u32) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let purged = idempotency::purge(&mut tx, limit).await?;
        tx.commit().await?;
        Ok(purged)
    }

    async fn get_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        history: WithHistory,
    ) -> Result<Option<Workflow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let found = workflows::get(&mut conn, scope, id, history).await;
        self.noting_revocation(found)
    }

    async fn list_workflows(
        &self,
        scope: Scope,
        query: &ListQuery,
    ) -> Result<WorkflowPage, StoreError> {
        let mut tx = self.begin(scope, Mode::Read).await?;
        let page = workflows::list(&mut tx, scope, query).await?;
        tx.commit().await?;
        Ok(page)
    }

    async fn list_suspended(&self, scope: Scope) -> Result<Vec<SuspendedWorkflow>, StoreError> {
        let mut tx = self.begin(scope, Mode::Read).await?;
        let suspended = workflows::list_suspended(&mut tx, scope).await?;
        tx.commit().await?;
        Ok(suspended)
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
        let mut conn = self.pool.acquire().await?;
        let change =
            workflows::change(&mut conn, scope, id, command, actor, if_match, history).await;
        self.noting_revocation(change)
    }

    async fn create_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        credentials::insert_instance(&mut conn, instance).await
    }

    async fn get_instance(&self, id: Uuid) -> Result<Option<Instance>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(credentials::list_instances(&mut conn, Some(id))
            .await?
            .pop())
    }

    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        credentials::list_instances(&mut conn, None).await
    }

    async fn create_credential(&self, credential: &NewCredential) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        credentials::insert_credential(&mut tx, credential).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_credential(&self, key_hash: &[u8]) -> Result<Option<Credential>, StoreError> {
        if let Some(credential) = self.keys.get(key_hash) {
            return Ok(Some(credential));
        }
        let mut conn = self.pool.acquire().await?;
        let found = credentials::find_credential(&mut conn, key_hash).await?;
        if let Some(credential) = &found {
            self.keys.insert(key_hash, credential);
        }
        Ok(found)
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        credentials::list_credentials(&mut conn).await
    }

    async fn revoke_credential(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        credentials::revoke_credential(&mut conn, id).await
    }
}
