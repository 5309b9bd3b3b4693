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
