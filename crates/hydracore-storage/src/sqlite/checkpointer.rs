//! Copies the WAL back into the database file, beside the writer rather
//! than inside its commits.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages
//! checkpoints it there and then, fsyncs included: with one writer, every
//! write queued behind that commit waited (6 % of the server's samples
//! under the agent load, on the writer thread). This thread runs a
//! `PASSIVE` checkpoint (it never blocks the writer or readers) a few
//! times a second; the writer keeps a far higher threshold of its own as
//! a backstop, should this thread fall behind.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(100);

/// The writer's own threshold, in pages (4 KiB): only if this thread lags.
pub const WRITER_BACKSTOP_PAGES: i64 = 10_000;

/// Starts the thread; it stops, after a last checkpoint, when the sender
/// of `stop` is dropped (the writer thread ends).
pub fn start(path: &Path, stop: Receiver<()>) -> Result<(), StoreError> {
    let conn = super::open_connection(path)?;
    thread::Builder::new()
        .name("sqlite-checkpointer".to_owned())
        .spawn(move || loop {
            let last = match stop.recv_timeout(EVERY) {
                Err(RecvTimeoutError::Timeout) => false,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            };
            if let Err(e) = checkpoint(&conn) {
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
            }
            if last {
                return;
            }
        })
        .map_err(|e| StoreError::Config(format!("cannot start the SQLite checkpointer: {e}")))?;
    Ok(())
}

fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
        .query_row([], |_| Ok(()))?;
    Ok(())
}
