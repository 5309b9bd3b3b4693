//! The `WHERE` clauses every backend builds the same way: the request's
//! scope, and the list filters. They are written into a [`Filter`]:
//! [`PgQuery`] (the PostgreSQL backend's tokio-postgres connections, `$n`
//! placeholders) or [`SqliteQuery`] (the SQLite backend's rusqlite
//! connections, `?` placeholders).

use std::fmt::Write as _;

use hydracore_domain::decision::InboxQuery;
use hydracore_domain::event::EventQuery;
use hydracore_domain::request::ListQuery;
use hydracore_domain::{Scope, Timestamp};
use rusqlite::types::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// Somewhere SQL text and bound values are written.
pub trait Filter {
    fn sql(&mut self, sql: &str);
    fn bind_uuid(&mut self, value: Uuid);
    fn bind_text(&mut self, value: &str);
    fn bind_time(&mut self, value: Timestamp);
    fn bind_opt_time(&mut self, value: Option<Timestamp>);
    /// A time after every other, as this backend's SQL writes it.
    const END_OF_TIME: &'static str;
}

/// A value bound to a [`PgQuery`].
type PgValue = Box<dyn ToSql + Send + Sync>;

/// SQL with `$n` placeholders and its values, for tokio-postgres.
#[derive(Debug, Default)]
pub struct PgQuery {
    pub sql: String,
    values: Vec<PgValue>,
}

impl PgQuery {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// Writes the next placeholder and binds `value` to it.
    pub fn bind(&mut self, value: impl ToSql + Send + Sync + 'static) -> &mut Self {
        self.values.push(Box::new(value));
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.values.len());
        self
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds `value` to the next placeholder, which it returns for the
    /// caller to write where it belongs.
    pub fn param(&mut self, value: impl ToSql + Send + Sync + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    /// The bound values, as tokio-postgres takes them.
    pub fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

impl Filter for PgQuery {
    fn sql(&mut self, sql: &str) {
        self.push(sql);
    }
    fn bind_uuid(&mut self, value: Uuid) {
        self.bind(value);
    }
    fn bind_text(&mut self, value: &str) {
        self.bind(value.to_owned());
    }
    fn bind_time(&mut self, value: Timestamp) {
        self.bind(value.as_datetime());
    }
    fn bind_opt_time(&mut self, value: Option<Timestamp>) {
        self.bind(value.map(Timestamp::as_datetime));
    }
    const END_OF_TIME: &'static str = "'infinity'::timestamptz";
}

/// SQL with `?` placeholders and its values, for rusqlite.
#[derive(Debug, Default)]
pub struct SqliteQuery {
    pub sql: String,
    pub values: Vec<Value>,
}

impl SqliteQuery {
    pub fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            values: Vec::new(),
        }
    }

    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.sql.push('?');
        self.values.push(value.into());
        self
    }
}

impl Filter for SqliteQuery {
    fn sql(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }
    fn bind_uuid(&mut self, value: Uuid) {
        // A 16-byte blob, as rusqlite's `uuid` feature reads it.
        self.bind(value.as_bytes().to_vec());
    }
    fn bind_text(&mut self, value: &str) {
        self.bind(value.to_owned());
    }
    fn bind_time(&mut self, value: Timestamp) {
        // Microseconds since the epoch, as the SQLite schema keeps times.
        self.bind(value.unix_micros());
    }
    fn bind_opt_time(&mut self, value: Option<Timestamp>) {
        self.bind(value.map(Timestamp::unix_micros));
    }
    const END_OF_TIME: &'static str = "9223372036854775807";
}

/// ` AND tenant_id = ... [AND instance_id = ...]`: every query's bound.
pub fn push_scope(q: &mut impl Filter, scope: Scope) {
    q.sql(" AND tenant_id = ");
    q.bind_uuid(scope.tenant_id);
    if let Some(instance_id) = scope.instance_id {
        q.sql(" AND instance_id = ");
        q.bind_uuid(instance_id);
    }
}

/// ` WHERE` with the scope and the list's filters.
pub fn push_list_filters(q: &mut impl Filter, scope: Scope, query: &ListQuery) {
    q.sql(" WHERE 1 = 1");
    push_scope(q, scope);
    if let Some(instance_id) = query.instance_id {
        q.sql(" AND instance_id = ");
        q.bind_uuid(instance_id);
    }
    if let Some(customer_id) = query.customer_id {
        q.sql(" AND customer_id = ");
        q.bind_uuid(customer_id);
    }
    if let Some(t) = query.workflow_type {
        q.sql(" AND workflow_type = ");
        q.bind_text(t.as_str());
    }
    if let Some(s) = query.status {
        q.sql(" AND status = ");
        q.bind_text(s.as_str());
    }
    if let Some(reference) = &query.reference {
        q.sql(" AND reference = ");
        q.bind_text(reference);
    }
}

