//! The PostgreSQL backend against a real server: tenant isolation by
//! row-level security, no tenant carried across pooled requests, serialized
//! concurrent changes, migration versioning, and replicas telling each
//! other of their changes.
//!
//! The server is `HYDRACORE_TEST_POSTGRES_URL` (default: the local one with
//! trust auth). Each test works in a database of its own and drops it; when
//! no server answers, the tests pass with a note instead of failing.
// Helpers outside #[test] functions panic on setup failures too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hydracore_domain::idempotency::{Claim, IdempotencyKey};
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::request::{
    AdvanceWorkflow, CreateWorkflow, ListQuery, ResumeWorkflow, SuspendWorkflow,
};
use hydracore_domain::transition::{self, Change, Command, TransitionError};
use hydracore_domain::{
    ActionName, Principal, Scope, Status, StepName, Timestamp, Workflow, WorkflowType,
};
use hydracore_storage::postgres::{tls, PgStore};
use hydracore_storage::{
    Changed, Credential, CredentialKind, Instance, NewCredential, Rule, Store, StoreError,
    StoreOptions, UseCaseError, WithHistory, Workflows,
};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, watch};
use tokio_postgres::{Client, GenericClient, Transaction};
use uuid::Uuid;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const TENANT_TABLES: [&str; 5] = [
    "instances",
    "credentials",
    "workflows",
    "workflow_history",
    "workflow_counts",
];

fn server_url() -> String {
    std::env::var("HYDRACORE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database path replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{prefix}/{database}{query}")
}

/// `url` logging in as `user` (no password: the test server trusts).
fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_start = rest
        .find('@')
        .filter(|at| rest.find('/').is_none_or(|slash| at < &slash))
        .map_or(0, |at| at + 1);
    format!("{scheme}://{user}@{}", &rest[host_start..])
}

/// hydracore_app is cluster-wide: the one test that alters it holds this
/// exclusively, every other test shares it.
fn app_role_lock() -> &'static tokio::sync::RwLock<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::RwLock<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::RwLock::new(()))
}

/// A connection to `url`, opened as the store opens its own.
async fn connect(url: &str) -> Result<Client, StoreError> {
    tls::connect(&tls::settings(url, None)?).await
}

/// A connection to `url` as its login, for setting up and inspecting.
async fn login(url: &str) -> Client {
    connect(url).await.expect("login")
}

async fn admin_connection() -> Option<Client> {
    let url = server_url();
    match tokio::time::timeout(Duration::from_secs(5), connect(&url)).await {
        Ok(Ok(conn)) => Some(conn),
        _ => {
            println!("PostgreSQL not reachable: skipped");
            None
        }
    }
}

/// The error's text with the server's message, which tokio-postgres keeps
/// as its source.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {db}"),
        None => e.to_string(),
    }
}

/// A fresh database for `body`, dropped afterwards even when `body` panics
/// (the panic is then raised again). `None` when no server answers.
async fn with_database_for<F, Fut>(body: F) -> Option<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = in_database(body).await?;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    Some(())
}

/// As [`with_database_for`], handing back `body`'s panic (if any) so the
/// caller can clean up cluster-wide things first.
async fn in_database<F, Fut>(body: F) -> Option<Result<(), tokio::task::JoinError>>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _shared = app_role_lock().read().await;
    let admin = admin_connection().await?;
    // Generated here, never from input: safe to splice into DDL.
    let name = format!("hc_test_{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    let outcome = tokio::spawn(body(with_database(&server_url(), &name))).await;
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the test database");
    Some(outcome)
}

/// A new login role (`CREATE ROLE <name> LOGIN <attributes>`) and a fresh
/// database for `body`, which gets the login's name and the database's
/// (superuser) URL; both are dropped afterwards, even when `body` panics
/// (the panic is then raised again). Nothing when no server answers.
async fn with_a_new_login<F, Fut>(attributes: &str, body: F)
where
    F: FnOnce(String, String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin) = admin_connection().await else {
        return;
    };
    // Generated here, never from input: safe to splice into DDL.
    let login = format!("hc_login_{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE ROLE {login} LOGIN {attributes}"))
        .await
        .expect("create the login role");
    let outcome = in_database({
        let login = login.clone();
        |url| body(login, url)
    })
    .await;
    admin
        .batch_execute(&format!("DROP ROLE {login}"))
        .await
        .expect("drop the login role");
    if let Some(Err(e)) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn database_name(url: &str) -> String {
    tokio_postgres::Config::from_str(url)
        .expect("url")
        .get_dbname()
        .map(str::to_owned)
        .expect("database name")
}

/// A fresh database owned, with its schema, by a new non-superuser login
/// (`CREATEROLE`, so that its migrations can create `hydracore_app`), for
/// `body`, which gets the login's name and URL and a superuser connection
/// to the database; as [`with_a_new_login`] otherwise.
async fn in_database_owned_by_a_new_login<F, Fut>(body: F)
where
    F: FnOnce(String, String, Client) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_a_new_login("CREATEROLE", |owner, url| async move {
        let db = database_name(&url);
        let su = login(&url).await;
        su.batch_execute(&format!("ALTER DATABASE {db} OWNER TO {owner}"))
            .await
            .expect("hand the database over");
        su.batch_execute(&format!("ALTER SCHEMA public OWNER TO {owner}"))
            .await
            .expect("and its schema");
        let owner_url = with_user(&url, &owner);
        body(owner, owner_url, su).await;
    })
    .await;
}

fn options(max_connections: u32) -> StoreOptions {
    StoreOptions {
        max_connections,
        acquire_timeout: Duration::from_secs(10),
        ..StoreOptions::default()
    }
}

async fn store(url: &str, max_connections: u32) -> Arc<PgStore> {
    Arc::new(
        PgStore::connect(url, &options(max_connections))
            .await
            .expect("connect and migrate"),
    )
}

/// The server process behind the connection the store lends next (with one
/// connection: its only one), to tell a connection kept from one replaced.
async fn backend_pid(store: &PgStore) -> i32 {
    let conn = store
        .pooled_connection()
        .await
        .expect("the store's connection");
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("backend pid")
        .get(0)
}

/// One tenant's fixtures: an instance, its proxy key and one workflow.
struct Tenant {
    id: Uuid,
    instance: Uuid,
    key_hash: Vec<u8>,
    workflow: Uuid,
}

impl Tenant {
    fn scope(&self) -> Scope {
        Scope::instance(self.id, self.instance)
    }
}

fn new_workflow(tenant: Uuid, instance: Uuid, state: Map<String, Value>) -> Workflow {
    let request = CreateWorkflow {
        customer_id: Uuid::new_v4(),
        workflow_type: WorkflowType::RentArrears,
        stage: Some("start".into()),
        title: Some("Chase rent".into()),
        reference: Some("REF-1".into()),
        assigned_to: None,
        workflow_state: state,
        next_action_at: None,
        expires_at: None,
    };
    transition::create(
        Uuid::now_v7(),
        tenant,
        instance,
        request,
        &Principal::Instance(instance),
        Timestamp::now(),
    )
}

