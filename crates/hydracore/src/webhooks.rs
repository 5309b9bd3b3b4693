//! The webhook delivery worker: every replica runs one. Each round it
//! turns new events into deliveries, claims the deliveries that are due
//! (the store makes sure no two replicas claim the same one, and that a
//! workflow's events go out in order), sends them as the Standard
//! Webhooks specification has it, and records each answer.
//!
//! Outbound requests go only to the addresses the URL check allows: the
//! URL is checked again before each attempt, a host name is resolved by
//! [`CheckedResolver`], which refuses the connection when any of its
//! addresses is private, and the client connects to the addresses it
//! checked (so a DNS answer that changes in between does not matter).
//! Redirects are not followed and no proxy from the environment is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hydracore_domain::validation::Invalid;
use hydracore_domain::webhook::{self, WebhookLimits, WebhookSecret};
use hydracore_domain::Timestamp;
use hydracore_storage::webhooks::{DeliveryRules, DueDelivery};
use hydracore_storage::{News, StoreError, Webhooks};
use rand::Rng;
use tokio::sync::watch;

/// The webhook settings (`HYDRACORE_WEBHOOK_*`).
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Plain `http` and private addresses allowed (tests, development).
    pub allow_private: bool,
    pub timeout: Duration,
    pub retry_for: Duration,
    pub disable_after: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How often the worker looks for new events and due deliveries.
    pub poll_interval: Duration,
    pub max_endpoints: u32,
    pub max_url_bytes: usize,
    pub max_description_chars: usize,
    /// Finished deliveries are deleted this long after they were queued.
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let rules = DeliveryRules::default();
        Self {
            allow_private: rules.limits.allow_private,
            timeout: rules.timeout,
            retry_for: rules.retry_for,
            disable_after: rules.disable_after,
            backoff_base: rules.backoff_base,
            backoff_max: rules.backoff_max,
            poll_interval: Duration::from_secs(1),
            max_endpoints: rules.max_endpoints,
            max_url_bytes: rules.limits.max_url_bytes,
            max_description_chars: rules.limits.max_description_chars,
            retention: hydracore_storage::service::DEFAULT_EVENT_RETENTION,
        }
    }
}

impl WebhookSettings {
    pub fn rules(&self) -> DeliveryRules {
        DeliveryRules {
            limits: WebhookLimits {
                allow_private: self.allow_private,
                max_url_bytes: self.max_url_bytes,
                max_description_chars: self.max_description_chars,
            },
            max_endpoints: self.max_endpoints,
            timeout: self.timeout,
            retry_for: self.retry_for,
            disable_after: self.disable_after,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
        }
    }
}

/// Events turned into deliveries per endpoint, and deliveries claimed, per
/// round; a full round is followed by another at once.
const BATCH: u32 = 100;
/// Rounds per tick at most, so that a backlog does not keep the worker
/// from noticing a shutdown.
const MAX_ROUNDS: usize = 50;
/// How often old deliveries are purged; no hurry.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Why a host may not receive webhooks, or why it could not be resolved.
#[derive(Debug, thiserror::Error)]
enum Unreachable {
    #[error("{host} resolves to {address}, a private or reserved address")]
    Private { host: String, address: IpAddr },
    #[error("{host} does not resolve: {cause}")]
    Unresolved { host: String, cause: std::io::Error },
}

/// The addresses `host` resolves to; refused when any of them is one no
/// webhook may reach (unless private addresses are allowed).
async fn resolve_checked(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, Unreachable> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|cause| Unreachable::Unresolved {
            host: host.to_owned(),
            cause,
        })?
        .collect();
    if !allow_private {
        if let Some(bad) = addresses
            .iter()
            .find(|a| webhook::forbidden_address(a.ip()))
        {
            return Err(Unreachable::Private {
                host: host.to_owned(),
                address: bad.ip(),
            });
        }
    }
    Ok(addresses)
}

/// How long a URL's check at registration waits for its host to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// At registration: a URL whose host name resolves to an address no
/// webhook may reach is refused. A name that does not resolve (yet) is
/// accepted: every attempt checks again, and fails until it resolves to
/// public addresses only.
pub async fn check_resolves(url: &str, limits: &WebhookLimits) -> Result<(), Invalid> {
    let parsed = webhook::check_url(url, limits)?;
    let Some(host) = parsed.domain().filter(|_| !limits.allow_private) else {
        return Ok(());
    };
    match tokio::time::timeout(RESOLVE_TIMEOUT, resolve_checked(host, false)).await {
        Ok(Err(refused @ Unreachable::Private { .. })) => {
            Err(Invalid::value_error(&refused.to_string()))
        }
        _ => Ok(()),
    }
}

/// The client's resolver: connections go only to the addresses it
/// checked.
struct CheckedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = resolve_checked(name.as_str(), allow_private).await?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Sends deliveries and records what became of them.
#[derive(Clone)]
pub struct Deliverer {
    webhooks: Webhooks,
    client: reqwest::Client,
    retention: Duration,
}

