//! How statements reach the server, by what sits between the service and
//! PostgreSQL (the database URL's `pooler` parameter, read by `tls`).
//!
//! - A plain server (the default): each statement is prepared once per
//!   connection and kept (`pool::prepare`), so later calls are one round
//!   trip and reuse the server's plan.
//! - A transaction pooler (`pooler=transaction`, e.g. PgBouncer in
//!   `pool_mode = transaction`): consecutive messages of one connection
//!   may reach different server sessions, except inside a transaction.
//!   A named prepared statement would then be missing where it is used,
//!   or collide with another client's of the same name (tokio-postgres
//!   numbers its statements per process), and PgBouncer before 1.21 does
//!   not track them. So every statement is sent unnamed, with its
//!   parameters' types, in the one message that runs it
//!   (`query_typed`). The types come from [`Described`]: learned once per
//!   store and statement text with `PREPARE` and `DEALLOCATE` in one
//!   simple-query message (one server session, nothing left on it), and
//!   the types the service declared (`hydracore_workflow_record`, ...)
//!   read from the catalog the same way, so the driver never prepares its
//!   own type lookups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use postgres_types::{Field, Kind, Oid, ToSql, Type};
use tokio_postgres::{Row, SimpleQueryMessage};

use crate::StoreError;

/// Statement texts whose parameter types are kept; past it, the cache
/// starts over (the lists' SQL varies with their filters).
const MAX_DESCRIBED: usize = 1024;

/// The parameter types of the statements sent unnamed, and the types they
/// name that PostgreSQL does not build in.
#[derive(Debug, Default)]
pub struct Described {
    params: Mutex<HashMap<String, Arc<[Type]>>>,
    types: Mutex<HashMap<Oid, Type>>,
}

/// One message's parameters, each with its type.
type Typed<'a> = Vec<(&'a (dyn ToSql + Sync), Type)>;

