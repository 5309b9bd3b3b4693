//! Workflow queries on PostgreSQL.
//!
//! `create`, `get`, a change's write and `list_one_status` are one call
//! each of a request function (migration 0001), made outside any
//! transaction: the function checks the request's key and sets the role
//! and tenant for its own implicit transaction. `get` and
//! `list_one_status` go on a pipelined connection (`pipelined`), the
//! others on a pooled one; on Citus all of them go on a pooled one, each
//! inside a request transaction (`session::call`). `list` and
//! `list_suspended` are plain SQL run
//! inside a request transaction the caller opened (role and tenant already
//! set). The explicit tenant conditions duplicate row-level security on
//! purpose, so that isolation never rests on one mechanism alone.

use hydracore_domain::decision::InboxQuery;
use hydracore_domain::event::{Event, EventId, EventQuery, EventType};
use hydracore_domain::idempotency::IdempotencyKey;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{HistoryQuery, ListQuery};
use hydracore_domain::transition::Change;
use hydracore_domain::{Scope, Status, Timestamp, Workflow};
use uuid::Uuid;

use super::last_written::LastWritten;
use super::pipelined::{Call, Pipelined, Reader};
use super::pool::Client;
use super::rows::{
    get as column, history_column, rendered, workflow_with_history, EntryRecord, EventRecord,
    WorkflowRecord, HISTORY,
};
use super::session::{self, Access, Cluster, Mode};
use crate::filters::{
    counts_answer, push_cursor, push_event_filters, push_inbox, push_inbox_counts,
    push_list_filters, push_scope, PgQuery,
};
use crate::rows::{EVENT_COLUMNS, WORKFLOW_COLUMNS};
use crate::{
    ChangeOutcome, HistorySlice, InboxCount, InlineHistory, Rule, StoreError, SweepJob,
    WorkflowPage,
};

/// `hydracore_create_workflow`: the workflow, the entries it was created
/// with and, with a key, that key's claim completed.
const CREATE: &str = "SELECT hydracore_create_workflow(p_tenant_id => $1, \
    p_instance_id => $2, p_credential_id => $3, p_workflow => $4, p_history => $5, \
    p_idempotency_key => $6, p_event => $7)";

/// The workflow, the entries it was created with and, with
/// `idempotency_key`, that key's claim completed: one call, outside any
/// transaction.
pub async fn create(
    conn: &Client,
    scope: Scope,
    w: &Workflow,
    idempotency_key: Option<&IdempotencyKey>,
) -> Result<(), StoreError> {
    // The call enters the request's tenant and writes the rows in it, so
    // the workflow must be of that tenant: anything else is a bug here, not
    // a request another tenant could make.
    if w.tenant_id != scope.tenant_id {
        return Err(StoreError::Corrupt(format!(
            "workflow {} is of another tenant than its create request",
            w.id
        )));
    }
    let rendered = w
        .history
        .iter()
        .map(crate::render_entry)
        .collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<EntryRecord<'_>> = w
        .history
        .iter()
        .zip(&rendered)
        .map(|(entry, rendered)| EntryRecord::new(entry, rendered))
        .collect();
    let Some(first) = w.history.first() else {
        return Err(StoreError::Corrupt(format!(
            "workflow {} has no created entry",
            w.id
        )));
    };
    let created_event = EventRecord::new(EventType::Created, w, first);
    conn.execute(
        CREATE,
        &[
            &scope.tenant_id,
            &w.instance_id,
            &scope.credential_id,
            &WorkflowRecord::from(w),
            &entries,
            &idempotency_key.map(IdempotencyKey::as_str),
            &created_event,
        ],
    )
    .await?;
    Ok(())
}

/// How a change's write knows the record it was made from: by its version
/// and the instant of the write that made it (the migration's
/// `hydracore_change_workflow` says when the version alone is not enough).
struct Unchanged {
    version: i64,
    updated_at: Timestamp,
}

/// What [`write_change`] found.
enum Written {
    /// The change landed; with the history wanted, the entries before it
    /// (joined as [`history_column`] joins them; `None` if there are none).
    Landed(Option<String>),
    /// The workflow was no longer the record the change was made from.
    Stale,
}

/// `hydracore_change_workflow`.
const CHANGE: &str = "SELECT changed, earlier FROM hydracore_change_workflow(\
    p_tenant_id => $1, p_instance_id => $2, p_credential_id => $3, \
    p_expected_version => $4, p_expected_updated_at => $5, p_workflow => $6, p_entry => $7, \
    p_history => $8, p_history_bytes => $9, p_event => $10)";

