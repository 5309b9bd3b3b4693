//! Workflow queries on PostgreSQL. `list` and `list_suspended` run inside
//! a request transaction opened by the caller (role and tenant already
//! set); `create`, `get`, a change's write and `list_one_status` are one
//! call each of a database function that sets them itself (migrations
//! 0005 to 0009; their definitions now in force are 0010's), outside any
//! transaction; `get` and `list_one_status` on a pipelined connection
//! (`pipelined`), the others on a pooled one. The explicit tenant conditions
//! duplicate row-level security on purpose, so that isolation never rests
//! on one mechanism alone.

use hydracore_domain::idempotency::IdempotencyKey;
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::ListQuery;
use hydracore_domain::transition::{self, Change, Command};
use hydracore_domain::{History, HistoryEntry, Scope, Status, Timestamp, Workflow};
use sqlx::query_builder::Separated;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::last_written::LastWritten;
use super::pipelined::{Conn, Pipelined};
use super::rows::{datetime, json_param, rendered, WorkflowRow, HISTORY_COLUMN, WORKFLOW_COLUMNS};
use crate::filters::{counts_answer, push_list_filters, push_scope};
use crate::{StoreError, WithHistory, WorkflowPage};

/// The workflow, the entries it was created with and, with
/// `idempotency_key`, that key's claim completed: one call of
/// `hydracore_create_workflow` (migration 0007), outside any transaction.
pub async fn create(
    conn: &mut PgConnection,
    scope: Scope,
    w: &Workflow,
    idempotency_key: Option<&IdempotencyKey>,
) -> Result<(), StoreError> {
    // A new workflow carries the entries it was created with; a rendered
    // history only ever comes out of storage.
    let History::Entries(entries) = &w.history else {
        return Err(StoreError::Corrupt(
            "a new workflow must carry its history entries".into(),
        ));
    };
    // The call enters the request's tenant and writes the rows in it, so
    // the workflow must be of that tenant: anything else is a bug here, not
    // a request another tenant could make.
    if w.tenant_id != scope.tenant_id {
        return Err(StoreError::Corrupt(format!(
            "workflow {} is of another tenant than its create request",
            w.id
        )));
    }
    let rendered = entries
        .iter()
        .map(crate::render_entry)
        .collect::<Result<Vec<_>, _>>()?;
    let column = |f: fn(&HistoryEntry) -> Option<&str>| entries.iter().map(f).collect::<Vec<_>>();
    let mut q = QueryBuilder::<Postgres>::new("SELECT hydracore_create_workflow(");
    {
        let mut args = q.separated(", ");
        args.push_bind(scope.tenant_id)
            .push_bind(w.instance_id)
            .push_bind(scope.credential_id)
            .push_bind(w.id)
            .push_bind(w.customer_id)
            .push_bind(w.workflow_type.as_str())
            .push_bind(&w.title)
            .push_bind(&w.reference)
            .push_bind(w.created_at.as_datetime());
        push_changeable(&mut args, w);
        args.push_bind(entries.iter().map(|e| e.seq).collect::<Vec<_>>())
            .push_bind(
                entries
                    .iter()
                    .map(|e| e.at.as_datetime())
                    .collect::<Vec<_>>(),
            )
            .push_bind(column(|e| Some(&e.action)))
            .push_bind(
                entries
                    .iter()
                    .map(|e| json_param(&e.action_detail))
                    .collect::<Vec<_>>(),
            )
            .push_bind(column(|e| e.actor.as_deref()))
            .push_bind(column(|e| e.from_status.map(Status::as_str)))
            .push_bind(column(|e| e.to_status.map(Status::as_str)))
            .push_bind(column(|e| e.from_stage.as_deref()))
            .push_bind(column(|e| e.to_stage.as_deref()))
            .push_bind(rendered)
            .push_bind(idempotency_key.map(IdempotencyKey::as_str));
    }
    q.push(")");
    q.build().execute(conn).await?;
    Ok(())
}

