//! Citus: when the database has the `citus` extension, `migrate`
//! distributes the schema by tenant and requests carry their role and
//! tenant in a way that reaches the workers.
//!
//! Every table of tenant data is distributed by `tenant_id`, all
//! co-located with `instances`, so that a request's rows (a workflow, its
//! history, counts, events, idempotency keys, webhooks, web-page tokens)
//! live on one worker and each of its statements is routed to that worker
//! alone. `credentials` is a reference table (a key is looked up by its
//! hash before its tenant is known) and so is `events_purged` (one row).
//! The migrations' own table stays on the coordinator.
//!
//! The request functions are not distributed: Citus delegates a call to a
//! worker only outside a transaction block, and a request on Citus always
//! runs in one (`session`), since the tenant it sets with `set_config`
//! inside a function would not reach the workers. Their statements are
//! routed one by one instead, each by its `tenant_id` condition.
//!
//! The coordinator opens its connections to the workers as the role that
//! runs the statement, so the application role must be able to log in
//! (with a password in `pg_dist_authinfo` in production, docs/scaling.md).
//! Triggers on distributed tables (the counts, the append-only history)
//! need `citus.enable_unsafe_triggers`: they only touch rows of the same
//! tenant, hence of the same worker, which is what makes them safe here.

use super::pool::Client;
use super::rows::get;
use super::session::APP_ROLE;
use crate::{Distribution, StoreError};

/// The table every distributed table is co-located with.
const ANCHOR: &str = "instances";

/// Tables of tenant data, distributed by `tenant_id`; the anchor first.
const DISTRIBUTED: &[&str] = &[
    ANCHOR,
    "workflows",
    "workflow_history",
    "idempotency_keys",
    "workflow_counts",
    "events",
    "webhook_endpoints",
    "webhook_deliveries",
    "ui_tokens",
];

/// Tables every node holds whole.
const REFERENCE: &[&str] = &["credentials", "events_purged"];

/// Whether the database has the `citus` extension.
pub async fn installed(conn: &Client) -> Result<bool, StoreError> {
    let row = conn
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')",
            &[],
        )
        .await?;
    get(&row, 0)
}

/// The settings a migration needs on Citus, in its open transaction:
/// triggers created on distributed tables (see the module's doc), and one
/// connection per worker, since Citus refuses some commands (a function's
/// change, say) after a statement that used several in the transaction.
pub async fn prepare_migration(conn: &Client) -> Result<(), StoreError> {
    Ok(conn
        .batch_execute(
            "SET LOCAL citus.enable_unsafe_triggers = on; \
             SET LOCAL citus.multi_shard_modify_mode = 'sequential'",
        )
        .await?)
}

/// In the open transaction, after the migrations: distributes whatever of
/// the schema is not distributed yet, and lets the application role log in
/// for the coordinator's connections to the workers. Idempotent.
pub async fn distribute(conn: &Client) -> Result<(), StoreError> {
    prepare_migration(conn).await?;
    for table in REFERENCE {
        if !is_distributed(conn, table).await? {
            conn.execute(
                "SELECT create_reference_table($1::text::regclass)",
                &[table],
            )
            .await?;
            tracing::info!(table, "Citus: made a reference table");
        }
    }
    for table in DISTRIBUTED {
        if !is_distributed(conn, table).await? {
            let colocate_with = if *table == ANCHOR { "default" } else { ANCHOR };
            conn.execute(
                "SELECT create_distributed_table($1::text::regclass, 'tenant_id', colocate_with => $2)",
                &[table, &colocate_with],
            )
            .await?;
            tracing::info!(table, "Citus: distributed by tenant_id");
        }
    }
    // The list function's generic plan, which it keeps on one server,
    // cannot be distributed (its tenant is a parameter): Citus plans each
    // call for its values instead.
    let list = "hydracore_list_workflows(uuid, uuid, uuid, text, bigint, bigint, integer, integer)";
    let planned = conn
        .query_one(
            &format!(
                "SELECT proconfig IS NOT NULL FROM pg_proc WHERE oid = '{list}'::regprocedure"
            ),
            &[],
        )
        .await?;
    if get::<bool>(&planned, 0)? {
        conn.batch_execute(&format!("ALTER FUNCTION {list} RESET plan_cache_mode"))
            .await?;
    }
    // Roles are the cluster's, shared by its databases, which may be
    // migrating at once: a concurrent change of the role is no failure if
    // the role can log in afterwards.
    conn.batch_execute(&format!(
        "DO $$ BEGIN \
           IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN \
             ALTER ROLE {APP_ROLE} LOGIN; \
           END IF; \
         EXCEPTION WHEN OTHERS THEN \
           IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN \
             RAISE; \
           END IF; \
         END $$"
    ))
    .await?;
    Ok(())
}

async fn is_distributed(conn: &Client, table: &str) -> Result<bool, StoreError> {
    let row = conn
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = to_regclass($1))",
            &[&table],
        )
        .await?;
    get(&row, 0)
}

/// How the schema is laid out on the cluster, as `migrate` reports it.
pub async fn describe(conn: &Client) -> Result<Distribution, StoreError> {
    let workers = conn
        .query_one("SELECT count(*) FROM citus_get_active_worker_nodes()", &[])
        .await?;
    let tables = conn
        .query(
            "SELECT logicalrelid::regclass::text, partmethod::text, \
                    (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) \
             FROM pg_dist_partition p ORDER BY 1",
            &[],
        )
        .await?;
    let mut distributed = Vec::new();
    let mut reference = Vec::new();
    let mut shards = 0;
    for row in &tables {
        let name: String = get(row, 0)?;
        match get::<String>(row, 1)?.as_str() {
            "h" => {
                if name == ANCHOR {
                    shards = get(row, 2)?;
                }
                distributed.push(name);
            }
            _ => reference.push(name),
        }
    }
    Ok(Distribution {
        workers: get(&workers, 0)?,
        shards,
        distributed_by: "tenant_id".to_owned(),
        distributed,
        reference,
    })
}
