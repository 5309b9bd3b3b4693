//! Runs the PostgreSQL migrations (`crate::migrate::POSTGRES`) by the
//! rules both backends share: each pending migration in a transaction of
//! its own, together with its record in `crate::migrate::TABLE`; a
//! database that a newer build migrated, or whose migrations differ from
//! this build's, is refused (`crate::migrate::pending`).
//!
//! Several replicas may start at once: each transaction first takes a
//! transaction-level advisory lock, so one replica migrates while the
//! others wait, then find nothing left to do.
//!
//! On a database with the `citus` extension, a last transaction under the
//! same lock distributes what is not distributed yet (`citus`).

use super::citus;
use super::pool::Client;
use super::rows::get;
use super::session::{self, Cluster};
use crate::migrate::{self, Applied};
use crate::StoreError;

/// The advisory lock every migrating transaction takes, in this database
/// (advisory locks are per database): any constant other software is
/// unlikely to use ("hydracor" in ASCII).
const LOCK: i64 = 0x6879_6472_6163_6f72;

/// Applies the pending migrations, one transaction each, and on Citus
/// distributes the schema; says which kind of database this is.
pub async fn run(conn: &Client) -> Result<Cluster, StoreError> {
    let cluster = if citus::installed(conn).await? {
        Cluster::Citus
    } else {
        Cluster::Single
    };
    loop {
        session::begin_as_login(conn).await?;
        let step = next(conn, cluster).await;
        let more = session::finish(conn, step).await?;
        if !more {
            break;
        }
    }
    if cluster == Cluster::Citus {
        session::begin_as_login(conn).await?;
        let distributed = async {
            locked(conn).await?;
            citus::distribute(conn).await
        }
        .await;
        session::finish(conn, distributed).await?;
    }
    Ok(cluster)
}

/// In the open transaction: no statement timeout (a migration may rewrite
/// a large table; the service's timeout is for requests), and the lock.
async fn locked(conn: &Client) -> Result<(), StoreError> {
    conn.batch_execute("SET LOCAL statement_timeout = 0")
        .await?;
    conn.execute_once("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    Ok(())
}

/// In the open transaction: applies the first pending migration, if any;
/// `false` when none is left.
async fn next(conn: &Client, cluster: Cluster) -> Result<bool, StoreError> {
    locked(conn).await?;
    if cluster == Cluster::Citus {
        citus::prepare_migration(conn).await?;
    }
    let table = migrate::TABLE;
    // Made under the lock: CREATE TABLE IF NOT EXISTS by two sessions at
    // once can still fail on the catalog's unique index.
    let exists = conn
        .query_one_once("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?;
    if !get::<bool>(&exists, 0)? {
        conn.batch_execute(&format!(
            "CREATE TABLE {table} (version bigint PRIMARY KEY, name text NOT NULL, \
             checksum bytea NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await?;
    }
    let applied = conn
        .query_once(migrate::SELECT_APPLIED, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(Applied {
                version: get(row, 0)?,
                checksum: get(row, 1)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let Some(next) = migrate::next(migrate::POSTGRES, &applied)? else {
        return Ok(false);
    };
    conn.batch_execute(next.sql).await?;
    conn.execute_once(
        &format!("INSERT INTO {table} (version, name, checksum) VALUES ($1, $2, $3)"),
        &[&next.version, &next.name, &next.checksum()],
    )
    .await?;
    tracing::info!(
        version = next.version,
        name = next.name,
        "PostgreSQL migration applied"
    );
    Ok(true)
}
