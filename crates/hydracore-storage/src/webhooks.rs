//! The webhook use cases: what the `/v1/webhooks` routes and the delivery
//! worker do, above whichever [`Store`] holds the endpoints and their
//! deliveries.
//!
//! The events table is the queue. Each endpoint keeps a cursor over its
//! tenant's events; [`Webhooks::enqueue`] turns the events past it into
//! delivery rows and moves it on in one transaction, so an event is
//! neither lost nor queued twice whatever stops the process. A delivery is
//! claimed with a lease (its next attempt moved past the attempt's
//! timeout), so a replica that dies mid-attempt leaves it to be tried
//! again: at least once. An endpoint gets a workflow's events in order:
//! a delivery is not claimed while an earlier one of its workflow to the
//! same endpoint is pending.

use std::sync::Arc;
use std::time::Duration;

use hydracore_domain::event::EventType;
use hydracore_domain::webhook::{
    self, Answer, Delivery, DeliveryStatus, NewWebhook, Webhook, WebhookPatch, WebhookSecret,
};
use hydracore_domain::{Scope, Timestamp};
use uuid::Uuid;

use crate::rows::{corrupt, Columns};
use crate::{Store, StoreError, UseCaseError};

/// An endpoint's columns, in the order [`webhook_row`] reads them.
pub const WEBHOOK_COLUMNS: &str = "id, url, event_types, description, created_at, updated_at, \
    disabled_at, disabled_reason, failing_since";

/// A delivery's columns, in the order [`delivery_row`] reads them.
pub const DELIVERY_COLUMNS: &str = "id, webhook_id, event_xid, event_seq, event_type, \
    workflow_id, status, attempts, last_status_code, last_latency_ms, last_error, \
    last_attempt_at, next_attempt_at, delivered_at, created_at";

pub fn webhook_row(row: &impl Columns) -> Result<Webhook, StoreError> {
    let disabled_at = row.opt_time(6)?;
    Ok(Webhook {
        id: row.uuid(0)?,
        url: row.text(1)?,
        event_types: Webhook::parse_stored_types(&row.text(2)?),
        description: row.opt_text(3)?,
        created_at: row.time(4)?,
        updated_at: row.time(5)?,
        enabled: disabled_at.is_none(),
        disabled_at,
        disabled_reason: row.opt_text(7)?,
        failing_since: row.opt_time(8)?,
    })
}

pub fn delivery_row(row: &impl Columns) -> Result<Delivery, StoreError> {
    let event_type = row.text(4)?;
    let status = row.text(6)?;
    Ok(Delivery {
        id: row.uuid(0)?,
        webhook_id: row.uuid(1)?,
        event_id: hydracore_domain::event::EventId(row.int(2)?, row.int(3)?).encode(),
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| corrupt("event type", &event_type))?,
        workflow_id: row.uuid(5)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        attempts: row.int(7)?,
        last_status_code: row.opt_int(8)?,
        last_latency_ms: row.opt_int(9)?,
        last_error: row.opt_text(10)?,
        last_attempt_at: row.opt_time(11)?,
        next_attempt_at: row.opt_time(12)?,
        delivered_at: row.opt_time(13)?,
        created_at: row.time(14)?,
    })
}

/// A delivery claimed for an attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub id: Uuid,
    pub url: String,
    pub secret: String,
    pub payload: String,
    /// Counting the one now under way.
    pub attempts: i64,
    pub retrying_since: Timestamp,
    pub failing_since: Option<Timestamp>,
}

/// What became of an attempt, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub delivery_id: Uuid,
    pub at: Timestamp,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub outcome: Outcome,
    pub endpoint: EndpointChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    RetryAt(Timestamp),
    GiveUp,
}

impl Outcome {
    pub fn status(self) -> DeliveryStatus {
        match self {
            Outcome::Delivered => DeliveryStatus::Delivered,
            Outcome::RetryAt(_) => DeliveryStatus::Pending,
            Outcome::GiveUp => DeliveryStatus::Failed,
        }
    }