impl Described {
    /// `params` paired with the types `sql` declares for them, described
    /// on `client` the first time.
    async fn typed<'a>(
        &self,
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&'a (dyn ToSql + Sync)],
    ) -> Result<Typed<'a>, StoreError> {
        let known = self
            .params
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        let types = match known {
            Some(types) => types,
            None => {
                let types: Arc<[Type]> = self.describe(client, sql).await?.into();
                let mut described = self.params.lock().unwrap_or_else(PoisonError::into_inner);
                if described.len() >= MAX_DESCRIBED {
                    described.clear();
                }
                described.insert(sql.to_owned(), Arc::clone(&types));
                types
            }
        };
        if types.len() != params.len() {
            return Err(StoreError::Database {
                message: format!(
                    "a statement takes {} parameters and was given {}",
                    types.len(),
                    params.len()
                ),
                reusable: true,
            });
        }
        Ok(params.iter().copied().zip(types.iter().cloned()).collect())
    }

    /// The types of `sql`'s parameters, in one round trip (more the first
    /// time a type of the service's own is met).
    async fn describe(
        &self,
        client: &tokio_postgres::Client,
        sql: &str,
    ) -> Result<Vec<Type>, StoreError> {
        // One message: one server session, in or out of a transaction, and
        // the statement gone from it before the message ends.
        let oids = client
            .simple_query(&format!(
                "PREPARE hydracore_describe AS {sql}; \
                 SELECT p::oid FROM pg_prepared_statements, \
                 unnest(parameter_types) WITH ORDINALITY AS t(p, n) \
                 WHERE name = 'hydracore_describe' ORDER BY n; \
                 DEALLOCATE hydracore_describe"
            ))
            .await?;
        let mut types = Vec::new();
        for oid in first_column(&oids)? {
            types.push(self.resolve(client, parse_oid(oid)?).await?);
        }
        Ok(types)
    }

    /// The type `oid` stands for: built in, or read from the catalog (its
    /// fields, element or base type too) and kept.
    async fn resolve(&self, client: &tokio_postgres::Client, oid: Oid) -> Result<Type, StoreError> {
        if let Some(builtin) = Type::from_oid(oid) {
            return Ok(builtin);
        }
        if let Some(known) = self
            .types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&oid)
        {
            return Ok(known.clone());
        }
        let rows = client
            .simple_query(&format!(
                "SELECT t.typname, n.nspname, t.typtype, t.typelem, t.typrelid, \
                 t.typbasetype, t.typcategory FROM pg_type t \
                 JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = {oid}"
            ))
            .await?;
        let Some(row) = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        }) else {
            return Err(unknown_type(oid));
        };
        let text = |i: usize| row.get(i).unwrap_or_default().to_owned();
        let (name, schema, kind) = (text(0), text(1), text(2));
        let (element, relation, base) = (
            parse_oid(&text(3))?,
            parse_oid(&text(4))?,
            parse_oid(&text(5))?,
        );
        let kind = match (kind.as_str(), text(6).as_str()) {
            ("c", _) => {
                let fields = client
                    .simple_query(&format!(
                        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = {relation} \
                         AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                    ))
                    .await?;
                let mut resolved = Vec::new();
                for message in &fields {
                    if let SimpleQueryMessage::Row(field) = message {
                        let field_type = parse_oid(field.get(1).unwrap_or_default())?;
                        let field_type = Box::pin(self.resolve(client, field_type)).await?;
                        resolved.push(Field::new(
                            field.get(0).unwrap_or_default().to_owned(),
                            field_type,
                        ));
                    }
                }
                Kind::Composite(resolved)
            }
            ("d", _) => Kind::Domain(Box::pin(self.resolve(client, base)).await?),
            ("e", _) => {
                let labels = client
                    .simple_query(&format!(
                        "SELECT enumlabel FROM pg_enum WHERE enumtypid = {oid} \
                         ORDER BY enumsortorder"
                    ))
                    .await?;
                let labels = first_column(&labels)?.map(str::to_owned).collect();
                Kind::Enum(labels)
            }
            ("p", _) => Kind::Pseudo,
            (_, "A") if element != 0 => Kind::Array(Box::pin(self.resolve(client, element)).await?),
            _ => Kind::Simple,
        };
        let resolved = Type::new(name, oid, kind, schema);
        self.types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(oid, resolved.clone());
        Ok(resolved)
    }

    /// `sql`'s rows, sent unnamed.
    pub async fn query(
        &self,
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let typed = self.typed(client, sql, params).await?;
        Ok(client.query_typed(sql, &typed).await?)
    }

    /// `sql`'s one row, sent unnamed; none or more is an error.
    pub async fn query_one(
        &self,
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        let typed = self.typed(client, sql, params).await?;
        Ok(client.query_typed_one(sql, &typed).await?)
    }

    /// `sql`'s row if it has one, sent unnamed; more is an error.
    pub async fn query_opt(
        &self,
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let typed = self.typed(client, sql, params).await?;
        Ok(client.query_typed_opt(sql, &typed).await?)
    }

    /// The rows `sql` wrote (or returned), sent unnamed.
    pub async fn execute(
        &self,
        client: &tokio_postgres::Client,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        use futures_util::TryStreamExt as _;
        let typed = self.typed(client, sql, params).await?;
        let rows = client.query_typed_raw(sql, typed).await?;
        let mut rows = std::pin::pin!(rows);
        while rows.try_next().await?.is_some() {}
        Ok(rows.rows_affected().unwrap_or(0))
    }
}

/// The first column of a simple query's rows.
fn first_column(messages: &[SimpleQueryMessage]) -> Result<impl Iterator<Item = &str>, StoreError> {
    let mut values = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            values.push(row.get(0).ok_or_else(|| {
                StoreError::Corrupt("the catalog answered NULL for a type".to_owned())
            })?);
        }
    }
    Ok(values.into_iter())
}

fn parse_oid(text: &str) -> Result<Oid, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("the catalog answered {text:?} for a type")))
}

fn unknown_type(oid: Oid) -> StoreError {
    StoreError::Corrupt(format!("PostgreSQL has no type {oid}"))
}