/// The values a command may change, in the order of the parameters of
/// `hydracore_change_workflow` and `hydracore_create_workflow` (`status`
/// .. `version`).
fn push_changeable<'args>(
    args: &mut Separated<'_, 'args, Postgres, &'static str>,
    w: &'args Workflow,
) {
    args.push_bind(w.status.as_str())
        .push_bind(&w.stage)
        .push_bind(&w.assigned_to)
        .push_bind(w.approver_id)
        .push_bind(w.escalation_level)
        .push_bind(Json(&w.workflow_state))
        .push_bind(&w.suspended_step)
        .push_bind(json_param(&w.suspend_payload))
        .push_bind(datetime(w.suspended_at))
        .push_bind(w.updated_at.as_datetime())
        .push_bind(datetime(w.last_action_at))
        .push_bind(datetime(w.next_action_at))
        .push_bind(datetime(w.expires_at))
        .push_bind(datetime(w.completed_at))
        .push_bind(w.version);
}

/// A history entry after its workflow's keys (`seq` .. `entry`), in the
/// order of `workflow_history`'s columns and of the change function's
/// parameters.
fn push_entry<'args>(
    args: &mut Separated<'_, 'args, Postgres, &'static str>,
    e: &'args HistoryEntry,
    rendered: &'args str,
) {
    args.push_bind(e.seq)
        .push_bind(e.at.as_datetime())
        .push_bind(&e.action)
        .push_bind(json_param(&e.action_detail))
        .push_bind(&e.actor)
        .push_bind(e.from_status.map(Status::as_str))
        .push_bind(e.to_status.map(Status::as_str))
        .push_bind(&e.from_stage)
        .push_bind(&e.to_stage)
        .push_bind(rendered);
}

/// How a change's write knows the record it was made from: by its version
/// and the instant of the write that made it (migration 0009 says when
/// the version alone is not enough).
struct Unchanged {
    version: i64,
    updated_at: Timestamp,
}

/// What [`write_change`] found.
enum Written {
    /// The change landed; with the history wanted, the entries before it
    /// (joined as [`HISTORY_COLUMN`] joins them; `None` if there are none).
    Landed(Option<String>),
    /// The workflow was no longer at the version the change was made from.
    Stale,
}

/// Writes back every column a command may change and appends `entry`, if
/// the workflow is still the record the change was made from (`from`: its
/// version and `updated_at`): one call of `hydracore_change_workflow`
/// (migration 0009).
async fn write_change(
    conn: &mut PgConnection,
    scope: Scope,
    from: &Unchanged,
    w: &Workflow,
    entry: &HistoryEntry,
    rendered_entry: &str,
    history: WithHistory,
) -> Result<Written, StoreError> {
    let mut q =
        QueryBuilder::<Postgres>::new("SELECT changed, earlier FROM hydracore_change_workflow(");
    {
        let mut args = q.separated(", ");
        args.push_bind(w.tenant_id)
            .push_bind(scope.instance_id)
            .push_bind(scope.credential_id)
            .push_bind(w.id)
            .push_bind(from.version)
            .push_bind(from.updated_at.as_datetime());
        push_changeable(&mut args, w);
        push_entry(&mut args, entry, rendered_entry);
        args.push_bind(history == WithHistory::Yes);
    }
    q.push(")");
    let (changed, earlier): (bool, Option<String>) = q.build_query_as().fetch_one(conn).await?;
    Ok(if changed {
        Written::Landed(earlier)
    } else {
        Written::Stale
    })
}

/// `hydracore_workflow` (migrations 0005, 0006, 0010): it checks the
/// request's key, switches to the application role and sets the tenant
/// for its own implicit transaction, and its plans (one with the history,
/// one without) stay cached on the connection.
pub const GET: &str = "SELECT * FROM hydracore_workflow($1, $2, $3, $4, $5)";

