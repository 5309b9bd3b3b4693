//! HydraCore's storage layer.
//!
//! Two levels. [`service::Workflows`] holds the use cases (create with its
//! idempotency claim, change, read, list, the sweeper's expiry): it decides
//! what happens and calls the domain rules. [`Store`] is what it asks of a
//! database, as primitives; each backend ([`sqlite`], [`postgres`])
//! implements it with its own migrations. A change is a primitive that
//! takes the rule as a closure: the backend runs it on the stored record
//! inside its transaction (SQLite) or its compare-and-swap loop
//! (PostgreSQL), and a refusal stays the domain's value.
#![forbid(unsafe_code)]

mod credentials;
mod error;
mod filters;
mod migrate;
pub mod postgres;
mod rows;
pub mod service;
pub mod sqlite;
pub mod ui_tokens;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use hydracore_domain::decision::InboxQuery;
use hydracore_domain::event::{Event, EventId, EventQuery};
use hydracore_domain::idempotency::{Claim, IdempotencyKey};
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{HistoryQuery, ListCursor, ListQuery};
use hydracore_domain::transition::{Change, TransitionError};
use hydracore_domain::webhook::{Delivery, Webhook, WebhookSecret};
use hydracore_domain::{HistoryEntry, Scope, Status, Timestamp, Workflow};
use uuid::Uuid;

pub use credentials::{Credential, CredentialKind, Instance, NewCredential};
pub use error::StoreError;
pub use service::{Acted, Inbox, News, UseCaseError, Waited, Workflows};
pub use ui_tokens::{UiToken, UiTokenKind, UiTokens};
pub use webhooks::{AttemptReport, DueDelivery, Webhooks};

/// A status rule, as a change runs it on the stored record: the change to
/// write, or the domain's refusal. It may run more than once (PostgreSQL
/// runs it again when another change landed first), each time on the
/// newest record.
pub type Rule = Arc<dyn Fn(Workflow) -> Result<Change, TransitionError> + Send + Sync>;

/// What became of a change.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    /// Written, with its history entry.
    Changed(Box<Change>),
    /// The rule refused the stored record; nothing was written.
    Refused(TransitionError),
    /// No such workflow in the scope.
    NotFound,
}

/// One page of a workflow list.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPage {
    /// Every match, not only this page's.
    pub total: i64,
    pub workflows: Vec<Workflow>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<ListCursor>,
}

impl WorkflowPage {
    /// A page read with one row more than `query` asked for, to learn
    /// whether another page follows; the extra row is dropped.
    pub fn from_rows_and_one_more(
        total: i64,
        mut workflows: Vec<Workflow>,
        query: &ListQuery,
    ) -> Self {
        let more = keep_first(&mut workflows, query.per_page);
        let next_cursor = more
            .then(|| workflows.last().map(ListCursor::after))
            .flatten();
        Self {
            total,
            workflows,
            next_cursor,
        }
    }

    /// A page read by `page` and `per_page` alone: whether another page
    /// follows is told by the total.
    pub fn from_rows_and_total(total: i64, workflows: Vec<Workflow>, query: &ListQuery) -> Self {
        let read = query.offset().saturating_add(workflows.len() as i64);
        let next_cursor = (read < total)
            .then(|| workflows.last().map(ListCursor::after))
            .flatten();
        Self {
            total,
            workflows,
            next_cursor,
        }
    }
}

/// How many suspensions one assignee has, and how many of them are overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCount {
    pub assigned_to: Option<String>,
    pub total: i64,
    pub overdue: i64,
}

/// What the sweeper does to workflows whose time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepJob {
    /// Live workflows past their `expires_at`.
    Expire,
    /// Suspensions past their due time (`next_action_at`) that escalate
    /// and are below their maximum level.
    Escalate,
}

