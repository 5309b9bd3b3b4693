//! TLS to PostgreSQL (`postgres::tls`) against a throwaway PostgreSQL 15
//! cluster of its own: `ssl = on` with a certificate for `localhost` signed
//! by a CA made here, and `pg_hba.conf` accepting TLS connections only.
//!
//! The cluster runs as the `postgres` OS user when the tests run as root
//! (PostgreSQL refuses root), from `HYDRACORE_TEST_PG_BIN` (default
//! `/usr/lib/postgresql/15/bin`), in a temporary directory, on a free port
//! of 127.0.0.1, and is stopped when the test ends, failed or not. Without
//! `initdb`, or when the cluster does not start, the test passes with a
//! note instead of failing, as the other PostgreSQL tests do without a
//! server.
// Helpers outside #[test] functions panic on setup failures too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hydracore_storage::postgres::tls::{self, PgConnectSettings, SslMode};
use hydracore_storage::StoreError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The one password in these URLs: no message may show it.
const PASSWORD: &str = "pw-never-shown";

/// The files a test cluster reads and the ones the client is given.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// A CA, a server certificate it signs for `localhost` only (so that
/// 127.0.0.1 is a host name it does not match), and an unrelated CA.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "HydraCore test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();

    let other_key = KeyPair::generate().unwrap();
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other
        .distinguished_name
        .push(DnType::CommonName, "Some other CA");
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    other.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let other_cert = other.self_signed(&other_key).unwrap();

    let pki = Pki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    fs::write(&pki.ca, ca_cert.pem()).unwrap();
    fs::write(&pki.other_ca, other_cert.pem()).unwrap();
    fs::write(&pki.server_cert, server_cert.pem()).unwrap();
    fs::write(&pki.server_key, server_key.serialize_pem()).unwrap();
    fs::set_permissions(&pki.server_key, fs::Permissions::from_mode(0o600)).unwrap();
    pki
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A throwaway cluster, stopped on drop.
struct Cluster {
    // Dropped after the cluster is stopped (fields drop after `drop`).
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    pki: Pki,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program` from the PostgreSQL binaries, as the `postgres` user when
    /// running as root.
    fn command(bin: &Path, as_postgres: bool, program: &str) -> Command {
        let program = bin.join(program);
        if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        Self::command(&self.bin, self.as_postgres, program)
            .args(args)
            .output()
    }

    /// The cluster, started; `None` (with a note) when this machine
    /// cannot run one.
    fn start() -> Option<Cluster> {
        let bin = std::env::var_os("HYDRACORE_TEST_PG_BIN")
            .map_or_else(|| PathBuf::from(DEFAULT_BIN), PathBuf::from);
        if !bin.join("initdb").exists() {
            eprintln!(
                "NOTE: no {} (set HYDRACORE_TEST_PG_BIN): skipping the PostgreSQL TLS tests",
                bin.join("initdb").display()
            );
            return None;
        }
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("hydracore-pg-tls")
            .tempdir()
            .unwrap();
        let pki = make_pki(dir.path());
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .output();
            if !chown.as_ref().is_ok_and(|o| o.status.success()) {
                eprintln!(
                    "NOTE: cannot hand {} to the postgres user ({chown:?}): skipping the \
                     PostgreSQL TLS tests",
                    dir.path().display()
                );
                return None;
            }
        }
        // A free port: the kernel's pick, let go for the server.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
            port,
            pki,
        };
        let data = cluster.data();
        let initdb = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "--no-instructions",
            ],
        );
        if !initdb.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("NOTE: initdb failed ({initdb:?}): skipping the PostgreSQL TLS tests");
            return None;
        }
        // TLS only; one user logs in with a password (SCRAM, with channel
        // binding over TLS), everyone else is trusted.
        fs::write(
            data.join("pg_hba.conf"),
            "hostssl all scram_user 127.0.0.1/32 scram-sha-256\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
        )
        .unwrap();
        let mut conf = fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n\
             fsync = off\nmax_connections = 20\nshared_buffers = 16MB\n",
            dir = cluster.dir.path().display(),
            cert = cluster.pki.server_cert.display(),
            key = cluster.pki.server_key.display(),
        ));
        fs::write(data.join("postgresql.conf"), conf).unwrap();
        let log = cluster.dir.path().join("server.log");
        let started = cluster.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !started.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!(
                "NOTE: the test cluster did not start ({started:?}; its log: {}): skipping the \
                 PostgreSQL TLS tests",
                fs::read_to_string(&log).unwrap_or_default()
            );
            // `cluster` drops here: a half-started server is stopped too.
            return None;
        }
        Some(cluster)
    }

    /// A URL to this cluster at `host`, with `params`.
    fn url(&self, user: &str, host: &str, params: &str) -> String {
        format!(
            "postgres://{user}:{PASSWORD}@{host}:{}/postgres?connect_timeout=10&{params}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let stopped = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        if !stopped.as_ref().is_ok_and(|o| o.status.success())
            && data.join("postmaster.pid").exists()
        {
            eprintln!("could not stop the test cluster: {stopped:?}");
        }
    }
}

/// Connects with `settings` and says whether the session is encrypted.
async fn ssl_in_use(settings: &PgConnectSettings) -> Result<bool, StoreError> {
    let client = tls::connect(settings).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

/// The sentence of a refused connection.
async fn refusal(url: &str, ca_file: Option<&Path>) -> String {
    let settings = tls::settings(url, ca_file).unwrap();
    match ssl_in_use(&settings).await {
        Err(StoreError::Config(message)) => {
            eprintln!("refused as expected: {message}");
            assert!(!message.contains(PASSWORD), "{message}");
            message
        }
        other => panic!("expected a refusal (a configuration error), got {other:?}"),
    }
}

#[tokio::test]
async fn tls_modes_against_a_server_that_accepts_only_tls() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let ca = cluster.pki.ca.to_str().unwrap();
    let other_ca = cluster.pki.other_ca.as_path();
    let connects = |url: String| async move {
        let settings = tls::settings(&url, None).unwrap();
        ssl_in_use(&settings).await
    };

    // require: encrypted, the certificate unchecked.
    let settings = tls::settings(
        &cluster.url("postgres", "127.0.0.1", "sslmode=require"),
        None,
    )
    .unwrap();
    assert_eq!(settings.ssl_mode, SslMode::Require);
    assert!(ssl_in_use(&settings).await.unwrap(), "require must encrypt");

    // No sslmode is prefer, which encrypts when the server offers TLS.
    let settings = tls::settings(&cluster.url("postgres", "127.0.0.1", ""), None).unwrap();
    assert_eq!(settings.ssl_mode, SslMode::Prefer);
    assert!(ssl_in_use(&settings).await.unwrap(), "prefer must encrypt");

    // verify-full with the right CA, in the URL (host name `localhost`,
    // reached at hostaddr 127.0.0.1)...
    assert!(connects(cluster.url(
        "postgres",
        "localhost",
        &format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"),
    ),)
    .await
    .unwrap());
    // ... and given beside it (`localhost` resolved).
    let settings = tls::settings(
        &cluster.url("postgres", "localhost", "sslmode=verify-full"),
        Some(&cluster.pki.ca),
    )
    .unwrap();
    assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
    assert!(ssl_in_use(&settings).await.unwrap());

    // SCRAM with channel binding, which needs the server's certificate
    // from the TLS stream.
    let client = tls::connect(
        &tls::settings(
            &cluster.url("postgres", "127.0.0.1", "sslmode=require"),
            None,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    client
        .batch_execute(&format!(
            "CREATE ROLE scram_user LOGIN PASSWORD '{PASSWORD}'"
        ))
        .await
        .unwrap();
    assert!(connects(cluster.url(
        "scram_user",
        "127.0.0.1",
        "sslmode=require&channel_binding=require"
    ),)
    .await
    .unwrap());

    // verify-full with a CA that did not sign the certificate.
    let message = refusal(
        &cluster.url(
            "postgres",
            "localhost",
            "hostaddr=127.0.0.1&sslmode=verify-full",
        ),
        Some(other_ca),
    )
    .await;
    assert!(
        message.contains("certificate is not signed by the certificate authority in")
            && message.contains("other-ca.pem"),
        "{message}"
    );

    // verify-full to a host name the certificate does not name.
    let message = refusal(
        &cluster.url(
            "postgres",
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        None,
    )
    .await;
    assert!(
        message.contains("not valid for the host name \"127.0.0.1\"")
            && message.contains("localhost"),
        "{message}"
    );

    // verify-ca checks the chain, not the name: the same host connects...
    assert!(connects(cluster.url(
        "postgres",
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ),)
    .await
    .unwrap());
    // ... but not with the other CA.
    let message = refusal(
        &cluster.url("postgres", "127.0.0.1", "sslmode=verify-ca"),
        Some(other_ca),
    )
    .await;
    assert!(message.contains("is not signed by"), "{message}");

    // require with a CA file checks the chain, as libpq does.
    let settings = tls::settings(
        &cluster.url("postgres", "127.0.0.1", "sslmode=require"),
        Some(other_ca),
    )
    .unwrap();
    assert_eq!(settings.ssl_mode, SslMode::VerifyCa);
    let message = refusal(
        &cluster.url("postgres", "127.0.0.1", "sslmode=require"),
        Some(other_ca),
    )
    .await;
    assert!(message.contains("is not signed by"), "{message}");

    // disable: the server accepts only TLS, and says so.
    let message = refusal(
        &cluster.url("postgres", "127.0.0.1", "sslmode=disable"),
        None,
    )
    .await;
    assert!(
        message.contains("refused the login")
            && message.contains("no pg_hba.conf entry")
            && message.contains("sslmode=disable"),
        "{message}"
    );
}

/// A server that answers the TLS request with "no", then waits.
async fn server_without_tls() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0; 8];
                if socket.read_exact(&mut request).await.is_ok() {
                    let _ = socket.write_all(b"N").await;
                    let mut rest = Vec::new();
                    let _ = socket.read_to_end(&mut rest).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_server_without_tls_or_no_server_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let port = server_without_tls().await;
    let url = |mode: &str| {
        format!("postgres://u:{PASSWORD}@127.0.0.1:{port}/db?connect_timeout=10&sslmode={mode}")
    };

    for (mode, ca_file) in [("require", None), ("verify-full", Some(pki.ca.as_path()))] {
        let message = refusal(&url(mode), ca_file).await;
        assert!(
            message.contains("does not offer TLS") && message.contains(&format!("sslmode={mode}")),
            "{message}"
        );
    }

    // Nothing listening: unavailable, which is worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = tls::settings(
        &format!("postgres://u:{PASSWORD}@127.0.0.1:{closed}/db?sslmode=require"),
        None,
    )
    .unwrap();
    match tls::connect(&settings).await {
        Err(StoreError::Unavailable(message)) => assert!(!message.contains(PASSWORD)),
        other => panic!("expected unavailable, got {:?}", other.map(|_| ())),
    }

    // A CA file that cannot be read stops the start, naming the file.
    for unreadable in [dir.path().join("missing.pem"), dir.path().to_path_buf()] {
        match tls::settings(&url("verify-full"), Some(&unreadable)) {
            Err(StoreError::Config(message)) => {
                assert!(
                    message.contains("cannot read the PostgreSQL CA file")
                        && message.contains(&unreadable.display().to_string())
                        && !message.contains(PASSWORD),
                    "{message}"
                );
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}
