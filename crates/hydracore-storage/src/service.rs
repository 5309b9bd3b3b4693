//! The use cases: what each request and the sweeper do with the workflow
//! records, from top to bottom, above whichever [`Store`] holds them.
//!
//! This is the one place that decides: which domain rule a change runs, how
//! an idempotent create claims, uses and frees its key, what expiry does.
//! The stores only offer primitives. Refusals stay values of
//! [`UseCaseError`], mapped to HTTP statuses in one place (the HTTP
//! layer's `ApiError`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use hydracore_domain::decision::{Decision, InboxCursor, InboxQuery};
use hydracore_domain::event::{Event, EventId, EventQuery};
use hydracore_domain::idempotency::{ActionAnswer, Claim, IdempotencyKey};
use hydracore_domain::precondition::IfMatch;
use hydracore_domain::record::SuspendedWorkflow;
use hydracore_domain::request::{CreateWorkflow, HistoryQuery, ListQuery};
use hydracore_domain::transition::{self, Change, Command, TransitionError};
use hydracore_domain::{Principal, Scope, Timestamp, Workflow};
use uuid::Uuid;

use crate::{
    ChangeOutcome, Changed, HistorySlice, InboxCount, Rule, Store, StoreError, SweepJob,
    WithHistory, WorkflowPage,
};

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    /// No such workflow in the caller's scope (another tenant's or
    /// instance's workflow is not found either).
    #[error("workflow not found")]
    NotFound,
    /// The domain's rules refused the change (a conflict, or `If-Match`
    /// naming another version).
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// A create with this `Idempotency-Key` is still being made.
    #[error("a request with this Idempotency-Key is in progress")]
    IdempotencyKeyInFlight,
    /// This `Idempotency-Key` was used with another request body.
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused(IdempotencyKey),
    /// Events after the asked point were purged (older than the
    /// retention): reading on would leave a gap.
    #[error("events after this point are past their retention and gone")]
    EventsGone,
    /// A request the rules refuse as a whole (a limit reached).
    #[error(transparent)]
    Invalid(#[from] hydracore_domain::validation::ValidationErrors),
    /// No such webhook endpoint in the caller's tenant.
    #[error("webhook not found")]
    WebhookNotFound,
    /// No such delivery of the endpoint.
    #[error("delivery not found")]
    DeliveryNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A create's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub workflow: Workflow,
    /// The workflow an earlier request with the same `Idempotency-Key` and
    /// body made, answered again.
    pub replayed: bool,
}

/// An `Idempotency-Key` and the fingerprint of the body it came with.
#[derive(Debug, Clone)]
pub struct Idempotent {
    pub key: IdempotencyKey,
    pub fingerprint: Vec<u8>,
}

impl Idempotent {
    /// `key` on `action` (`suspend`, ...) of workflow `id` with `body`: the
    /// same key on another action or workflow is another request (a 422).
    pub fn action(key: IdempotencyKey, action: &str, id: Uuid, body: &serde_json::Value) -> Self {
        let request = serde_json::json!({"action": action, "workflow_id": id, "body": body});
        Self {
            key,
            fingerprint: hydracore_domain::idempotency::fingerprint(&request),
        }
    }
}

/// The workflow use cases over one store. Cheap to clone; clones share
/// the news of this replica's changes, which waiting reads listen to.
#[derive(Clone)]
pub struct Workflows {
    store: Arc<dyn Store>,
    changes: broadcast::Sender<Changed>,
    event_retention: Duration,
}

/// How long events are kept by default.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Changes a slow waiter may fall behind by before it reads the record
/// again anyway.
const CHANGES_BUFFERED: usize = 1024;

/// How often a waiting read looks at the record itself, for changes that
/// other replicas made.
const WAIT_POLL: Duration = Duration::from_secs(1);