/// ` AND` the rows after the query's cursor, if it has one: the lists'
/// order is `created_at DESC, id DESC`, and every list index ends in
/// those two columns, so this is where an index scan starts.
pub fn push_cursor(q: &mut impl Filter, query: &ListQuery) {
    if let Some(cursor) = query.cursor {
        q.sql(" AND (created_at, id) < (");
        q.bind_time(cursor.created_at);
        q.sql(", ");
        q.bind_uuid(cursor.id);
        q.sql(")");
    }
}

/// A suspension's place in the inbox's order, due time first (none last):
/// the expression the inbox indexes lead with.
pub fn inbox_due<F: Filter>() -> String {
    format!("COALESCE(next_action_at, {})", F::END_OF_TIME)
}

/// The inbox's query after `SELECT ... FROM workflows`: the scope's
/// suspensions that match `query` at `now`, after its cursor, in order,
/// `limit` of them.
pub fn push_inbox<F: Filter>(
    q: &mut F,
    scope: Scope,
    query: &InboxQuery,
    now: Timestamp,
    limit: i64,
) {
    q.sql(" WHERE status = 'suspended'");
    push_scope(q, scope);
    let due = inbox_due::<F>();
    if let Some(instance_id) = query.instance_id {
        q.sql(" AND instance_id = ");
        q.bind_uuid(instance_id);
    }
    if let Some(assignee) = &query.assigned_to {
        q.sql(" AND assigned_to = ");
        q.bind_text(assignee);
    }
    if let Some(t) = query.workflow_type {
        q.sql(" AND workflow_type = ");
        q.bind_text(t.as_str());
    }
    if let Some(step) = &query.step {
        q.sql(" AND suspended_step = ");
        q.bind_text(step);
    }
    if let Some(overdue) = query.overdue {
        q.sql(&format!(" AND {due} {} ", if overdue { "<=" } else { ">" }));
        q.bind_time(now);
    }
    if let Some(after) = query.after {
        q.sql(&format!(" AND ({due}, suspended_at, id) > (COALESCE("));
        q.bind_opt_time(after.due_at);
        q.sql(&format!(", {}), ", F::END_OF_TIME));
        q.bind_time(after.suspended_at);
        q.sql(", ");
        q.bind_uuid(after.id);
        q.sql(")");
    }
    q.sql(&format!(" ORDER BY {due}, suspended_at, id LIMIT {limit}"));
}

/// The summary's query: the scope's suspensions counted by assignee and
/// whether they are overdue at `now`.
pub fn push_inbox_counts<F: Filter>(q: &mut F, scope: Scope, now: Timestamp) {
    // One line per assignee, in the assignee index's order and from its
    // columns alone (it carries the raw due time for this): no sort, and
    // no table row read.
    q.sql("SELECT assigned_to, COUNT(*), COUNT(CASE WHEN next_action_at <= ");
    q.bind_time(now);
    q.sql(" THEN 1 END) FROM workflows WHERE status = 'suspended'");
    push_scope(q, scope);
    q.sql(" GROUP BY assigned_to ORDER BY assigned_to");
}

/// ` WHERE` the scope's events that `query` filters for (not yet its
/// cursor, which each backend writes its own way).
pub fn push_event_filters<F: Filter>(q: &mut F, scope: Scope, query: &EventQuery) {
    q.sql(" WHERE 1 = 1");
    push_scope(q, scope);
    if let Some(workflow_id) = query.workflow_id {
        q.sql(" AND workflow_id = ");
        q.bind_uuid(workflow_id);
    }
    for (i, t) in query.types.iter().enumerate() {
        q.sql(if i == 0 { " AND type IN (" } else { ", " });
        q.bind_text(t.as_str());
    }
    if !query.types.is_empty() {
        q.sql(")");
    }
}

/// Whether per-(instance, status) counts can give the total of `query`: it
/// filters on nothing but the scope, the instance and the status. The
/// destructuring names every field, so a new filter must be decided here.
pub fn counts_answer(query: &ListQuery) -> bool {
    let ListQuery {
        customer_id,
        workflow_type,
        status: _,
        reference,
        instance_id: _,
        page: _,
        per_page: _,
        cursor: _,
    } = query;
    customer_id.is_none() && workflow_type.is_none() && reference.is_none()
}
