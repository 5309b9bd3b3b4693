-- Who was authenticated behind each history entry, indexes for the list
-- filters that had none, and decisions: what a suspension expects as its
-- answer and how it escalates, the inbox and the sweeper's escalation list.

-- The authenticated party (instance:<id>, api_key:<id>, user:<sub>,
-- system), which the request cannot set; NULL on entries written before.
ALTER TABLE workflow_history ADD COLUMN principal TEXT;

-- The filtered lists, each in the lists' order, so that a page (and a
-- cursor page) reads its own rows and the total counts the matches only.
CREATE INDEX workflows_by_customer ON workflows (tenant_id, customer_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_type ON workflows (tenant_id, workflow_type, created_at DESC, id DESC);
CREATE INDEX workflows_by_reference ON workflows (tenant_id, reference, created_at DESC, id DESC);

-- While suspended: seconds between escalations once next_action_at (the
-- decision's due time) has passed, the level they stop at, and the JSON
-- Schema the resume's data must satisfy. NULL otherwise.
ALTER TABLE workflows ADD COLUMN escalate_every INTEGER;
ALTER TABLE workflows ADD COLUMN max_escalation_level INTEGER;
ALTER TABLE workflows ADD COLUMN resume_schema TEXT;

-- A suspend, resume or abort made with an Idempotency-Key keeps its answer
-- here to answer a retry with (a create's retry reads the workflow).
ALTER TABLE idempotency_keys ADD COLUMN answer TEXT;

-- The outbox: one event per create and change, written in its transaction.
-- SQLite has one writer, so the id orders events as they committed; never
-- reused (AUTOINCREMENT), so a purge cannot hand an old id out again.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BLOB    NOT NULL,
    type        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    instance_id BLOB    NOT NULL,
    workflow_id BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    actor       TEXT,
    data        TEXT    NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, id);
CREATE INDEX events_by_age ON events (occurred_at);

-- How far the sweeper has purged events: a reader asking for events after
-- an older point is told that some are gone (410).
CREATE TABLE events_purged (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    id   INTEGER NOT NULL
);

-- The decisions inbox: a tenant's suspensions, due first (none last: the
-- largest integer), then oldest suspension; the second serves the assignee
-- filter and the summary's counts. Those read its last two columns, the
-- raw due time and the status, so that it covers them: SQLite reads no
-- table row (it wants the partial index's own condition column too).
CREATE INDEX workflows_inbox ON workflows
    (tenant_id, COALESCE(next_action_at, 9223372036854775807), suspended_at, id)
    WHERE status = 'suspended';
CREATE INDEX workflows_inbox_by_assignee ON workflows
    (tenant_id, assigned_to, COALESCE(next_action_at, 9223372036854775807), suspended_at, id,
     next_action_at, status)
    WHERE status = 'suspended';
-- The sweeper's escalation list, across tenants, soonest due first.
CREATE INDEX workflows_escalating ON workflows (next_action_at, tenant_id)
    WHERE status = 'suspended' AND escalate_every IS NOT NULL
      AND escalation_level < max_escalation_level;