/// Writes back every column a command may change and appends `entry`, if
/// the workflow is still the record the change was made from (`from`):
/// one call, outside any transaction.
async fn write_change(
    conn: &Client,
    scope: Scope,
    from: &Unchanged,
    change: &Change,
    rendered_entry: &str,
    history: InlineHistory,
) -> Result<Written, StoreError> {
    let w = &change.workflow;
    let row = conn
        .query_one(
            CHANGE,
            &[
                &w.tenant_id,
                &scope.instance_id,
                &scope.credential_id,
                &from.version,
                &from.updated_at.as_datetime(),
                &WorkflowRecord::from(w),
                &EntryRecord::new(&change.entry, rendered_entry),
                &history.entries,
                &history.bytes,
                &EventRecord::new(change.event, w, &change.entry),
            ],
        )
        .await?;
    Ok(if column(&row, 0)? {
        Written::Landed(column(&row, 1)?)
    } else {
        Written::Stale
    })
}

/// `hydracore_workflow`: its plans (one with the history, one without)
/// stay cached on the connection.
pub const GET: &str = "SELECT * FROM hydracore_workflow($1, $2, $3, $4, $5, $6)";

/// Runs `op`, one call of a read function, in a request transaction on
/// `conn`: how reads go on Citus (`session::call`).
pub async fn read_in_transaction<T>(
    conn: &Client,
    scope: Scope,
    op: impl AsyncFnOnce(Reader<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    session::call(
        conn,
        Cluster::Citus,
        Access::Scope(scope),
        Mode::Read,
        async |tx| op(Reader::Pooled(tx)).await,
    )
    .await
}

/// One call of [`GET`].
pub async fn get(
    conn: Reader<'_>,
    scope: Scope,
    id: Uuid,
    history: InlineHistory,
) -> Result<Option<Workflow>, StoreError> {
    conn.query(
        Call::Get,
        &[
            &scope.tenant_id,
            &scope.instance_id,
            &scope.credential_id,
            &id,
            &history.entries,
            &history.bytes,
        ],
    )
    .await?
    .first()
    .map(workflow_with_history)
    .transpose()
}

/// The instance and the status a list is confined to, when nothing else
/// filters it: its total then comes from `workflow_counts`, and the list
/// is one call of [`list_one_status`]. Others run [`list`].
pub fn one_instance_in_one_status(scope: Scope, query: &ListQuery) -> Option<(Uuid, Status)> {
    if !counts_answer(query) {
        return None;
    }
    let instance_id = match (scope.instance_id, query.instance_id) {
        (Some(id), None) | (None, Some(id)) => id,
        (Some(id), Some(filter)) if id == filter => id,
        _ => return None,
    };
    Some((instance_id, query.status?))
}

/// `hydracore_list_workflows`: the key check, the role and tenant, and the
/// page with its total in one statement (one snapshot).
pub const LIST_ONE_STATUS: &str =
    "SELECT * FROM hydracore_list_workflows($1, $2, $3, $4, $5, $6, $7, $8)";

/// Where the total is in a row of [`LIST_ONE_STATUS`]: after the history.
const TOTAL: usize = HISTORY + 1;

/// One call of [`LIST_ONE_STATUS`].
pub async fn list_one_status(
    conn: Reader<'_>,
    scope: Scope,
    (instance_id, status): (Uuid, Status),
    query: &ListQuery,
    history: InlineHistory,
) -> Result<WorkflowPage, StoreError> {
    let rows = conn
        .query(
            Call::ListOneStatus,
            &[
                &scope.tenant_id,
                &instance_id,
                &scope.credential_id,
                &status.as_str(),
                &query.per_page,
                &query.offset(),
                &history.entries,
                &history.bytes,
            ],
        )
        .await?;
    let mut total = 0;
    let mut workflows = Vec::with_capacity(rows.len());
    for row in rows {
        total = column(&row, TOTAL)?;
        // A page past the end is the total's row alone, the rest NULL.
        if column::<Option<Uuid>>(&row, 0)?.is_some() {
            workflows.push(workflow_with_history(&row)?);
        }
    }
    Ok(WorkflowPage::from_rows_and_total(total, workflows, query))
}

/// Callers run this in one snapshot (repeatable read), so the page and its
/// total agree.
pub async fn list(
    conn: &Client,
    scope: Scope,
    query: &ListQuery,
    history: InlineHistory,
) -> Result<WorkflowPage, StoreError> {
    // `workflow_counts` answers the filters it has columns for, exactly
    // and in a few rows; other filters count the matches.
    let mut count = PgQuery::new(if counts_answer(query) {
        "SELECT COALESCE(SUM(n), 0)::bigint FROM workflow_counts"
    } else {
        "SELECT COUNT(*) FROM workflows"
    });
    push_list_filters(&mut count, scope, query);
    let total: i64 = column(&conn.query_one(&count.sql, &count.values()).await?, 0)?;

    let mut select = PgQuery::new(format!("SELECT {WORKFLOW_COLUMNS} FROM workflows"));
    push_list_filters(&mut select, scope, query);
    // LIMIT is written in (an integer, 1 to 100): as a parameter, a cached
    // generic plan must guess it (a tenth of the table) and costs so much
    // more than a plan for LIMIT 20 that PostgreSQL would plan every call
    // afresh; written in, the generic plan is the ordered index scan and
    // is reused. So is the first page's OFFSET 0; deeper pages bind
    // theirs, so that paging does not prepare one statement per page.
    push_cursor(&mut select, query);
    select.push(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        query.per_page + 1
    ));
    match query.offset() {
        0 => select.push(" OFFSET 0"),
        offset => select.push(" OFFSET ").bind(offset),
    };
    // Each row's history is read around the page, not in it: PostgreSQL
    // computes a scan's select list for the rows an OFFSET skips too, so
    // in the page's own select list a deep page would read the history of
    // every row it skips. Per row it is one key range, whatever the
    // planner makes of the table's statistics (a join with the page's ids
    // could be planned as a hash join over the tenant's whole history).
    let tenant = select.param(scope.tenant_id);
    select.sql = format!(
        "SELECT *, {} FROM ({}) AS workflows ORDER BY created_at DESC, id DESC",
        history_column(history, &tenant),
        select.sql
    );
    let workflows = conn
        .query(&select.sql, &select.values())
        .await?
        .iter()
        .map(workflow_with_history)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WorkflowPage::from_rows_and_one_more(
        total, workflows, query,
    ))
}

