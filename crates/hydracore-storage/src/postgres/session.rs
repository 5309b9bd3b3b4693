//! Request transactions: the role and tenant every request query runs
//! under, and the start-up check that this really confines requests.

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

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
    /// The rows of one tenant.
    Tenant(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One snapshot for every statement, so a page agrees with its total
    /// and a record with its history.
    Read,
    /// Read committed: a row lock (`FOR UPDATE`) hands the waiter the row as
    /// the previous writer committed it.
    Write,
}

impl Mode {
    fn begin_statement(self) -> &'static str {
        match self {
            Mode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Mode::Write => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }
}

/// Opens a request transaction: as [`APP_ROLE`], with `access` set
/// transaction-locally so it cannot leak to the next user of the connection.
pub async fn begin(
    pool: &PgPool,
    access: Access,
    mode: Mode,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin_with(mode.begin_statement()).await?;
    // One statement switches the role and sets the tenant; `set_config(..,
    // true)` is `SET LOCAL`: both end with the transaction, whether it
    // commits, rolls back or is dropped. Not sent in BEGIN's own message
    // (which would save a round trip): sqlx does not roll back a custom
    // BEGIN whose later statement failed, and would pool the connection
    // inside an aborted transaction.
    let tenant = match access {
        Access::Anonymous => String::new(),
        Access::Tenant(tenant_id) => tenant_id.to_string(),
    };
    sqlx::query("SELECT set_config('role', $1, true), set_config('hydracore.tenant_id', $2, true)")
        .bind(APP_ROLE)
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
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