impl SweepJob {
    /// The ids, tenants and instances of the workflows due at `$1`, at
    /// most `$2`, soonest first; the same text on both backends (SQLite
    /// as `?n`), each served by a partial index of its own.
    pub fn select_due(self) -> String {
        match self {
            SweepJob::Expire => format!(
                "SELECT id, tenant_id, instance_id FROM workflows \
                 WHERE expires_at IS NOT NULL AND expires_at <= $1 \
                 AND status NOT IN ({}) ORDER BY expires_at LIMIT $2",
                *rows::TERMINAL_STATUSES
            ),
            SweepJob::Escalate => "SELECT id, tenant_id, instance_id FROM workflows \
                 WHERE status = 'suspended' AND escalate_every IS NOT NULL \
                 AND escalation_level < max_escalation_level AND next_action_at <= $1 \
                 ORDER BY next_action_at LIMIT $2"
                .to_owned(),
        }
    }
}

/// A page of one workflow's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySlice {
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
    /// The seq of the workflow's newest entry (its version): a page that
    /// ends before it has a next.
    pub newest: i64,
}

impl HistorySlice {
    /// The `after` of the page that follows, if one does.
    pub fn next_after(&self) -> Option<i64> {
        self.entries
            .last()
            .map(|e| e.seq)
            .filter(|seq| *seq < self.newest)
    }
}

/// Cuts `rows`, read with one row more than a page holds (`limit`), to
/// the page; says whether another page follows.
pub fn keep_first<T>(rows: &mut Vec<T>, limit: i64) -> bool {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > limit;
    rows.truncate(limit);
    more
}

/// Whether a read or write should bring the workflow's history back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithHistory {
    /// The newest entries, at most the store's `history_inline`.
    Yes,
    No,
}

impl WithHistory {
    /// How much history to read: `inline`, or none.
    pub fn inline(self, inline: InlineHistory) -> InlineHistory {
        match self {
            WithHistory::Yes => inline,
            WithHistory::No => InlineHistory::NONE,
        }
    }
}

/// How much of its history a record embeds: its newest `entries` entries,
/// fewer when they would not start within `bytes` of the newest as the API
/// renders them (so the newest is always there, and at most one entry goes
/// past the budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineHistory {
    pub entries: i32,
    pub bytes: i32,
}

impl InlineHistory {
    pub const NONE: Self = Self {
        entries: 0,
        bytes: 0,
    };

    pub fn new(entries: u32, bytes: u32) -> Self {
        Self {
            entries: i32::try_from(entries).unwrap_or(i32::MAX),
            bytes: i32::try_from(bytes).unwrap_or(i32::MAX),
        }
    }
}

/// Connections of a backend's pools, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub in_use: u32,
    pub idle: u32,
    /// PostgreSQL: open connections that every request's one-call reads
    /// share (`postgres/pipelined.rs`); they are neither in use nor idle.
    pub shared: u32,
}

/// How a distributed database (Citus) holds the schema: what `migrate`
/// and the start-up log report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Distribution {
    /// Active worker nodes.
    pub workers: i64,
    /// Shards of each distributed table (they are co-located).
    pub shards: i64,
    /// The column every distributed table is distributed by.
    pub distributed_by: String,
    pub distributed: Vec<String>,
    /// Tables every node holds whole.
    pub reference: Vec<String>,
}

