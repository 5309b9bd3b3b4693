//! The read side: a few threads, each owning one read connection, taking
//! reads from one shared queue.
//!
//! A read (a record and its history, or a page, its total and histories)
//! runs start to end on one thread: one hand-off from the runtime and one
//! back, rather than one per statement as with an async driver. Each thread
//! keeps its connection, and with it its page cache and prepared
//! statements, warm. (Lending connections to tokio's blocking pool instead
//! grows the pool to one thread per concurrent request, each running reads
//! in turn on cold caches.) WAL lets reads run beside the writer.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;

/// Reads waiting beyond this make callers wait to enqueue.
const QUEUE_DEPTH: usize = 1024;

type Read = Box<dyn FnOnce(&Connection) + Send>;

enum Message {
    Read(Read),
    /// Stop this thread once the reads queued before have run.
    Stop(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub struct Readers {
    queue: flume::Sender<Message>,
    threads: u32,
    busy: Arc<AtomicU32>,
    /// How long a read may wait for its turn before it is refused (503).
    wait: Duration,
}

impl Readers {
    /// Opens `threads` read connections to `path`, one thread each.
    pub fn start(path: &Path, threads: u32, wait: Duration) -> Result<Self, StoreError> {
        let threads = threads.max(1);
        let (queue, reads) = flume::bounded(QUEUE_DEPTH);
        let busy = Arc::new(AtomicU32::new(0));
        for i in 0..threads {
            let conn = open(path)?;
            let (reads, busy) = (reads.clone(), Arc::clone(&busy));
            thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || serve(&conn, &reads, &busy))
                .map_err(|e| StoreError::Config(format!("cannot start a SQLite reader: {e}")))?;
        }
        Ok(Self {
            queue,
            threads,
            busy,
            wait,
        })
    }

    /// Runs `read` on a read connection, on one of the reader threads.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + self.wait;
        let job: Read = Box::new(move |conn| {
            if reply.is_closed() {
                return;
            }
            let result = if Instant::now() > deadline {
                Err(unavailable("timed out waiting for a read connection"))
            } else {
                panic::catch_unwind(AssertUnwindSafe(|| read(conn)))
                    .unwrap_or_else(|_| Err(StoreError::database("a read panicked".to_owned())))
            };
            let _ = reply.send(result);
        });
        tokio::time::timeout(self.wait, self.queue.send_async(Message::Read(job)))
            .await
            .map_err(|_| unavailable("the database readers are overloaded"))?
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Reader threads running a read now, and waiting for one, for metrics.
    pub fn stats(&self) -> (u32, u32) {
        let busy = self.busy.load(Ordering::Relaxed).min(self.threads);
        (busy, self.threads - busy)
    }

    /// Lets queued reads run, then stops every thread and closes its
    /// connection.
    pub async fn close(&self) {
        let mut stopped = Vec::new();
        for _ in 0..self.threads {
            let (done, stop) = oneshot::channel();
            if self.queue.send_async(Message::Stop(done)).await.is_ok() {
                stopped.push(stop);
            }
        }
        for stop in stopped {
            let _ = stop.await;
        }
    }
}

fn serve(conn: &Connection, reads: &flume::Receiver<Message>, busy: &AtomicU32) {
    while let Ok(message) = reads.recv() {
        match message {
            Message::Read(read) => {
                busy.fetch_add(1, Ordering::Relaxed);
                read(conn);
                busy.fetch_sub(1, Ordering::Relaxed);
            }
            Message::Stop(done) => {
                let _ = done.send(());
                return;
            }
        }
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = super::open_connection(path)?;
    // Reads only: a bug here cannot write around the writer thread.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

fn unavailable(why: &str) -> StoreError {
    StoreError::Unavailable(why.to_owned())
}

fn stopped() -> StoreError {
    unavailable("the SQLite readers have stopped")
}
