//! Workflow reads on SQLite. Each function runs on a reader thread's
//! connection (`readers`); the writes are in `workflow_writes`, run by
//! the writer thread.

use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{HistoryQuery, ListQuery};
use hydracore_domain::{HistoryEntry, Scope, Status, Timestamp, Workflow};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use uuid::Uuid;

use super::rows::SqliteRow;
use hydracore_domain::decision::InboxQuery;
use hydracore_domain::event::{Event, EventId, EventQuery};

use crate::filters::{
    counts_answer, push_cursor, push_event_filters, push_inbox, push_inbox_counts,
    push_list_filters, push_scope, Filter, SqliteQuery,
};
use crate::rows::{EVENT_COLUMNS, HISTORY_COLUMNS, HISTORY_COLUMN_COUNT, WORKFLOW_COLUMNS};
use crate::{HistorySlice, InboxCount, InlineHistory, StoreError, SweepJob, WorkflowPage};

pub fn get(
    conn: &Connection,
    scope: Scope,
    id: Uuid,
    history: InlineHistory,
) -> Result<Option<Workflow>, StoreError> {
    let mut q = SqliteQuery::new(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = "
    ));
    q.bind_uuid(id);
    push_scope(&mut q, scope);
    let rows = select_workflows(conn, &q)?;
    let Some(mut workflow) = rows.into_iter().next() else {
        return Ok(None);
    };
    if history.entries > 0 {
        // Up to the record's version: a change committed between the two
        // reads must not show in the history of the older record.
        workflow.history = history_of(conn, scope.tenant_id, id, workflow.version, history)?;
    }
    Ok(Some(workflow))
}

fn select_workflows(conn: &Connection, q: &SqliteQuery) -> Result<Vec<Workflow>, StoreError> {
    let mut statement = conn.prepare_cached(&q.sql)?;
    let mut rows = statement.query(params_from_iter(&q.values))?;
    let mut workflows = Vec::new();
    while let Some(row) = rows.next()? {
        workflows.push(crate::rows::workflow(&SqliteRow(row))?);
    }
    Ok(workflows)
}

/// Runs in one read transaction: the page and its total see one snapshot.
pub fn list(
    conn: &Connection,
    scope: Scope,
    query: &ListQuery,
    history: InlineHistory,
) -> Result<WorkflowPage, StoreError> {
    let tx = conn.unchecked_transaction()?;
    // `workflow_counts` answers the filters it has columns
    // for, exactly and in a few rows; other filters count the matches.
    let mut count = SqliteQuery::new(if counts_answer(query) {
        "SELECT COALESCE(SUM(n), 0) FROM workflow_counts"
    } else {
        "SELECT COUNT(*) FROM workflows"
    });
    push_list_filters(&mut count, scope, query);
    let total: i64 = tx
        .prepare_cached(&count.sql)?
        .query_row(params_from_iter(&count.values), |row| row.get(0))?;

    let mut select = SqliteQuery::new(&format!("SELECT {WORKFLOW_COLUMNS} FROM workflows"));
    push_list_filters(&mut select, scope, query);
    push_cursor(&mut select, query);
    select
        .sql
        .push_str(" ORDER BY created_at DESC, id DESC LIMIT ");
    select.bind(query.per_page + 1).sql.push_str(" OFFSET ");
    select.bind(query.offset());
    let mut page =
        WorkflowPage::from_rows_and_one_more(total, select_workflows(&tx, &select)?, query);

    for w in &mut page.workflows {
        w.history = history_of(&tx, scope.tenant_id, w.id, w.version, history)?;
    }
    tx.commit()?;
    Ok(page)
}

pub fn list_suspended(
    conn: &Connection,
    scope: Scope,
    limit: u32,
) -> Result<Vec<SuspendedWorkflow>, StoreError> {
    let mut q = SqliteQuery::new(&format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE status = 'suspended'"
    ));
    push_scope(&mut q, scope);
    q.sql
        .push_str(" ORDER BY suspended_at DESC, id DESC LIMIT ");
    q.bind(limit);
    Ok(select_workflows(conn, &q)?
        .into_iter()
        .map(SuspendedWorkflow::from)
        .collect())
}

/// The history one workflow embeds as it stood at `version` (see
/// [`InlineHistory`]), oldest first. History is append-only and the newest
/// `seq` is the version, so this is a key range, and it reads, at any later
/// time and outside the write transaction, exactly what the write
/// transaction would have: SQLite has one writer, and reading history on
/// the writer thread would make every other write wait.
///
/// It reads the newest entries first, one pass, and stops at the byte
/// budget: an entry is kept while the rendered entries newer than it hold
/// less than the budget (so the newest always is), as the PostgreSQL
/// backend's `hydracore_history_inline` keeps them.
pub fn history_of(
    conn: &Connection,
    tenant_id: Uuid,
    id: Uuid,
    version: i64,
    inline: InlineHistory,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {HISTORY_COLUMNS}, octet_length(entry) FROM workflow_history \
         WHERE tenant_id = ?1 AND workflow_id = ?2 AND seq <= ?3 AND seq > ?4 \
         ORDER BY seq DESC"
    ))?;
    let oldest = version.saturating_sub(i64::from(inline.entries));
    let mut rows = statement.query(params![tenant_id, id, version, oldest])?;
    let mut entries = Vec::new();
    let mut newer: i64 = 0;
    while let Some(row) = rows.next()? {
        if newer >= i64::from(inline.bytes) {
            break;
        }
        entries.push(crate::rows::history_entry(&SqliteRow(row), 0)?);
        newer += row.get::<_, i64>(HISTORY_COLUMN_COUNT)?;
    }
    entries.reverse();
    Ok(entries)
}

