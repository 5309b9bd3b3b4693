//! The one SQLite writer: a thread that owns the write connection and
//! commits the jobs waiting for it together (group commit).
//!
//! SQLite takes one writer at a time, so every write of the process queues
//! here. Doing each write as async statements on a pooled connection costs
//! a hand-off between the runtime and the connection's worker thread per
//! statement (BEGIN, read, update, append, COMMIT), and under load such a
//! writer spends most of its time waiting to be scheduled, not writing.
//! Here a job is a synchronous closure run on this
//! thread, and all jobs that queued up while one transaction ran go into
//! the next one, each in its own savepoint, so one job's failure undoes
//! only that job. Replies are sent after the COMMIT: no caller hears of a
//! write that could still be rolled back.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpointer;
use crate::{SqliteSync, StoreError};

/// Jobs committed together at most; bounds how long the first of them
/// waits for the last.
const MAX_BATCH: usize = 128;

/// Writes waiting beyond this make callers wait to enqueue (backpressure).
const QUEUE_DEPTH: usize = 1024;

/// A write to run in the writer's transaction.
trait Job: Send {
    /// Runs the write; `false` means it failed and its savepoint is undone.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Tells the caller: its result if the transaction committed, else why not.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
    /// When the caller stops waiting for the write to start.
    fn deadline(&self) -> Instant;
    /// The caller is gone (its request was cancelled): nobody would hear
    /// of the write, so it is not made.
    fn abandoned(&self) -> bool;
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    deadline: Instant,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match (self.result, committed) {
            (Some(Err(e)), _) | (_, Err(e)) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            // The job panicked (the panic hook logged it).
            (None, Ok(())) => Err(StoreError::database("the write failed".to_owned())),
        };
        // A caller that went away after its write started hears nothing;
        // the write stands, as a committed write does on any database.
        let _ = self.reply.send(answer);
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

enum Message {
    Job(Box<dyn Job>),
    /// Everything sent before has been answered; stop.
    Close(oneshot::Sender<()>),
}

/// The handle requests write through; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Message>,
    /// How long a write may wait for its turn before it is refused (503).
    wait: Duration,
}

impl Writer {
    /// Opens the write connection to `path` (an existing, migrated, WAL
    /// database) and starts the writer thread.
    pub fn start(path: &Path, wait: Duration, sync: SqliteSync) -> Result<Self, StoreError> {
        let conn = super::open_connection(path)?;
        conn.pragma_update(None, "synchronous", sync.pragma())?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // A statement that writes several rows in a transaction (a trigger,
        // an AUTOINCREMENT key) keeps a journal to undo just itself: in
        // memory, not in a temporary file written for every such statement.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpointer::WRITER_BACKSTOP_PAGES,
        )?;
        let (writer_done, checkpointer_stop) = std::sync::mpsc::channel::<()>();
        let restart_due = Arc::new(AtomicBool::new(false));
        checkpointer::start(path, checkpointer_stop, Arc::clone(&restart_due))?;
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                serve(conn, jobs, &restart_due);
                // The checkpointer's last checkpoint comes after the last write.
                drop(writer_done);
            })
            .map_err(|e| StoreError::Config(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { queue, wait })
    }

    /// Runs `work` in a write transaction (after the writes queued before
    /// it) and answers once that transaction has committed.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            work: Some(work),
            result: None,
            reply,
            deadline: Instant::now() + self.wait,
        };
        tokio::time::timeout(self.wait, self.queue.send(Message::Job(Box::new(job))))
            .await
            .map_err(|_| StoreError::Unavailable("the database writer is overloaded".to_owned()))?
            .map_err(|_| closed())?;
        // No timeout here: once the job may have started, giving up would
        // tell the caller "failed" about a write that may yet commit.
        answer.await.map_err(|_| closed())?
    }

    /// Waits for every write sent so far, then stops the thread.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite writer has stopped".to_owned())
}

fn serve(conn: Connection, mut queue: mpsc::Receiver<Message>, restart_due: &AtomicBool) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        let mut close = None;
        match first {
            Message::Job(job) => batch.push(job),
            Message::Close(done) => close = Some(done),
        }
        while close.is_none() && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Close(done)) => close = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch);
        }
        // Between two transactions, so that the next one starts the WAL
        // over (checkpointer.rs says why here).
        if restart_due.swap(false, Ordering::Relaxed) {
            if let Err(e) = checkpointer::checkpoint(&conn) {
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
            }
        }
        if let Some(done) = close {
            queue.close();
            // Writes that raced the close are refused, not lost silently.
            while let Ok(message) = queue.try_recv() {
                if let Message::Job(job) = message {
                    job.finish(Err(closed()));
                }
            }
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction, each job in its own
/// savepoint, then answers every job.
fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn Job>>) {
    let now = Instant::now();
    let (skipped, mut due): (Vec<_>, Vec<_>) = batch
        .drain(..)
        .partition(|j| j.abandoned() || j.deadline() < now);
    for job in skipped {
        job.finish(Err(StoreError::Unavailable(
            "timed out waiting for the database writer".to_owned(),
        )));
    }
    if due.is_empty() {
        return;
    }
    let outcome = run_in_transaction(conn, &mut due);
    match outcome {
        Ok(()) => {
            for job in due {
                job.finish(Ok(()));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = due.len(), "SQLite write transaction failed");
            let reason = e.to_string();
            let is_busy = matches!(e, StoreError::Unavailable(_));
            for job in due {
                job.finish(Err(if is_busy {
                    StoreError::Unavailable(reason.clone())
                } else {
                    StoreError::database(reason.clone())
                }));
            }
        }
    }
}

fn run_in_transaction(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    control(conn, "BEGIN IMMEDIATE")?;
    let outcome = run_jobs(conn, jobs).and_then(|()| control(conn, "COMMIT"));
    if outcome.is_err() && !conn.is_autocommit() {
        // Nothing of the batch stays; the callers hear the first error.
        if let Err(e) = control(conn, "ROLLBACK") {
            tracing::warn!(error = %e, "rolling back a failed SQLite write transaction");
        }
    }
    outcome
}

fn run_jobs(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    for job in jobs.iter_mut() {
        control(conn, "SAVEPOINT job")?;
        // A job that panics fails alone (its caller hears an error) instead
        // of taking the thread, and every later write, down with it.
        let ran = panic::catch_unwind(AssertUnwindSafe(|| job.run(conn)));
        if !matches!(ran, Ok(true)) {
            control(conn, "ROLLBACK TO job")?;
        }
        control(conn, "RELEASE job")?;
        // Some errors (I/O, disk full) make SQLite roll the whole
        // transaction back itself; the next job's savepoint would then
        // start and commit a transaction of its own, and the final COMMIT
        // fail: answers would then say "failed" about committed writes.
        if conn.is_autocommit() {
            return Err(StoreError::database(
                "SQLite rolled the write transaction back".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Runs a transaction-control statement from the statement cache: these
/// run around every write, and `execute_batch` (what rusqlite's
/// `Transaction` and `Savepoint` use) parses them anew each time.
fn control(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
