//! Request transactions on a pooled connection: the role and tenant every
//! request query runs under, and the start-up check that this really
//! confines requests.
//!
//! On Citus the role and tenant must also reach the workers that run a
//! request's statements. Citus sends a worker the `SET LOCAL` commands of
//! the transaction block when `citus.propagate_set_commands` is `local`,
//! but not what `set_config` set; so there a transaction opens with
//! `BEGIN` and then sets both with `SET LOCAL`, and the request functions,
//! whose own `set_config` would not reach the workers, are called inside
//! such a transaction too ([`call`]).
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

/// What the database is: where a request's settings have to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// One PostgreSQL server (or a pooler in front of one).
    Single,
    /// A Citus coordinator, whose workers run the statements.
    Citus,
}

/// What a request transaction may see besides nothing.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// Nothing tenant-owned (readiness checks).
    Anonymous,
    /// The rows of the scope's tenant; with its key checked unrevoked when
    /// the request came with one.
    Scope(Scope),
    /// The credential whose key has this SHA-256, whatever its tenant.
    Key(&'a [u8]),
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
fn opening(access: Access<'_>, mode: Mode) -> String {
    let (tenant, credential) = match access {
        Access::Anonymous => (None, None),
        Access::Scope(scope) => (Some(scope.tenant_id), scope.credential_id),
        Access::Key(hash) => {
            return format!(
                "SET TRANSACTION ISOLATION LEVEL {}; \
                 SELECT set_config('role', '{APP_ROLE}', true), \
                        set_config('hydracore.key_hash', '{}', true); BEGIN",
                isolation(mode),
                hex(hash)
            )
        }
    };
    format!(
        "SET TRANSACTION ISOLATION LEVEL {}; \
         SELECT hydracore_enter({}, {}); BEGIN",
        isolation(mode),
        literal(tenant),
        literal(credential)
    )
}

/// The two messages that open a transaction for `access` in `mode` on
/// Citus. The first begins it and, with `enter`, checks the key and
/// switches role as on one server; without, the request function called
/// next does that itself (the role may not call it). The second sets the
/// tenant (or key) with `SET LOCAL`, which Citus sends to each worker the
/// transaction uses: the text of the whole message that held the `SET`,
/// hence a message of its own. Sent one behind the other, they cost one
/// round trip.
fn citus_opening(access: Access<'_>, mode: Mode, enter: bool) -> (String, String) {
    let mut begin = format!("BEGIN ISOLATION LEVEL {}", isolation(mode));
    let propagate = "SET LOCAL citus.propagate_set_commands = 'local'";
    let set = match access {
        Access::Key(hash) => {
            if enter {
                begin += &format!("; SELECT set_config('role', '{APP_ROLE}', true)");
            }
            format!(
                "{propagate}; SET LOCAL hydracore.key_hash = '{}'",
                hex(hash)
            )
        }
        Access::Anonymous | Access::Scope(_) => {
            let (tenant, credential) = match access {
                Access::Scope(scope) => (Some(scope.tenant_id), scope.credential_id),
                _ => (None, None),
            };
            if enter {
                begin += &format!(
                    "; SELECT hydracore_enter({}, {})",
                    literal(tenant),
                    literal(credential)
                );
            }
            format!(
                "{propagate}; SET LOCAL hydracore.tenant_id = '{}'",
                tenant
                    .map(|t| t.hyphenated().to_string())
                    .unwrap_or_default()
            )
        }
    };
    (begin, set)
}

fn isolation(mode: Mode) -> &'static str {
    match mode {
        Mode::Read => "REPEATABLE READ, READ ONLY",
        Mode::Write => "READ COMMITTED",
    }
}

/// A uuid as a SQL literal (hex digits and dashes), or NULL.
fn literal(id: Option<uuid::Uuid>) -> String {
    id.map_or_else(|| "NULL".to_owned(), |id| format!("'{}'", id.hyphenated()))
}

/// Bytes as lowercase hex digits, which a SQL literal can hold as they are.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens a transaction for `access` in `mode`, in one round trip. End it
/// with [`finish`].
pub async fn begin(
    conn: &Client,
    cluster: Cluster,
    access: Access<'_>,
    mode: Mode,
) -> Result<(), StoreError> {
    Ok(open(conn, cluster, access, mode, true).await?)
}

/// [`begin`], with the driver's error.
async fn open(
    conn: &Client,
    cluster: Cluster,
    access: Access<'_>,
    mode: Mode,
    enter: bool,
) -> Result<(), tokio_postgres::Error> {
    match cluster {
        Cluster::Single => conn.batch_execute(&opening(access, mode)).await,
        Cluster::Citus => {
            let (begin, set) = citus_opening(access, mode, enter);
            // The second fails when the first did (the key check), so the
            // first's error is the one that says why.
            let (began, set) = tokio::join!(conn.batch_execute(&begin), conn.batch_execute(&set));
            let opened = began.and(set);
            if opened.is_err() {
                // After BEGIN a failure leaves the transaction open and
                // aborted. Should the rollback fail too, the connection is
                // gone, and the first error says why.
                let _ = conn.batch_execute("ROLLBACK").await;
            }
            opened
        }
    }
}

/// Runs `body`, one call of a request function: on its own on one
/// PostgreSQL, where the function sets the role and tenant itself, in a
/// transaction of its own; on Citus inside a request transaction for
/// `access`, so that they reach the workers.
pub async fn call<T>(
    conn: &Client,
    cluster: Cluster,
    access: Access<'_>,
    mode: Mode,
    body: impl AsyncFnOnce(&Client) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match cluster {
        Cluster::Single => body(conn).await,
        Cluster::Citus => {
            open(conn, cluster, access, mode, false).await?;
            let done = body(conn).await;
            finish(conn, done).await
        }
    }
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
pub async fn check_app_role(conn: &Client, cluster: Cluster) -> Result<(), StoreError> {
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
    match open(conn, cluster, Access::Anonymous, Mode::Read, true).await {
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