pub async fn list_suspended(
    conn: &Client,
    scope: Scope,
    limit: u32,
) -> Result<Vec<SuspendedWorkflow>, StoreError> {
    let mut q = PgQuery::new(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE status = 'suspended'"
    ));
    push_scope(&mut q, scope);
    // SQLite sorts NULL last in descending order; PostgreSQL must be told.
    // (workflows_suspended, read backwards, is in this order.)
    q.push(" ORDER BY suspended_at DESC NULLS LAST, id DESC LIMIT ")
        .bind(i64::from(limit));
    conn.query(&q.sql, &q.values())
        .await?
        .iter()
        .map(|row| Ok(crate::rows::workflow(row)?.into()))
        .collect()
}

/// A page of one workflow's history; `None` when the workflow is not in
/// `scope`. In a read-only request transaction (one snapshot).
pub async fn history_page(
    conn: &Client,
    scope: Scope,
    id: Uuid,
    page: HistoryQuery,
    bytes: i32,
) -> Result<Option<HistorySlice>, StoreError> {
    let Some(row) = conn
        .query_opt(
            "SELECT version FROM workflows WHERE tenant_id = $1 AND id = $2 \
             AND ($3::uuid IS NULL OR instance_id = $3)",
            &[&scope.tenant_id, &id, &scope.instance_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let newest: i64 = column(&row, 0)?;
    let entries = conn
        .query(
            &crate::rows::history_page_sql(),
            // The budget is compared with a sum of sizes: a bigint.
            &[
                &scope.tenant_id,
                &id,
                &page.after,
                &page.limit,
                &i64::from(bytes),
            ],
        )
        .await?
        .iter()
        .map(|row| crate::rows::history_entry(row, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(HistorySlice { entries, newest }))
}

/// How long a change may keep starting over because others changed the
/// workflow first. Each lost race is another change landing, so only a
/// workflow changed this often at the same moment runs out; the caller is
/// then told to retry (503). A time rather than a count of attempts, so
/// that a request cannot hold its connection for long whatever the rate.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// One rule on one workflow, as a change runs it.
pub struct Attempt {
    pub scope: Scope,
    pub id: Uuid,
    pub rule: Rule,
    /// The history the answer carries.
    pub history: InlineHistory,
}

impl Attempt {
    /// Reads the workflow, runs the rule and writes the result,
    /// optimistically: the write lands only if the workflow is still the
    /// record read, else all three steps run again on the newer record.
    /// Concurrent changes of one workflow thus still apply one after the
    /// other, each to the previous result. Each step is its own statement
    /// and transaction. When this replica wrote the workflow last, the
    /// first attempt starts from that record instead of a read
    /// (`last_written`). Reads go through `reads`, writes through `conn`.
    pub async fn run(
        &self,
        conn: &Client,
        cluster: Cluster,
        reads: &Pipelined,
        last_written: &LastWritten,
    ) -> Result<ChangeOutcome, StoreError> {
        let Attempt { scope, id, .. } = *self;
        // A record of another instance is not this request's to start
        // from: its read answers 404.
        let mut guess = last_written
            .guess(scope.tenant_id, id)
            .filter(|w| scope.instance_id.is_none_or(|i| i == w.instance_id));
        let deadline = std::time::Instant::now() + RETRY_FOR;
        // The first attempt always runs; later ones while time is left.
        let mut first = true;
        while std::mem::take(&mut first) || std::time::Instant::now() < deadline {
            let guessed = guess.is_some();
            let current = match guess.take() {
                Some(remembered) => remembered,
                None => match self.read(conn, cluster, reads).await? {
                    Some(stored) => stored,
                    None => return Ok(ChangeOutcome::NotFound),
                },
            };
            let from = Unchanged {
                version: current.version,
                updated_at: current.updated_at,
            };
            let mut change = match (self.rule)(current) {
                Ok(change) => change,
                // Whatever a remembered record says against the change is
                // checked again on the stored one, which alone is answered.
                Err(_) if guessed => continue,
                Err(refused) => return Ok(ChangeOutcome::Refused(refused)),
            };
            let rendered_entry = crate::render_entry(&change.entry)?;
            let written = session::call(
                conn,
                cluster,
                Access::Scope(scope),
                Mode::Write,
                async |c| {
                    write_change(c, scope, &from, &change, &rendered_entry, self.history).await
                },
            )
            .await;
            // A write that failed may still have landed: the next change
            // reads.
            let earlier = match written {
                Ok(Written::Landed(earlier)) => earlier,
                Ok(Written::Stale) => {
                    last_written.forget(scope.tenant_id, id);
                    continue;
                }
                Err(e) => {
                    last_written.forget(scope.tenant_id, id);
                    return Err(e);
                }
            };
            last_written.remember(&change.workflow);
            if self.history.entries > 0 {
                let joined = match earlier {
                    Some(earlier) => format!("{earlier},{rendered_entry}"),
                    None => rendered_entry,
                };
                change.workflow.history = rendered(&joined)?;
            }
            return Ok(ChangeOutcome::Changed(Box::new(change)));
        }
        Err(StoreError::Unavailable(format!(
            "workflow {id} kept changing for {RETRY_FOR:?} while one change was being applied"
        )))
    }
}

impl Attempt {
    /// The workflow as stored, without its history: on a pipelined
    /// connection, or on Citus in a transaction on `conn`.
    async fn read(
        &self,
        conn: &Client,
        cluster: Cluster,
        reads: &Pipelined,
    ) -> Result<Option<Workflow>, StoreError> {
        let (scope, id) = (self.scope, self.id);
        let op = async |reader: Reader<'_>| get(reader, scope, id, InlineHistory::NONE).await;
        match cluster {
            Cluster::Single => reads.call(async |c| op(Reader::Pipelined(c)).await).await,
            Cluster::Citus => read_in_transaction(conn, scope, op).await,
        }
    }
}

/// A page of events (see `Store::list_events`); callers run this in a
/// request transaction, whose snapshot's oldest running transaction
/// bounds what is read.
pub async fn list_events(
    conn: &Client,
    scope: Scope,
    query: &EventQuery,
    horizon: i64,
) -> Result<Vec<Event>, StoreError> {
    let mut q = PgQuery::new(format!(
        "SELECT xid::text::bigint, seq, {EVENT_COLUMNS} FROM events"
    ));
    push_event_filters(&mut q, scope, query);
    let EventId(xid, seq) = query.after.unwrap_or_default();
    q.push(" AND (xid, seq) > (")
        .bind(xid.to_string())
        .push("::text::xid8, ")
        .bind(seq);
    q.push(") AND xid < ")
        .bind(horizon.to_string())
        .push("::text::xid8 ORDER BY xid, seq LIMIT ")
        .bind(query.limit);
    conn.query(&q.sql, &q.values())
        .await?
        .iter()
        .map(crate::rows::event)
        .collect()
}

/// The tenant's newest event that a page can list now.
pub async fn newest_event(
    conn: &Client,
    tenant_id: Uuid,
    horizon: i64,
) -> Result<Option<EventId>, StoreError> {
    let statement = "SELECT xid::text::bigint, seq FROM events WHERE tenant_id = $1 \
         AND xid < $2::text::xid8 ORDER BY xid DESC, seq DESC LIMIT 1";
    conn.query_opt(statement, &[&tenant_id, &horizon.to_string()])
        .await?
        .map(|row| Ok(EventId(column(&row, 0)?, column(&row, 1)?)))
        .transpose()
}

/// How far a reader of events may go in the open transaction: to the
/// oldest transaction its snapshot sees running, so that an event that
/// commits later is never passed over. Read in a statement of its own: on
/// Citus a statement that reads events runs on a worker, whose
/// transactions are not the coordinator's that numbered the events.
pub async fn events_horizon(conn: &Client) -> Result<i64, StoreError> {
    let row = conn
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await?;
    column(&row, 0)
}

/// How far events have been purged.
pub async fn events_purged_through(conn: &Client) -> Result<Option<EventId>, StoreError> {
    conn.query_opt("SELECT xid::text::bigint, seq FROM events_purged", &[])
        .await?
        .map(|row| Ok(EventId(column(&row, 0)?, column(&row, 1)?)))
        .transpose()
}

/// Deletes up to `limit` events older than `before` and moves the purge
/// mark past them; callers run this as the login, in a transaction.
pub async fn purge_events(conn: &Client, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
    let before = super::purge::bound(
        conn,
        "SELECT occurred_at FROM events WHERE occurred_at < $1 \
         ORDER BY occurred_at OFFSET $2 LIMIT 1",
        before.as_datetime(),
        limit,
    )
    .await?;
    let delete = "DELETE FROM events WHERE occurred_at < $1 RETURNING xid::text::bigint, seq";
    let gone = conn
        .query(delete, &[&before])
        .await?
        .iter()
        .map(|row| Ok(EventId(column(row, 0)?, column(row, 1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    if let Some(EventId(xid, seq)) = gone.iter().max().copied() {
        conn.execute(
            "INSERT INTO events_purged (xid, seq) VALUES ($1::text::xid8, $2) \
             ON CONFLICT (one) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq \
             WHERE (events_purged.xid, events_purged.seq) < (EXCLUDED.xid, EXCLUDED.seq)",
            &[&xid.to_string(), &seq],
        )
        .await?;
    }
    Ok(gone.len() as u64)
}

/// The inbox's page (see `Store::list_inbox`); callers run this in a
/// request transaction.
pub async fn list_inbox(
    conn: &Client,
    scope: Scope,
    query: &InboxQuery,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<Workflow>, StoreError> {
    let mut q = PgQuery::new(format!("SELECT {WORKFLOW_COLUMNS} FROM workflows"));
    push_inbox(&mut q, scope, query, now, limit);
    conn.query(&q.sql, &q.values())
        .await?
        .iter()
        .map(crate::rows::workflow)
        .collect()
}

/// The inbox's counts (see `Store::count_inbox`); callers run this in a
/// request transaction.
pub async fn count_inbox(
    conn: &Client,
    scope: Scope,
    now: Timestamp,
) -> Result<Vec<InboxCount>, StoreError> {
    let mut q = PgQuery::default();
    push_inbox_counts(&mut q, scope, now);
    conn.query(&q.sql, &q.values())
        .await?
        .iter()
        .map(|row| {
            Ok(InboxCount {
                assigned_to: column(row, 0)?,
                total: column(row, 1)?,
                overdue: column(row, 2)?,
            })
        })
        .collect()
}

/// The workflows due for `job` at `now`, across tenants (as the login),
/// soonest first.
pub async fn due(
    conn: &Client,
    job: SweepJob,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<(Scope, Uuid)>, StoreError> {
    conn.query(&job.select_due(), &[&now.as_datetime(), &i64::from(limit)])
        .await?
        .iter()
        .map(|row| {
            let scope = Scope::instance(column(row, 1)?, column(row, 2)?);
            Ok((scope, column(row, 0)?))
        })
        .collect()
}

pub async fn count_by_status(conn: &Client) -> Result<Vec<(Status, i64)>, StoreError> {
    let rows = conn
        .query(
            "SELECT status, SUM(n)::bigint FROM workflow_counts GROUP BY status",
            &[],
        )
        .await?
        .iter()
        .map(|row| Ok((column(row, 0)?, column(row, 1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    crate::status_counts(rows)
}