impl Workflows {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            changes: broadcast::channel(CHANGES_BUFFERED).0,
            event_retention: DEFAULT_EVENT_RETENTION,
        }
    }

    /// Events are purged once older than `retention`.
    pub fn with_event_retention(self, retention: Duration) -> Self {
        Self {
            event_retention: retention,
            ..self
        }
    }

    /// A page of the scope's events after `query.after` (see
    /// `Store::list_events`); [`UseCaseError::EventsGone`] when events
    /// after that point were purged.
    pub async fn events(
        &self,
        scope: Scope,
        query: &EventQuery,
    ) -> Result<Vec<Event>, UseCaseError> {
        self.store
            .list_events(scope, query)
            .await?
            .ok_or(UseCaseError::EventsGone)
    }

    /// Where the tenant's events stand now: a stream that starts after
    /// this gets what happens from now on, without the past.
    pub async fn events_now(&self, tenant_id: Uuid) -> Result<Option<EventId>, UseCaseError> {
        Ok(self.store.events_now(tenant_id).await?)
    }

    /// The news of this replica's changes, from now on.
    pub fn news(&self) -> News {
        News(self.changes.subscribe())
    }

    /// Purges up to `limit` events past their retention; returns how many.
    pub async fn purge_events(&self, limit: u32) -> Result<u64, StoreError> {
        let cutoff = Timestamp::now()
            .unix_micros()
            .saturating_sub(i64::try_from(self.event_retention.as_micros()).unwrap_or(i64::MAX));
        let Some(before) = Timestamp::from_unix_micros(cutoff) else {
            return Ok(0);
        };
        self.store.purge_events(before, limit).await
    }

    fn announce(&self, w: &Workflow) {
        let change = Changed {
            tenant_id: w.tenant_id,
            id: w.id,
            version: w.version,
        };
        // Nobody waiting is no error.
        let _ = self.changes.send(change);
        self.store.tell_replicas(change);
    }

    /// Passes what other replicas change to this one's waiting reads and
    /// streams, as if it had written it, until `stop` says so.
    pub async fn hear_other_replicas(&self, stop: watch::Receiver<bool>) {
        self.store.hear_replicas(self.changes.clone(), stop).await;
    }

    /// Waits up to `wait` until the workflow's version is not one the
    /// caller has (`has`). Changes made on this replica end the wait at
    /// once, others' within [`WAIT_POLL`]; polls read the record without
    /// its history.
    pub async fn wait_for_change(
        &self,
        scope: Scope,
        id: Uuid,
        has: impl Fn(i64) -> bool,
        wait: Duration,
        history: WithHistory,
    ) -> Result<Waited, UseCaseError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut news = self.changes.subscribe();
        loop {
            let version = self.get(scope, id, WithHistory::No).await?.version;
            if !has(version) {
                return Ok(Waited::Changed(Box::new(
                    self.get(scope, id, history).await?,
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Waited::Unchanged(version));
            }
            let poll =
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + WAIT_POLL));
            tokio::pin!(poll);
            loop {
                tokio::select! {
                    () = &mut poll => break,
                    heard = news.recv() => match heard {
                        Ok(c) if c.tenant_id == scope.tenant_id && c.id == id && !has(c.version) => break,
                        Ok(_) => continue,
                        // Fell behind: the record itself says.
                        Err(_) => break,
                    },
                }
            }
        }
    }

    /// Creates a workflow of `scope`'s instance. With a key, a retry with
    /// the same key and body answers the first workflow again; the key is
    /// claimed before the create and freed if the create fails.
    pub async fn create(
        &self,
        scope: Scope,
        instance_id: Uuid,
        request: CreateWorkflow,
        idempotent: Option<Idempotent>,
        by: &Principal,
        history: WithHistory,
    ) -> Result<Created, UseCaseError> {
        if let Some(Idempotent { key, fingerprint }) = &idempotent {
            match self
                .store
                .claim_idempotency_key(scope, instance_id, key, fingerprint)
                .await?
            {
                Claim::Fresh => {}
                Claim::Replay { workflow_id, .. } => {
                    let workflow = self.get(scope, workflow_id, history).await?;
                    return Ok(Created {
                        workflow,
                        replayed: true,
                    });
                }
                Claim::InFlight => return Err(UseCaseError::IdempotencyKeyInFlight),
                Claim::Mismatch => return Err(UseCaseError::IdempotencyKeyReused(key.clone())),
            }
        }
        let workflow = transition::create(
            Uuid::now_v7(),
            scope.tenant_id,
            instance_id,
            request,
            by,
            Timestamp::now(),
        );
        let key = idempotent.map(|i| i.key);
        if let Err(e) = self
            .store
            .insert_workflow(scope, &workflow, key.as_ref())
            .await
        {
            if let Some(key) = &key {
                // Best effort: a key left claimed frees itself once stale.
                let _ = self
                    .store
                    .release_idempotency_key(scope.tenant_id, instance_id, key)
                    .await;
            }
            return Err(e.into());
        }
        self.announce(&workflow);
        Ok(Created {
            workflow,
            replayed: false,
        })
    }

    pub async fn get(
        &self,
        scope: Scope,
        id: Uuid,
        history: WithHistory,
    ) -> Result<Workflow, UseCaseError> {
        let mut workflow = self
            .store
            .get_workflow(scope, id, history)
            .await?
            .ok_or(UseCaseError::NotFound)?;
        if history == WithHistory::Yes {
            note_cut_history(&mut workflow);
        }
        Ok(workflow)
    }

    pub async fn list(
        &self,
        scope: Scope,
        query: &ListQuery,
    ) -> Result<WorkflowPage, UseCaseError> {
        let mut page = self.store.list_workflows(scope, query).await?;
        page.workflows.iter_mut().for_each(note_cut_history);
        Ok(page)
    }

    /// A page of one workflow's history, oldest first.
    pub async fn history(
        &self,
        scope: Scope,
        id: Uuid,
        page: HistoryQuery,
    ) -> Result<HistorySlice, UseCaseError> {
        self.store
            .history_page(scope, id, page)
            .await?
            .ok_or(UseCaseError::NotFound)
    }

    /// A page of the scope's decisions (its suspended workflows), due
    /// first, and where the next page starts.
    pub async fn inbox(&self, scope: Scope, query: &InboxQuery) -> Result<Inbox, UseCaseError> {
        let now = Timestamp::now();
        let mut rows = self
            .store
            .list_inbox(scope, query, now, query.limit + 1)
            .await?;
        let more = crate::keep_first(&mut rows, query.limit);
        let next_cursor = more.then(|| rows.last().map(InboxCursor::of)).flatten();
        Ok(Inbox {
            decisions: rows.into_iter().map(|w| Decision::of(w, now)).collect(),
            next_cursor,
        })
    }

    /// How many decisions the scope has, by assignee and overdue.
    pub async fn inbox_counts(&self, scope: Scope) -> Result<Vec<InboxCount>, UseCaseError> {
        Ok(self.store.count_inbox(scope, Timestamp::now()).await?)
    }

    /// The scope's newest `max` suspensions, newest first, and whether
    /// there are more.
    pub async fn list_suspended(
        &self,
        scope: Scope,
        max: u32,
    ) -> Result<(Vec<SuspendedWorkflow>, bool), UseCaseError> {
        let mut suspended = self
            .store
            .list_suspended(scope, max.saturating_add(1))
            .await?;
        let more = crate::keep_first(&mut suspended, i64::from(max));
        Ok((suspended, more))
    }

    /// Advances, suspends, resumes or aborts a workflow on behalf of `by`,
    /// if it is at a version `if_match` accepts.
    pub async fn change(
        &self,
        scope: Scope,
        id: Uuid,
        command: Command,
        by: &Principal,
        if_match: Option<IfMatch>,
        history: WithHistory,
    ) -> Result<Change, UseCaseError> {
        let by = by.clone();
        let rule: Rule = Arc::new(move |current| {
            transition::apply(current, &command, &by, if_match.as_ref(), Timestamp::now())
        });
        match self.store.change_workflow(scope, id, rule, history).await? {
            ChangeOutcome::Changed(mut change) => {
                self.announce(&change.workflow);
                if history == WithHistory::Yes {
                    note_cut_history(&mut change.workflow);
                }
                Ok(*change)
            }
            ChangeOutcome::Refused(refusal) => Err(refusal.into()),
            ChangeOutcome::NotFound => Err(UseCaseError::NotFound),
        }
    }

    /// Suspends, resumes or aborts a workflow on behalf of `by`, as
    /// [`Workflows::change`], answering `{id, message, status}`. With a key,
    /// a retry with the same key and body (a double-clicked approval) gets
    /// the first answer again instead of a 409: the key is claimed before
    /// the change, keeps its answer after, and is freed if the change
    /// fails. The dashboard's keys are the tenant's, the agent's its
    /// instance's.
    pub async fn act(
        &self,
        scope: Scope,
        id: Uuid,
        command: Command,
        by: &Principal,
        if_match: Option<IfMatch>,
        idempotent: Option<Idempotent>,
    ) -> Result<Acted, UseCaseError> {
        // The dashboard's keys are the tenant's: a nil instance.
        let keys = scope.instance_id.unwrap_or_default();
        if let Some(Idempotent { key, fingerprint }) = &idempotent {
            match self
                .store
                .claim_idempotency_key(scope, keys, key, fingerprint)
                .await?
            {
                Claim::Fresh => {}
                Claim::Replay {
                    answer: Some(answer),
                    ..
                } => {
                    let answer = serde_json::from_value(answer).map_err(|e| {
                        StoreError::Corrupt(format!("the answer kept with an Idempotency-Key: {e}"))
                    })?;
                    return Ok(Acted {
                        answer,
                        replayed: true,
                    });
                }
                Claim::Replay { answer: None, .. } | Claim::Mismatch => {
                    return Err(UseCaseError::IdempotencyKeyReused(key.clone()))
                }
                Claim::InFlight => return Err(UseCaseError::IdempotencyKeyInFlight),
            }
        }
        let changed = self
            .change(scope, id, command, by, if_match, WithHistory::No)
            .await;
        let key = idempotent.map(|i| i.key);
        let change = match (changed, &key) {
            (Ok(change), _) => change,
            (Err(e), Some(key)) => {
                // Best effort: a key left claimed frees itself once stale.
                let _ = self
                    .store
                    .release_idempotency_key(scope.tenant_id, keys, key)
                    .await;
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        };
        let answer = ActionAnswer {
            id,
            message: change.message,
            status: change.workflow.status,
            version: change.workflow.version,
        };
        if let Some(key) = &key {
            let kept = serde_json::to_value(&answer).unwrap_or_default();
            // The change has landed: a key that failed to keep its answer
            // stays claimed until stale, and a retry then meets the 409 of
            // a decision already taken, never a second change.
            if let Err(e) = self
                .store
                .complete_idempotency_key(scope, keys, key, id, &kept)
                .await
            {
                tracing::warn!(error = %e, "an Idempotency-Key did not keep its answer");
            }
        }
        Ok(Acted {
            answer,
            replayed: false,
        })
    }

    /// Runs the sweeper's `job` on up to `limit` workflows whose time has
    /// come (expires them, or escalates their suspension); returns how
    /// many. Safe on several replicas at once: a workflow another sweeper
    /// handled (or anyone changed) meanwhile is checked again by the rule
    /// and left alone when no longer due, so each due time acts once.
    pub async fn sweep_due(&self, job: SweepJob, limit: u32) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        let due = self.store.due(job, now, limit).await?;
        let rule: Rule = match job {
            SweepJob::Expire => Arc::new(move |current| transition::expire(current, now)),
            SweepJob::Escalate => Arc::new(move |current| transition::escalate(current, now)),
        };
        let mut changed = 0;
        for (scope, id) in due {
            match self
                .store
                .change_workflow(scope, id, Arc::clone(&rule), WithHistory::No)
                .await?
            {
                ChangeOutcome::Changed(change) => {
                    self.announce(&change.workflow);
                    changed += 1;
                }
                ChangeOutcome::Refused(_) | ChangeOutcome::NotFound => {}
            }
        }
        Ok(changed)
    }

    /// Forgets up to `limit` idempotency keys past their 24 hours.
    pub async fn purge_idempotency_keys(&self, limit: u32) -> Result<u64, StoreError> {
        self.store.purge_idempotency_keys(limit).await
    }
}

