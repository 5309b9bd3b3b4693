//! `TestApp`: a real server on a free port over a fresh SQLite file, with
//! ready-made actors and one helper per endpoint.

use std::sync::Arc;

use hydracore::config::Settings;
use hydracore::provision;
use hydracore::startup::App;
use hydracore_storage::{Store, StoreError};
use reqwest::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use uuid::Uuid;

#[path = "citus_cluster.rs"]
pub mod citus_cluster;

/// The HS256 secret every test server verifies dashboard JWTs with.
pub const JWT_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";

/// How a dashboard request presents itself.
#[derive(Debug, Clone)]
pub enum Credential {
    None,
    Bearer(String),
    ApiKey(String),
}

/// An agent runtime: one instance of a tenant and its proxy key.
#[derive(Debug, Clone)]
pub struct Agent {
    pub tenant_id: Uuid,
    pub instance_id: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

impl Agent {
    pub fn workflows(&self) -> String {
        format!("/internal/v1/instances/{}/workflows", self.instance_id)
    }

    pub fn workflow(&self, id: &str) -> String {
        format!("{}/{id}", self.workflows())
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The ids of a list answer's workflows, in its order. An answer
    /// without a `workflows` array, or a workflow without an id, fails the
    /// test: an empty page must be an empty array.
    pub fn workflow_ids(&self) -> Vec<String> {
        let Some(page) = self.body["workflows"].as_array() else {
            panic!("not a list answer: {}", self.body);
        };
        page.iter()
            .map(|w| match w["id"].as_str() {
                Some(id) => id.to_owned(),
                None => panic!("a listed workflow without an id: {w}"),
            })
            .collect()
    }

    /// The `type` and `loc` of each 422 item, for compact assertions.
    pub fn validation_errors(&self) -> Vec<(String, Value)> {
        self.body["detail"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        (
                            e["type"].as_str().unwrap_or_default().to_owned(),
                            e["loc"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    pub store: Arc<dyn Store>,
    /// The instance most tests act as.
    pub agent: Agent,
    /// Finished sweeps of the background sweeper.
    pub sweeps: tokio::sync::watch::Receiver<u64>,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    /// Held for its `Drop`, which removes the database.
    _database: TestDatabase,
}

/// Which backend the suite runs on: `HYDRACORE_TEST_BACKEND=postgres`
/// (server: `HYDRACORE_TEST_POSTGRES_URL`, default the local one),
/// `pgbouncer` (the same server, the service reaching it through a
/// PgBouncer in transaction pooling that the suite starts, see
/// [`PgBouncer`]), `citus` (`citus_cluster`), else SQLite. One suite,
/// every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres(String),
    PgBouncer(String),
    Citus,
}

pub fn backend() -> Backend {
    let server = || {
        std::env::var("HYDRACORE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    };
    match std::env::var("HYDRACORE_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres(server()),
        Ok("pgbouncer") => Backend::PgBouncer(server()),
        Ok("citus") => Backend::Citus,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => {
            panic!(
                "HYDRACORE_TEST_BACKEND must be sqlite, postgres, pgbouncer or citus, \
                 not {other:?}"
            )
        }
    }
}

/// The PostgreSQL server the suite runs on, to create and drop databases
/// on, when it is a single one (directly or through PgBouncer).
pub fn postgres_server() -> Option<String> {
    match backend() {
        Backend::Postgres(server) | Backend::PgBouncer(server) => Some(server),
        Backend::Sqlite | Backend::Citus => None,
    }
}

/// The suite runs through PgBouncer (`HYDRACORE_TEST_BACKEND=pgbouncer`).
pub fn through_pgbouncer() -> bool {
    matches!(backend(), Backend::PgBouncer(_))
}

/// Debian's PgBouncer, one per test binary, in transaction pooling in
/// front of [`postgres_server`], with fewer server connections per
/// database than a test server opens, so that consecutive statements of
/// one connection do land on different server sessions. It ends with the
/// test binary: it runs under a shell that stops it when its standard
/// input, a pipe the binary holds, closes.
pub struct PgBouncer {
    port: u16,
    user: String,
    _dir: TempDir,
    _child: std::process::Child,
}

/// The PgBouncer program: `HYDRACORE_TEST_PGBOUNCER`, else Debian's.
fn pgbouncer_program() -> String {
    std::env::var("HYDRACORE_TEST_PGBOUNCER").unwrap_or_else(|_| "/usr/sbin/pgbouncer".to_owned())
}

impl PgBouncer {
    /// The suite's PgBouncer, started on first use.
    pub fn get() -> &'static PgBouncer {
        static STARTED: std::sync::OnceLock<PgBouncer> = std::sync::OnceLock::new();
        STARTED.get_or_init(|| {
            let server = postgres_server().expect("a PostgreSQL backend");
            PgBouncer::start(&server)
        })
    }

    fn start(server: &str) -> PgBouncer {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;

        let settings =
            hydracore_storage::postgres::tls::settings(server, None).expect("a PostgreSQL URL");
        let config = &settings.config;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let dir = tempfile::tempdir().expect("temp dir");
        // PgBouncer refuses to run as root: it runs as postgres then, and
        // must read its files.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("temp dir readable");
        let listen = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let listen_port = listen.local_addr().expect("bound").port();
        drop(listen);
        let server_password = password
            .as_ref()
            .map(|p| format!(" password={p}"))
            .unwrap_or_default();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={port} user={user}{server_password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {listen_port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {}\n\
             pool_mode = transaction\n\
             max_client_conn = 4000\n\
             default_pool_size = 4\n\
             reserve_pool_size = 0\n\
             server_login_retry = 1\n",
            dir.path().join("users.txt").display()
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("config written");
        std::fs::write(
            dir.path().join("users.txt"),
            format!("\"{user}\" \"{}\"\n", password.unwrap_or_default()),
        )
        .expect("users written");
        let as_root = std::fs::read_to_string("/proc/self/status")
            .map(|status| {
                status
                    .lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        let run_as = if as_root { "-u postgres " } else { "" };
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} {run_as}{} & pid=$!; cat >/dev/null; kill $pid",
                pgbouncer_program(),
                dir.path().join("pgbouncer.ini").display()
            ))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "PgBouncer starts (HYDRACORE_TEST_BACKEND=pgbouncer needs pgbouncer installed)",
            );
        // Held open for the binary's life; closed, PgBouncer is stopped.
        if let Some(stdin) = child.stdin.as_mut() {
            let _ = stdin.flush();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", listen_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "PgBouncer did not listen on 127.0.0.1:{listen_port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        PgBouncer {
            port: listen_port,
            user,
            _dir: dir,
            _child: child,
        }
    }

    /// The service's URL of `database`, through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}?pooler=transaction&sslmode=disable",
            self.user, self.port
        )
    }
}

/// A database of one test's own, removed when dropped.
pub enum TestDatabase {
    /// The directory is held for its `Drop`, which removes it.
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres {
        server: String,
        name: String,
    },
    Citus {
        name: String,
        url: String,
    },
}

impl TestDatabase {
    /// A new empty database and its URL, on the suite's backend.
    pub async fn create() -> (TestDatabase, String) {
        match backend() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("test.db").display());
                (TestDatabase::Sqlite(dir), url)
            }
            Backend::Citus => {
                let name = format!("hc_api_{}", Uuid::new_v4().simple());
                let url = citus_cluster::cluster().await.create_database(&name).await;
                (
                    TestDatabase::Citus {
                        name,
                        url: url.clone(),
                    },
                    url,
                )
            }
            Backend::Postgres(server) | Backend::PgBouncer(server) => {
                let name = format!("hc_api_{}", Uuid::new_v4().simple());
                let admin = admin_connection(&server)
                    .await
                    .expect("PostgreSQL reachable (HYDRACORE_TEST_BACKEND=postgres or pgbouncer)");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                let url = if through_pgbouncer() {
                    PgBouncer::get().url(&name)
                } else {
                    with_database(&server, &name)
                };
                (TestDatabase::Postgres { server, name }, url)
            }
        }
    }
}

impl TestDatabase {
    /// The database's URL on the PostgreSQL server itself, not through
    /// PgBouncer (on Citus, its coordinator); `None` on SQLite.
    pub fn direct_url(&self) -> Option<String> {
        match self {
            TestDatabase::Sqlite(_) => None,
            TestDatabase::Postgres { server, name } => Some(with_database(server, name)),
            TestDatabase::Citus { url, .. } => Some(url.clone()),
        }
    }
}

/// A connection to the test server, opened as the service opens its own.
async fn admin_connection(server: &str) -> Result<tokio_postgres::Client, StoreError> {
    let settings = hydracore_storage::postgres::tls::settings(server, None)?;
    hydracore_storage::postgres::tls::connect(&settings).await
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let prefix = base[authority..]
        .find('/')
        .map_or(base, |slash| &base[..authority + slash]);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{prefix}/{database}{query}")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = match self {
            TestDatabase::Sqlite(_) => return,
            TestDatabase::Postgres { server, name } => (Some(server.clone()), name.clone()),
            TestDatabase::Citus { name, .. } => (None, name.clone()),
        };
        let shown = name.clone();
        // Drop runs inside the test's runtime, which must not block on
        // itself: the drop gets a thread and a small runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let Some(server) = server else {
                    let cluster = citus_cluster::cluster().await;
                    return cluster.drop_database(&name).await.ok();
                };
                let admin = admin_connection(&server).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test database {shown}");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server before its database (a later field) goes.
        drop(self.shutdown.take());
    }
}

