-- HydraCore schema for the PostgreSQL backend.
--
-- Distribution: every key and index on tenant data includes tenant_id, so
-- instances, workflows and workflow_history can be distributed by tenant_id
-- (Citus) as they stand. credentials is the one reference (non-distributed)
-- table: a key is looked up by its hash before its tenant is known, so its
-- hash must be unique across all tenants.
--
-- Isolation: requests run as the NOLOGIN role hydracore_app (SET LOCAL ROLE
-- inside each transaction) and see only the rows of the tenant named by the
-- transaction-local setting hydracore.tenant_id. The migrating login keeps
-- full access for the administrative commands.

-- Roles are cluster-wide and several databases may migrate at once: a
-- concurrent creation surfaces as unique_violation rather than
-- duplicate_object, so both mean "already there". Looking first lets a
-- login without CREATEROLE migrate once an administrator made the role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hydracore_app') THEN
        CREATE ROLE hydracore_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The login must be able to SET ROLE hydracore_app. A superuser already can
-- (pg_has_role is true for it). When the grant is not ours to give, connect
-- reports that with the statement an administrator has to run.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'hydracore_app', 'MEMBER') THEN
        GRANT hydracore_app TO CURRENT_USER;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'could not grant hydracore_app to %', current_user;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO hydracore_app', current_schema());
END
$$;

CREATE TABLE instances (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    name        text,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- The administrative lookup by id alone (get_instance); tenant_id rides
-- along so the index stays distributable.
CREATE INDEX instances_by_id ON instances (id, tenant_id);

-- Proxy keys (one instance) and tenant API keys (one tenant). Only the
-- SHA-256 of a key is kept; key_prefix lets people tell keys apart.
-- Reference table (see the top of this file): no foreign key to instances,
-- since Citus refuses one from a reference table to a distributed table.
-- Creating a credential checks (and share-locks) its instance instead.
CREATE TABLE credentials (
    id          uuid PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('proxy', 'api')),
    tenant_id   uuid NOT NULL,
    instance_id uuid,
    scopes      text[] NOT NULL DEFAULT '{}',
    key_hash    bytea NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK ((kind = 'proxy') = (instance_id IS NOT NULL))
);
CREATE INDEX credentials_by_tenant ON credentials (tenant_id, created_at, id);

CREATE TABLE workflows (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL,
    instance_id      uuid NOT NULL,
    customer_id      uuid NOT NULL,
    workflow_type    text NOT NULL,
    status           text NOT NULL,
    stage            text,
    title            text,
    reference        text,
    assigned_to      text,
    approver_id      uuid,
    escalation_level bigint NOT NULL DEFAULT 0,
    workflow_state   jsonb NOT NULL DEFAULT '{}',
    suspended_step   text,
    suspend_payload  jsonb,
    suspended_at     timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_action_at   timestamptz,
    next_action_at   timestamptz,
    expires_at       timestamptz,
    completed_at     timestamptz,
    version          bigint NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES instances (tenant_id, id)
);
-- Lists are newest first; each index serves one family of filters.
CREATE INDEX workflows_by_instance ON workflows (tenant_id, instance_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_instance_status ON workflows (tenant_id, instance_id, status, created_at DESC, id DESC);
CREATE INDEX workflows_by_tenant ON workflows (tenant_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_tenant_status ON workflows (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX workflows_suspended ON workflows (tenant_id, suspended_at NULLS FIRST, id) WHERE status = 'suspended';

-- The audit trail: one row per entry, appended, never rewritten.
CREATE TABLE workflow_history (
    tenant_id     uuid NOT NULL,
    workflow_id   uuid NOT NULL,
    seq           bigint NOT NULL,
    at            timestamptz NOT NULL,
    action        text NOT NULL,
    action_detail jsonb,
    actor         text,
    from_status   text,
    to_status     text,
    from_stage    text,
    to_stage      text,
    -- The entry as the API renders it, written once: records are answered
    -- with their whole history, which is then spliced in, never rebuilt.
    entry         text NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, seq),
    FOREIGN KEY (tenant_id, workflow_id) REFERENCES workflows (tenant_id, id)
);

CREATE FUNCTION workflow_history_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'workflow_history is append-only';
END
$$;

CREATE TRIGGER workflow_history_is_append_only
BEFORE UPDATE OR DELETE ON workflow_history
FOR EACH ROW EXECUTE FUNCTION workflow_history_is_append_only();

CREATE TRIGGER workflow_history_is_append_only_truncate
BEFORE TRUNCATE ON workflow_history
FOR EACH STATEMENT EXECUTE FUNCTION workflow_history_is_append_only();

-- What a request needs, and nothing else: no DELETE anywhere, no UPDATE of
-- history, read-only instances and credentials.
GRANT SELECT, INSERT, UPDATE ON workflows TO hydracore_app;
GRANT SELECT, INSERT ON workflow_history TO hydracore_app;
GRANT SELECT ON instances TO hydracore_app;
GRANT SELECT ON credentials TO hydracore_app;

-- Row-level security. FORCE makes the policies bind the table owner too,
-- hence the owner's explicit all-rows policy for the administrative
-- commands, which run as the migrating login and span tenants.
--
-- The tenant setting is read with NULLIF: once a connection has set it
-- transaction-locally, later transactions see '' rather than NULL, and
-- ''::uuid would fail instead of matching nothing.
ALTER TABLE instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE instances FORCE ROW LEVEL SECURITY;
CREATE POLICY instances_tenant ON instances TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY instances_admin ON instances TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflows FORCE ROW LEVEL SECURITY;
CREATE POLICY workflows_tenant ON workflows TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY workflows_admin ON workflows TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE workflow_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_history FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_history_tenant ON workflow_history TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY workflow_history_admin ON workflow_history TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY credentials_tenant ON credentials TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
-- Authentication looks a key up before its tenant is known: presenting the
-- key (its hash, set transaction-locally) is what entitles a request to its row.
CREATE POLICY credentials_by_key ON credentials FOR SELECT TO hydracore_app
    USING (key_hash = decode(NULLIF(current_setting('hydracore.key_hash', true), ''), 'hex'));
CREATE POLICY credentials_admin ON credentials TO CURRENT_USER
    USING (true) WITH CHECK (true);
