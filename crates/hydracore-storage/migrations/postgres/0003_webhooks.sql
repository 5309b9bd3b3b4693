-- Webhooks: the endpoints tenants register, and one delivery row per
-- event and endpoint. The events table stays the queue: each endpoint has
-- a cursor over its tenant's events, and the delivery worker turns the
-- events past it into delivery rows and moves it on in one transaction,
-- so that a crash at any point loses no event and delivers none twice
-- into the table (the unique key below).

CREATE TABLE webhook_endpoints (
    tenant_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    url             text        NOT NULL,
    -- Comma-separated event types.
    event_types     text        NOT NULL,
    description     text,
    secret          text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    disabled_at     timestamptz,
    disabled_reason text,
    failing_since   timestamptz,
    -- The newest event (xid, seq) turned into deliveries: events of
    -- transactions from the oldest one running when the endpoint was
    -- created on, and created no earlier than it.
    cursor_xid      bigint      NOT NULL,
    cursor_seq      bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO hydracore_app;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_endpoints_tenant ON webhook_endpoints TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY webhook_endpoints_admin ON webhook_endpoints TO CURRENT_USER
    USING (true) WITH CHECK (true);

CREATE TABLE webhook_deliveries (
    tenant_id        uuid        NOT NULL,
    webhook_id       uuid        NOT NULL,
    id               uuid        NOT NULL,
    -- The event's id: its two numbers.
    event_xid        bigint      NOT NULL,
    event_seq        bigint      NOT NULL,
    event_type       text        NOT NULL,
    workflow_id      uuid        NOT NULL,
    -- The body sent, kept so that a retry sends the same bytes after the
    -- event itself is purged.
    payload          text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    -- Retries stop this long after here (the creation, or a manual retry).
    retrying_since   timestamptz NOT NULL,
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_status_code bigint,
    last_latency_ms  bigint,
    last_error       text,
    delivered_at     timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, webhook_id, event_xid, event_seq),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhook_endpoints (tenant_id, id)
        ON DELETE CASCADE
);
-- The worker's list of due deliveries, across tenants.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- Order per workflow: an earlier pending delivery holds back later ones.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries
    (tenant_id, webhook_id, workflow_id, event_xid, event_seq)
    WHERE status = 'pending';
-- An endpoint's deliveries, newest first; and the purge, oldest first.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries
    (tenant_id, webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at)
    WHERE status <> 'pending';
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO hydracore_app;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_tenant ON webhook_deliveries TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY webhook_deliveries_admin ON webhook_deliveries TO CURRENT_USER
    USING (true) WITH CHECK (true);
