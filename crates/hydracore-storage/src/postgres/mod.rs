//! The production backend: PostgreSQL with row-level security, on one
//! driver, tokio-postgres.
//!
//! Requests (the methods a handler calls with a tenant in hand, plus
//! `ping`) run as the NOLOGIN role [`APP_ROLE`] with the tenant set
//! transaction-locally, so row-level security bounds every query they make
//! and nothing outlives the transaction on its connection. They take one of
//! three paths:
//!
//! - One call of a request function (migration 0001), outside any
//!   transaction: the function checks the request's key, switches role and
//!   sets the tenant itself, in one round trip and with cached plans.
//!   `insert_workflow` and a change's write do this on a pooled connection
//!   (`pool`); the reads (`get_workflow`, a change's read, a list of one
//!   instance in one status) on a few connections that carry many calls at
//!   once (`pipelined`, which says why). `find_credential` likewise, with
//!   the key's hash in place of a tenant. On Citus each such call runs in
//!   a request transaction on a pooled connection instead, whose tenant
//!   reaches the workers (`session::call`, `citus`).
//! - A request transaction on a pooled connection (`session`): the role and
//!   tenant travel in the message that opens it. Other lists, the
//!   suspended list and the idempotency claims.
//! - The login's own statements, spanning tenants: the administrative
//!   methods (instances and credentials, for the command line), metrics
//!   and the sweeper's work list.
//!
//! `change_workflow` is a get and a version-checked write, or the write
//! alone when it can start from the record this replica wrote last
//! (`last_written`). Key lookups are answered from memory (`key_cache`):
//! each request made with a key checks it unrevoked in its own first
//! message. Every connection is opened with the TLS settings of `tls`.

mod citus;
mod credentials;
mod idempotency;
mod key_cache;
mod last_written;
mod migrations;
mod pipelined;
mod pool;
mod purge;
mod replicas;
mod rows;
mod session;
mod statements;
pub mod tls;
mod ui_tokens;
mod webhooks;
mod workflows;

use std::sync::Arc;

use async_trait::async_trait;
use hydracore_domain::decision::InboxQuery;
use hydracore_domain::event::{Event, EventId, EventQuery};
use hydracore_domain::idempotency::Claim;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{HistoryQuery, ListQuery};
use hydracore_domain::webhook::{Delivery, Webhook, WebhookSecret};
use hydracore_domain::{Scope, Status, Timestamp, Workflow};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use self::key_cache::KeyCache;
use self::last_written::LastWritten;
use self::pipelined::Pipelined;
use self::pipelined::Reader;
use self::pool::{Client, Pool, Statements};
use self::replicas::Replicas;
use self::session::{Access, Cluster, Mode};
use crate::webhooks::{AttemptReport, DueDelivery};
use crate::{
    ChangeOutcome, Changed, Credential, Distribution, HistorySlice, InboxCount, InlineHistory,
    Instance, NewCredential, PoolStats, Store, StoreError, StoreOptions, SweepJob, UiToken,
    WithHistory, WorkflowPage,
};

pub use self::session::APP_ROLE;