/// A body that is not JSON, or JSON with a chosen content type.
pub enum Body {
    None,
    Json(Value),
    Raw {
        content_type: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server whose settings `adjust` changes first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        if std::env::var_os("TEST_LOG").is_some() {
            hydracore::telemetry::init(hydracore::telemetry::LogFormat::Text, "debug");
        }
        let (database, database_url) = TestDatabase::create().await;
        let mut settings = Settings::for_tests(&database_url, JWT_SECRET);
        adjust(&mut settings);
        let app = App::build(&settings).await.expect("app builds");
        let base_url = format!("http://{}", app.local_addr().expect("bound"));
        let store = app.store();
        let sweeps = app.sweeps();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        let mut test_app = TestApp {
            base_url,
            database_url,
            store,
            agent: Agent {
                tenant_id: Uuid::nil(),
                instance_id: Uuid::nil(),
                key: String::new(),
                key_id: Uuid::nil(),
            },
            sweeps,
            client: reqwest::Client::new(),
            shutdown: Some(shutdown),
            _database: database,
        };
        test_app.agent = test_app.new_agent(Uuid::new_v4()).await;
        test_app
    }

    /// A new instance of `tenant_id`, with a proxy key.
    pub async fn new_agent(&self, tenant_id: Uuid) -> Agent {
        let instance =
            provision::create_instance(self.store.as_ref(), tenant_id, Some("test".into()))
                .await
                .expect("instance");
        let issued = provision::create_proxy_key(self.store.as_ref(), instance.id)
            .await
            .expect("proxy key");
        Agent {
            tenant_id,
            instance_id: instance.id,
            key: issued.key,
            key_id: issued.credential.id,
        }
    }

