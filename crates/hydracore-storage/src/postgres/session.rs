//! Request transactions: the role and tenant every request query runs
//! under, and the start-up check that this really confines requests.

use hydracore_domain::Scope;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

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
/// round trip.
///
/// The preamble comes before `BEGIN`, in PostgreSQL's implicit transaction
/// for a multi-statement message, which `BEGIN` then makes explicit. If a
/// preamble statement fails, PostgreSQL ends that implicit transaction and
/// the connection is idle again; after `BEGIN` the failure would leave it
/// inside an aborted transaction, which sqlx would pool as it is.
///
/// The opening runs in a task of its own, so it completes even when the
/// request that asked for it is dropped meanwhile (a client gone, a
/// timeout): sqlx only rolls back a transaction it has seen begin, and a
/// connection dropped while waiting for this message's answer would go
/// back to the pool inside the transaction, as the application role. Run
/// to its end, the transaction is dropped unused and sqlx rolls it back.
pub async fn begin(
    pool: &PgPool,
    access: Access,
    mode: Mode,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    let statement = format!("{}; BEGIN", preamble(access, mode.isolation()));
    let pool = pool.clone();
    let opening = tokio::spawn(async move { pool.begin_with(statement).await });
    match opening.await {
        Ok(begun) => Ok(begun?),
        Err(e) => Err(StoreError::Unavailable(format!(
            "opening a transaction failed: {e}"
        ))),
    }
}

/// Refuses to serve when row-level security would not bind requests: the
/// application role must not be a superuser nor bypass RLS, and the login
/// must be able to switch to it.
pub async fn check_app_role(pool: &PgPool) -> Result<(), StoreError> {
    let role: Option<(bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
            .bind(APP_ROLE)
            .fetch_optional(pool)
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
    match begin(pool, Access::Anonymous, Mode::Read).await {
        Ok(tx) => Ok(tx.rollback().await?),
        Err(StoreError::Database(sqlx::Error::Database(db)))
            if db.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE) =>
        {
            let login: String = sqlx::query_scalar("SELECT current_user::text")
                .fetch_one(pool)
                .await?;
            Err(StoreError::Config(format!(
                "refusing to start: the database login {login} cannot SET ROLE {APP_ROLE}, \
                 the role every request runs as; run GRANT {APP_ROLE} TO {login}"
            )))
        }
        Err(e) => Err(e),
    }
}