/// A workflow a replica changed, and its version after the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub version: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Connections open now, across the backend's pools.
    fn pool_stats(&self) -> PoolStats;

    /// How the schema is distributed over a cluster; `None` where one
    /// server holds it all.
    fn distribution(&self) -> Option<Distribution> {
        None
    }

    /// Waits for checked-out connections to return, then closes the pools.
    async fn close(&self);

    /// Tells the other replicas on this database of a change this one
    /// wrote, soon and with others (PostgreSQL: one `NOTIFY` for many).
    /// Nothing where one server owns the database (SQLite). Best effort:
    /// readers poll as well.
    fn tell_replicas(&self, _change: Changed) {}

    /// Hands the changes other replicas tell of to `to` until `stop` says
    /// so, listening again after a lost connection; returns at once where
    /// there are no other replicas (SQLite).
    async fn hear_replicas(
        &self,
        _to: tokio::sync::broadcast::Sender<Changed>,
        _stop: tokio::sync::watch::Receiver<bool>,
    ) {
    }

    /// How many workflows there are in each status, across all tenants
    /// (for metrics; never for a request).
    async fn count_by_status(&self) -> Result<Vec<(Status, i64)>, StoreError>;

    /// Stores a new workflow with the history it was created with; with a
    /// key (claimed by [`Store::claim_idempotency_key`]), also records that
    /// the key's request made this workflow, in the same transaction.
    /// `scope` is the request's (the workflow's tenant and instance).
    async fn insert_workflow(
        &self,
        scope: Scope,
        workflow: &Workflow,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError>;

    /// Looks up `key` of an instance and, when it is free, claims it as in
    /// flight, atomically; the rules are
    /// [`hydracore_domain::idempotency::decide`]. `scope` is the request's.
    async fn claim_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &IdempotencyKey,
        fingerprint: &[u8],
    ) -> Result<Claim, StoreError>;

    /// Marks a claimed key done: the change it guards landed on
    /// `workflow_id` and was answered `answer`, which a retry gets back.
    async fn complete_idempotency_key(
        &self,
        scope: Scope,
        instance_id: Uuid,
        key: &IdempotencyKey,
        workflow_id: Uuid,
        answer: &serde_json::Value,
    ) -> Result<(), StoreError>;

    /// Frees a claimed key whose create or change failed, so that a retry
    /// can run.
    async fn release_idempotency_key(
        &self,
        tenant_id: Uuid,
        instance_id: Uuid,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError>;

    /// Up to `limit` workflows due for the sweeper's `job` at `now`,
    /// across tenants, soonest first: each with the scope of its instance.
    async fn due(
        &self,
        job: SweepJob,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(Scope, Uuid)>, StoreError>;

    /// Deletes up to `limit` idempotency keys older than their 24 hours.
    async fn purge_idempotency_keys(&self, limit: u32) -> Result<u64, StoreError>;

    async fn get_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        history: WithHistory,
    ) -> Result<Option<Workflow>, StoreError>;

    /// Newest first, ties by id descending; each record with its history.
    async fn list_workflows(
        &self,
        scope: Scope,
        query: &ListQuery,
    ) -> Result<WorkflowPage, StoreError>;

    /// The entries of workflow `id`'s history with a `seq` above
    /// `page.after`, at most `page.limit` and within the store's
    /// `history_page_bytes`, oldest first; `None` when there is no such
    /// workflow in `scope`.
    async fn history_page(
        &self,
        scope: Scope,
        id: Uuid,
        page: HistoryQuery,
    ) -> Result<Option<HistorySlice>, StoreError>;

    /// Up to `limit` of the scope's suspensions that match `query` at
    /// `now`, in the inbox's order (due first, none last; then the oldest
    /// suspension), after the query's cursor.
    async fn list_inbox(
        &self,
        scope: Scope,
        query: &InboxQuery,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<Workflow>, StoreError>;

    /// The scope's suspensions counted by assignee and by whether they are
    /// overdue at `now`.
    async fn count_inbox(
        &self,
        scope: Scope,
        now: Timestamp,
    ) -> Result<Vec<InboxCount>, StoreError>;

    /// Up to `query.limit` of the scope's events after `query.after`, in
    /// order, that `query` filters for; only events no transaction still
    /// running can precede, so that none is passed over. `None` when
    /// events after `query.after` may have been purged (read in the same
    /// snapshot as the page).
    async fn list_events(
        &self,
        scope: Scope,
        query: &EventQuery,
    ) -> Result<Option<Vec<Event>>, StoreError>;

    /// Where the tenant's events stand now: its newest event a page could
    /// list (or the purge mark, if that is later). Reading on from here
    /// gives every event to come and none of the past.
    async fn events_now(&self, tenant_id: Uuid) -> Result<Option<EventId>, StoreError>;

    /// Deletes up to `limit` events older than `before`, oldest first,
    /// across tenants; returns how many.
    async fn purge_events(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;

    /// The scope's newest `limit` suspensions, newest first.
    async fn list_suspended(
        &self,
        scope: Scope,
        limit: u32,
    ) -> Result<Vec<SuspendedWorkflow>, StoreError>;

    /// Runs `rule` on the stored workflow and writes what it returns (the
    /// record and its history entry) as one write, made against the record
    /// the rule saw: concurrent changes of one workflow apply one after
    /// the other, each to the previous result.
    async fn change_workflow(
        &self,
        scope: Scope,
        id: Uuid,
        rule: Rule,
        history: WithHistory,
    ) -> Result<ChangeOutcome, StoreError>;

    async fn create_instance(&self, instance: &Instance) -> Result<(), StoreError>;
    async fn get_instance(&self, id: Uuid) -> Result<Option<Instance>, StoreError>;
    async fn list_instances(&self) -> Result<Vec<Instance>, StoreError>;

    async fn create_credential(&self, credential: &NewCredential) -> Result<(), StoreError>;
    /// The credential whose key hashes to `key_hash`, revoked or not. May
    /// come from a cache: every method taking a [`Scope`] whose
    /// `credential_id` is set then answers [`StoreError::KeyRevoked`] if that
    /// credential has been revoked since, checked in its own transaction.
    async fn find_credential(&self, key_hash: &[u8]) -> Result<Option<Credential>, StoreError>;
    async fn list_credentials(&self) -> Result<Vec<Credential>, StoreError>;
    /// Marks a credential revoked; `false` when there is no such credential.
    async fn revoke_credential(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Stores a new webhook endpoint of the scope's tenant with its cursor
    /// at the events to come (see [`webhooks`]); `false`, storing nothing,
    /// when the tenant already has `max_per_tenant`.
    async fn insert_webhook(
        &self,
        scope: Scope,
        webhook: &Webhook,
        secret: &WebhookSecret,
        max_per_tenant: u32,
    ) -> Result<bool, StoreError>;
    async fn get_webhook(&self, scope: Scope, id: Uuid) -> Result<Option<Webhook>, StoreError>;
    /// Oldest first.
    async fn list_webhooks(&self, scope: Scope) -> Result<Vec<Webhook>, StoreError>;
    /// Writes the endpoint's url, types, description and state; `false`
    /// when there is no such endpoint.
    async fn update_webhook(&self, scope: Scope, webhook: &Webhook) -> Result<bool, StoreError>;
    /// Deletes the endpoint and its deliveries.
    async fn delete_webhook(&self, scope: Scope, id: Uuid) -> Result<bool, StoreError>;
    async fn set_webhook_secret(
        &self,
        scope: Scope,
        id: Uuid,
        secret: &WebhookSecret,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// The endpoint's newest `limit` deliveries, newest first.
    async fn list_deliveries(
        &self,
        scope: Scope,
        webhook_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Makes the delivery pending again, due at `now` and retried for a
    /// new period from `now`; `None` when there is no such delivery of the
    /// endpoint.
    async fn retry_delivery(
        &self,
        scope: Scope,
        webhook_id: Uuid,
        delivery_id: Uuid,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Across tenants: for each enabled endpoint, turns up to `limit` of
    /// the events past its cursor that no running transaction can precede
    /// into deliveries (those of its types, created since the endpoint),
    /// and moves the cursor past them, in one transaction per endpoint.
    /// Returns how many events the cursors moved past.
    async fn enqueue_deliveries(&self, limit: u32) -> Result<u64, StoreError>;
    /// Across tenants: up to `limit` pending deliveries due at `now`, of
    /// enabled endpoints, none behind an earlier pending delivery of its
    /// workflow to the same endpoint; each counted as attempted and not
    /// due again before `lease_until`. Replicas never claim the same one.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// Writes an attempt's result to its delivery and its endpoint.
    async fn record_attempt(&self, report: &AttemptReport) -> Result<(), StoreError>;
    /// Deletes up to `limit` delivered or failed deliveries created
    /// before `before`, across tenants.
    async fn purge_deliveries(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;

    /// Keeps a web page token (`ui_tokens`), in its tenant.
    async fn insert_ui_token(&self, token: &UiToken) -> Result<(), StoreError>;
    /// The scope's token with this hash, live or not.
    async fn get_ui_token(&self, scope: Scope, hash: &[u8]) -> Result<Option<UiToken>, StoreError>;
    /// Ends the token if it is live at `now`; `true` for the one call that
    /// did, so that a single-use token is used once however many race.
    async fn end_ui_token(
        &self,
        scope: Scope,
        hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Deletes up to `limit` tokens that expired before `before`, in every
    /// tenant.
    async fn purge_ui_tokens(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
}

/// The JSON an entry is stored as, the same the API answers.
fn render_entry(entry: &HistoryEntry) -> Result<String, StoreError> {
    serde_json::to_string(entry).map_err(|e| StoreError::Corrupt(format!("history entry: {e}")))
}

/// Rows of `SELECT status, COUNT(*) ... GROUP BY status`, parsed.
fn status_counts(rows: Vec<(String, i64)>) -> Result<Vec<(Status, i64)>, StoreError> {
    rows.into_iter()
        .map(|(status, count)| {
            Status::parse(&status)
                .map(|s| (s, count))
                .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))
        })
        .collect()
}

/// Connection settings common to the backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Reader threads (SQLite, at most one per CPU), or the pool's
    /// connections (PostgreSQL; as many again carry the one-call reads).
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: std::time::Duration,
    /// PostgreSQL: how long a read on a shared (pipelined) connection may
    /// go unanswered before it is refused (503) and the connection given
    /// up. Those reads answer in milliseconds; a connection that stops
    /// answering (a socket left half-open by a failover) must not hold
    /// every read sent after it.
    pub read_call_timeout: std::time::Duration,
    /// PostgreSQL: the CA certificates (PEM) that sign the server's
    /// certificate, for `sslmode=verify-ca`/`verify-full`, when the URL
    /// names none (`sslrootcert`); else the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// SQLite: how a commit reaches the disk.
    pub sqlite_sync: SqliteSync,
    /// A record embeds at most this many of its newest history entries;
    /// the history endpoint pages through all of them.
    pub history_inline: u32,
    /// ... and only those that start within this many bytes of the newest
    /// (as the API renders them), so that a record stays small whatever
    /// its entries hold.
    pub history_inline_bytes: u32,
    /// A page of the history endpoint holds only the entries that start
    /// within this many bytes of its first.
    pub history_page_bytes: u32,
    /// PostgreSQL: the longest any statement of the service may run, and
    /// the longest a transaction may sit idle, before the server ends it
    /// (`statement_timeout`, `idle_in_transaction_session_timeout`, sent
    /// as connection options); `None` sends none (a pooler that refuses
    /// startup options). Migrations are not bounded. Behind a transaction
    /// pooler (the URL's `pooler=transaction`) they are set in each
    /// request transaction instead (`SET LOCAL`).
    pub statement_timeout: Option<std::time::Duration>,
    /// PostgreSQL: where this replica `LISTEN`s for the others' changes,
    /// when not on the database URL: a transaction pooler cannot carry a
    /// `LISTEN`. `None` listens on the database URL, or, behind a
    /// transaction pooler, not at all (readers poll).
    pub listen_url: Option<String>,
}

/// When an answered SQLite write is on disk (SQLite's `synchronous`, in
/// WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// Every commit is synced before it is answered: an acknowledged write
    /// survives a process crash and a power loss. The writer commits
    /// writes in batches, so that is one sync per batch.
    #[default]
    Full,
    /// Commits are synced at checkpoints only: a process crash loses
    /// nothing, a power loss may lose the last answered writes.
    Normal,
}

impl SqliteSync {
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Some(SqliteSync::Full),
            "normal" => Some(SqliteSync::Normal),
            _ => None,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: std::time::Duration::from_secs(5),
            read_call_timeout: std::time::Duration::from_secs(10),
            ca_file: None,
            sqlite_sync: SqliteSync::default(),
            history_inline: 100,
            history_inline_bytes: 256 * 1024,
            history_page_bytes: 1024 * 1024,
            statement_timeout: Some(std::time::Duration::from_secs(10)),
            listen_url: None,
        }
    }
}

/// Opens (creating and migrating as needed) the database `url` names:
/// `postgres://...` / `postgresql://...`, or `sqlite:PATH` (or a bare path).
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PgStore::connect(url, options).await?;
        return Ok(Arc::new(store));
    }
    let store = sqlite::SqliteStore::connect(url, options).await?;
    Ok(Arc::new(store))
}