async fn seed_tenant(store: &dyn Store) -> Tenant {
    let id = Uuid::new_v4();
    let instance = Instance {
        id: Uuid::new_v4(),
        tenant_id: id,
        name: Some("agent".into()),
        created_at: Timestamp::now(),
    };
    store.create_instance(&instance).await.expect("instance");
    let key_hash = Uuid::new_v4().as_bytes().repeat(2);
    let credential = NewCredential {
        credential: Credential {
            id: Uuid::new_v4(),
            kind: CredentialKind::Proxy,
            tenant_id: id,
            instance_id: Some(instance.id),
            scopes: vec![],
            key_prefix: "hcp_test".into(),
            created_at: Timestamp::now(),
            revoked_at: None,
        },
        key_hash: key_hash.clone(),
    };
    store
        .create_credential(&credential)
        .await
        .expect("credential");
    let mut state = Map::new();
    state.insert("tenant".into(), json!(id));
    let workflow = new_workflow(id, instance.id, state);
    store
        .insert_workflow(
            Scope::instance(workflow.tenant_id, workflow.instance_id),
            &workflow,
            None,
        )
        .await
        .expect("workflow");
    Tenant {
        id,
        instance: instance.id,
        key_hash,
        workflow: workflow.id,
    }
}

/// The tenant's scope as its agent reaches it: by its key.
async fn keyed_scope(store: &dyn Store, t: &Tenant) -> Scope {
    let credential = store
        .find_credential(&t.key_hash)
        .await
        .expect("lookup")
        .expect("the tenant's key");
    t.scope().by_key(credential.id)
}

/// The first page of 20, unfiltered.
fn first_page() -> ListQuery {
    ListQuery {
        customer_id: None,
        workflow_type: None,
        status: None,
        reference: None,
        instance_id: None,
        page: 1,
        per_page: 20,
        cursor: None,
    }
}

fn advance(action: &str, state: Map<String, Value>) -> Command {
    Command::Advance(Box::new(AdvanceWorkflow {
        action: ActionName::parse(action).expect("action name"),
        action_detail: Value::Null,
        actor: None,
        approver_id: None,
        assigned_to: None,
        escalation_level: None,
        expires_at: None,
        next_action_at: None,
        stage: None,
        status: None,
        workflow_state: Some(state),
    }))
}

/// A change's use case run through one store (a replica), as requests run
/// it.
trait ChangeThrough {
    async fn change(
        &self,
        scope: Scope,
        id: Uuid,
        command: &Command,
        by: &Principal,
        if_match: Option<&IfMatch>,
        history: WithHistory,
    ) -> Result<Change, UseCaseError>;
}

impl ChangeThrough for PgStore {
    async fn change(
        &self,
        scope: Scope,
        id: Uuid,
        command: &Command,
        by: &Principal,
        if_match: Option<&IfMatch>,
        history: WithHistory,
    ) -> Result<Change, UseCaseError> {
        Workflows::new(Arc::new(self.clone()))
            .change(scope, id, command.clone(), by, if_match.cloned(), history)
            .await
    }
}

/// Who the tests' changes are made by.
fn agent() -> Principal {
    Principal::User("agent".into())
}

/// `command` on the tenant's workflow through `store` (a replica), as its
/// agent.
async fn change_on(
    store: &PgStore,
    t: &Tenant,
    command: &Command,
    if_match: Option<&IfMatch>,
    history: WithHistory,
) -> Result<Change, UseCaseError> {
    store
        .change(t.scope(), t.workflow, command, &agent(), if_match, history)
        .await
}

async fn count_rows(conn: &impl GenericClient, table: &str) -> i64 {
    conn.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

async fn as_app_role(conn: &mut Client) -> Transaction<'_> {
    let tx = conn.transaction().await.expect("begin");
    tx.batch_execute("SET LOCAL ROLE hydracore_app")
        .await
        .expect("set role");
    tx
}

async fn set_tenant(tx: &Transaction<'_>, tenant: Uuid) {
    tx.execute(
        "SELECT set_config('hydracore.tenant_id', $1, true)",
        &[&tenant.to_string()],
    )
    .await
    .expect("set tenant");
}

