//! The Citus cluster under `HYDRACORE_TEST_BACKEND=citus`: the one at
//! `HYDRACORE_TEST_CITUS_URL` (its coordinator), else a throwaway one
//! started with `../shared/tools/citus/cluster.sh` for this test process
//! and stopped when it ends.
//!
//! A test's database is made on every node with the `citus` extension and
//! the nodes registered in it, as an operator sets up a distributed
//! database; `migrate` then distributes the schema. Four shards per table
//! keep that quick.

use std::process::Command;

use tokio::sync::OnceCell;

pub struct Cluster {
    /// (host, port) of the coordinator, then of each worker.
    nodes: Vec<(String, i32)>,
    user: String,
}

static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();

/// The suite's cluster, started first if the environment names none.
pub async fn cluster() -> &'static Cluster {
    CLUSTER
        .get_or_init(|| async {
            let coordinator = std::env::var("HYDRACORE_TEST_CITUS_URL").unwrap_or_else(|_| start());
            let admin = connect(&coordinator).await;
            let user: String = admin
                .query_one("SELECT current_user::text", &[])
                .await
                .expect("the coordinator answers")
                .get(0);
            let nodes = admin
                .query(
                    "SELECT nodename, nodeport FROM pg_dist_node \
                     WHERE noderole = 'primary' ORDER BY groupid",
                    &[],
                )
                .await
                .expect("the cluster's nodes")
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect::<Vec<_>>();
            assert!(
                nodes.len() >= 2,
                "the coordinator at {coordinator} should have itself and its workers in \
                 pg_dist_node (citus_set_coordinator_host, citus_add_node)"
            );
            Cluster { nodes, user }
        })
        .await
}

impl Cluster {
    fn node_url(&self, (host, port): &(String, i32), database: &str) -> String {
        // Citus makes each node a self-signed certificate that rustls refuses.
        format!(
            "postgres://{}@{host}:{port}/{database}?sslmode=disable",
            self.user
        )
    }

    /// The URL of the coordinator's `database`.
    pub fn url(&self, database: &str) -> String {
        self.node_url(&self.nodes[0], database)
    }

    /// The URLs of the workers' `database`.
    pub fn worker_urls(&self, database: &str) -> Vec<String> {
        self.nodes[1..]
            .iter()
            .map(|node| self.node_url(node, database))
            .collect()
    }

    /// A new distributed database named `name` on every node; its
    /// coordinator URL.
    pub async fn create_database(&self, name: &str) -> String {
        for node in &self.nodes {
            let admin = connect(&self.node_url(node, "postgres")).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create the test database");
            let db = connect(&self.node_url(node, name)).await;
            db.batch_execute("SET client_min_messages = warning; CREATE EXTENSION citus")
                .await
                .expect("create the citus extension");
        }
        let coordinator = connect(&self.url(name)).await;
        coordinator
            .batch_execute(&format!("ALTER DATABASE {name} SET citus.shard_count = 4"))
            .await
            .expect("set the shard count");
        let (host, port) = &self.nodes[0];
        coordinator
            .execute("SELECT citus_set_coordinator_host($1, $2)", &[host, port])
            .await
            .expect("register the coordinator");
        for (host, port) in &self.nodes[1..] {
            // Adding a node syncs the metadata to it over a connection of
            // its own, which now and then fails while other tests' databases
            // come and go on that worker; adding it again is safe.
            let mut attempts = 0;
            while let Err(e) = coordinator
                .execute("SELECT citus_add_node($1, $2)", &[host, port])
                .await
            {
                attempts += 1;
                assert!(attempts < 5, "register a worker: {e:?}");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempts)).await;
            }
        }
        let url = self.url(name);
        // Migrated here, one database at a time: distributing a schema
        // makes Citus copy the application role's grants to every worker,
        // and two databases doing that at once collide in the cluster-wide
        // role catalog ("tuple concurrently updated"). One database per
        // cluster, as in production, never meets this; the server's own
        // migration then finds nothing to do.
        static MIGRATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one = MIGRATING.lock().await;
        let options = hydracore_storage::StoreOptions {
            max_connections: 1,
            ..hydracore_storage::StoreOptions::default()
        };
        let store = hydracore_storage::connect(&url, &options)
            .await
            .expect("migrate the test database");
        store.close().await;
        url
    }

    /// Drops `name` on every node.
    pub async fn drop_database(&self, name: &str) -> Result<(), tokio_postgres::Error> {
        for node in &self.nodes {
            let (admin, connection) =
                tokio_postgres::connect(&self.node_url(node, "postgres"), tokio_postgres::NoTls)
                    .await?;
            tokio::spawn(connection);
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
        Ok(())
    }
}

