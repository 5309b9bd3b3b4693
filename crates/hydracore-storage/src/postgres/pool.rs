//! PostgreSQL connections: a deadpool pool of sqlx connections, and the
//! rule for which connections go back into it.
//!
//! Not sqlx's own pool: it pings the server when it lends a connection
//! (`test_before_acquire`) and again, unconditionally, when it takes one
//! back, so a request of one statement cost three round trips, and `get`
//! measured about a fifth slower for it (docs/benchmarks.md, round 3).
//! Here a connection is pinged only when it was last lent more than
//! [`IDLE_BEFORE_PING`] ago: under load never, when quiet always, so that
//! connections a database restart cut while idle are replaced before a
//! request meets them. One that may be broken or mid-conversation is never
//! put back: each checkout ends in [`Checkout::settle`], and a checkout
//! dropped before that (its request cancelled mid-statement) closes its
//! connection.

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleResult, Timeouts};
use deadpool::Runtime;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use crate::StoreError;

/// A connection last lent this long ago is pinged before it is lent
/// again. Under load each is lent again within a millisecond or two.
const IDLE_BEFORE_PING: Duration = Duration::from_millis(50);

/// A connection this old is closed rather than lent again, so that
/// server-side caches and memory do not grow without end (sqlx's pool
/// default).
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

#[derive(Debug)]
pub struct Manager {
    options: PgConnectOptions,
}

impl managed::Manager for Manager {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    async fn recycle(
        &self,
        conn: &mut PgConnection,
        metrics: &Metrics,
    ) -> RecycleResult<sqlx::Error> {
        if metrics.age() >= MAX_LIFETIME {
            return Err(managed::RecycleError::message("past its lifetime"));
        }
        if metrics.last_used() >= IDLE_BEFORE_PING {
            conn.ping().await?;
        }
        Ok(())
    }
}

pub type Pool = managed::Pool<Manager>;

/// A pool of at most `max_connections`, in which waiting for a connection,
/// opening one and checking an idle one each give up after `timeout`.
pub fn build(
    options: PgConnectOptions,
    max_connections: u32,
    timeout: Duration,
) -> Result<Pool, StoreError> {
    let size = usize::try_from(max_connections.max(1)).unwrap_or(usize::MAX);
    Pool::builder(Manager { options })
        .max_size(size)
        .timeouts(Timeouts {
            wait: Some(timeout),
            create: Some(timeout),
            recycle: Some(timeout),
        })
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Config(format!("PostgreSQL pool: {e}")))
}

/// Lends a connection; see [`Checkout`] for how to give it back.
pub async fn checkout(pool: &Pool) -> Result<Checkout, StoreError> {
    match pool.get().await {
        Ok(conn) => Ok(Checkout(Some(conn))),
        Err(PoolError::Backend(e)) => Err(e.into()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "no PostgreSQL connection: {e}"
        ))),
    }
}

/// A lent connection. [`settle`](Checkout::settle) returns it to the pool
/// or closes it, by what its work ended in; dropped unsettled, it closes.
#[derive(Debug)]
pub struct Checkout(Option<Object<Manager>>);

impl Checkout {
    pub fn conn(&mut self) -> &mut PgConnection {
        // Only `settle` and `drop` take the object, and both consume self.
        self.0
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("a checkout holds its connection until settled"))
    }

    /// Passes `result` on, returning the connection to the pool when the
    /// server itself answered (success, a refused statement, a domain
    /// rule) and closing it when the failure may have left it broken or
    /// mid-conversation (I/O, protocol, a pool or decoding failure).
    pub fn settle<T>(mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let reusable = match &result {
            Ok(_) => true,
            Err(e) => e.leaves_connection_usable(),
        };
        if reusable {
            // Dropping the object returns it to the pool.
            self.0.take();
        }
        result
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Out of the pool for good; dropping the connection closes its
            // socket, and the server rolls back whatever it had open.
            drop(Object::take(conn));
        }
    }
}
