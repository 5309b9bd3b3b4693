//! Not a test: a notice, so that a plain `cargo test` says clearly whether
//! the API suite ran on PostgreSQL, and through PgBouncer, too. (`.ci/run`
//! runs it on all three.)

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn main() {
    let backend = std::env::var("HYDRACORE_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into());
    if backend == "postgres" {
        println!("PostgreSQL suite: the API tests of this run used PostgreSQL (HYDRACORE_TEST_BACKEND=postgres).");
    } else if backend == "pgbouncer" {
        println!("PgBouncer suite: the API tests of this run used PostgreSQL through PgBouncer in transaction pooling (HYDRACORE_TEST_BACKEND=pgbouncer).");
    } else {
        println!(
            "NOTE: the PostgreSQL suite was NOT run by this command: the API tests used SQLite."
        );
        println!(
            "      Run it with: HYDRACORE_TEST_BACKEND=postgres cargo test -p hydracore --test api --test under_attack"
        );
        println!("      (.ci/run runs the API tests on both backends.)");
    }
    if backend != "pgbouncer" {
        println!("NOTE: the PgBouncer suite (transaction pooling) was NOT run by this command.");
        println!(
            "      Run it with: HYDRACORE_TEST_BACKEND=pgbouncer cargo test -p hydracore --test api"
        );
        println!("      (it starts /usr/sbin/pgbouncer, or HYDRACORE_TEST_PGBOUNCER, itself.)");
    }
    let local = SocketAddr::from(([127, 0, 0, 1], 5432));
    if TcpStream::connect_timeout(&local, Duration::from_secs(1)).is_err() {
        println!("NOTE: no PostgreSQL on 127.0.0.1:5432: the hydracore-storage PostgreSQL tests were skipped too.");
    }
}
