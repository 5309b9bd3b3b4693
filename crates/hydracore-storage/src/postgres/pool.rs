//! The pool of PostgreSQL connections that requests check out, and the
//! rule for which connections go back into it.
//!
//! The connections are deadpool-postgres's: tokio-postgres clients, each
//! with its cache of prepared statements ([`prepare`]), opened with the
//! TLS settings of `tls`; behind a transaction pooler they keep none
//! (`statements`). Its manager is wrapped here for two rules of our
//! own.
//!
//! A connection is checked (an empty query, one round trip) before it is
//! lent only when it came back more than [`IDLE_BEFORE_PING`] ago, so that
//! connections a database restart cut while idle are replaced before a
//! request meets them, while a busy connection is never checked. The pool
//! lends the connection returned last (LIFO): under load a few connections
//! stay busy and are never checked; when quiet, the one lent is the
//! freshest. A connection cut while in steady use fails the request that
//! meets it (503) and is replaced.
//!
//! A connection that may be broken or mid-conversation is never put back:
//! each checkout ends in [`Checkout::settle`], and a checkout dropped before
//! that (its request cancelled mid-statement) closes its connection. The
//! server process behind it can outlive it until its statement ends, so a
//! replica may briefly hold more server connections than its pool size.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, Object, PoolError, QueueMode, RecycleResult, Timeouts};
use deadpool::Runtime;
use deadpool_postgres::{ClientWrapper, ManagerConfig, RecyclingMethod};
use postgres_types::ToSql;
use tokio_postgres::{Row, Statement};

use super::statements::Described;
use super::tls::PgConnectSettings;
use crate::StoreError;

/// A pooled connection: a tokio-postgres client with its statement cache,
/// and how statements are sent on it (`statements`). Statements go
/// through its methods, never the client's own, so that none is named
/// behind a transaction pooler.
pub struct Client {
    inner: ClientWrapper,
    statements: Statements,
}

/// How a connection sends its statements.
#[derive(Debug, Clone)]
pub enum Statements {
    /// Prepared once per connection and kept ([`prepare`]).
    Prepared,
    /// Unnamed, with the parameter types described once per store:
    /// behind a transaction pooler.
    Unnamed(Arc<Described>),
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("statements", &self.statements)
            .finish_non_exhaustive()
    }
}

/// The statement methods come in two kinds: the plain ones keep their
/// statement prepared on the connection (a request's, run again and
/// again), the `_once` ones prepare it for the one call (the command
/// line's and start-up's). Behind a transaction pooler both send it
/// unnamed.
impl Client {
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        match &self.statements {
            Statements::Prepared => {
                let statement = prepare(&self.inner, sql).await?;
                Ok(self.inner.query(&statement, params).await?)
            }
            Statements::Unnamed(described) => described.query(&self.inner, sql, params).await,
        }
    }

    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        match &self.statements {
            Statements::Prepared => {
                let statement = prepare(&self.inner, sql).await?;
                Ok(self.inner.query_one(&statement, params).await?)
            }
            Statements::Unnamed(described) => described.query_one(&self.inner, sql, params).await,
        }
    }

    pub async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        match &self.statements {
            Statements::Prepared => {
                let statement = prepare(&self.inner, sql).await?;
                Ok(self.inner.query_opt(&statement, params).await?)
            }
            Statements::Unnamed(described) => described.query_opt(&self.inner, sql, params).await,
        }
    }

    pub async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        match &self.statements {
            Statements::Prepared => {
                let statement = prepare(&self.inner, sql).await?;
                Ok(self.inner.execute(&statement, params).await?)
            }
            Statements::Unnamed(described) => described.execute(&self.inner, sql, params).await,
        }
    }

    pub async fn query_once(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        match &self.statements {
            Statements::Prepared => Ok(self.inner.query(sql, params).await?),
            Statements::Unnamed(described) => described.query(&self.inner, sql, params).await,
        }
    }

    pub async fn query_one_once(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        match &self.statements {
            Statements::Prepared => Ok(self.inner.query_one(sql, params).await?),
            Statements::Unnamed(described) => described.query_one(&self.inner, sql, params).await,
        }
    }

    pub async fn query_opt_once(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        match &self.statements {
            Statements::Prepared => Ok(self.inner.query_opt(sql, params).await?),
            Statements::Unnamed(described) => described.query_opt(&self.inner, sql, params).await,
        }
    }

    pub async fn execute_once(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        match &self.statements {
            Statements::Prepared => Ok(self.inner.execute(sql, params).await?),
            Statements::Unnamed(described) => described.execute(&self.inner, sql, params).await,
        }
    }

    /// `sql`, one or more statements without parameters, in one message.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.inner.batch_execute(sql).await
    }
}

/// A connection returned this long ago is checked before it is lent again.
const IDLE_BEFORE_PING: Duration = Duration::from_millis(50);

/// A connection this old is closed rather than lent again, so that
/// server-side caches and memory do not grow without end.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Statements kept prepared on one connection. The request functions' calls
/// are a handful; the lists that run as plain SQL vary with their filters
/// and page size, so past this the cache starts over.
const MAX_STATEMENTS: usize = 128;

/// `sql` prepared on `client`, from its cache when it was prepared before:
/// one round trip saved on every later use, and the server keeps the
/// statement's plan.
async fn prepare(client: &ClientWrapper, sql: &str) -> Result<Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= MAX_STATEMENTS {
        // Dropping a prepared statement closes it on the server.
        client.statement_cache.clear();
    }
    client.prepare_cached(sql).await
}