#[tokio::test]
async fn without_a_tenant_the_app_role_sees_no_rows() {
    with_database_for(|url| async move {
        // One connection: the store's requests below leave the tenant
        // setting defined (as '') on it, the case a bare ::uuid cast breaks.
        let store = store(&url, 1).await;
        let a = seed_tenant(store.as_ref()).await;
        let _b = seed_tenant(store.as_ref()).await;
        store
            .get_workflow(a.scope(), a.workflow, WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");

        let mut conn = store
            .pooled_connection()
            .await
            .expect("the store's connection");
        let tx = as_app_role(&mut conn).await;
        for table in TENANT_TABLES {
            assert_eq!(count_rows(&tx, table).await, 0, "{table} without tenant");
        }
        tx.rollback().await.expect("rollback");

        // The same counts as the login, which the admin policy lets span
        // tenants: the rows are there, only hidden.
        let login = login(&url).await;
        assert_eq!(count_rows(&login, "instances").await, 2);
        assert_eq!(count_rows(&login, "credentials").await, 2);
        assert_eq!(count_rows(&login, "workflows").await, 2);
        assert_eq!(count_rows(&login, "workflow_history").await, 2);
    })
    .await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_rows_and_cannot_write_anothers() {
    with_database_for(|url| async move {
        let store = store(&url, 2).await;
        let a = seed_tenant(store.as_ref()).await;
        let b = seed_tenant(store.as_ref()).await;

        let mut conn = login(&url).await;
        let tx = as_app_role(&mut conn).await;
        set_tenant(&tx, a.id).await;
        for table in TENANT_TABLES {
            let tenants: Vec<Uuid> = tx
                .query(&format!("SELECT DISTINCT tenant_id FROM {table}"), &[])
                .await
                .expect("select")
                .iter()
                .map(|row| row.get(0))
                .collect();
            assert_eq!(tenants, vec![a.id], "{table} as tenant A");
        }
        let by_id = tx
            .query_opt("SELECT id FROM workflows WHERE id = $1", &[&b.workflow])
            .await
            .expect("select B's workflow");
        assert!(by_id.is_none());
        tx.rollback().await.expect("rollback");

        // Writing B's tenant_id as A: refused by the policy's WITH CHECK
        // (B's instance exists, so no foreign key is what stops it).
        let tx = as_app_role(&mut conn).await;
        set_tenant(&tx, a.id).await;
        let insert = tx
            .execute(
                "INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, \
                 status, created_at, updated_at, version) \
                 VALUES ($1, $2, $3, $4, 'lead', 'active', now(), now(), 1)",
                &[&Uuid::now_v7(), &b.id, &b.instance, &Uuid::new_v4()],
            )
            .await;
        let err = error_text(&insert.expect_err("a row of tenant B written as tenant A"));
        assert!(
            err.contains("row-level security"),
            "unexpected error: {err}"
        );
        tx.rollback().await.expect("rollback");

        let tx = as_app_role(&mut conn).await;
        set_tenant(&tx, a.id).await;
        let moved = tx
            .execute(
                "UPDATE workflows SET tenant_id = $1 WHERE id = $2",
                &[&b.id, &a.workflow],
            )
            .await;
        assert!(moved.is_err(), "moving A's workflow to B must fail");
        tx.rollback().await.expect("rollback");

        // Through the store: B's workflow is simply not there for A.
        let cross = Scope::tenant(a.id);
        assert!(store
            .get_workflow(cross, b.workflow, WithHistory::Yes)
            .await
            .expect("get")
            .is_none());
        assert!(matches!(
            store
                .change(
                    cross,
                    b.workflow,
                    &Command::Abort { reason: None },
                    &agent(),
                    None,
                    WithHistory::No
                )
                .await,
            Err(UseCaseError::NotFound)
        ));
        // Nor can a create made for A write B's workflow; B keeps one.
        let created = store
            .insert_workflow(a.scope(), &new_workflow(b.id, b.instance, Map::new()), None)
            .await;
        assert!(
            matches!(created, Err(StoreError::Corrupt(_))),
            "{created:?}"
        );
        let page = store
            .list_workflows(Scope::tenant(b.id), &first_page())
            .await
            .expect("B's list");
        assert_eq!(page.total, 1);
        // A list of B's instance made as A finds nothing, total included.
        let b_instance = ListQuery {
            instance_id: Some(b.instance),
            status: Some(Status::Active),
            ..first_page()
        };
        let page = store
            .list_workflows(cross, &b_instance)
            .await
            .expect("list");
        assert_eq!((page.total, page.workflows.len()), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn one_pooled_connection_never_carries_a_tenant_into_the_next_request() {
    with_database_for(|url| async move {
        let store = store(&url, 1).await;
        let a = seed_tenant(store.as_ref()).await;
        let b = seed_tenant(store.as_ref()).await;
        let pid = backend_pid(&store).await;
        let query = first_page();
        for round in 0..5 {
            for t in [&a, &b] {
                let page = store
                    .list_workflows(Scope::tenant(t.id), &query)
                    .await
                    .expect("list");
                assert_eq!(page.total, 1, "round {round}");
                assert_eq!(page.workflows[0].tenant_id, t.id);
                assert_eq!(page.workflows[0].history.len(), round + 1);

                let change = store
                    .change(
                        t.scope(),
                        t.workflow,
                        &advance(&format!("step_{round}"), Map::new()),
                        &agent(),
                        None,
                        WithHistory::Yes,
                    )
                    .await
                    .expect("advance");
                assert_eq!(change.workflow.tenant_id, t.id);
                assert!(change.workflow.history.iter().all(|e| e.seq >= 1));

                let found = store
                    .find_credential(&t.key_hash)
                    .await
                    .expect("find")
                    .expect("own key");
                assert_eq!(found.tenant_id, t.id);

                // The other tenant's key is found too: a key is looked up
                // before any tenant is known, by its hash alone. Its
                // workflows stay out of reach.
                let other = if t.id == a.id { &b } else { &a };
                let others = store.find_credential(&other.key_hash).await.expect("find");
                assert_eq!(others.map(|c| c.tenant_id), Some(other.id));
                assert!(store
                    .get_workflow(Scope::tenant(t.id), other.workflow, WithHistory::No)
                    .await
                    .expect("get")
                    .is_none());
                assert_eq!(
                    store
                        .list_suspended(Scope::tenant(t.id), 500)
                        .await
                        .expect("s"),
                    vec![]
                );
            }
        }
        // A failed request (a transition refused after its read) must
        // not leave its tenant behind either.
        let suspend = Command::Suspend(SuspendWorkflow::at(
            StepName::parse("approve").expect("step"),
            json!({"amount": 10}),
        ));
        store
            .change(
                a.scope(),
                a.workflow,
                &suspend,
                &agent(),
                None,
                WithHistory::No,
            )
            .await
            .expect("suspend");
        assert!(matches!(
            store
                .change(
                    a.scope(),
                    a.workflow,
                    &suspend,
                    &agent(),
                    None,
                    WithHistory::No
                )
                .await,
            Err(UseCaseError::Refused(_))
        ));
        assert_eq!(
            store
                .list_suspended(Scope::tenant(b.id), 500)
                .await
                .expect("s"),
            vec![]
        );
        let suspended = store
            .list_suspended(Scope::tenant(a.id), 500)
            .await
            .expect("s");
        assert_eq!(suspended.len(), 1);
        assert_eq!(suspended[0].suspend_payload, json!({"amount": 10}));

        // And the one connection, back in the pool, is the login again with
        // no tenant set.
        let conn = store
            .pooled_connection()
            .await
            .expect("the store's connection");
        let state = conn
            .query_one(
                "SELECT current_user::text, current_setting('hydracore.tenant_id', true)",
                &[],
            )
            .await
            .expect("session state");
        let (user, tenant): (String, Option<String>) = (state.get(0), state.get(1));
        assert_ne!(user, "hydracore_app");
        assert_eq!(tenant.unwrap_or_default(), "");
        drop(conn);
        assert_eq!(
            backend_pid(&store).await,
            pid,
            "the same connection throughout"
        );
    })
    .await;
}

#[tokio::test]
async fn fifty_concurrent_advances_of_one_workflow_all_land_in_order() {
    with_database_for(|url| async move {
        let store = store(&url, 10).await;
        let t = seed_tenant(store.as_ref()).await;
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = Arc::clone(&store);
                let scope = t.scope();
                let id = t.workflow;
                tokio::spawn(async move {
                    let mut state = Map::new();
                    state.insert(format!("k{i}"), json!(i));
                    store
                        .change(
                            scope,
                            id,
                            &advance("tick", state),
                            &agent(),
                            None,
                            WithHistory::No,
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("advance");
        }
        let w = store
            .get_workflow(t.scope(), t.workflow, WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");
        let seqs: Vec<i64> = w.history.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=51).collect::<Vec<_>>());
        assert_eq!(w.version, 51);
        let merged = (0..50)
            .filter(|i| w.workflow_state.get(&format!("k{i}")) == Some(&json!(i)))
            .count();
        assert_eq!(merged, 50);
    })
    .await;
}

/// Two replicas of one database: each remembers the records it wrote
/// last, and must still build every change on the other's.
#[tokio::test]
async fn each_replica_changes_a_workflow_on_top_of_the_others_changes() {
    with_database_for(|url| async move {
        let (a, b) = (store(&url, 2).await, store(&url, 2).await);
        let t = seed_tenant(a.as_ref()).await;
        for (i, replica) in [&a, &a, &b, &a, &b, &b, &a].into_iter().enumerate() {
            let mut state = Map::new();
            state.insert(format!("k{i}"), json!(i));
            let change = change_on(replica, &t, &advance("tick", state), None, WithHistory::Yes)
                .await
                .expect("advance");
            let seqs: Vec<i64> = change.workflow.history.iter().map(|e| e.seq).collect();
            let version = i64::try_from(i).expect("small") + 2;
            assert_eq!(seqs, (1..=version).collect::<Vec<_>>(), "change {i}");
            assert_eq!(change.workflow.version, version);
            let kept = (0..=i)
                .filter(|k| change.workflow.workflow_state.get(&format!("k{k}")) == Some(&json!(k)))
                .count();
            assert_eq!(kept, i + 1, "change {i} kept every earlier change's state");
        }
    })
    .await;
}

/// A replica's remembered record can be out of date; a 409 or 412 must
/// come from the stored one, and a command the stored record allows must
/// land.
#[tokio::test]
async fn a_replica_answers_refusals_from_the_stored_record_not_its_last_write() {
    with_database_for(|url| async move {
        let (a, b) = (store(&url, 2).await, store(&url, 2).await);
        let t = seed_tenant(a.as_ref()).await;
        let change = |replica: &Arc<PgStore>, command: Command, if_match: Option<IfMatch>| {
            let (replica, t) = (Arc::clone(replica), &t);
            async move { change_on(&replica, t, &command, if_match.as_ref(), WithHistory::No).await }
        };
        let suspend = || {
            Command::Suspend(SuspendWorkflow::at(
                StepName::parse("approve").expect("step"),
                json!({"amount": 10}),
            ))
        };
        let resume = || {
            Command::Resume(ResumeWorkflow {
                resume_data: Map::new(),
            })
        };

        let tick = || advance("tick", Map::new());
        let if_match = |version: i64| Some(IfMatch::parse(&format!("\"{version}\"")));
        let refused = |outcome: Result<_, UseCaseError>, expected: TransitionError| match outcome {
            Err(UseCaseError::Refused(e)) => assert_eq!(e, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        };

        // Commands A's own record would refuse, which the stored one
        // allows. A wrote version 1 (active); B suspends it: A resumes.
        change(&b, suspend(), None).await.expect("B suspends");
        let resumed = change(&a, resume(), None).await.expect("A resumes");
        assert_eq!(
            (resumed.workflow.version, resumed.workflow.status),
            (3, Status::Active)
        );
        // A suspends (4), B resumes (5): A suspends again.
        change(&a, suspend(), None).await.expect("A suspends");
        change(&b, resume(), None).await.expect("B resumes");
        let suspended = change(&a, suspend(), None).await.expect("A suspends again");
        assert_eq!(suspended.workflow.version, 6);
        // A resumes (7), B advances (8): A's If-Match 8 lands.
        change(&a, resume(), None).await.expect("A resumes");
        change(&b, tick(), None).await.expect("B advances");
        let landed = change(&a, tick(), if_match(8)).await.expect("If-Match 8");
        assert_eq!(landed.workflow.version, 9);

        // Commands A's own record would allow, which the stored one
        // refuses. B advances (10): A's If-Match 9 is refused with 10.
        change(&b, tick(), None).await.expect("B advances");
        let outcome = change(&a, tick(), if_match(9)).await;
        refused(outcome, TransitionError::VersionMismatch { current: 10 });
        // A advances (11), B suspends (12): A's suspend is refused.
        change(&a, tick(), None).await.expect("A advances");
        change(&b, suspend(), None).await.expect("B suspends");
        let outcome = change(&a, suspend(), None).await;
        refused(outcome, TransitionError::AlreadySuspended);
        // B resumes (13), A advances (14), B aborts (15): A finds it
        // terminal.
        change(&b, resume(), None).await.expect("B resumes");
        change(&a, tick(), None).await.expect("A advances");
        change(&b, Command::Abort { reason: None }, None).await.expect("B aborts");
        let outcome = change(&a, tick(), None).await;
        refused(outcome, TransitionError::Terminal(Status::Cancelled));
        let stored = b
            .get_workflow(t.scope(), t.workflow, WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(stored.version, 15);
        assert_eq!(stored.history.len(), 15);
    })
    .await;
}

/// A replica advances its workflow (to version 2, state key "mine"),
/// `edit` changes the row by hand, and the replica advances it again (key
/// "next"): the state's keys after that.
async fn state_keys_after_a_hand_edit(url: &str, edit: &str) -> Vec<String> {
    let a = store(url, 2).await;
    let t = seed_tenant(a.as_ref()).await;
    let mut state = Map::new();
    state.insert("mine".into(), json!(1));
    change_on(&a, &t, &advance("tick", state), None, WithHistory::No)
        .await
        .expect("A advances to version 2");
    let edited = login(url)
        .await
        .execute(edit, &[&t.workflow])
        .await
        .expect("the hand edit");
    assert_eq!(edited, 1, "{edit}");
    let mut state = Map::new();
    state.insert("next".into(), json!(1));
    let change = change_on(&a, &t, &advance("tick", state), None, WithHistory::No)
        .await
        .expect("A advances to version 3");
    assert_eq!(change.workflow.version, 3);
    change.workflow.workflow_state.keys().cloned().collect()
}

/// A record changed without this replica, at the version this replica
/// wrote (after a failover that lost its write, another replica can write
/// that version anew): its next change must build on the stored record.
#[tokio::test]
async fn a_replica_builds_on_a_record_rewritten_at_the_version_it_wrote() {
    with_database_for(|url| async move {
        let rewrite = "UPDATE workflows SET workflow_state = '{\"theirs\": 1}', \
                       updated_at = now() WHERE id = $1 AND version = 2";
        let keys = state_keys_after_a_hand_edit(&url, rewrite).await;
        assert_eq!(keys, ["theirs", "next"]);
    })
    .await;
}

/// The other tests pass whether or not a change reads first; this one
/// tells the two apart. A hand edit that keeps `version` and `updated_at`
/// (which docs/scaling.md forbids) is invisible to the write's condition,
/// so only a change that started from its own last write loses it.
#[tokio::test]
async fn a_replica_changes_its_last_written_record_without_reading_it_again() {
    with_database_for(|url| async move {
        let edit = "UPDATE workflows SET workflow_state = '{\"unseen\": 1}' WHERE id = $1";
        let keys = state_keys_after_a_hand_edit(&url, edit).await;
        assert_eq!(keys, ["tenant", "mine", "next"]);
    })
    .await;
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_build_is_refused() {
    with_database_for(|url| async move {
        drop(store(&url, 1).await);
        login(&url)
            .await
            .batch_execute(
                "INSERT INTO hydracore_migrations (version, name, checksum) \
                 VALUES (99990101000000, 'from the future', '\\x00')",
            )
            .await
            .expect("record a newer migration");
        match PgStore::connect(&url, &options(1)).await {
            Err(StoreError::Config(message)) => {
                assert!(message.contains("newer HydraCore"), "{message}");
                assert!(message.contains("99990101000000"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    })
    .await;
}

/// Agent data is stored as `json`, read back with serde_json: every number
/// comes back with the digits it was sent with, in a record, a suspend
/// payload and a history entry alike.
#[tokio::test]
async fn agent_json_comes_back_byte_for_byte() {
    with_database_for(|url| async move {
        let store = store(&url, 2).await;
        let t = seed_tenant(store.as_ref()).await;
        let exotic = r#"{"big":123456789012345678901234567890,"tiny":1e-400,"huge":1.5e+400,"negative_zero":-0.0,"trailing":0.10,"nested":[{"z":1,"a":-0}]}"#;
        let value: Value = serde_json::from_str(exotic).expect("exotic JSON");
        let Value::Object(state) = value.clone() else {
            panic!("an object")
        };
        let suspend = Command::Suspend(SuspendWorkflow::at(
            StepName::parse("approve").expect("step"),
            value.clone(),
        ));
        let w = new_workflow(t.id, t.instance, state);
        store
            .insert_workflow(t.scope(), &w, None)
            .await
            .expect("create");
        store
            .change(t.scope(), w.id, &suspend, &agent(), None, WithHistory::No)
            .await
            .expect("suspend");
        let read = store
            .get_workflow(t.scope(), w.id, WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(Value::Object(read.workflow_state).to_string(), exotic);
        assert_eq!(read.suspend_payload.to_string(), exotic);
        let stored: String = login(&url)
            .await
            .query_one(
                "SELECT suspend_payload::text FROM workflows WHERE id = $1",
                &[&w.id],
            )
            .await
            .expect("the stored text")
            .get(0);
        assert_eq!(stored, exotic);
    })
    .await;
}

#[tokio::test]
async fn connecting_again_reruns_migrations_harmlessly() {
    with_database_for(|url| async move {
        let first = store(&url, 1).await;
        let t = seed_tenant(first.as_ref()).await;
        first.close().await;
        let second = hydracore_storage::connect(&url, &options(2))
            .await
            .expect("second connect");
        second.ping().await.expect("ping");
        let w = second
            .get_workflow(t.scope(), t.workflow, WithHistory::Yes)
            .await
            .expect("get")
            .expect("still there");
        assert_eq!(w.history.len(), 1);
        assert_eq!(second.list_instances().await.expect("instances").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn history_is_append_only_even_for_the_owner() {
    with_database_for(|url| async move {
        let store = store(&url, 1).await;
        let t = seed_tenant(store.as_ref()).await;
        let conn = login(&url).await;
        for statement in [
            "UPDATE workflow_history SET actor = 'someone else'",
            "DELETE FROM workflow_history",
            "TRUNCATE workflow_history",
        ] {
            let err = error_text(&conn.batch_execute(statement).await.expect_err(statement));
            assert!(err.contains("append-only"), "{statement}: {err}");
        }
        let w = store
            .get_workflow(t.scope(), t.workflow, WithHistory::Yes)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(w.history.len(), 1);
    })
    .await;
}

/// The administrative commands run as the login, which need not be a
/// superuser: an owner under FORCE ROW LEVEL SECURITY still manages every
/// tenant, while its requests stay confined.
#[tokio::test]
async fn a_non_superuser_owner_migrates_administers_and_stays_confined() {
    in_database_owned_by_a_new_login(|_owner, owner_url, _su| async move {
        let store = store(&owner_url, 2).await;
        let a = seed_tenant(store.as_ref()).await;
        let b = seed_tenant(store.as_ref()).await;
        let instances = store.list_instances().await.expect("instances");
        assert_eq!(instances.len(), 2);
        assert_eq!(store.list_credentials().await.expect("keys").len(), 2);
        let a_instance = store.get_instance(a.instance).await.expect("get instance");
        assert_eq!(a_instance.map(|i| i.tenant_id), Some(a.id));
        assert!(store
            .get_workflow(Scope::tenant(a.id), b.workflow, WithHistory::No)
            .await
            .expect("get")
            .is_none());
    })
    .await;
}

/// A write switches the role first: in the message that opens its
/// transaction, before `BEGIN` (`session::begin`, an idempotency claim), or
/// first thing in a database function's call (a create). When the switch
/// fails, the connection must go back to the pool idle, not inside an
/// aborted transaction.
#[tokio::test]
async fn a_write_whose_role_switch_fails_leaves_its_pooled_connection_usable() {
    in_database_owned_by_a_new_login(|owner, owner_url, su| async move {
        // One connection: the failed writes and the next share it.
        let store = store(&owner_url, 1).await;
        let t = seed_tenant(store.as_ref()).await;
        let key = IdempotencyKey::parse("retry-1").expect("key");
        let pid = backend_pid(&store).await;
        su.batch_execute(&format!("REVOKE hydracore_app FROM {owner}"))
            .await
            .expect("revoke the role");
        let refused = store
            .insert_workflow(t.scope(), &new_workflow(t.id, t.instance, Map::new()), None)
            .await;
        assert!(refused.is_err(), "the create ran without the role");
        let refused = store
            .claim_idempotency_key(t.scope(), t.instance, &key, b"body")
            .await;
        assert!(refused.is_err(), "the claim ran without the role");
        su.batch_execute(&format!("GRANT hydracore_app TO {owner}"))
            .await
            .expect("grant the role back");
        store
            .insert_workflow(t.scope(), &new_workflow(t.id, t.instance, Map::new()), None)
            .await
            .expect("the connection writes again");
        assert!(matches!(
            store
                .claim_idempotency_key(t.scope(), t.instance, &key, b"body")
                .await,
            Ok(Claim::Fresh)
        ));
        assert_eq!(backend_pid(&store).await, pid, "the same connection");
        let page = store
            .list_workflows(t.scope(), &first_page())
            .await
            .expect("and reads");
        assert_eq!(page.total, 2);
    })
    .await;
}

/// A request dropped while its transaction is opening (a client gone, a
/// timeout) must not leave its pooled connection inside that transaction,
/// where the next user would run, as the application role: the connection
/// is closed, and the next request gets a new one.
#[tokio::test]
async fn a_request_dropped_while_its_transaction_opens_closes_its_connection() {
    with_database_for(|url| async move {
        let store = store(&url, 1).await;
        let t = seed_tenant(store.as_ref()).await;
        let scope = keyed_scope(store.as_ref(), &t).await;
        let query = first_page();
        // Holds the opening message at its key check until released.
        let blocker = login(&url).await;
        blocker.batch_execute("BEGIN").await.expect("begin");
        blocker
            .batch_execute("LOCK TABLE credentials IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        let waited = tokio::time::timeout(
            Duration::from_millis(300),
            store.list_workflows(scope, &query),
        )
        .await;
        assert!(waited.is_err(), "the list did not wait for the lock");
        let open = store.pool_stats();
        assert_eq!((open.in_use, open.idle), (0, 0), "closed, not pooled");
        blocker.batch_execute("ROLLBACK").await.expect("unlock");

        let w = store
            .get_workflow(scope, t.workflow, WithHistory::Yes)
            .await
            .expect("the pool serves the next request");
        assert!(w.is_some());
        let page = store
            .list_workflows(scope, &query)
            .await
            .expect("and opens the next transaction");
        assert_eq!(page.total, 1);
    })
    .await;
}

/// Every request made with a key checks it in its own first message, so a
/// key revoked after its lookup (here: looked up, then revoked) reads and
/// writes nothing.
#[tokio::test]
async fn every_request_with_a_revoked_key_is_refused_by_the_database() {
    with_database_for(|url| async move {
        let store = store(&url, 2).await;
        let t = seed_tenant(store.as_ref()).await;
        let scope = keyed_scope(store.as_ref(), &t).await;
        let credential_id = scope.credential_id.expect("a key");
        assert!(store
            .revoke_credential(credential_id)
            .await
            .expect("revoke"));
        let query = first_page();
        // Confined to one instance and status: one database call of its own.
        let status_query = ListQuery {
            status: Some(Status::Active),
            ..first_page()
        };
        let advance = advance("called", Map::new());
        let outcomes = [
            (
                "get",
                store
                    .get_workflow(scope, t.workflow, WithHistory::Yes)
                    .await
                    .err(),
            ),
            ("list", store.list_workflows(scope, &query).await.err()),
            (
                "status list",
                store.list_workflows(scope, &status_query).await.err(),
            ),
            ("suspended", store.list_suspended(scope, 500).await.err()),
            ("change", {
                let advance = advance.clone();
                let rule: Rule = Arc::new(move |w| {
                    transition::apply(w, &advance, &agent(), None, Timestamp::now())
                });
                store
                    .change_workflow(scope, t.workflow, rule, WithHistory::No)
                    .await
                    .err()
            }),
            (
                "insert",
                store
                    .insert_workflow(scope, &new_workflow(t.id, t.instance, Map::new()), None)
                    .await
                    .err(),
            ),
        ];
        for (what, error) in outcomes {
            assert!(
                matches!(error, Some(StoreError::KeyRevoked)),
                "{what}: {error:?}"
            );
        }
        let unchanged = store
            .get_workflow(t.scope(), t.workflow, WithHistory::Yes)
            .await
            .expect("get without a key")
            .expect("the workflow");
        assert_eq!(unchanged.version, 1);
        let page = store.list_workflows(t.scope(), &query).await.expect("list");
        assert_eq!(page.total, 1);
    })
    .await;
}

#[tokio::test]
async fn connections_the_server_dropped_are_replaced_without_a_restart() {
    with_database_for(|url| async move {
        let store = store(&url, 2).await;
        let t = seed_tenant(store.as_ref()).await;
        store.ping().await.expect("ping");
        // Opens the pipelined connections, so that the cut meets them too.
        for _ in 0..4 {
            store
                .get_workflow(t.scope(), t.workflow, WithHistory::No)
                .await
                .expect("get before the cut");
        }
        // What a server restart does to a pool: every connection it holds
        // is cut while idle.
        let cut = login(&url)
            .await
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("terminate");
        assert!(!cut.is_empty());
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.ping().await.expect("ping after the cut");
        let w = store
            .get_workflow(t.scope(), t.workflow, WithHistory::Yes)
            .await
            .expect("get after the cut");
        assert!(w.is_some());
    })
    .await;
}

#[tokio::test]
async fn gets_and_one_status_lists_share_connections_outside_the_pool() {
    with_database_for(|url| async move {
        let store = store(&url, 1).await;
        let t = seed_tenant(store.as_ref()).await;
        let status_query = ListQuery {
            status: Some(Status::Active),
            instance_id: Some(t.instance),
            ..first_page()
        };
        // The pool's only connection is taken for the whole test.
        let held = store.pooled_connection().await.expect("the pool's one");
        let mut reads = tokio::task::JoinSet::new();
        for i in 0..64 {
            let (store, scope, id) = (Arc::clone(&store), t.scope(), t.workflow);
            let (tenant, query) = (Scope::tenant(t.id), status_query.clone());
            reads.spawn(async move {
                if i % 2 == 0 {
                    let w = store.get_workflow(scope, id, WithHistory::Yes).await;
                    assert_eq!(w.expect("get").expect("found").history.len(), 1);
                } else {
                    let page = store.list_workflows(tenant, &query).await;
                    assert_eq!(page.expect("status list").total, 1);
                }
            });
        }
        let all = tokio::time::timeout(Duration::from_secs(10), reads.join_all()).await;
        assert_eq!(all.expect("64 reads while the pool is empty").len(), 64);
        // 2 beside a pool of 1, reported to /metrics apart from the pool's.
        assert_eq!(store.pool_stats().shared, 2);
        drop(held);

        // A page deeper than the pipelined connections take is read on the
        // pool, with the same answer.
        let deep = ListQuery {
            page: 40,
            ..status_query
        };
        let page = store.list_workflows(Scope::tenant(t.id), &deep).await;
        let page = page.expect("deep status list");
        assert_eq!((page.total, page.workflows.len()), (1, 0));

        // Closed, the store opens no connection again.
        store.close().await;
        assert_eq!(store.pool_stats().shared, 0);
        assert!(matches!(
            store
                .get_workflow(t.scope(), t.workflow, WithHistory::No)
                .await,
            Err(StoreError::Unavailable(_))
        ));
    })
    .await;
}

/// A TCP relay to the test server whose connections can be made to go
/// silent, as a failover can leave a socket half-open: nothing they carry
/// arrives and nothing closes them. Connections made after
/// [`Relay::silence`] are relayed as before.
struct Relay {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicU64>,
    /// Connections numbered below this are silent.
    silenced: Arc<AtomicU64>,
}

impl Relay {
    async fn start(url: &str) -> Self {
        let target = tokio_postgres::Config::from_str(url).expect("url");
        let host = match target.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            other => panic!("the relay needs a TCP host, not {other:?}"),
        };
        let port = target.get_ports().first().copied().unwrap_or(5432);
        let upstream = format!("{host}:{port}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let accepted = Arc::new(AtomicU64::new(0));
        let silenced = Arc::new(AtomicU64::new(0));
        let (count, below) = (Arc::clone(&accepted), Arc::clone(&silenced));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let number = count.fetch_add(1, Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(relay(client_read, server_write, number, Arc::clone(&below)));
                tokio::spawn(relay(server_read, client_write, number, Arc::clone(&below)));
            }
        });
        Self {
            addr,
            accepted,
            silenced,
        }
    }

    /// `url` reaching its server through this relay.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!("{scheme}://{user}{}/{path}", self.addr)
    }

    /// Every connection made so far goes silent.
    fn silence(&self) {
        self.silenced
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes, or forever holds both once
/// connection `number` is silenced.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    number: u64,
    silenced: Arc<AtomicU64>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if number < silenced.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_shared_read_connection_that_stops_answering_is_given_up_and_replaced() {
    with_database_for(|url| async move {
        let relay = Relay::start(&url).await;
        let options = StoreOptions {
            read_call_timeout: Duration::from_millis(500),
            ..options(1)
        };
        let store = PgStore::connect(&relay.url(&url), &options)
            .await
            .expect("connect through the relay");
        let t = seed_tenant(&store).await;
        let get = || store.get_workflow(t.scope(), t.workflow, WithHistory::No);
        // Both shared read connections (2 beside a pool of 1) are open.
        for _ in 0..2 {
            assert!(get().await.expect("get").is_some());
        }
        relay.silence();
        // Each gets one call, which is refused once the bound has passed,
        for _ in 0..2 {
            let refused = tokio::time::timeout(Duration::from_secs(5), get()).await;
            let refused = refused.expect("answered within the bound");
            assert!(
                matches!(refused, Err(StoreError::Unavailable(_))),
                "{refused:?}"
            );
        }
        // and the next calls go on new connections.
        for _ in 0..2 {
            assert!(get().await.expect("get on a new connection").is_some());
        }
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_not_an_internal_error() {
    // Port 9 (discard) has no PostgreSQL behind it.
    let options = StoreOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    match PgStore::connect("postgres://postgres@127.0.0.1:9/none", &options).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A workflow as JSON without the instants a command stamps with "now",
/// which two backends cannot share.
fn shape(w: &Workflow) -> Value {
    let mut v = serde_json::to_value(w).expect("serialize");
    if let Some(map) = v.as_object_mut() {
        for key in [
            "updated_at",
            "last_action_at",
            "completed_at",
            "suspended_at",
        ] {
            map.remove(key);
        }
        if let Some(history) = map.get_mut("history").and_then(Value::as_array_mut) {
            for entry in history.iter_mut().skip(1) {
                if let Some(entry) = entry.as_object_mut() {
                    entry.remove("at");
                }
            }
        }
    }
    v
}

/// The same calls on both backends give the same answers: records, order,
/// totals, errors and credentials.
#[tokio::test]
async fn postgres_answers_like_sqlite() {
    with_database_for(|url| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite_url = format!("sqlite:{}", dir.path().join("parity.db").display());
        let sqlite = hydracore_storage::connect(&sqlite_url, &options(2))
            .await
            .expect("sqlite");
        let pg = hydracore_storage::connect(&url, &options(4))
            .await
            .expect("postgres");
        let stores = [sqlite.as_ref(), pg.as_ref()];
        let services = [Workflows::new(sqlite.clone()), Workflows::new(pg.clone())];

        let tenant = Uuid::new_v4();
        let instances = [Uuid::new_v4(), Uuid::new_v4()];
        let created = Timestamp::from_unix_micros(1_700_000_000_000_000).expect("time");
        let mut workflows = Vec::new();
        for (n, instance) in instances.iter().cycle().take(7).enumerate() {
            let mut state = Map::new();
            state.insert("n".into(), json!(n));
            state.insert("nested".into(), json!({"z": [1, 2.5, null], "a": "x"}));
            let mut w = new_workflow(tenant, *instance, state);
            // Three share one created_at, so ties fall back to id order.
            let micros = created.unix_micros() + i64::try_from(n.min(4)).expect("small");
            w.created_at = Timestamp::from_unix_micros(micros).expect("time");
            w.updated_at = w.created_at;
            let mut history = w.history.clone();
            history[0].at = w.created_at;
            w.history = history;
            w.reference = Some(format!("R{}", n % 2));
            workflows.push(w);
        }
        for store in stores {
            for (i, instance) in instances.iter().enumerate() {
                store
                    .create_instance(&Instance {
                        id: *instance,
                        tenant_id: tenant,
                        name: (i == 0).then(|| "first".to_owned()),
                        created_at: created,
                    })
                    .await
                    .expect("instance");
            }
            for w in &workflows {
                store
                    .insert_workflow(Scope::instance(w.tenant_id, w.instance_id), w, None)
                    .await
                    .expect("insert");
            }
        }

        let first = workflows[0].id;
        let second = workflows[1].id;
        let suspend = Command::Suspend(SuspendWorkflow::at(
            StepName::parse("approve").expect("step"),
            json!({"amount": 12.5, "lines": [{"b": 1, "a": 2}]}),
        ));
        let commands = [
            (first, advance("contacted", Map::new())),
            (second, suspend.clone()),
            (first, suspend.clone()),
            (first, suspend.clone()),
            (first, Command::Abort { reason: None }),
            (first, Command::Abort { reason: None }),
            (Uuid::new_v4(), Command::Abort { reason: None }),
        ];
        let scope = Scope::tenant(tenant);
        let mut answers: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
        for ((store, service), answers) in stores.iter().zip(&services).zip(answers.iter_mut()) {
            for (id, command) in &commands {
                let answer = match service
                    .change(
                        scope,
                        *id,
                        command.clone(),
                        &agent(),
                        None,
                        WithHistory::Yes,
                    )
                    .await
                {
                    Ok(change) => json!({"ok": shape(&change.workflow), "message": change.message}),
                    Err(e) => json!({"err": e.to_string()}),
                };
                answers.push(answer);
            }
            // With an instance and a status alone, PostgreSQL lists in one
            // call (hydracore_list_workflows); the rest in a transaction.
            let active = Some(Status::Active);
            let queries = [
                (None, None, None, 1, 3),
                (None, None, None, 2, 3),
                (None, None, None, 3, 3),
                (Some(instances[1]), None, None, 1, 20),
                (None, Some("R1"), None, 1, 2),
                (Some(instances[0]), None, active, 1, 2),
                (Some(instances[0]), None, active, 2, 2),
                (Some(instances[0]), None, active, 9, 2),
                (Some(instances[1]), None, Some(Status::Suspended), 1, 20),
                (None, None, active, 1, 3),
            ];
            for (instance_id, reference, status, page, per_page) in queries {
                let q = ListQuery {
                    customer_id: None,
                    workflow_type: None,
                    status,
                    reference: reference.map(str::to_owned),
                    instance_id,
                    page,
                    per_page,
                    cursor: None,
                };
                let listed = store.list_workflows(scope, &q).await.expect("list");
                let shapes: Vec<Value> = listed.workflows.iter().map(shape).collect();
                answers.push(json!({"total": listed.total, "workflows": shapes}));
            }
            let suspended = store.list_suspended(scope, 500).await.expect("suspended");
            let ids: Vec<Uuid> = suspended.iter().map(|s| s.id).collect();
            answers.push(json!({"suspended": ids, "payload": suspended[0].suspend_payload}));
            let got = store
                .get_workflow(
                    Scope::instance(tenant, instances[1]),
                    first,
                    WithHistory::No,
                )
                .await
                .expect("get");
            answers.push(json!({"other instance": got.is_some()}));
            let instances = store.list_instances().await.expect("instances");
            answers.push(json!({"instances": format!("{instances:?}")}));
        }
        let [sqlite_answers, pg_answers] = answers;
        assert_eq!(sqlite_answers.len(), pg_answers.len());
        for (i, (s, p)) in sqlite_answers.iter().zip(&pg_answers).enumerate() {
            assert_eq!(s, p, "answer {i} differs between SQLite and PostgreSQL");
        }
    })
    .await;
}

/// Requests must be bound by RLS: an application role that would bypass it
/// stops the service at start instead.
#[tokio::test]
async fn an_app_role_that_bypasses_rls_is_refused_at_start() {
    let _exclusive = app_role_lock().write().await;
    let Some(admin) = admin_connection().await else {
        return;
    };
    let name = format!("hc_test_{}", Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    let url = with_database(&server_url(), &name);
    // Migrated first, so the role exists before it is spoiled.
    drop(store(&url, 1).await);
    let mut outcomes = Vec::new();
    for attribute in ["BYPASSRLS", "SUPERUSER"] {
        admin
            .batch_execute(&format!("ALTER ROLE hydracore_app {attribute}"))
            .await
            .expect("spoil the role");
        let outcome = PgStore::connect(&url, &options(1)).await;
        admin
            .batch_execute(&format!("ALTER ROLE hydracore_app NO{attribute}"))
            .await
            .expect("restore the role");
        outcomes.push((attribute, outcome));
    }
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the test database");
    for (attribute, outcome) in outcomes {
        match outcome {
            Err(StoreError::Config(message)) => {
                assert!(message.contains("refusing to start"), "{message}");
                assert!(message.contains(&format!("NO{attribute}")), "{message}");
            }
            other => panic!("{attribute}: expected a refusal, got {other:?}"),
        }
    }
}

/// A login that may not become hydracore_app is told what to grant.
#[tokio::test]
async fn a_login_that_cannot_switch_to_the_app_role_is_refused_at_start() {
    with_a_new_login("", |login, url| async move {
        let db = database_name(&url);
        // Another test may be the first to migrate: make sure the role
        // exists, as an administrator would have made it.
        drop(store(&url, 1).await);
        let su = connect(&url).await.expect("superuser");
        // A clean database owned by the login, migrated by it.
        let own_db = format!("{db}_own");
        su.batch_execute(&format!("CREATE DATABASE {own_db} OWNER {login}"))
            .await
            .expect("create owned database");
        let login_url = with_user(&with_database(&url, &own_db), &login);
        let outcome = PgStore::connect(&login_url, &options(1)).await;
        su.batch_execute(&format!("DROP DATABASE {own_db} WITH (FORCE)"))
            .await
            .expect("drop owned database");
        match outcome {
            Err(StoreError::Config(message)) => {
                assert!(
                    message.contains("cannot SET ROLE hydracore_app"),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("GRANT hydracore_app TO {login}")),
                    "{message}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    })
    .await;
}

/// A statement that runs long (a slow plan, a lock held elsewhere) is ended
/// by the server, so it cannot hold a pooled connection for long.
#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_ended_by_the_server() {
    with_database_for(|url| async move {
        let options = StoreOptions {
            statement_timeout: Some(Duration::from_millis(200)),
            ..options(1)
        };
        let store = PgStore::connect(&url, &options).await.expect("connect");
        let conn = store
            .pooled_connection()
            .await
            .expect("the store's connection");
        let shown: String = conn
            .query_one("SHOW idle_in_transaction_session_timeout", &[])
            .await
            .expect("show")
            .get(0);
        assert_eq!(shown, "200ms");
        let slow = conn.batch_execute("SELECT pg_sleep(2)").await;
        let code = slow
            .expect_err("cancelled")
            .code()
            .map(|c| c.code().to_owned());
        assert_eq!(code.as_deref(), Some("57014"), "query_canceled");
    })
    .await;
}

#[tokio::test]
async fn a_change_one_replica_tells_reaches_another_and_not_itself() {
    with_database_for(|url| async move {
        let (a, b) = (store(&url, 2).await, store(&url, 2).await);
        let (stop, stopped) = watch::channel(false);
        let hear = |store: Arc<PgStore>| {
            let (to, heard) = broadcast::channel(16);
            let stopped = stopped.clone();
            let task = tokio::spawn(async move { store.hear_replicas(to, stopped).await });
            (task, heard)
        };
        let (hearing_a, mut heard_by_a) = hear(a.clone());
        let (hearing_b, mut heard_by_b) = hear(b.clone());
        let change = Changed {
            tenant_id: Uuid::new_v4(),
            id: Uuid::new_v4(),
            version: 7,
        };
        // What is told before B listens is lost: A tells again until B hears.
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                a.tell_replicas(change);
                tokio::select! {
                    heard = heard_by_b.recv() => return heard.unwrap(),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
        .await
        .expect("B hears what A tells");
        assert_eq!(heard, change);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(heard_by_a.try_recv().is_err(), "A hears itself");

        stop.send(true).unwrap();
        hearing_a.await.unwrap();
        hearing_b.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn every_table_with_a_tenant_column_forces_row_level_security() {
    with_database_for(|url| async move {
        let _store = store(&url, 1).await;
        let login = login(&url).await;
        let rows = login
            .query(
                "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity \
                 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'tenant_id' \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
                &[],
            )
            .await
            .expect("catalog");
        let tables: Vec<(String, bool, bool)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        for name in ["events", "webhook_endpoints", "webhook_deliveries"] {
            assert!(tables.iter().any(|(t, ..)| t == name), "{name}: {tables:?}");
        }
        for (table, enabled, forced) in &tables {
            assert!(
                *enabled && *forced,
                "{table} does not force row-level security"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_webhook_endpoint_is_its_tenants_alone() {
    use hydracore_domain::event::EventType;
    use hydracore_domain::webhook::{NewWebhook, WebhookSecret};
    with_database_for(|url| async move {
        let store = store(&url, 2).await;
        let a = seed_tenant(store.as_ref()).await;
        let b = seed_tenant(store.as_ref()).await;
        let now = Timestamp::now();
        let webhook = NewWebhook {
            url: "https://hooks.example.com/in".into(),
            event_types: vec![EventType::Created],
            description: None,
        }
        .registered(Uuid::new_v4(), now);
        let secret = WebhookSecret::from_key(&[9; 32]).expect("secret");
        let (a_scope, b_scope) = (Scope::tenant(a.id), Scope::tenant(b.id));
        assert!(store
            .insert_webhook(a_scope, &webhook, &secret, 20)
            .await
            .expect("insert"));
        assert!(store
            .get_webhook(a_scope, webhook.id)
            .await
            .expect("get")
            .is_some());
        assert!(store
            .get_webhook(b_scope, webhook.id)
            .await
            .expect("get")
            .is_none());
        assert!(store.list_webhooks(b_scope).await.expect("list").is_empty());
        assert!(!store
            .update_webhook(b_scope, &webhook)
            .await
            .expect("update"));
        assert!(!store
            .set_webhook_secret(b_scope, webhook.id, &secret, now)
            .await
            .expect("rotate"));
        assert!(!store
            .delete_webhook(b_scope, webhook.id)
            .await
            .expect("delete"));

        // Without a tenant, the application role sees none of it.
        let mut conn = store
            .pooled_connection()
            .await
            .expect("the store's connection");
        let tx = as_app_role(&mut conn).await;
        assert_eq!(count_rows(&tx, "webhook_endpoints").await, 0);
        tx.rollback().await.expect("rollback");
        assert_eq!(count_rows(&login(&url).await, "webhook_endpoints").await, 1);
    })
    .await;
}
