-- Idempotent create: one row per (instance, Idempotency-Key), kept 24 hours.
-- `workflow_id` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    tenant_id   uuid        NOT NULL,
    instance_id uuid        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    workflow_id uuid,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at, tenant_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO hydracore_app;

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_tenant ON idempotency_keys TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY idempotency_keys_admin ON idempotency_keys TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- The sweeper's work list: live workflows with a deadline, soonest first.
-- The sweeper is a system job: it runs as the migrating login, across tenants.
CREATE INDEX workflows_expiring ON workflows (expires_at, tenant_id)
    WHERE expires_at IS NOT NULL
      AND status NOT IN ('completed', 'expired', 'cancelled', 'failed');
