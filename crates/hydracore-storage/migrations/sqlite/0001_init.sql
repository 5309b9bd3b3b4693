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
    -- The entry as the API renders it, written once: records are answered
    -- with their whole history, which is then spliced in, never rebuilt.
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
