-- Webhooks: the endpoints tenants register, and one delivery row per
-- event and endpoint. The events table stays the queue: each endpoint has
-- a cursor over its tenant's events (the id of the newest one turned into
-- deliveries), moved on in the transaction that adds the deliveries.

CREATE TABLE webhook_endpoints (
    tenant_id       BLOB    NOT NULL,
    id              BLOB    NOT NULL,
    url             TEXT    NOT NULL,
    event_types     TEXT    NOT NULL,
    description     TEXT,
    secret          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    disabled_at     INTEGER,
    disabled_reason TEXT,
    failing_since   INTEGER,
    cursor_xid      INTEGER NOT NULL,
    cursor_seq      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
    tenant_id        BLOB    NOT NULL,
    webhook_id       BLOB    NOT NULL,
    id               BLOB    NOT NULL,
    event_xid        INTEGER NOT NULL,
    event_seq        INTEGER NOT NULL,
    event_type       TEXT    NOT NULL,
    workflow_id      BLOB    NOT NULL,
    payload          TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    retrying_since   INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    last_attempt_at  INTEGER,
    last_status_code INTEGER,
    last_latency_ms  INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, webhook_id, event_xid, event_seq),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhook_endpoints (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries
    (tenant_id, webhook_id, workflow_id, event_xid, event_seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries
    (tenant_id, webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at)
    WHERE status <> 'pending';
