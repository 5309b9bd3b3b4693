//! What replicas on one database tell each other: the changes each wrote,
//! so that a stream or a waiting read on another replica wakes at once
//! instead of at its next poll.
//!
//! A replica gathers its changes for a few milliseconds and sends them in
//! one `NOTIFY` (in a statement of its own, after the changes committed:
//! a `NOTIFY` inside the changes' transactions would serialise their
//! commits on the server's notification lock). Each replica `LISTEN`s on a
//! connection of its own and skips what it sent itself. A transaction
//! pooler carries the `NOTIFY` but not a `LISTEN`, which needs a session:
//! behind one, a replica listens only on `HYDRACORE_DB_LISTEN_URL` (the
//! server itself).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use super::pool::Pool;
use super::tls::PgConnectSettings;
use crate::Changed;

const CHANNEL: &str = "hydracore_changes";
/// How long a replica gathers changes before it tells them.
const GATHER: Duration = Duration::from_millis(5);
/// Changes waiting to be told; past it, new ones are dropped (readers
/// still poll).
const WAITING: usize = 4096;
/// PostgreSQL takes payloads under 8,000 bytes.
const PAYLOAD_BYTES: usize = 7_900;
/// Between attempts to listen again after a lost connection.
const RELISTEN: Duration = Duration::from_secs(1);

/// This replica's side of the conversation.
#[derive(Debug)]
pub struct Replicas {
    me: Uuid,
    pool: Pool,
    /// Where to listen: a session of its own on the server, which a
    /// transaction pooler does not give; `None` behind one without a
    /// listen URL, and the replica hears nothing (its readers poll).
    listen: Option<PgConnectSettings>,
    /// The teller task's queue, started on the first change.
    teller: OnceLock<mpsc::Sender<Changed>>,
}

impl Replicas {
    pub fn new(pool: Pool, listen: Option<PgConnectSettings>) -> Arc<Self> {
        Arc::new(Self {
            me: Uuid::new_v4(),
            pool,
            listen,
            teller: OnceLock::new(),
        })
    }

    /// Queues `change` to be told; the teller task starts with the first
    /// and ends with the store.
    pub fn tell(&self, change: Changed) {
        let queue = self.teller.get_or_init(|| {
            let (queue, changes) = mpsc::channel(WAITING);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(tell(self.me, self.pool.clone(), changes));
            }
            queue
        });
        // A full queue, or no runtime: the readers' polls find the change.
        let _ = queue.try_send(change);
    }

    /// Passes the other replicas' changes to `to` until `stop`.
    pub async fn hear(&self, to: broadcast::Sender<Changed>, mut stop: watch::Receiver<bool>) {
        let Some(listen) = &self.listen else {
            tracing::info!(
                "not listening for other replicas' changes: the database URL goes through a \
                 transaction pooler and no HYDRACORE_DB_LISTEN_URL is set; waiting reads and \
                 streams find other replicas' changes at their next poll"
            );
            let _ = stop.wait_for(|stop| *stop).await;
            return;
        };
        loop {
            tokio::select! {
                () = self.listen(listen, &to) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                () = tokio::time::sleep(RELISTEN) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Listens until the connection is lost.
    async fn listen(&self, settings: &PgConnectSettings, to: &broadcast::Sender<Changed>) {
        let (client, mut connection) = match settings.config.connect(settings.tls.clone()).await {
            Ok(opened) => opened,
            Err(e) => {
                tracing::debug!(error = %e, "cannot listen for other replicas' changes");
                return;
            }
        };
        let (heard, mut notes) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(note)) => {
                        if heard.send(note.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "the listening connection ended");
                        return;
                    }
                }
            }
        });
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            tracing::debug!(error = %e, "cannot listen for other replicas' changes");
            driver.abort();
            return;
        }
        while let Some(payload) = notes.recv().await {
            for change in read(&payload, self.me) {
                // Nobody waiting is no error.
                let _ = to.send(change);
            }
        }
        driver.abort();
    }
}

/// Tells the changes queued on `changes`, a few at a time, until the
/// queue is dropped with the store.
async fn tell(me: Uuid, pool: Pool, mut changes: mpsc::Receiver<Changed>) {
    let mut gathered = Vec::new();
    while let Some(first) = changes.recv().await {
        gathered.push(first);
        tokio::time::sleep(GATHER).await;
        while let Ok(more) = changes.try_recv() {
            gathered.push(more);
        }
        for payload in write(me, &gathered) {
            let told = async {
                let c = pool.checkout().await?;
                let result = c
                    .conn()
                    .execute_once("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                    .await
                    .map(|_| ());
                c.settle(result)
            };
            if let Err(e) = told.await {
                tracing::debug!(error = %e, "cannot tell other replicas of changes");
            }
        }
        gathered.clear();
    }
}

/// Payloads of at most [`PAYLOAD_BYTES`]: `me`, then a line per change
/// (`tenant id version`).
fn write(me: Uuid, changes: &[Changed]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut payload = String::new();
    for c in changes {
        if payload.len() + 100 > PAYLOAD_BYTES {
            payloads.push(std::mem::take(&mut payload));
        }
        if payload.is_empty() {
            payload.push_str(&me.simple().to_string());
        }
        let _ = write!(
            payload,
            "\n{} {} {}",
            c.tenant_id.simple(),
            c.id.simple(),
            c.version
        );
    }
    if !payload.is_empty() {
        payloads.push(payload);
    }
    payloads
}

/// The changes in `payload`, unless `me` sent it.
fn read(payload: &str, me: Uuid) -> Vec<Changed> {
    let mut lines = payload.lines();
    let from = lines.next().and_then(|l| Uuid::parse_str(l).ok());
    if from.is_none_or(|from| from == me) {
        return Vec::new();
    }
    lines
        .filter_map(|line| {
            let mut parts = line.split(' ');
            Some(Changed {
                tenant_id: Uuid::parse_str(parts.next()?).ok()?,
                id: Uuid::parse_str(parts.next()?).ok()?,
                version: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(version: i64) -> Changed {
        Changed {
            tenant_id: Uuid::new_v4(),
            id: Uuid::new_v4(),
            version,
        }
    }

    #[test]
    fn what_one_replica_writes_another_reads_back_whole_in_payloads_postgres_takes() {
        let (me, other) = (Uuid::new_v4(), Uuid::new_v4());
        let changes: Vec<Changed> = (0..500).map(change).collect();
        let payloads = write(me, &changes);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() < 8_000));
        let read_back: Vec<Changed> = payloads.iter().flat_map(|p| read(p, other)).collect();
        assert_eq!(read_back, changes);
    }

    #[test]
    fn a_replica_skips_what_it_told_itself_and_what_it_cannot_read() {
        let me = Uuid::new_v4();
        let payloads = write(me, &[change(1)]);
        assert_eq!(read(&payloads[0], me), Vec::new());
        assert_eq!(read("not a replica\nx y z", me), Vec::new());
    }
}
