//! Workflow queries on SQLite.

use std::collections::HashMap;

use hydracore_domain::precondition::IfMatch;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::ListQuery;
use hydracore_domain::transition::{self, Change, Command};
use hydracore_domain::{History, HistoryEntry, Scope, Status, Timestamp, Workflow};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::rows::{json_text, micros, object_text, WorkflowRow, WORKFLOW_COLUMNS};
use crate::filters::{push_list_filters, push_scope};
use crate::{StoreError, WithHistory, WorkflowPage};

pub async fn insert(conn: &mut SqliteConnection, w: &Workflow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, status, \
         stage, title, reference, assigned_to, approver_id, escalation_level, workflow_state, \
         suspended_step, suspend_payload, suspended_at, created_at, updated_at, last_action_at, \
         next_action_at, expires_at, completed_at, version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20, ?21, ?22, ?23)",
    )
    .bind(w.id)
    .bind(w.tenant_id)
    .bind(w.instance_id)
    .bind(w.customer_id)
    .bind(w.workflow_type.as_str())
    .bind(w.status.as_str())
    .bind(&w.stage)
    .bind(&w.title)
    .bind(&w.reference)
    .bind(&w.assigned_to)
    .bind(w.approver_id)
    .bind(w.escalation_level)
    .bind(object_text(&w.workflow_state))
    .bind(&w.suspended_step)
    .bind(json_text(&w.suspend_payload))
    .bind(micros(w.suspended_at))
    .bind(w.created_at.unix_micros())
    .bind(w.updated_at.unix_micros())
    .bind(micros(w.last_action_at))
    .bind(micros(w.next_action_at))
    .bind(micros(w.expires_at))
    .bind(micros(w.completed_at))
    .bind(w.version)
    .execute(&mut *conn)
    .await?;
    // A new workflow carries the entries it was created with; a rendered
    // history only ever comes out of storage.
    let History::Entries(entries) = &w.history else {
        return Err(StoreError::Corrupt(
            "a new workflow must carry its history entries".into(),
        ));
    };
    for entry in entries {
        append_history(conn, w.tenant_id, w.id, entry).await?;
    }
    Ok(())
}

/// Writes back every column a command may change.
async fn update(conn: &mut SqliteConnection, w: &Workflow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE workflows SET status = ?1, stage = ?2, assigned_to = ?3, approver_id = ?4, \
         escalation_level = ?5, workflow_state = ?6, suspended_step = ?7, suspend_payload = ?8, \
         suspended_at = ?9, updated_at = ?10, last_action_at = ?11, next_action_at = ?12, \
         expires_at = ?13, completed_at = ?14, version = ?15 \
         WHERE id = ?16 AND tenant_id = ?17",
    )
    .bind(w.status.as_str())
    .bind(&w.stage)
    .bind(&w.assigned_to)
    .bind(w.approver_id)
    .bind(w.escalation_level)
    .bind(object_text(&w.workflow_state))
    .bind(&w.suspended_step)
    .bind(json_text(&w.suspend_payload))
    .bind(micros(w.suspended_at))
    .bind(w.updated_at.unix_micros())
    .bind(micros(w.last_action_at))
    .bind(micros(w.next_action_at))
    .bind(micros(w.expires_at))
    .bind(micros(w.completed_at))
    .bind(w.version)
    .bind(w.id)
    .bind(w.tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

async fn append_history(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    workflow_id: Uuid,
    e: &HistoryEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail, \
         actor, from_status, to_status, from_stage, to_stage, entry) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .bind(tenant_id)
    .bind(workflow_id)
    .bind(e.seq)
    .bind(e.at.unix_micros())
    .bind(&e.action)
    .bind(json_text(&e.action_detail))
    .bind(&e.actor)
    .bind(e.from_status.map(Status::as_str))
    .bind(e.to_status.map(Status::as_str))
    .bind(&e.from_stage)
    .bind(&e.to_stage)
    .bind(crate::render_entry(e)?)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut SqliteConnection,
    scope: Scope,
    id: Uuid,
    history: WithHistory,
) -> Result<Option<Workflow>, StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = "
    ));
    q.push_bind(id);
    push_scope(&mut q, scope);
    let Some(row) = q
        .build_query_as::<WorkflowRow>()
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut workflow = row.into_domain()?;
    if history == WithHistory::Yes {
        workflow.history = load_history(conn, scope.tenant_id, &[id])
            .await?
            .remove(&id)
            .unwrap_or_default();
    }
    Ok(Some(workflow))
}