/// One call of [`GET`] on a pipelined connection.
pub async fn get(
    conn: &Conn,
    scope: Scope,
    id: Uuid,
    history: WithHistory,
) -> Result<Option<Workflow>, StoreError> {
    conn.client
        .query_opt(
            &conn.get,
            &[
                &scope.tenant_id,
                &scope.instance_id,
                &scope.credential_id,
                &id,
                &(history == WithHistory::Yes),
            ],
        )
        .await?
        .map(|row| WorkflowRow::from_pipelined(&row)?.into_domain())
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

/// `hydracore_list_workflows` (migrations 0008, 0010): the key check, the
/// role and tenant, and the page with its total in one statement (one
/// snapshot).
pub const LIST_ONE_STATUS: &str = "SELECT * FROM hydracore_list_workflows($1, $2, $3, $4, $5, $6)";

/// One call of [`LIST_ONE_STATUS`] on a pipelined connection.
pub async fn list_one_status(
    conn: &Conn,
    scope: Scope,
    (instance_id, status): (Uuid, Status),
    query: &ListQuery,
) -> Result<WorkflowPage, StoreError> {
    let rows = conn
        .client
        .query(
            &conn.list_one_status,
            &[
                &scope.tenant_id,
                &instance_id,
                &scope.credential_id,
                &status.as_str(),
                &query.per_page,
                &query.offset(),
            ],
        )
        .await?;
    let mut page = WorkflowPage {
        total: 0,
        workflows: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        page.total = row.try_get("total")?;
        // A page past the end is the total's row alone, the rest NULL.
        if row.try_get::<_, Option<Uuid>>("id")?.is_some() {
            page.workflows
                .push(WorkflowRow::from_pipelined(&row)?.into_domain()?);
        }
    }
    Ok(page)
}

/// Callers run this in one snapshot (repeatable read), so the page and its
/// total agree.
pub async fn list(
    conn: &mut PgConnection,
    scope: Scope,
    query: &ListQuery,
) -> Result<WorkflowPage, StoreError> {
    // `workflow_counts` (migration 0004) answers the filters it has columns
    // for, exactly and in a few rows; other filters count the matches.
    let mut count = QueryBuilder::<Postgres>::new(if counts_answer(query) {
        "SELECT COALESCE(SUM(n), 0)::bigint FROM workflow_counts"
    } else {
        "SELECT COUNT(*) FROM workflows"
    });
    push_list_filters(&mut count, scope, query);
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

    let mut select = QueryBuilder::<Postgres>::new(format!(
        "SELECT {WORKFLOW_COLUMNS}, {HISTORY_COLUMN} FROM workflows"
    ));
    push_list_filters(&mut select, scope, query);
    // LIMIT is written in (an integer, 1 to 100): as a parameter, a cached
    // generic plan must guess it (a tenth of the table) and costs so much
    // more than a plan for LIMIT 20 that PostgreSQL plans every call afresh
    // (a sixth of its time under load); written in, the generic plan is the
    // ordered index scan and is reused. So is the first page's OFFSET 0;
    // deeper pages bind theirs, so that paging does not fill sqlx's
    // statement cache with one statement per page.
    select.push(format_args!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        query.per_page
    ));
    match query.offset() {
        0 => select.push(" OFFSET 0"),
        offset => select.push(" OFFSET ").push_bind(offset),
    };
    // Each row's history is a subquery of the row (`HISTORY_COLUMN`): run
    // for the page's rows only, one key range each, whatever the planner
    // makes of the table's statistics. (A join with the page's ids could be
    // planned as a hash join over the whole tenant's history.)
    let rows = select.build().fetch_all(&mut *conn).await?;
    let workflows = rows
        .iter()
        .map(|row| WorkflowRow::from_pool(row, true)?.into_domain())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WorkflowPage { total, workflows })
}

pub async fn list_suspended(
    conn: &mut PgConnection,
    scope: Scope,
) -> Result<Vec<SuspendedWorkflow>, StoreError> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE status = 'suspended'"
    ));
    push_scope(&mut q, scope);
    // SQLite sorts NULL first in ascending order; PostgreSQL must be told.
    q.push(" ORDER BY suspended_at ASC NULLS FIRST, id ASC");
    let rows = q.build().fetch_all(conn).await?;
    rows.iter()
        .map(|row| Ok(WorkflowRow::from_pool(row, false)?.into_domain()?.into()))
        .collect()
}

/// How often a change starts over because others changed the workflow
/// first. Each lost race is another change landing, so only a workflow
/// changed this often at the same moment runs out; the caller is then told
/// to retry (503).
const MAX_ATTEMPTS: usize = 1_000;

/// One command on one workflow, as a request and the sweeper make it.
pub struct Attempt<'a> {
    pub scope: Scope,
    pub id: Uuid,
    pub command: &'a Command,
    pub actor: &'a str,
    pub if_match: Option<&'a IfMatch>,
    pub history: WithHistory,
}