/// A page of one workflow's history; `None` when the workflow is not in
/// `scope`. In one read transaction (one snapshot).
pub fn history_page(
    conn: &Connection,
    scope: Scope,
    id: Uuid,
    page: HistoryQuery,
    bytes: i32,
) -> Result<Option<HistorySlice>, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let newest: Option<i64> = tx
        .prepare_cached(
            "SELECT version FROM workflows \
             WHERE id = ?1 AND tenant_id = ?2 AND (?3 IS NULL OR instance_id = ?3)",
        )?
        .query_row(params![id, scope.tenant_id, scope.instance_id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    let mut statement = tx.prepare_cached(&crate::rows::history_page_sql().replace('$', "?"))?;
    let mut rows = statement.query(params![scope.tenant_id, id, page.after, page.limit, bytes])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        entries.push(crate::rows::history_entry(&SqliteRow(row), 0)?);
    }
    Ok(Some(HistorySlice { entries, newest }))
}

/// A page of events (see `Store::list_events`).
pub fn list_events(
    conn: &Connection,
    scope: Scope,
    query: &EventQuery,
) -> Result<Vec<Event>, StoreError> {
    let mut q = SqliteQuery::new(&format!("SELECT 0, id, {EVENT_COLUMNS} FROM events"));
    push_event_filters(&mut q, scope, query);
    q.sql.push_str(" AND id > ");
    q.bind(query.after.unwrap_or_default().1);
    q.sql.push_str(" ORDER BY id LIMIT ");
    q.bind(query.limit);
    let mut statement = conn.prepare_cached(&q.sql)?;
    let mut rows = statement.query(params_from_iter(&q.values))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(crate::rows::event(&SqliteRow(row))?);
    }
    Ok(events)
}

/// The tenant's newest event.
pub fn newest_event(conn: &Connection, tenant_id: Uuid) -> Result<Option<EventId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT max(id) FROM events WHERE tenant_id = ?1")?
        .query_row([tenant_id], |row| row.get::<_, Option<i64>>(0))?
        .map(|id| EventId(0, id)))
}

/// How far events have been purged.
pub fn events_purged_through(conn: &Connection) -> Result<Option<EventId>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM events_purged")?
        .query_row([], |row| row.get(0))
        .optional()?
        .map(|id| EventId(0, id)))
}

/// Deletes up to `limit` events older than `before` and moves the purge
/// mark past them; run by the writer.
pub fn purge_events(conn: &Connection, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
    let gone: Vec<i64> = conn
        .prepare_cached(
            "DELETE FROM events WHERE id IN \
             (SELECT id FROM events WHERE occurred_at < ?1 ORDER BY occurred_at LIMIT ?2) \
             RETURNING id",
        )?
        .query_map(params![before.unix_micros(), i64::from(limit)], |row| {
            row.get(0)
        })?
        .collect::<Result<_, _>>()?;
    if let Some(last) = gone.iter().max() {
        conn.prepare_cached(
            "INSERT INTO events_purged (one, id) VALUES (1, ?1) \
             ON CONFLICT (one) DO UPDATE SET id = max(id, excluded.id)",
        )?
        .execute(params![last])?;
    }
    Ok(gone.len() as u64)
}

/// The inbox's page (see `Store::list_inbox`).
pub fn list_inbox(
    conn: &Connection,
    scope: Scope,
    query: &InboxQuery,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<Workflow>, StoreError> {
    let mut q = SqliteQuery::new(&format!("SELECT {WORKFLOW_COLUMNS} FROM workflows"));
    push_inbox(&mut q, scope, query, now, limit);
    select_workflows(conn, &q)
}

/// The inbox's counts (see `Store::count_inbox`).
pub fn count_inbox(
    conn: &Connection,
    scope: Scope,
    now: Timestamp,
) -> Result<Vec<InboxCount>, StoreError> {
    let mut q = SqliteQuery::default();
    push_inbox_counts(&mut q, scope, now);
    let counts = conn
        .prepare_cached(&q.sql)?
        .query_map(params_from_iter(&q.values), |row| {
            Ok(InboxCount {
                assigned_to: row.get(0)?,
                total: row.get(1)?,
                overdue: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(counts)
}

/// The workflows due for `job` at `now`, soonest first.
pub fn due(
    conn: &Connection,
    job: SweepJob,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<(Scope, Uuid)>, StoreError> {
    let due = conn
        .prepare_cached(&job.select_due().replace('$', "?"))?
        .query_map(params![now.unix_micros(), i64::from(limit)], |row| {
            Ok((
                Scope::instance(row.get(1)?, row.get(2)?),
                row.get::<_, Uuid>(0)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(due)
}

pub fn count_by_status(conn: &Connection) -> Result<Vec<(Status, i64)>, StoreError> {
    let rows = conn
        .prepare_cached("SELECT status, SUM(n) FROM workflow_counts GROUP BY status")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<(String, i64)>, _>>()?;
    crate::status_counts(rows)
}
