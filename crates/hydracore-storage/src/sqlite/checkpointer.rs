//! Copies the WAL back into the database file, beside the writer rather
//! than inside its commits.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages
//! checkpoints it there and then, fsyncs included: with one writer, every
//! write queued behind that commit waited (6 % of the server's samples
//! under the agent load, on the writer thread). This thread runs a
//! `PASSIVE` checkpoint (it never blocks the writer or readers) a few
//! times a second.
//!
//! That copies the WAL back but does not start it over: SQLite starts the
//! file over only when a write begins with nothing left to copy, and under
//! load the writer appends faster than that moment comes. So the WAL file
//! grows until the writer's own threshold, where the writer checkpoints
//! in a commit and starts the file over, holding every queued write for
//! its fsyncs of the WAL and the database file (about 30 ms in all on the
//! benchmark machine). The threshold is
//! therefore high, [`WRITER_BACKSTOP_PAGES`]: at 10,000 pages that stall
//! came every ~450 ms under the agent mix and set the writes' p99 (36.6
//! to 37.8 ms against a p95 of 6.4 to 7.3); at 100,000 the mix's p99 was
//! 11.41 to 14.89 ms (docs/benchmarks.md, round 7). The price is disk:
//! under sustained writes the WAL file reaches about 400 MB before it
//! starts over, and keeps that size until the last connection closes.
//! (Cutting it back when it starts over, `journal_size_limit`, made that
//! moment a stall of up to 425 ms.)

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(100);

/// The writer's own threshold, in pages (4 KiB).
pub const WRITER_BACKSTOP_PAGES: i64 = 100_000;

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