/// The store's answers: every failure is a [`StoreError`].
type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool,
    reads: Arc<Pipelined>,
    keys: Arc<KeyCache>,
    last_written: Arc<LastWritten>,
    /// How many of a record's newest history entries it embeds.
    history_inline: InlineHistory,
    history_page_bytes: i32,
    replicas: Arc<Replicas>,
    /// How a Citus cluster holds the schema; `None` on one server.
    distribution: Option<Distribution>,
    /// Behind a transaction pooler: the statement and idle timeouts, set
    /// at the start of each request transaction ([`set_local_timeouts`]).
    transaction_timeouts: Option<String>,
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), runs the
    /// migrations and checks that requests will really be bound by
    /// row-level security before accepting any.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let mut settings = tls::settings(url, options.ca_file.as_deref())?;
        let pooler = settings.transaction_pooler;
        let timeout = options.statement_timeout.filter(|t| !t.is_zero());
        // A transaction pooler refuses connection options: the timeouts
        // then open each request transaction.
        let transaction_timeouts = match timeout {
            Some(timeout) if pooler => Some(set_local_timeouts(timeout)),
            Some(timeout) => {
                bound_statements(&mut settings.config, timeout);
                None
            }
            None => None,
        };
        let statements = if pooler {
            Statements::Unnamed(Arc::default())
        } else {
            Statements::Prepared
        };
        let listen = match &options.listen_url {
            Some(listen_url) => Some(tls::settings(listen_url, options.ca_file.as_deref())?),
            None if pooler => None,
            None => Some(settings.clone()),
        };
        let pool = Pool::new(
            &settings,
            statements.clone(),
            options.max_connections,
            options.acquire_timeout,
        )?;
        let replicas = Replicas::new(pool.clone(), listen);
        let mut store = Self {
            pool,
            replicas,
            transaction_timeouts,
            reads: Arc::new(Pipelined::new(
                settings,
                statements,
                pipelined_connections(options.max_connections),
                options.acquire_timeout,
                options.read_call_timeout,
            )),
            keys: Arc::new(KeyCache::default()),
            last_written: Arc::new(LastWritten::default()),
            history_inline: InlineHistory::new(
                options.history_inline,
                options.history_inline_bytes,
            ),
            history_page_bytes: i32::try_from(options.history_page_bytes).unwrap_or(i32::MAX),
            distribution: None,
        };
        store.distribution = store
            .with_conn(async |conn| {
                let cluster = migrations::run(conn).await?;
                session::check_app_role(conn, cluster).await?;
                Ok(match cluster {
                    Cluster::Single => None,
                    Cluster::Citus => Some(citus::describe(conn).await?),
                })
            })
            .await?;
        match &store.distribution {
            Some(d) => tracing::info!(
                workers = d.workers,
                shards = d.shards,
                distributed = ?d.distributed,
                reference = ?d.reference,
                "PostgreSQL: a Citus cluster, tables distributed by tenant_id"
            ),
            // Opens a pipelined connection now, so that one that cannot be
            // opened fails the start, not every read. (Citus reads in
            // transactions on the pool instead.)
            None => store.reads.call(async |_| Ok(())).await?,
        }
        Ok(store)
    }

    /// Where a request's settings have to reach (`session`).
    fn cluster(&self) -> Cluster {
        match self.distribution {
            Some(_) => Cluster::Citus,
            None => Cluster::Single,
        }
    }

    /// Runs `op` on a connection of its own, which goes back to the pool
    /// or is closed by how `op` ends (`pool`).
    async fn with_conn<T>(
        &self,
        op: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let c = self.pool.checkout().await?;
        let result = op(c.conn()).await;
        c.settle(self.noting_revocation(result))
    }

    /// Runs `body` in a request transaction for `access` on a connection
    /// of its own: committed if it succeeds, else rolled back.
    async fn in_transaction<T>(
        &self,
        access: Access<'_>,
        mode: Mode,
        body: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(async |conn| {
            self.bounded(conn, session::begin(conn, self.cluster(), access, mode))
                .await?;
            let done = body(conn).await;
            session::finish(conn, done).await
        })
        .await
    }

    /// Runs `op`, one call of a request function, on a connection of its
    /// own (`session::call`).
    async fn call<T>(
        &self,
        access: Access<'_>,
        mode: Mode,
        op: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(async |conn| session::call(conn, self.cluster(), access, mode, op).await)
            .await
    }

    /// Runs `op`, one call of a read function: on a pipelined connection,
    /// or on Citus in a request transaction on a pooled one.
    async fn read<T>(
        &self,
        scope: Scope,
        op: impl AsyncFnOnce(Reader<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = match self.cluster() {
            Cluster::Single => {
                self.reads
                    .call(async |c| op(Reader::Pipelined(c)).await)
                    .await
            }
            Cluster::Citus => {
                self.with_conn(async |conn| workflows::read_in_transaction(conn, scope, op).await)
                    .await
            }
        };
        self.noting_revocation(result)
    }

    /// Runs `body` in a transaction as the login (administrative work,
    /// which spans tenants): committed if it succeeds, else rolled back.
    async fn in_login_transaction<T>(
        &self,
        body: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_conn(async |conn| {
            self.bounded(conn, session::begin_as_login(conn)).await?;
            let done = body(conn).await;
            session::finish(conn, done).await
        })
        .await
    }

    /// Opens a transaction with `begin`; behind a transaction pooler, sets
    /// the timeouts for it too. The two messages go out together (the
    /// futures are polled in order, and each sends its message when first
    /// polled), so that costs no round trip of its own. Were `begin` to
    /// fail, the `SET LOCAL` outside a transaction would only warn.
    async fn bounded(
        &self,
        conn: &Client,
        begin: impl std::future::Future<Output = Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        match &self.transaction_timeouts {
            None => begin.await,
            Some(set_local) => {
                let bound = async { Ok::<_, StoreError>(conn.batch_execute(set_local).await?) };
                tokio::try_join!(begin, bound).map(|_| ())
            }
        }
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
    ) -> Result<impl std::ops::DerefMut<Target = tokio_postgres::Client>, StoreError> {
        self.pool.lend().await
    }
}