impl Attempt<'_> {
    /// Reads, checks and changes the workflow, optimistically: the write
    /// lands only if the workflow is still the record read, else all three
    /// steps run again on the newer record. Concurrent commands on one
    /// workflow thus still apply one after the other, each to the previous
    /// result. Each step is its own statement and transaction. When this
    /// replica wrote the workflow last, the first attempt starts from that
    /// record instead of a read (`last_written`).
    pub async fn change(
        &self,
        conn: &mut PgConnection,
        reads: &Pipelined,
        last_written: &LastWritten,
    ) -> Result<Change, StoreError> {
        // A record of another instance is not this request's to start
        // from: its read answers 404.
        let guess = last_written
            .guess(self.scope.tenant_id, self.id)
            .filter(|w| self.scope.instance_id.is_none_or(|i| i == w.instance_id));
        self.run(conn, reads, guess, last_written, |_| true)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// [`Attempt::change`], starting from `guess` if given, as long as
    /// each record read is `wanted`; `None` once one is not. Reads go
    /// through `reads`, writes through `conn`.
    async fn run(
        &self,
        conn: &mut PgConnection,
        reads: &Pipelined,
        mut guess: Option<Workflow>,
        last_written: &LastWritten,
        wanted: impl Fn(&Workflow) -> bool,
    ) -> Result<Option<Change>, StoreError> {
        let Attempt { scope, id, .. } = *self;
        for _ in 0..MAX_ATTEMPTS {
            let guessed = guess.is_some();
            let current = match guess.take() {
                Some(remembered) => remembered,
                None => reads
                    .call(async |c| get(c, scope, id, WithHistory::No).await)
                    .await?
                    .ok_or(StoreError::NotFound)?,
            };
            let from = Unchanged {
                version: current.version,
                updated_at: current.updated_at,
            };
            let applied = wanted(&current).then(|| {
                transition::apply(
                    current,
                    self.command,
                    self.actor,
                    self.if_match,
                    Timestamp::now(),
                )
            });
            let mut change = match applied {
                Some(Ok(change)) => change,
                // Whatever a remembered record says against the command is
                // checked again on the stored one, which alone is answered.
                _ if guessed => continue,
                None => return Ok(None),
                Some(Err(refused)) => return Err(refused.into()),
            };
            let rendered_entry = crate::render_entry(&change.entry)?;
            let written = write_change(
                conn,
                scope,
                &from,
                &change.workflow,
                &change.entry,
                &rendered_entry,
                self.history,
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
            if self.history == WithHistory::Yes {
                let joined = match earlier {
                    Some(earlier) => format!("{earlier},{rendered_entry}"),
                    None => rendered_entry,
                };
                change.workflow.history = rendered(&joined)?;
            }
            return Ok(Some(change));
        }
        Err(StoreError::Unavailable(format!(
            "workflow {id} changed {MAX_ATTEMPTS} times while one change was being applied"
        )))
    }
}

/// Expires up to `limit` overdue live workflows, each in a change of its
/// own (the login picks them across tenants; each change runs as the
/// application role in the workflow's tenant). Sweepers of several
/// replicas may pick the same workflow: the version check lets one expire
/// it, and the other then finds it no longer due.
pub async fn expire_due(
    conn: &mut PgConnection,
    reads: &Pipelined,
    limit: u32,
    last_written: &LastWritten,
) -> Result<u64, StoreError> {
    // The server's clock decides, in the query and in the recheck alike.
    let now = Timestamp::now();
    let due: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, tenant_id, instance_id FROM workflows \
         WHERE expires_at IS NOT NULL AND expires_at <= $1 \
         AND status NOT IN ('completed', 'expired', 'cancelled', 'failed') \
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now.as_datetime())
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let mut expired = 0;
    for (id, tenant_id, instance_id) in due {
        let still_due =
            |w: &Workflow| !w.status.is_terminal() && w.expires_at.is_some_and(|at| at <= now);
        let attempt = Attempt {
            scope: Scope::instance(tenant_id, instance_id),
            id,
            command: &Command::Expire,
            actor: transition::SYSTEM_ACTOR,
            if_match: None,
            history: WithHistory::No,
        };
        // Always from a read: the sweeper's list is already the database's.
        match attempt
            .run(conn, reads, None, last_written, still_due)
            .await
        {
            Ok(Some(_)) => expired += 1,
            Ok(None) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}

pub async fn count_by_status(conn: &mut PgConnection) -> Result<Vec<(Status, i64)>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, SUM(n)::bigint FROM workflow_counts GROUP BY status")
            .fetch_all(conn)
            .await?;
    crate::status_counts(rows)
}
