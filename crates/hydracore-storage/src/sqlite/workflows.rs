//! Workflow reads on SQLite, on the read pool (the writes are in
//! `workflow_writes`, run by the writer thread).

use std::collections::HashMap;

use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::ListQuery;
use hydracore_domain::{History, Scope, Status, Workflow};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::rows::{WorkflowRow, WORKFLOW_COLUMNS};
use crate::filters::{push_list_filters, push_scope};
use crate::{StoreError, WithHistory, WorkflowPage};

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

/// The history of one workflow as it stood at `version`. History is
/// append-only and the newest `seq` is the version, so this reads, at any
/// later time and outside the write transaction, exactly what the write
/// transaction would have: SQLite has one writer, and reading a long history
/// on the writer thread would make every other write wait.
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