/// The pipelined connections beside a pool of `max_connections`: as many,
/// at least two. Calls on one connection wait for those ahead of them, so
/// a server process that is descheduled, or one slow call, holds up every
/// call behind it; more connections keep that queue short, for a little
/// less throughput at saturation. docs/scaling.md counts them in a
/// replica's connections.
fn pipelined_connections(max_connections: u32) -> usize {
    usize::try_from(max_connections).map_or(2, |n| n.max(2))
}

#[async_trait]
impl Store for PgStore {
    /// One call of `hydracore_workflow` on a pipelined connection.
    async fn get_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        history: WithHistory,
    ) -> Result<Option<Workflow>> {
        let history = history.inline(self.history_inline);
        self.read(scope, async |reader| {
            workflows::get(reader, scope, id, history).await
        })
        .await
    }

    /// One call of `hydracore_list_workflows` on a pipelined connection
    /// when it can answer, else plain SQL in a request transaction.
    async fn list_workflows(&self, scope: Scope, query: &ListQuery) -> Result<WorkflowPage> {
        // A deep page skips its offset row by row: in a transaction of
        // its own, not ahead of other requests' reads.
        let confined = workflows::one_instance_in_one_status(scope, query)
            .filter(|_| query.cursor.is_none() && query.offset() <= pipelined::MAX_OFFSET);
        if let Some(confined) = confined {
            let history = WithHistory::Yes.inline(self.history_inline);
            return self
                .read(scope, async |reader| {
                    workflows::list_one_status(reader, scope, confined, query, history).await
                })
                .await;
        }
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            let history = WithHistory::Yes.inline(self.history_inline);
            workflows::list(tx, scope, query, history).await
        })
        .await
    }

    async fn list_inbox(
        &self,
        scope: Scope,
        query: &InboxQuery,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Workflow>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            workflows::list_inbox(tx, scope, query, now, limit).await
        })
        .await
    }

    async fn count_inbox(&self, scope: Scope, now: Timestamp) -> Result<Vec<InboxCount>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            workflows::count_inbox(tx, scope, now).await
        })
        .await
    }

    async fn list_events(&self, scope: Scope, query: &EventQuery) -> Result<Option<Vec<Event>>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            let (purged, horizon) = tokio::try_join!(
                workflows::events_purged_through(tx),
                workflows::events_horizon(tx)
            )?;
            if purged.is_some_and(|purged| query.after.unwrap_or_default() < purged) {
                return Ok(None);
            }
            workflows::list_events(tx, scope, query, horizon)
                .await
                .map(Some)
        })
        .await
    }

    async fn events_now(&self, tenant_id: Uuid) -> Result<Option<EventId>> {
        let scope = Scope::tenant(tenant_id);
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            let (purged, horizon) = tokio::try_join!(
                workflows::events_purged_through(tx),
                workflows::events_horizon(tx)
            )?;
            Ok(workflows::newest_event(tx, tenant_id, horizon)
                .await?
                .max(purged))
        })
        .await
    }

    /// In a transaction as the login, across tenants.
    async fn purge_events(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.in_login_transaction(async |tx| workflows::purge_events(tx, before, limit).await)
            .await
    }

    async fn list_suspended(&self, scope: Scope, limit: u32) -> Result<Vec<SuspendedWorkflow>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            workflows::list_suspended(tx, scope, limit).await
        })
        .await
    }

    /// One call of `hydracore_create_workflow` on a pooled connection.
    async fn insert_workflow(
        &self,
        scope: Scope,
        workflow: &Workflow,
        idempotency_key: Option<&hydracore_domain::idempotency::IdempotencyKey>,
    ) -> Result<()> {
        self.call(Access::Scope(scope), Mode::Write, async |conn| {
            workflows::create(conn, scope, workflow, idempotency_key).await
        })
        .await?;
        self.last_written.remember(workflow);
        Ok(())
    }

    /// Plain SQL in a request transaction.
    async fn history_page(
        &self,
        scope: Scope,
        id: Uuid,
        page: HistoryQuery,
    ) -> Result<Option<HistorySlice>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            workflows::history_page(tx, scope, id, page, self.history_page_bytes).await
        })
        .await
    }

    /// In a request transaction of the key's tenant.
    async fn claim_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &hydracore_domain::idempotency::IdempotencyKey,
        // Of the request's body: the same key with another body is refused.
        fingerprint: &[u8],
    ) -> Result<Claim> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            idempotency::claim(tx, scope.tenant_id, instance_id, key, fingerprint).await
        })
        .await
    }

    async fn complete_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &hydracore_domain::idempotency::IdempotencyKey,
        workflow_id: Uuid,
        answer: &serde_json::Value,
    ) -> Result<()> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            idempotency::complete(tx, scope.tenant_id, instance_id, key, workflow_id, answer).await
        })
        .await
    }

    /// In a request transaction of the key's tenant.
    async fn release_idempotency_key(
        &self,
        tenant_id: Uuid,
        instance_id: Uuid,
        key: &hydracore_domain::idempotency::IdempotencyKey,
    ) -> Result<()> {
        // Cleaning up after the caller's failed create: no key check, so
        // that a key revoked meanwhile still frees its claim.
        let scope = Scope::instance(tenant_id, instance_id);
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            idempotency::release(tx, tenant_id, instance_id, key).await
        })
        .await
    }

    /// A read and a version-checked write, again until the write lands
    /// (`workflows::Attempt`).
    async fn change_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        rule: crate::Rule,
        history: WithHistory,
    ) -> Result<ChangeOutcome> {
        let attempt = workflows::Attempt {
            scope,
            id,
            rule,
            history: history.inline(self.history_inline),
        };
        self.with_conn(async |conn| {
            attempt
                .run(conn, self.cluster(), &self.reads, &self.last_written)
                .await
        })
        .await
    }

    /// A request transaction as the application role, so that readiness
    /// also proves the role works.
    async fn ping(&self) -> Result<()> {
        // As the application role, so readiness also proves the role works.
        self.in_transaction(Access::Anonymous, Mode::Read, async |tx| {
            Ok(tx.batch_execute("SELECT 1").await?)
        })
        .await
    }

    fn distribution(&self) -> Option<Distribution> {
        self.distribution.clone()
    }

    /// The pool's connections, and the pipelined ones apart.
    fn pool_stats(&self) -> PoolStats {
        let (in_use, idle) = self.pool.stats();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        PoolStats {
            in_use: count(in_use),
            idle: count(idle),
            shared: count(self.reads.open_connections()),
        }
    }

    /// Lets the pipelined connections go, then closes the pool.
    async fn close(&self) {
        self.reads.close();
        self.pool.close().await;
    }

    fn tell_replicas(&self, change: Changed) {
        self.replicas.tell(change);
    }

    async fn hear_replicas(&self, to: broadcast::Sender<Changed>, stop: watch::Receiver<bool>) {
        self.replicas.hear(to, stop).await;
    }

    /// As the login, from `workflow_counts`.
    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>> {
        // Metrics span tenants: as the login, not a request.
        self.with_conn(async |conn| workflows::count_by_status(conn).await)
            .await
    }

    /// As the login, across tenants.
    async fn due(&self, job: SweepJob, now: Timestamp, limit: u32) -> Result<Vec<(Scope, Uuid)>> {
        // The sweeper spans tenants: as the login. Each workflow's expiry
        // or escalation is then a change of its own, in its tenant.
        self.with_conn(async |conn| workflows::due(conn, job, now, limit).await)
            .await
    }

    /// In a transaction as the login, across tenants.
    async fn purge_idempotency_keys(&self, limit: u32) -> Result<u64> {
        self.in_login_transaction(async |tx| idempotency::purge(tx, limit).await)
            .await
    }

    /// As the login.
    async fn create_instance(&self, instance: &Instance) -> Result<()> {
        self.with_conn(async |conn| credentials::insert_instance(conn, instance).await)
            .await
    }

    /// As the login.
    async fn get_instance(&self, id: Uuid) -> Result<Option<Instance>> {
        self.with_conn(async |conn| credentials::list_instances(conn, Some(id)).await)
            .await
            .map(|mut found| found.pop())
    }

    /// As the login.
    async fn list_instances(&self) -> Result<Vec<Instance>> {
        self.with_conn(async |conn| credentials::list_instances(conn, None).await)
            .await
    }

    /// In a transaction as the login, which share-locks the instance.
    async fn create_credential(&self, credential: &NewCredential) -> Result<()> {
        self.in_login_transaction(async |tx| credentials::insert_credential(tx, credential).await)
            .await
    }

    /// From the key cache, else one call of `hydracore_credential_by_key`.
    async fn find_credential(&self, key_hash: &[u8]) -> Result<Option<Credential>> {
        if let Some(credential) = self.keys.get(key_hash) {
            return Ok(Some(credential));
        }
        let found = self
            .call(Access::Key(key_hash), Mode::Read, async |conn| {
                credentials::find_credential(conn, key_hash).await
            })
            .await?;
        if let Some(credential) = &found {
            self.keys.insert(key_hash, credential);
        }
        Ok(found)
    }

    /// As the login.
    async fn list_credentials(&self) -> Result<Vec<Credential>> {
        self.with_conn(async |conn| credentials::list_credentials(conn).await)
            .await
    }

    /// As the login.
    async fn revoke_credential(&self, id: Uuid) -> Result<bool> {
        self.with_conn(async |conn| credentials::revoke_credential(conn, id).await)
            .await
    }

    async fn insert_webhook(
        &self,
        scope: Scope,
        webhook: &Webhook,
        secret: &WebhookSecret,
        max_per_tenant: u32,
    ) -> Result<bool> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            webhooks::insert(tx, scope, webhook, secret, max_per_tenant).await
        })
        .await
    }

    async fn get_webhook(&self, scope: Scope, id: Uuid) -> Result<Option<Webhook>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            webhooks::get(tx, scope, id).await
        })
        .await
    }

    async fn list_webhooks(&self, scope: Scope) -> Result<Vec<Webhook>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            webhooks::list(tx, scope).await
        })
        .await
    }

    async fn update_webhook(&self, scope: Scope, webhook: &Webhook) -> Result<bool> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            webhooks::update(tx, scope, webhook).await
        })
        .await
    }

    async fn delete_webhook(&self, scope: Scope, id: Uuid) -> Result<bool> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            webhooks::delete(tx, scope, id).await
        })
        .await
    }

    async fn set_webhook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &WebhookSecret,
        now: Timestamp,
    ) -> Result<bool> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            webhooks::set_secret(tx, scope, id, secret, now).await
        })
        .await
    }

    async fn list_deliveries(
        &self,
        scope: Scope,
        webhook_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            webhooks::list_deliveries(tx, scope, webhook_id, limit).await
        })
        .await
    }

    async fn retry_delivery(
        &self,
        scope: Scope,
        webhook_id: Uuid,
        delivery_id: Uuid,
        now: Timestamp,
    ) -> Result<Option<Delivery>> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            webhooks::retry(tx, scope, webhook_id, delivery_id, now).await
        })
        .await
    }

    /// As the login, across tenants (as the sweeper); one transaction per
    /// endpoint behind.
    async fn enqueue_deliveries(&self, limit: u32) -> Result<u64> {
        let behind = self
            .with_conn(async |conn| webhooks::endpoints_behind(conn).await)
            .await?;
        let mut moved = 0;
        for (tenant_id, id) in behind {
            moved += self
                .in_login_transaction(async |tx| {
                    webhooks::enqueue_one(tx, tenant_id, id, limit).await
                })
                .await?;
        }
        Ok(moved)
    }

    /// In a transaction as the login, across tenants.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        self.in_login_transaction(async |tx| webhooks::claim(tx, now, lease_until, limit).await)
            .await
    }

    /// In a transaction as the login.
    async fn record_attempt(&self, report: &AttemptReport) -> Result<()> {
        self.in_login_transaction(async |tx| webhooks::record(tx, report).await)
            .await
    }

    /// In a transaction as the login, across tenants.
    async fn purge_deliveries(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.in_login_transaction(async |tx| webhooks::purge(tx, before, limit).await)
            .await
    }

    async fn insert_ui_token(&self, token: &UiToken) -> Result<()> {
        let scope = Scope::tenant(token.tenant_id);
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            ui_tokens::insert(tx, token).await
        })
        .await
    }

    async fn get_ui_token(&self, scope: Scope, hash: &[u8]) -> Result<Option<UiToken>> {
        self.in_transaction(Access::Scope(scope), Mode::Read, async |tx| {
            ui_tokens::get(tx, scope, hash).await
        })
        .await
    }

    async fn end_ui_token(&self, scope: Scope, hash: &[u8], now: Timestamp) -> Result<bool> {
        self.in_transaction(Access::Scope(scope), Mode::Write, async |tx| {
            ui_tokens::end(tx, scope, hash, now).await
        })
        .await
    }

    async fn purge_ui_tokens(&self, before: Timestamp, limit: u32) -> Result<u64> {
        self.in_login_transaction(async |tx| ui_tokens::purge(tx, before, limit).await)
            .await
    }
}

/// The server's statement and idle-transaction timeouts for one
/// transaction: behind a transaction pooler, which refuses them as
/// connection options, and where a session setting would reach other
/// clients of the server session.
fn set_local_timeouts(timeout: std::time::Duration) -> String {
    let millis = timeout.as_millis();
    format!(
        "SET LOCAL statement_timeout = {millis}; \
         SET LOCAL idle_in_transaction_session_timeout = {millis}"
    )
}

/// Sets the server's statement and idle-transaction timeouts for every
/// connection (after whatever `options` the URL gave, so these win). As
/// connection options they bind the application role too, which `SET
/// ROLE` would not take settings of `ALTER ROLE` from.
fn bound_statements(config: &mut tokio_postgres::Config, timeout: std::time::Duration) {
    let millis = timeout.as_millis();
    let ours =
        format!("-c statement_timeout={millis} -c idle_in_transaction_session_timeout={millis}");
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {ours}"),
        _ => ours,
    };
    config.options(options);
}
