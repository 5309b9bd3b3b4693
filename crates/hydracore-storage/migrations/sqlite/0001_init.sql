-- HydraCore schema for the embedded SQLite backend.
-- UUIDs are 16-byte BLOBs, timestamps are Unix microseconds (UTC), JSON is TEXT.

CREATE TABLE instances (
    id          BLOB PRIMARY KEY NOT NULL,
    tenant_id   BLOB NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX instances_by_tenant ON instances (tenant_id, id);

-- Proxy keys (one instance) and tenant API keys (one tenant). Only the
-- SHA-256 of a key is kept; `key_prefix` lets people tell keys apart.
CREATE TABLE credentials (
    id          BLOB PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('proxy', 'api')),
    tenant_id   BLOB NOT NULL,
    instance_id BLOB REFERENCES instances (id),
    scopes      TEXT NOT NULL DEFAULT '',
    key_hash    BLOB NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    CHECK ((kind = 'proxy') = (instance_id IS NOT NULL))
);

CREATE TABLE workflows (
    id               BLOB PRIMARY KEY NOT NULL,
    tenant_id        BLOB NOT NULL,
    instance_id      BLOB NOT NULL REFERENCES instances (id),
    customer_id      BLOB NOT NULL,
    workflow_type    TEXT NOT NULL,
    status           TEXT NOT NULL,
    stage            TEXT,
    title            TEXT,
    reference        TEXT,
    assigned_to      TEXT,
    approver_id      BLOB,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    workflow_state   TEXT NOT NULL DEFAULT '{}',
    suspended_step   TEXT,
    suspend_payload  TEXT,
    suspended_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_action_at   INTEGER,
    next_action_at   INTEGER,
    expires_at       INTEGER,
    completed_at     INTEGER,
    version          INTEGER NOT NULL
);
-- Lists are newest first; each index serves one family of filters.
CREATE INDEX workflows_by_instance ON workflows (tenant_id, instance_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_instance_status ON workflows (tenant_id, instance_id, status, created_at DESC, id DESC);
CREATE INDEX workflows_by_tenant ON workflows (tenant_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_tenant_status ON workflows (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX workflows_suspended ON workflows (tenant_id, suspended_at) WHERE status = 'suspended';

-- The audit trail: one row per entry, appended, never rewritten.
CREATE TABLE workflow_history (
    tenant_id     BLOB NOT NULL,
    workflow_id   BLOB NOT NULL REFERENCES workflows (id),
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    action        TEXT NOT NULL,
    action_detail TEXT,
    actor         TEXT,
    from_status   TEXT,
    to_status     TEXT,
    from_stage    TEXT,
    to_stage      TEXT,
    -- The entry as the API renders it, as PostgreSQL keeps it (reads here
    -- take the columns above): an export or a move to PostgreSQL copies it.
    entry         TEXT NOT NULL,
    PRIMARY KEY (workflow_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER workflow_history_is_append_only_update
BEFORE UPDATE ON workflow_history
BEGIN
    SELECT RAISE(ABORT, 'workflow_history is append-only');
END;

CREATE TRIGGER workflow_history_is_append_only_delete
BEFORE DELETE ON workflow_history
BEGIN
    SELECT RAISE(ABORT, 'workflow_history is append-only');
END;

-- Idempotent create: one row per (instance, Idempotency-Key), kept 24 hours.
-- `workflow_id` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    tenant_id   BLOB NOT NULL,
    instance_id BLOB NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    workflow_id BLOB,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- The sweeper's work list: live workflows with a deadline, soonest first.
CREATE INDEX workflows_expiring ON workflows (expires_at, tenant_id)
    WHERE expires_at IS NOT NULL
      AND status NOT IN ('completed', 'expired', 'cancelled', 'failed');

-- Exact list totals without counting rows: how many workflows each
-- instance has in each status, kept by triggers inside the transaction that
-- changes them, so a read transaction sees counts and rows agree. A list
-- filtered only by scope, instance and status (the dashboard's and the
-- agents' usual lists) sums at most a few rows here instead of counting
-- every match.
CREATE TABLE workflow_counts (
    tenant_id   BLOB    NOT NULL,
    instance_id BLOB    NOT NULL,
    status      TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, status)
) WITHOUT ROWID;

CREATE TRIGGER workflow_counts_insert AFTER INSERT ON workflows
BEGIN
    INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
    VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 1)
    ON CONFLICT (tenant_id, instance_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER workflow_counts_status AFTER UPDATE OF status ON workflows
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE workflow_counts SET n = n - 1
    WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id AND status = OLD.status;
    INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
    VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 1)
    ON CONFLICT (tenant_id, instance_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER workflow_counts_delete AFTER DELETE ON workflows
BEGIN
    UPDATE workflow_counts SET n = n - 1
    WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id AND status = OLD.status;
END;