/// What a suspend, resume or abort answered, and whether it is the first
/// answer given again.
#[derive(Debug, Clone, PartialEq)]
pub struct Acted {
    pub answer: ActionAnswer,
    pub replayed: bool,
}

/// The changes this replica writes, as they are written.
pub struct News(broadcast::Receiver<Changed>);

impl News {
    /// Waits until a change of tenant `tenant_id` was written since the
    /// last wait (or this one's start), or `at_most` passes; says which.
    /// Changes of replicas that cannot tell of them are found by reading
    /// again after `at_most`.
    pub async fn of_tenant(&mut self, tenant_id: Uuid, at_most: Duration) -> bool {
        let wait = async {
            loop {
                match self.0.recv().await {
                    Ok(c) if c.tenant_id != tenant_id => continue,
                    // A change of the tenant, or fell behind: read again.
                    _ => return,
                }
            }
        };
        let heard = tokio::time::timeout(at_most, wait).await.is_ok();
        // What else came meanwhile is in the next read too.
        while self.0.try_recv().is_ok() {}
        heard
    }

    /// Waits until a change of any tenant was written since the last wait
    /// (or this one's start), or `at_most` passes.
    pub async fn of_any_tenant(&mut self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.0.recv()).await;
        while self.0.try_recv().is_ok() {}
    }
}

/// How a wait for a change ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited {
    /// The workflow as it is now, at a version the caller did not have.
    Changed(Box<Workflow>),
    /// No change came: the version it stayed at.
    Unchanged(i64),
}

/// A page of the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbox {
    pub decisions: Vec<Decision>,
    /// Where the next page starts; `None` on the last.
    pub next_cursor: Option<InboxCursor>,
}

/// Says how long a history is when the record carries only its newest
/// entries. Every change appends one entry and the newest `seq` is the
/// version, so the version is the number of entries.
fn note_cut_history(workflow: &mut Workflow) {
    let embedded = i64::try_from(workflow.history.len()).unwrap_or(i64::MAX);
    workflow.history_total = (embedded < workflow.version).then_some(workflow.version);
}
