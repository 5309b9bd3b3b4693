//! A few PostgreSQL connections shared by every request, each carrying
//! many calls at once: the reads that are one function call each (a get,
//! and a list of one instance in one status).
//!
//! Why beside the pool: a pooled connection carries one call at a time,
//! so its server process wakes for each call and sleeps after it, and on
//! a machine whose cores the database, the service and its clients share,
//! those wake-ups and round trips cost more than a short call's work.
//! tokio-postgres writes each call as soon as it is made, behind any the
//! connection already carries, and the server process reads the next call
//! as it finishes one, so a pipeline of short reads does several times the
//! calls per second of one read at a time.
//!
//! Each call is its own implicit transaction (a Sync of its own), in which
//! the function checks the request's key and sets the role and tenant
//! transaction-locally, so nothing of one request reaches the next on the
//! same connection, as on the pool. A call that fails leaves its
//! connection usable; a request dropped mid-call leaves its answer to be
//! read and discarded. A connection the server closed is replaced by the
//! next call that finds it closed; the calls it carried when cut fail
//! with [`StoreError::Unavailable`].
//!
//! Calls queue behind each other on a connection, so only short,
//! index-bounded reads go here (a list only down to [`MAX_OFFSET`]), each
//! given up after a bound (`StoreOptions::read_call_timeout`, 10 s by
//! default), with its connection; writes and transactions use the pool.
//! The connections are opened with the pool's settings (`tls`). Behind a
//! transaction pooler each call may reach another server session, so the
//! two statements are sent unnamed with each call (`statements`), and the
//! pooler carries the pipeline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres_types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::pool::Statements;
use super::statements::Described;
use super::tls::PgConnectSettings;

use crate::StoreError;

/// One connection and its two statements.
pub struct Conn {
    pub client: Client,
    statements: Kept,
}

/// The statements a pipelined connection sends.
enum Kept {
    /// Prepared when the connection opened.
    Prepared {
        get: Statement,
        list_one_status: Statement,
    },
    /// Sent unnamed (behind a transaction pooler, `statements`).
    Unnamed(Arc<Described>),
}

/// What a pipelined connection is asked.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    /// [`super::workflows::GET`]
    Get,
    /// [`super::workflows::LIST_ONE_STATUS`]
    ListOneStatus,
}

impl Call {
    pub fn sql(self) -> &'static str {
        match self {
            Call::Get => super::workflows::GET,
            Call::ListOneStatus => super::workflows::LIST_ONE_STATUS,
        }
    }
}

/// Where a read function is called: on a pipelined connection, or on
/// Citus on a pooled one, inside a request transaction
/// (`workflows::read_in_transaction`).
#[derive(Clone, Copy)]
pub enum Reader<'a> {
    Pipelined(&'a Conn),
    Pooled(&'a super::pool::Client),
}

impl Reader<'_> {
    /// The rows of one `call` with `params`.
    pub async fn query(
        self,
        call: Call,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        match self {
            Reader::Pipelined(conn) => conn.query(call, params).await,
            Reader::Pooled(client) => client.query(call.sql(), params).await,
        }
    }
}

impl Conn {
    /// The rows of one `call` with `params`.
    pub async fn query(
        &self,
        call: Call,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        match (&self.statements, call) {
            (Kept::Prepared { get, .. }, Call::Get) => Ok(self.client.query(get, params).await?),
            (
                Kept::Prepared {
                    list_one_status, ..
                },
                Call::ListOneStatus,
            ) => Ok(self.client.query(list_one_status, params).await?),
            (Kept::Unnamed(described), Call::Get) => {
                described
                    .query(&self.client, super::workflows::GET, params)
                    .await
            }
            (Kept::Unnamed(described), Call::ListOneStatus) => {
                described
                    .query(&self.client, super::workflows::LIST_ONE_STATUS, params)
                    .await
            }
        }
    }
}

/// One connection's place: the connection while it is open, and a lock
/// that lets one caller at a time open it again.
#[derive(Default)]
struct Slot {
    open: Mutex<Option<Arc<Conn>>>,
    opening: tokio::sync::Mutex<()>,
}

impl Slot {
    fn open(&self) -> Option<Arc<Conn>> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.as_ref().filter(|c| !c.client.is_closed()).cloned()
    }

    fn set(&self, conn: Option<Arc<Conn>>) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = conn;
    }

    /// Takes `conn` out of its place, unless it was replaced already.
    fn forget(&self, conn: &Arc<Conn>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *open = None;
        }
    }

    /// The connection, opened first if it is not open.
    async fn conn(
        &self,
        settings: &PgConnectSettings,
        statements: &Statements,
    ) -> Result<Arc<Conn>, StoreError> {
        if let Some(conn) = self.open() {
            return Ok(conn);
        }
        let _one = self.opening.lock().await;
        // Whoever held the lock before may have opened it.
        if let Some(conn) = self.open() {
            return Ok(conn);
        }
        let conn = Arc::new(connect(settings, statements).await?);
        self.set(Some(Arc::clone(&conn)));
        Ok(conn)
    }
}

/// Opens a connection with TLS as [`super::tls`] read it from the URL.
async fn connect(
    settings: &PgConnectSettings,
    statements: &Statements,
) -> Result<Conn, StoreError> {
    let client = super::tls::connect(settings).await?;
    let statements = match statements {
        Statements::Prepared => Kept::Prepared {
            get: client.prepare(super::workflows::GET).await?,
            list_one_status: client.prepare(super::workflows::LIST_ONE_STATUS).await?,
        },
        Statements::Unnamed(described) => Kept::Unnamed(Arc::clone(described)),
    };
    Ok(Conn { client, statements })
}

/// Without the settings, which hold the password.
impl std::fmt::Debug for Pipelined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelined")
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// The deepest offset of a list sent here: a page skips its offset row by
/// row, so deeper pages would hold up the calls behind them.
pub const MAX_OFFSET: i64 = 500;

pub struct Pipelined {
    settings: PgConnectSettings,
    statements: Statements,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    /// Bounds the wait for a connection, opening it included, as the pool
    /// bounds a checkout.
    timeout: Duration,
    /// A call not answered within this is given up, and its connection
    /// with it, so that the calls queued behind it go elsewhere.
    call_timeout: Duration,
    closed: AtomicBool,
}

impl Pipelined {
    /// `count` connections, opened when first needed.
    pub fn new(
        settings: PgConnectSettings,
        statements: Statements,
        count: usize,
        timeout: Duration,
        call_timeout: Duration,
    ) -> Self {
        Self {
            settings,
            statements,
            slots: (0..count.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            timeout,
            call_timeout,
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `op` on the next connection in turn, opened first if it is
    /// not open.
    pub async fn call<T>(
        &self,
        op: impl AsyncFnOnce(&Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        // In turn, not to the connection with the fewest calls in it: that
        // gives no more throughput and lets single requests wait behind a
        // slow call far longer.
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[turn];
        let conn = tokio::time::timeout(self.timeout, slot.conn(&self.settings, &self.statements))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no PostgreSQL connection within {:?}",
                    self.timeout
                ))
            })??;
        match tokio::time::timeout(self.call_timeout, op(&conn)).await {
            Ok(result) => result,
            Err(_) => {
                slot.forget(&conn);
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {:?}",
                    self.call_timeout
                )))
            }
        }
    }

    /// The connections open now.
    pub fn open_connections(&self) -> usize {
        self.slots.iter().filter(|s| s.open().is_some()).count()
    }

    /// Lets the connections go, and opens no more: each closes once the
    /// calls it carries have been answered.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        for slot in &self.slots {
            slot.set(None);
        }
    }
}