/// A connection as the tests' superuser.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Starts a throwaway cluster; a watcher stops it once this process ends.
fn start() -> String {
    let script = std::env::var("HYDRACORE_CITUS_TOOLS").map_or_else(
        |_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/tools/citus/cluster.sh")
        },
        |dir| std::path::Path::new(&dir).join("cluster.sh"),
    );
    let out = Command::new(&script)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} start failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in the output of cluster.sh: {text}"))
            .to_owned()
    };
    let (url, dir) = (value("CITUS_URL="), value("CITUS_DIR="));
    let tune = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/citus-tune.sh");
    let tuned = Command::new(&tune).arg(&dir).status();
    assert!(
        tuned.is_ok_and(|s| s.success()),
        "{} {dir} failed",
        tune.display()
    );
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; '{script}' stop '{dir}'",
        pid = std::process::id(),
        script = script.display()
    );
    // `setsid -f` leaves the watcher running on its own and returns.
    Command::new("setsid")
        .args(["-f", "sh", "-c", &watcher])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("start the cluster's watcher");
    eprintln!("NOTE: started a Citus cluster for this run at {url} ({dir})");
    url
}

/// A worker of one test's own, to grow its database's cluster with: a
/// PostgreSQL instance with Citus on a free port, started as `cluster.sh`
/// starts its nodes, stopped and removed when dropped.
pub struct ExtraWorker {
    pub port: i32,
    dir: tempfile::TempDir,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(command: &str) {
    let out = Command::new("su")
        .args(["postgres", "-c", command])
        .output()
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl ExtraWorker {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| i32::from(a.port()))
            .expect("a free port");
        let path = dir.path().display().to_string();
        Command::new("chown")
            .args(["postgres", &path])
            .status()
            .expect("chown");
        let data = format!("{path}/data");
        as_postgres(&format!(
            "{PG_BIN}/initdb -D {data} -A trust -U postgres >/dev/null"
        ));
        as_postgres(&format!(
            "printf \"shared_preload_libraries = 'citus'\\nfsync = off\\n\" >> {data}/postgresql.conf"
        ));
        as_postgres(&format!(
            "{PG_BIN}/pg_ctl -D {data} -o '-p {port} -k {path}' -l {path}/log -w start >/dev/null"
        ));
        ExtraWorker { port, dir }
    }

    /// `database` made on this worker, with the extension, for the
    /// coordinator to add it to that database's cluster.
    pub async fn create_database(&self, database: &str, user: &str) {
        let url = |db: &str| {
            format!(
                "postgres://{user}@127.0.0.1:{}/{db}?sslmode=disable",
                self.port
            )
        };
        connect(&url("postgres"))
            .await
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create the database on the new worker");
        connect(&url(database))
            .await
            .batch_execute("SET client_min_messages = warning; CREATE EXTENSION citus")
            .await
            .expect("create the citus extension on the new worker");
    }
}

impl Drop for ExtraWorker {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("su")
            .args([
                "postgres",
                "-c",
                &format!("{PG_BIN}/pg_ctl -D {} -m immediate stop", data.display()),
            ])
            .output();
    }
}

impl Cluster {
    /// The user the tests connect as.
    pub fn user(&self) -> &str {
        &self.user
    }
}