    /// Another instance of the same tenant as [`TestApp::agent`].
    pub async fn sibling_agent(&self) -> Agent {
        self.new_agent(self.agent.tenant_id).await
    }

    /// A signed HS256 token with exactly `claims`.
    pub fn jwt(&self, claims: Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .expect("token")
    }

    /// A valid admin token of `tenant_id`, subject `sub`.
    pub fn admin_jwt(&self, tenant_id: Uuid, sub: &str) -> String {
        let exp = chrono::Utc::now().timestamp() + 600;
        self.jwt(json!({"sub": sub, "tenant_id": tenant_id, "role": "admin", "exp": exp}))
    }

    /// A tenant API key with `scopes`; returns (key id, key).
    pub async fn api_key(&self, tenant_id: Uuid, scopes: &[&str]) -> (Uuid, String) {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let issued = provision::create_api_key(self.store.as_ref(), tenant_id, &scopes)
            .await
            .expect("api key");
        (issued.credential.id, issued.key)
    }

    /// The client the helpers send with, for a request they do not make.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A dashboard request presenting `credential`.
    pub async fn dashboard(
        &self,
        method: Method,
        path: &str,
        credential: &Credential,
        body: Body,
    ) -> TestResponse {
        match credential {
            Credential::None => self.request(method, path, None, body, &[]).await,
            Credential::Bearer(token) => self.request(method, path, Some(token), body, &[]).await,
            Credential::ApiKey(key) => {
                self.request(method, path, None, body, &[("x-api-key", key)])
                    .await
            }
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw {
                content_type,
                bytes,
            } => {
                let request = match content_type {
                    Some(ct) => request.header("content-type", ct),
                    None => request,
                };
                request.body(bytes)
            }
        };
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn create(&self, agent: &Agent, body: Value) -> TestResponse {
        self.request(
            Method::POST,
            &agent.workflows(),
            Some(&agent.key),
            Body::Json(body),
            &[],
        )
        .await
    }

    /// Creates a valid workflow and returns its id.
    pub async fn create_workflow(&self, agent: &Agent) -> String {
        self.create_with(agent, json!({})).await
    }

    /// Creates a workflow from a minimal valid body plus `extra` fields.
    pub async fn create_with(&self, agent: &Agent, extra: Value) -> String {
        let mut body = json!({ "customer_id": Uuid::new_v4(), "workflow_type": "rent_arrears" });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let response = self.create(agent, body).await;
        assert_eq!(response.status, 201, "{:?}", response.body);
        response.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn list(&self, agent: &Agent, query: &str) -> TestResponse {
        let path = format!("{}?{query}", agent.workflows());
        self.request(Method::GET, &path, Some(&agent.key), Body::None, &[])
            .await
    }

    /// The `total` of `agent`'s list with `query`.
    pub async fn total(&self, agent: &Agent, query: &str) -> Value {
        self.list(agent, query).await.body["total"].clone()
    }

    pub async fn get(&self, agent: &Agent, id: &str) -> TestResponse {
        self.request(
            Method::GET,
            &agent.workflow(id),
            Some(&agent.key),
            Body::None,
            &[],
        )
        .await
    }

    pub async fn advance(&self, agent: &Agent, id: &str, body: Value) -> TestResponse {
        self.request(
            Method::PATCH,
            &agent.workflow(id),
            Some(&agent.key),
            Body::Json(body),
            &[],
        )
        .await
    }

    pub async fn suspend(&self, agent: &Agent, id: &str, body: Value) -> TestResponse {
        let path = format!("{}/suspend", agent.workflow(id));
        self.request(Method::POST, &path, Some(&agent.key), Body::Json(body), &[])
            .await
    }

    pub async fn resume(&self, agent: &Agent, id: &str, body: Option<Value>) -> TestResponse {
        let path = format!("{}/resume", agent.workflow(id));
        let body = body.map_or(Body::None, Body::Json);
        self.request(Method::POST, &path, Some(&agent.key), body, &[])
            .await
    }
}
