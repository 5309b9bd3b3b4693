//! Request transactions: the role and tenant every request query runs
//! under, and the start-up check that this really confines requests.

use hydracore_domain::Scope;
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use crate::StoreError;

/// The NOLOGIN role the migrations create; requests run as it.
pub const APP_ROLE: &str = "hydracore_app";

/// SQLSTATE 42501: what `SET ROLE` answers a login that is not a member.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

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

impl Mode {
    fn isolation(self) -> &'static str {
        match self {
            Mode::Read => "REPEATABLE READ, READ ONLY",
            Mode::Write => "READ COMMITTED",
        }
    }
}

/// The isolation level, then `hydracore_enter` (migration 0005): the
/// request's key checked unrevoked, the role and the tenant, all
/// transaction-local, so nothing outlives the transaction on the pooled
/// connection. They lead the message that starts the transaction, which
/// saves a round trip each. The uuids are written in as hex digits and
/// dashes.
fn preamble(access: Access, isolation: &str) -> String {
    let literal = |id: Option<uuid::Uuid>| {
        id.map_or_else(|| "NULL".to_owned(), |id| format!("'{}'", id.hyphenated()))
    };
    let (tenant, credential) = match access {
        Access::Anonymous => (None, None),
        Access::Scope(scope) => (Some(scope.tenant_id), scope.credential_id),
    };
    format!(
        "SET TRANSACTION ISOLATION LEVEL {isolation}; \
         SELECT hydracore_enter({}, {})",
        literal(tenant),
        literal(credential)
    )
}

/// Opens a request transaction as [`APP_ROLE`], with `access` set, in one
/// round trip. End it with [`finish`].
///
/// The preamble comes before `BEGIN`, in PostgreSQL's implicit transaction
/// for a multi-statement message, which `BEGIN` then makes explicit. If a
/// preamble statement fails, PostgreSQL ends that implicit transaction and
/// the connection is idle again; after `BEGIN` the failure would leave it
/// inside an aborted transaction. (A request dropped while this runs drops
/// its checkout unsettled, which closes the connection: `pool`.)
pub async fn begin(
    conn: &mut PgConnection,
    access: Access,
    mode: Mode,
) -> Result<Transaction<'_, Postgres>, StoreError> {
    let statement = format!("{}; BEGIN", preamble(access, mode.isolation()));
    Ok(conn.begin_with(statement).await?)
}

/// Commits `tx` if `result` is a success, else rolls it back, before the
/// connection goes back to the pool: a transaction left to sqlx's drop
/// would only be rolled back on the connection's next use, holding its
/// locks until then.
pub async fn finish<T>(
    tx: Transaction<'_, Postgres>,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

/// Refuses to serve when row-level security would not bind requests: the
/// application role must not be a superuser nor bypass RLS, and the login
/// must be able to switch to it.
pub async fn check_app_role(conn: &mut PgConnection) -> Result<(), StoreError> {
    let role: Option<(bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
            .bind(APP_ROLE)
            .fetch_optional(&mut *conn)
            .await?;
    match role {
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
    match begin(conn, Access::Anonymous, Mode::Read).await {
        Ok(tx) => return Ok(tx.rollback().await?),
        Err(StoreError::Database(sqlx::Error::Database(db)))
            if db.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE) => {}
        Err(e) => return Err(e),
    }
    let login: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *conn)
        .await?;
    Err(StoreError::Config(format!(
        "refusing to start: the database login {login} cannot SET ROLE {APP_ROLE}, \
         the role every request runs as; run GRANT {APP_ROLE} TO {login}"
    )))
}
