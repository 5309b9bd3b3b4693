//! Request transactions on a pooled connection: the role and tenant every
//! request query runs under, and the start-up check that this really
//! confines requests.
//!
//! A transaction here is plain SQL on the connection (`BEGIN` in the
//! opening message, then [`finish`]'s `COMMIT` or `ROLLBACK`), not a
//! driver object: a request dropped halfway drops its checkout unsettled,
//! which closes the connection (`pool`), so nothing has to roll back on
//! drop.

use hydracore_domain::Scope;
use tokio_postgres::error::SqlState;

use super::pool::Client;
use super::rows::get;
use crate::StoreError;

/// The NOLOGIN role the migrations create; requests run as it.
pub const APP_ROLE: &str = "hydracore_app";

/// What a request transaction may see besides nothing.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Nothing tenant-owned (readiness checks).
    Anonymous,
    /// The rows of the scope's tenant; with its key checked unrevoked when
    /// the request came with one.
    Scope(Scope),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One snapshot for every statement, so a page agrees with its total.
    Read,
    /// Read committed: each statement sees what committed before it.
    Write,
}

/// The message that opens a transaction for `access` in `mode`: the
/// isolation level, then `hydracore_enter` (the request's key checked
/// unrevoked, the role and the tenant, all transaction-local, so nothing
/// outlives the transaction on the pooled connection), then `BEGIN`. They
/// share the message that starts the transaction, which saves a round trip
/// each. The uuids are written in as hex digits and dashes.
///
/// The preamble comes before `BEGIN`, in PostgreSQL's implicit transaction
/// for a multi-statement message, which `BEGIN` then makes explicit. If a
/// preamble statement fails, PostgreSQL ends that implicit transaction and
/// the connection is idle again; after `BEGIN` the failure would leave it
/// inside an aborted transaction.
fn opening(access: Access, mode: Mode) -> String {
    let isolation = match mode {
        Mode::Read => "REPEATABLE READ, READ ONLY",
        Mode::Write => "READ COMMITTED",
    };
    let literal = |id: Option<uuid::Uuid>| {
        id.map_or_else(|| "NULL".to_owned(), |id| format!("'{}'", id.hyphenated()))
    };
    let (tenant, credential) = match access {
        Access::Anonymous => (None, None),
        Access::Scope(scope) => (Some(scope.tenant_id), scope.credential_id),
    };
    format!(
        "SET TRANSACTION ISOLATION LEVEL {isolation}; \
         SELECT hydracore_enter({}, {}); BEGIN",
        literal(tenant),
        literal(credential)
    )
}

/// Opens a transaction for `access` in `mode`, in one round trip. End it
/// with [`finish`].
pub async fn begin(conn: &Client, access: Access, mode: Mode) -> Result<(), StoreError> {
    Ok(conn.batch_execute(&opening(access, mode)).await?)
}

/// Opens a transaction as the login, without switching role: for the
/// administrative work, which spans tenants. End it with [`finish`].
pub async fn begin_as_login(conn: &Client) -> Result<(), StoreError> {
    Ok(conn.batch_execute("BEGIN").await?)
}

/// Commits the open transaction if `result` is a success, else rolls it
/// back, before the connection goes back to the pool, so that it holds no
/// locks while idle.
pub async fn finish<T>(conn: &Client, result: Result<T, StoreError>) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            conn.batch_execute("COMMIT").await?;
            Ok(value)
        }
        Err(e) => {
            conn.batch_execute("ROLLBACK").await?;
            Err(e)
        }
    }
}

/// Refuses to serve when row-level security would not bind requests: the
/// application role must not be a superuser nor bypass RLS, and the login
/// must be able to switch to it.
pub async fn check_app_role(conn: &Client) -> Result<(), StoreError> {
    let role = conn
        .query_opt_once(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1",
            &[&APP_ROLE],
        )
        .await?;
    let attributes = match &role {
        Some(row) => Some((get::<bool>(row, 0)?, get::<bool>(row, 1)?)),
        None => None,
    };
    match attributes {
        None => {
            return Err(StoreError::Config(format!(
                "the role {APP_ROLE} does not exist although the migrations ran; \
                 create it (NOLOGIN) or let a role with CREATEROLE run the migrations"
            )))
        }
        Some((true, _)) => {
            return Err(StoreError::Config(format!(
                "refusing to start: the role {APP_ROLE} is a superuser, so row-level security \
                 would not isolate tenants; run ALTER ROLE {APP_ROLE} NOSUPERUSER"
            )))
        }
        Some((_, true)) => {
            return Err(StoreError::Config(format!(
                "refusing to start: the role {APP_ROLE} has BYPASSRLS, so row-level security \
                 would not isolate tenants; run ALTER ROLE {APP_ROLE} NOBYPASSRLS"
            )))
        }
        Some((false, false)) => {}
    }
    match conn
        .batch_execute(&opening(Access::Anonymous, Mode::Read))
        .await
    {
        Ok(()) => return Ok(conn.batch_execute("ROLLBACK").await?),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {}
        Err(e) => return Err(e.into()),
    }
    let row = conn
        .query_one_once("SELECT current_user::text", &[])
        .await?;
    let login: String = get(&row, 0)?;
    Err(StoreError::Config(format!(
        "refusing to start: the database login {login} cannot SET ROLE {APP_ROLE}, \
         the role every request runs as; run GRANT {APP_ROLE} TO {login}"
    )))
}