    pub fn next_attempt_at(self) -> Option<Timestamp> {
        match self {
            Outcome::RetryAt(at) => Some(at),
            _ => None,
        }
    }
}

/// What an attempt says of its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointChange {
    /// It answered: no longer failing.
    Healthy,
    /// It failed: failing since now, unless it already was.
    Failing,
    Disable(String),
}

/// The webhook settings the use cases apply.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryRules {
    pub limits: webhook::WebhookLimits,
    /// Endpoints per tenant, at most.
    pub max_endpoints: u32,
    /// How long an attempt may take before it counts as failed.
    pub timeout: Duration,
    /// How long a delivery is retried.
    pub retry_for: Duration,
    /// How long an endpoint may fail before it is disabled.
    pub disable_after: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for DeliveryRules {
    fn default() -> Self {
        let day = Duration::from_secs(24 * 3600);
        Self {
            limits: webhook::WebhookLimits::default(),
            max_endpoints: 20,
            timeout: Duration::from_secs(10),
            retry_for: day,
            disable_after: day,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

/// An endpoint's answer to `create` and `rotate`: the only time its secret
/// is shown.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

/// The webhook use cases over one store. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    store: Arc<dyn Store>,
    pub rules: DeliveryRules,
}

/// A claimed attempt is left to its replica for twice the attempt's
/// timeout and this, before another may take the delivery over (an
/// attempt cut short by a crash is retried then).
const LEASE_MARGIN: Duration = Duration::from_secs(1);

impl Webhooks {
    pub fn new(store: Arc<dyn Store>, rules: DeliveryRules) -> Self {
        Self { store, rules }
    }

    /// Registers an endpoint; `key` is random bytes for its secret.
    pub async fn create(
        &self,
        scope: Scope,
        new: NewWebhook,
        key: &[u8],
    ) -> Result<WithSecret, UseCaseError> {
        let secret = WebhookSecret::from_key(key)
            .ok_or_else(|| StoreError::Config("a webhook secret needs 24 bytes or more".into()))?;
        let now = Timestamp::now();
        let webhook = new.registered(Uuid::now_v7(), now);
        let max = self.rules.max_endpoints;
        if !self
            .store
            .insert_webhook(scope, &webhook, &secret, max)
            .await?
        {
            return Err(UseCaseError::Invalid(webhook::too_many(max)));
        }
        Ok(WithSecret { webhook, secret })
    }

    pub async fn list(&self, scope: Scope) -> Result<Vec<Webhook>, UseCaseError> {
        Ok(self.store.list_webhooks(scope).await?)
    }

    pub async fn get(&self, scope: Scope, id: Uuid) -> Result<Webhook, UseCaseError> {
        self.store
            .get_webhook(scope, id)
            .await?
            .ok_or(UseCaseError::WebhookNotFound)
    }

    pub async fn update(
        &self,
        scope: Scope,
        id: Uuid,
        patch: &WebhookPatch,
    ) -> Result<Webhook, UseCaseError> {
        let webhook = patch.apply(self.get(scope, id).await?, Timestamp::now());
        if !self.store.update_webhook(scope, &webhook).await? {
            return Err(UseCaseError::WebhookNotFound);
        }
        Ok(webhook)
    }

    pub async fn delete(&self, scope: Scope, id: Uuid) -> Result<(), UseCaseError> {
        if self.store.delete_webhook(scope, id).await? {
            Ok(())
        } else {
            Err(UseCaseError::WebhookNotFound)
        }
    }

    /// A new secret replaces the old one at once.
    pub async fn rotate(
        &self,
        scope: Scope,
        id: Uuid,
        key: &[u8],
    ) -> Result<WithSecret, UseCaseError> {
        let secret = WebhookSecret::from_key(key)
            .ok_or_else(|| StoreError::Config("a webhook secret needs 24 bytes or more".into()))?;
        if !self
            .store
            .set_webhook_secret(scope, id, &secret, Timestamp::now())
            .await?
        {
            return Err(UseCaseError::WebhookNotFound);
        }
        Ok(WithSecret {
            webhook: self.get(scope, id).await?,
            secret,
        })
    }

    /// The endpoint's newest `limit` deliveries, newest first.
    pub async fn deliveries(
        &self,
        scope: Scope,
        id: Uuid,
        limit: i64,
    ) -> Result<Vec<Delivery>, UseCaseError> {
        self.get(scope, id).await?;
        Ok(self.store.list_deliveries(scope, id, limit).await?)
    }

    /// Queues a delivery again now, with a new retry period.
    pub async fn retry(
        &self,
        scope: Scope,
        id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Delivery, UseCaseError> {
        self.store
            .retry_delivery(scope, id, delivery_id, Timestamp::now())
            .await?
            .ok_or(UseCaseError::DeliveryNotFound)
    }

    /// Turns up to `limit` events per endpoint into deliveries, across
    /// tenants; returns how many events it went past.
    pub async fn enqueue(&self, limit: u32) -> Result<u64, StoreError> {
        self.store.enqueue_deliveries(limit).await
    }

    /// Claims up to `limit` due deliveries for an attempt now.
    pub async fn claim(&self, limit: u32) -> Result<Vec<DueDelivery>, StoreError> {
        let now = Timestamp::now();
        let lease = webhook::plus(now, self.rules.timeout * 2 + LEASE_MARGIN).unwrap_or(now);
        self.store.claim_deliveries(now, lease, limit).await
    }

    /// What an attempt that ended with `status` (or with no answer:
    /// `error`) makes of its delivery and endpoint; `jitter` in `0..1`.
    pub fn judge(
        &self,
        due: &DueDelivery,
        status: Option<u16>,
        error: Option<String>,
        latency: Duration,
        jitter: f64,
    ) -> AttemptReport {
        let now = Timestamp::now();
        let (outcome, endpoint) = match Answer::of(status) {
            Answer::Delivered => (Outcome::Delivered, EndpointChange::Healthy),
            Answer::Gone => (
                Outcome::GiveUp,
                EndpointChange::Disable("the receiver answered 410 Gone".into()),
            ),
            Answer::Failed => {
                let r = &self.rules;
                let delay =
                    webhook::retry_delay(due.attempts, r.backoff_base, r.backoff_max, jitter);
                let outcome = webhook::next_attempt(due.retrying_since, now, r.retry_for, delay)
                    .map_or(Outcome::GiveUp, Outcome::RetryAt);
                let failing_since = due.failing_since.unwrap_or(now);
                let endpoint = if webhook::failing_too_long(failing_since, now, r.disable_after) {
                    EndpointChange::Disable(format!(
                        "every delivery failed for {} (since {})",
                        humanize(r.disable_after),
                        failing_since.to_rfc3339()
                    ))
                } else {
                    EndpointChange::Failing
                };
                (outcome, endpoint)
            }
        };
        AttemptReport {
            tenant_id: due.tenant_id,
            webhook_id: due.webhook_id,
            delivery_id: due.id,
            at: now,
            status_code: status.map(i64::from),
            latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
            error,
            outcome,
            endpoint,
        }
    }

    pub async fn record(&self, report: &AttemptReport) -> Result<(), StoreError> {
        self.store.record_attempt(report).await
    }

    /// Deletes up to `limit` finished deliveries created before `before`.
    pub async fn purge(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        self.store.purge_deliveries(before, limit).await
    }
}

/// `24h` for whole hours, else as `Debug` writes it (`600ms`, `90s`): for
/// the reason an endpoint shows.
fn humanize(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    if hours > 0 && Duration::from_secs(hours * 3600) == d {
        format!("{hours}h")
    } else {
        format!("{d:?}")
    }
}