pub struct Manager {
    inner: deadpool_postgres::Manager,
    settings: PgConnectSettings,
    statements: Statements,
}

/// Without the connect settings, which hold the password.
impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

/// A pooled connection and when it last came back to the pool.
#[derive(Debug)]
pub struct Pooled {
    client: Client,
    returned_at: Instant,
}

impl managed::Manager for Manager {
    type Type = Pooled;
    type Error = StoreError;

    async fn create(&self) -> Result<Pooled, StoreError> {
        let client = self
            .inner
            .create()
            .await
            .map_err(|e| self.settings.connect_error(e))?;
        Ok(Pooled {
            client: Client {
                inner: client,
                statements: self.statements.clone(),
            },
            returned_at: Instant::now(),
        })
    }

    async fn recycle(&self, pooled: &mut Pooled, metrics: &Metrics) -> RecycleResult<StoreError> {
        if metrics.age() >= MAX_LIFETIME {
            return Err(managed::RecycleError::message("past its lifetime"));
        }
        if pooled.client.inner.is_closed() {
            return Err(managed::RecycleError::message("closed"));
        }
        if pooled.returned_at.elapsed() >= IDLE_BEFORE_PING {
            pooled
                .client
                .inner
                .simple_query("")
                .await
                .map_err(|e| managed::RecycleError::Backend(e.into()))?;
        }
        Ok(())
    }

    fn detach(&self, pooled: &mut Pooled) {
        self.inner.detach(&mut pooled.client.inner);
    }
}

/// A pool of at most `max_connections`, in which a checkout (waiting,
/// opening a connection or checking an idle one, all told) gives up after
/// `timeout`.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: managed::Pool<Manager>,
    timeout: Duration,
}

impl Pool {
    pub fn new(
        settings: &PgConnectSettings,
        statements: Statements,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let size = usize::try_from(max_connections.max(1)).unwrap_or(usize::MAX);
        // The recycling method is unused: `Manager::recycle` checks.
        let inner = deadpool_postgres::Manager::from_config(
            settings.config.clone(),
            settings.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let manager = Manager {
            inner,
            settings: settings.clone(),
            statements,
        };
        let inner = managed::Pool::builder(manager)
            .max_size(size)
            .queue_mode(QueueMode::Lifo)
            .timeouts(Timeouts {
                wait: Some(timeout),
                create: Some(timeout),
                recycle: Some(timeout),
            })
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("PostgreSQL pool: {e}")))?;
        Ok(Self { inner, timeout })
    }

    /// Lends a connection; see [`Checkout`] for how to give it back.
    pub async fn checkout(&self) -> Result<Checkout, StoreError> {
        self.get().await.map(|conn| Checkout(Some(conn)))
    }

    /// A connection that goes back to the pool when dropped, whatever was
    /// done with it: for tests that inspect what requests leave behind.
    pub async fn lend(&self) -> Result<Lent, StoreError> {
        self.get().await.map(Lent)
    }

    async fn get(&self) -> Result<Object<Manager>, StoreError> {
        // deadpool bounds each step of a checkout on its own; after a
        // failed check of an idle connection it tries the next, so only
        // this bounds the whole.
        match tokio::time::timeout(self.timeout, self.inner.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(PoolError::Backend(e))) => Err(e),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "no PostgreSQL connection: {e}"
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no PostgreSQL connection within {:?}",
                self.timeout
            ))),
        }
    }

    /// (connections lent out, connections idle)
    pub fn stats(&self) -> (usize, usize) {
        let status = self.inner.status();
        (
            status.size.saturating_sub(status.available),
            status.available,
        )
    }

    /// Closes the idle connections, lends no more, then waits until
    /// every lent one has come back and been closed.
    pub async fn close(&self) {
        // Dropped, a connection ends its session.
        drop(self.inner.retain(|_, _| false));
        self.inner.close();
        // Checked-out connections are closed as they come back: the pool
        // is then over its size (0). Nothing signals that, so look often.
        while self.inner.status().size > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A lent connection. [`settle`](Checkout::settle) returns it to the pool
/// or closes it, by what its work ended in; dropped unsettled, it closes.
#[derive(Debug)]
pub struct Checkout(Option<Object<Manager>>);

impl Checkout {
    pub fn conn(&self) -> &Client {
        // Only `settle` and `drop` take the object, and both consume self.
        match self.0.as_deref() {
            Some(pooled) => &pooled.client,
            None => unreachable!("a checkout holds its connection until settled"),
        }
    }

    /// Passes `result` on, returning the connection to the pool when it
    /// can serve another request ([`StoreError::leaves_connection_usable`])
    /// and closing it otherwise.
    pub fn settle<T>(mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let reusable = match &result {
            Ok(_) => true,
            Err(e) => e.leaves_connection_usable(),
        };
        if reusable {
            if let Some(mut pooled) = self.0.take() {
                pooled.returned_at = Instant::now();
                // Dropping the object returns it to the pool.
            }
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

/// See [`Pool::lend`].
#[derive(Debug)]
pub struct Lent(Object<Manager>);

impl std::ops::Deref for Lent {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &tokio_postgres::Client {
        &self.0.client.inner
    }
}

impl std::ops::DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Client {
        &mut self.0.client.inner
    }
}
