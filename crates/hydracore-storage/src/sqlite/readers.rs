//! The read connections: a few rusqlite connections, each lent to one read
//! at a time on tokio's blocking threads.
//!
//! A read (a record and its history, or a page, its total and histories)
//! runs start to end on one blocking thread: one hand-off from the runtime
//! and one back, rather than one per statement as with an async driver.
//! WAL lets these run beside the writer.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::StoreError;

/// Statements kept prepared on each read connection.
const STATEMENT_CACHE: usize = 64;

#[derive(Debug, Clone)]
pub struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    /// One permit per connection: a read holds one while it runs.
    permits: Arc<Semaphore>,
    size: u32,
    /// How long a read waits for a connection before it is refused (503).
    wait: Duration,
}

impl Readers {
    pub fn open(path: &Path, size: u32, wait: Duration) -> Result<Self, StoreError> {
        let size = size.max(1);
        let idle = (0..size)
            .map(|_| open(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            idle: Arc::new(Mutex::new(idle)),
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            wait,
        })
    }

    /// Runs `read` on a read connection, on a blocking thread.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| unavailable("timed out waiting for a read connection"))?
            .map_err(|_| unavailable("the read connections are closed"))?;
        let idle = Arc::clone(&self.idle);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = lock(&idle)
                .pop()
                .ok_or_else(|| unavailable("no read connection"))?;
            // The connection goes back even when the read panics.
            let result = panic::catch_unwind(AssertUnwindSafe(|| read(&conn)));
            lock(&idle).push(conn);
            result.unwrap_or_else(|_| Err(StoreError::Sqlite("a read panicked".to_owned())))
        })
        .await
        .map_err(|e| StoreError::Sqlite(format!("a read failed: {e}")))?
    }

    /// Connections lent out now and idle, for metrics.
    pub fn stats(&self) -> (u32, u32) {
        let idle = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        (self.size.saturating_sub(idle), idle)
    }

    /// Lets running reads finish, refuses new ones, closes the connections.
    pub async fn close(&self) {
        if let Ok(all) = self.permits.acquire_many(self.size).await {
            self.permits.close();
            drop(all);
        }
        lock(&self.idle).clear();
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Reads only: a bug here cannot write around the writer thread.
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable(why.to_owned())
}

fn lock(idle: &Mutex<Vec<Connection>>) -> std::sync::MutexGuard<'_, Vec<Connection>> {
    // The list is consistent between operations; a panic elsewhere cannot
    // leave it half-changed.
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}
