//! The `WHERE` clauses every backend builds the same way: the request's
//! scope, and the list filters. Placeholders are the backend's own
//! (`QueryBuilder` writes `?` or `$n`).

use hydracore_domain::request::ListQuery;
use hydracore_domain::Scope;
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

/// ` AND tenant_id = ... [AND instance_id = ...]`: every query's bound.
pub fn push_scope<DB>(q: &mut QueryBuilder<'_, DB>, scope: Scope)
where
    DB: Database,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
{
    q.push(" AND tenant_id = ").push_bind(scope.tenant_id);
    if let Some(instance_id) = scope.instance_id {
        q.push(" AND instance_id = ").push_bind(instance_id);
    }
}

/// ` WHERE` with the scope and the list's filters.
pub fn push_list_filters<DB>(q: &mut QueryBuilder<'_, DB>, scope: Scope, query: &ListQuery)
where
    DB: Database,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    q.push(" WHERE 1 = 1");
    push_scope(q, scope);
    if let Some(instance_id) = query.instance_id {
        q.push(" AND instance_id = ").push_bind(instance_id);
    }
    if let Some(customer_id) = query.customer_id {
        q.push(" AND customer_id = ").push_bind(customer_id);
    }
    if let Some(t) = query.workflow_type {
        q.push(" AND workflow_type = ")
            .push_bind(t.as_str().to_owned());
    }
    if let Some(s) = query.status {
        q.push(" AND status = ").push_bind(s.as_str().to_owned());
    }
    if let Some(reference) = &query.reference {
        q.push(" AND reference = ").push_bind(reference.clone());
    }
}