impl Deliverer {
    pub fn new(webhooks: Webhooks, settings: &WebhookSettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: settings.allow_private,
            }))
            .user_agent(concat!("HydraCore-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            webhooks,
            client,
            retention: settings.retention,
        })
    }

    /// New events into deliveries, then the due deliveries sent, again
    /// while any is due (those that waited behind one just delivered are
    /// due at once), for at most [`MAX_ROUNDS`] rounds. Returns how many
    /// attempts it made.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let mut attempts = 0;
        for _ in 0..MAX_ROUNDS {
            while self.webhooks.enqueue(BATCH).await? >= u64::from(BATCH) {}
            let claimed = self.webhooks.claim(BATCH).await?;
            if claimed.is_empty() {
                break;
            }
            attempts += claimed.len();
            let mut sending = tokio::task::JoinSet::new();
            for due in claimed {
                let this = self.clone();
                sending.spawn(async move { this.attempt(due).await });
            }
            let mut failed = None;
            while let Some(done) = sending.join_next().await {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        failed.get_or_insert(e);
                    }
                    Err(e) => tracing::error!(error = %e, "a webhook attempt panicked"),
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(attempts)
    }

    /// Sends one delivery and records the answer.
    async fn attempt(&self, due: DueDelivery) -> Result<(), StoreError> {
        let started = Instant::now();
        let (status, error) = match self.send(&due).await {
            Ok(status) => (Some(status), None),
            Err(reason) => (None, Some(reason)),
        };
        let jitter = rand::thread_rng().gen_range(0.0..1.0);
        let report = self
            .webhooks
            .judge(&due, status, error, started.elapsed(), jitter);
        let outcome = match webhook::Answer::of(status) {
            webhook::Answer::Delivered => "delivered",
            webhook::Answer::Gone => "gone",
            webhook::Answer::Failed => "failed",
        };
        metrics::counter!("hydracore_webhook_attempts_total", "outcome" => outcome).increment(1);
        if let Some(reason) = &report.error {
            tracing::info!(webhook = %due.webhook_id, delivery = %due.id, %reason, "webhook attempt failed");
        }
        self.webhooks.record(&report).await
    }

    /// The receiver's status code, or why there is none.
    async fn send(&self, due: &DueDelivery) -> Result<u16, String> {
        let limits = self.webhooks.rules.limits;
        webhook::check_url(&due.url, &limits).map_err(|e| e.msg)?;
        let secret = WebhookSecret::parse(&due.secret)
            .ok_or_else(|| "the endpoint's secret is unreadable".to_owned())?;
        let id = due.id.to_string();
        let timestamp = Timestamp::now().unix_micros().div_euclid(1_000_000);
        let signature = secret.sign(&id, timestamp, due.payload.as_bytes());
        let response = self
            .client
            .post(&due.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(due.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok(response.status().as_u16())
    }

    /// Deletes finished deliveries past the retention.
    pub async fn purge(&self) -> Result<u64, StoreError> {
        let before = Timestamp::from_unix_micros(
            Timestamp::now()
                .unix_micros()
                .saturating_sub(i64::try_from(self.retention.as_micros()).unwrap_or(i64::MAX)),
        );
        match before {
            Some(before) => self.webhooks.purge(before, BATCH * 10).await,
            None => Ok(0),
        }
    }
}

/// A failed request in a sentence, with its causes.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "the receiver did not answer in time".to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Delivers when a change is written (`news`: this replica's, and on
/// PostgreSQL the other replicas' too), and every `interval` for the
/// changes of replicas that cannot tell and the retries that came due,
/// until `stop` turns true; counts finished rounds in `done`.
pub async fn run(
    deliverer: Deliverer,
    interval: Duration,
    mut news: News,
    mut stop: watch::Receiver<bool>,
    done: watch::Sender<u64>,
) {
    let mut purged: Option<Instant> = None;
    loop {
        tokio::select! {
            () = news.of_any_tenant(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = deliverer.deliver_due().await {
            tracing::warn!(error = %e, "webhook delivery failed; retrying next round");
        }
        if purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            if let Err(e) = deliverer.purge().await {
                tracing::warn!(error = %e, "purging old webhook deliveries failed");
            }
            purged = Some(Instant::now());
        }
        done.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_private_addresses_are_allowed() {
        let refused = resolve_checked("localhost", false).await;
        assert!(
            matches!(refused, Err(Unreachable::Private { .. })),
            "{refused:?}"
        );
        let allowed = resolve_checked("localhost", true).await;
        assert!(allowed.is_ok_and(|a| a.iter().all(|a| a.ip().is_loopback())));
    }

    #[tokio::test]
    async fn the_client_refuses_to_connect_to_a_name_that_resolves_to_loopback() {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: false,
            }))
            .no_proxy()
            .build();
        let Ok(client) = client else {
            panic!("client builds");
        };
        let sent = client.get("http://localhost:9/").send().await;
        let Err(e) = sent else {
            panic!("connected to loopback");
        };
        assert!(
            describe(&e).contains("private or reserved"),
            "{}",
            describe(&e)
        );
    }
}
