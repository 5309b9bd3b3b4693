//! Copies the WAL back into the database file, beside the writer rather
//! than inside its commits, and has the writer start the WAL over when it
//! is cheap to.
//!
//! By default the connection whose commit takes the WAL past 1,000 pages
//! checkpoints it there and then, fsyncs included: with one writer, every
//! write queued behind that commit would wait. This thread runs a `PASSIVE`
//! checkpoint (it never blocks the writer or readers) a few times a second.
//!
//! That copies the WAL back but does not start it over: SQLite starts the
//! file over only when a write begins with nothing left to copy, and under
//! load the writer appends while this thread copies. So once this thread
//! finds a WAL of [`RESTART_PAGES`] or more copied back whole, it asks the
//! writer to checkpoint between two transactions: only the frames since
//! are left to copy and sync (a short pause of the writer), and the
//! writer's next transaction starts the file over. This keeps the WAL file
//! near a hundred MiB under sustained writes instead of several hundred.
//!
//! The writer's own threshold, [`WRITER_BACKSTOP_PAGES`], remains as a
//! backstop, for when readers keep the WAL from being copied back whole: it
//! checkpoints inside a commit, holding every queued write for the fsyncs
//! of a whole WAL and the database file, so it is set high enough to be
//! rare. The file keeps its largest size until the last connection closes
//! (cutting it back when it starts over, `journal_size_limit`, makes that
//! moment a long stall).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(100);

/// The writer's own threshold, in pages (4 KiB).
pub const WRITER_BACKSTOP_PAGES: i64 = 100_000;

/// A WAL this long (in pages, 32 MiB), once copied back whole, is started
/// over by the writer.
const RESTART_PAGES: i64 = 8_192;

/// Starts the thread; it stops, after a last checkpoint, when the sender
/// of `stop` is dropped (the writer thread ends). It sets `restart_due`
/// when the writer should checkpoint (with [`checkpoint`]) between two
/// transactions.
pub fn start(
    path: &Path,
    stop: Receiver<()>,
    restart_due: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    let conn = super::open_connection(path)?;
    thread::Builder::new()
        .name("sqlite-checkpointer".to_owned())
        .spawn(move || loop {
            let last = match stop.recv_timeout(EVERY) {
                Err(RecvTimeoutError::Timeout) => false,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            };
            match checkpoint(&conn) {
                Ok((log, copied)) if log >= RESTART_PAGES && copied == log => {
                    restart_due.store(true, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "SQLite WAL checkpoint failed"),
            }
            if last {
                return;
            }
        })
        .map_err(|e| StoreError::Config(format!("cannot start the SQLite checkpointer: {e}")))?;
    Ok(())
}

/// A `PASSIVE` checkpoint: the WAL's length and the pages copied back,
/// in pages.
pub fn checkpoint(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let done = conn
        .prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
        .query_row([], |row| Ok((row.get(1)?, row.get(2)?)))?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A WAL database that only explicit checkpoints copy back, and the
    /// directory that holds it.
    fn wal_database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("wal.db")).expect("open");
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .expect("WAL");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no automatic checkpoints");
        conn.execute_batch("CREATE TABLE t (x BLOB)")
            .expect("table");
        (dir, conn)
    }

    fn write(conn: &Connection, bytes: usize) {
        conn.execute("INSERT INTO t VALUES (zeroblob(?1))", [bytes])
            .expect("write");
    }

    #[test]
    fn a_checkpoint_reports_the_wal_length_and_the_pages_copied_back() {
        let (_dir, conn) = wal_database();
        write(&conn, 64 * 1024);
        let (log, copied) = checkpoint(&conn).expect("checkpoint");
        assert!(log > 16, "{log} pages");
        assert_eq!(copied, log);
    }

    /// What the writer's checkpoint between transactions relies on.
    #[test]
    fn a_write_after_everything_was_copied_back_starts_the_wal_over() {
        let (_dir, conn) = wal_database();
        write(&conn, 1024 * 1024);
        let (before, _) = checkpoint(&conn).expect("checkpoint");
        write(&conn, 16);
        let (after, _) = checkpoint(&conn).expect("checkpoint");
        assert!(before > 256, "{before} pages");
        assert!(after < 8, "the WAL went on at frame {after}");
    }
}
