//! Not a test: a notice, so that a plain `cargo test` says clearly whether
//! the API suite ran on PostgreSQL, through PgBouncer and on Citus too.
//! (`.ci/run` runs it on every backend.)

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn main() {
    let backend = std::env::var("HYDRACORE_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into());
    println!("The API tests of this run used the {backend} backend (HYDRACORE_TEST_BACKEND).");
    let suites = [
        (
            "postgres",
            "PostgreSQL",
            "HYDRACORE_TEST_BACKEND=postgres cargo test -p hydracore --test api --test under_attack",
        ),
        (
            "pgbouncer",
            "PgBouncer (transaction pooling; /usr/sbin/pgbouncer, or HYDRACORE_TEST_PGBOUNCER, \
             started by the suite)",
            "HYDRACORE_TEST_BACKEND=pgbouncer cargo test -p hydracore --test api",
        ),
        (
            "citus",
            "Citus (a cluster at HYDRACORE_TEST_CITUS_URL, or one started with \
             ../shared/tools/citus/cluster.sh)",
            "HYDRACORE_TEST_BACKEND=citus cargo test -p hydracore --test api",
        ),
    ];
    for (name, what, command) in suites {
        if backend != name {
            println!("NOTE: the {what} suite was NOT run by this command.");
            println!("      Run it with: {command}");
        }
    }
    println!("      (.ci/run runs the API tests on every backend.)");
    let local = SocketAddr::from(([127, 0, 0, 1], 5432));
    if TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_err() {
        println!("NOTE: no PostgreSQL on 127.0.0.1:5432: the hydracore-storage PostgreSQL tests were skipped too.");
    }
}