pub async fn list(
    conn: &mut SqliteConnection,
    scope: Scope,
    query: &ListQuery,
) -> Result<WorkflowPage, StoreError> {
    let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM workflows");
    push_list_filters(&mut count, scope, query);
    let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

    let mut select =
        QueryBuilder::<Sqlite>::new(format!("SELECT {WORKFLOW_COLUMNS} FROM workflows"));
    push_list_filters(&mut select, scope, query);
    select
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(query.per_page)
        .push(" OFFSET ")
        .push_bind(query.offset());
    let rows: Vec<WorkflowRow> = select.build_query_as().fetch_all(&mut *conn).await?;
    let mut workflows = rows
        .into_iter()
        .map(WorkflowRow::into_domain)
        .collect::<Result<Vec<_>, _>>()?;

    let ids: Vec<Uuid> = workflows.iter().map(|w| w.id).collect();
    let mut histories = load_history(conn, scope.tenant_id, &ids).await?;
    for w in &mut workflows {
        w.history = histories.remove(&w.id).unwrap_or_default();
    }
    Ok(WorkflowPage { total, workflows })
}

pub async fn list_suspended(
    conn: &mut SqliteConnection,
    scope: Scope,
) -> Result<Vec<SuspendedWorkflow>, StoreError> {
    let mut q = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE status = 'suspended'"
    ));
    push_scope(&mut q, scope);
    q.push(" ORDER BY suspended_at ASC, id ASC");
    let rows: Vec<WorkflowRow> = q.build_query_as().fetch_all(conn).await?;
    rows.into_iter()
        .map(|row| row.into_domain().map(SuspendedWorkflow::from))
        .collect()
}

/// The histories of `ids`, each oldest first, as rendered when written.
async fn load_history(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, History>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT workflow_id, entry FROM workflow_history WHERE tenant_id = ",
    );
    q.push_bind(tenant_id).push(" AND workflow_id IN (");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(") ORDER BY workflow_id, seq");
    let rows: Vec<(Uuid, String)> = q.build_query_as().fetch_all(conn).await?;
    crate::group_histories(rows)
}

/// Loads, checks and changes one workflow. `conn` must be inside a write
/// transaction (`BEGIN IMMEDIATE`), which is what makes this atomic. The
/// history is not read here: see [`history_up_to`].
pub async fn change(
    conn: &mut SqliteConnection,
    scope: Scope,
    id: Uuid,
    command: &Command,
    actor: &str,
    if_match: Option<&IfMatch>,
) -> Result<Change, StoreError> {
    let current = get(conn, scope, id, WithHistory::No)
        .await?
        .ok_or(StoreError::NotFound)?;
    let change = transition::apply(current, command, actor, if_match, Timestamp::now())?;
    update(conn, &change.workflow).await?;
    append_history(conn, scope.tenant_id, id, &change.entry).await?;
    Ok(change)
}

/// The history of one workflow as it stood at `version`. History is
/// append-only and the newest `seq` is the version, so this reads, at any
/// later time and outside the write transaction, exactly what the write
/// transaction would have: SQLite has one writer, and reading a long history
/// under its lock would make every other write wait.
pub async fn history_up_to(
    conn: &mut SqliteConnection,
    tenant_id: Uuid,
    id: Uuid,
    version: i64,
) -> Result<History, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT entry FROM workflow_history \
         WHERE tenant_id = ?1 AND workflow_id = ?2 AND seq <= ?3 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(version)
    .fetch_all(conn)
    .await?;
    crate::rendered_history(&rows)
}

pub async fn count_by_status(
    conn: &mut SqliteConnection,
) -> Result<Vec<(Status, i64)>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM workflows GROUP BY status")
            .fetch_all(conn)
            .await?;
    crate::status_counts(rows)
}

/// Expires up to `limit` overdue live workflows. `conn` must be inside a
/// write transaction: SQLite has one writer, so no two sweepers can expire
/// the same workflow.
pub async fn expire_due(conn: &mut SqliteConnection, limit: u32) -> Result<u64, StoreError> {
    let due: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, tenant_id, instance_id FROM workflows \
         WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
         AND status NOT IN ('completed', 'expired', 'cancelled', 'failed') \
         ORDER BY expires_at LIMIT ?2",
    )
    .bind(Timestamp::now().unix_micros())
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let mut expired = 0;
    for (id, tenant_id, instance_id) in due {
        let scope = Scope::instance(tenant_id, instance_id);
        let command = Command::Expire;
        change(conn, scope, id, &command, transition::SYSTEM_ACTOR, None).await?;
        expired += 1;
    }
    Ok(expired)
}
