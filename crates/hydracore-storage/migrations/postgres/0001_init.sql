-- HydraCore schema for the PostgreSQL backend.
--
-- Distribution: every key and index on tenant data includes tenant_id, so
-- instances, workflows and workflow_history can be distributed by tenant_id
-- (Citus) as they stand. credentials is the one reference (non-distributed)
-- table: a key is looked up by its hash before its tenant is known, so its
-- hash must be unique across all tenants.
--
-- Isolation: requests run as the NOLOGIN role hydracore_app (switched to
-- transaction-locally) and see only the rows of the tenant named by the
-- transaction-local setting hydracore.tenant_id. The migrating login keeps
-- full access for the administrative commands.
--
-- Agent data (workflow_state, suspend_payload, a history entry's
-- action_detail) is json, not jsonb: json keeps the text as sent, so every
-- number comes back with the digits it was written with (jsonb would round
-- what a double cannot hold and turn -0.0 into 0).

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

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

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
    workflow_state   json NOT NULL DEFAULT '{}',
    suspended_step   text,
    suspend_payload  json,
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
-- Lists are newest first; each index serves one family of filters. The
-- suspended list is oldest suspension first. workflows_expiring is the
-- sweeper's work list, live workflows with a deadline, soonest first: the
-- sweeper is a system job, run as the migrating login across tenants.
CREATE INDEX workflows_by_instance ON workflows (tenant_id, instance_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_instance_status ON workflows (tenant_id, instance_id, status, created_at DESC, id DESC);
CREATE INDEX workflows_by_tenant ON workflows (tenant_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_tenant_status ON workflows (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX workflows_expiring ON workflows (expires_at, tenant_id)
    WHERE expires_at IS NOT NULL
      AND status NOT IN ('completed', 'expired', 'cancelled', 'failed');
CREATE INDEX workflows_suspended ON workflows (tenant_id, suspended_at NULLS FIRST, id) WHERE status = 'suspended';

-- The audit trail: one row per entry, appended, never rewritten.
CREATE TABLE workflow_history (
    tenant_id     uuid NOT NULL,
    workflow_id   uuid NOT NULL,
    seq           bigint NOT NULL,
    at            timestamptz NOT NULL,
    action        text NOT NULL,
    action_detail json,
    actor         text,
    from_status   text,
    to_status     text,
    from_stage    text,
    to_stage      text,
    -- The entry as the API renders it, written once: the request functions
    -- return a record's entries as these renderings joined, in one column.
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

-- Idempotent create: one row per (instance, Idempotency-Key), kept 24 hours.
-- workflow_id is NULL while the first request is in flight.
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

-- Exact list totals without counting rows: how many workflows each
-- instance has in each status, kept by a trigger in the transaction that
-- changes them (so a snapshot sees counts and rows agree). A list filtered
-- only by scope, instance and status sums a few rows here instead of
-- counting every match, which over a large tenant takes seconds.
--
-- Each count row is a point of contention: writes that change the counts
-- of one (instance, status) take its row lock until they commit. A status
-- change locks its two count rows in the order of their status names,
-- whatever the change, so two opposite changes cannot deadlock; and no
-- transaction changes more than one workflow's counts (the sweeper expires
-- one workflow per transaction).
CREATE TABLE workflow_counts (
    tenant_id   uuid   NOT NULL,
    instance_id uuid   NOT NULL,
    status      text   NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, status)
);

CREATE FUNCTION workflow_counts_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
        VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 1)
        ON CONFLICT (tenant_id, instance_id, status) DO UPDATE SET n = workflow_counts.n + 1;
    ELSIF TG_OP = 'UPDATE' THEN
        -- The two rows one at a time, in the order of their status names
        -- (a single statement would lock them in whatever order its plan
        -- reads them).
        IF OLD.status < NEW.status THEN
            UPDATE workflow_counts SET n = n - 1
            WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id
              AND status = OLD.status;
        END IF;
        INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
        VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 1)
        ON CONFLICT (tenant_id, instance_id, status) DO UPDATE SET n = workflow_counts.n + 1;
        IF OLD.status > NEW.status THEN
            UPDATE workflow_counts SET n = n - 1
            WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id
              AND status = OLD.status;
        END IF;
    ELSE
        UPDATE workflow_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id
          AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflow_counts_insert AFTER INSERT ON workflows
FOR EACH ROW EXECUTE FUNCTION workflow_counts_follow();
CREATE TRIGGER workflow_counts_status AFTER UPDATE OF status ON workflows
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION workflow_counts_follow();
CREATE TRIGGER workflow_counts_delete AFTER DELETE ON workflows
FOR EACH ROW EXECUTE FUNCTION workflow_counts_follow();

-- ---------------------------------------------------------------------------
-- Privileges and row-level security
-- ---------------------------------------------------------------------------

-- What a request needs, and nothing else: no DELETE of workflows or
-- history, no UPDATE of history, read-only instances and credentials.
GRANT SELECT, INSERT, UPDATE ON workflows TO hydracore_app;
GRANT SELECT, INSERT ON workflow_history TO hydracore_app;
GRANT SELECT ON instances TO hydracore_app;
GRANT SELECT ON credentials TO hydracore_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO hydracore_app;
GRANT SELECT, INSERT, UPDATE ON workflow_counts TO hydracore_app;

-- FORCE makes the policies bind the table owner too, hence the owner's
-- explicit all-rows policy for the administrative commands, which run as
-- the migrating login and span tenants.
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

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_tenant ON idempotency_keys TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY idempotency_keys_admin ON idempotency_keys TO CURRENT_USER
    USING (true) WITH CHECK (true);

ALTER TABLE workflow_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_counts_tenant ON workflow_counts TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY workflow_counts_admin ON workflow_counts TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- ---------------------------------------------------------------------------
-- Request functions
-- ---------------------------------------------------------------------------
--
-- Each request (postgres/mod.rs) runs as hydracore_app in its tenant, and
-- first checks that the key it came with, if any, is still unrevoked: the
-- server takes a key's credential from a cache, so that check is what
-- stops a key revoked since (by any replica, or the command line) from
-- reading or writing. SQLSTATE HC401 tells the server to answer 401. The
-- check reads credentials as the login (hydracore_app sees a credential
-- only by its key).
--
-- The requests made most (a read, a change's write, a create, a list of
-- one instance in one status) are each one call of a function below, made
-- by the login outside any transaction: the role and tenant it sets are
-- local to the call's implicit transaction, so nothing outlives it on the
-- connection; the call is one round trip; and a PL/pgSQL function keeps
-- its statements' plans for the connection's life, where one message of
-- literal SQL would be parsed and planned on every call. (PL/pgSQL, not
-- SQL: a SQL function's statements are all planned before the first runs,
-- so row-level security would be applied as the login.)
--
-- Each function does the key check, role and tenant itself, as one
-- statement of its own rather than a call of hydracore_enter: a call is a
-- statement, a function start and its body, which costs a short request a
-- noticeable share of its time. So the check is written in five places;
-- a change to one is a change to all. The role and tenant are set in the
-- statement's target list, which runs only when its WHERE (the key check)
-- holds; and when it does not, the call raises, which rolls back whatever
-- set_config did. The explicit tenant conditions in the queries repeat the
-- policies on purpose, so that isolation never rests on one mechanism
-- alone. Each function's first parameter is the tenant, so that Citus can
-- route a call by it (docs/scaling.md).

-- The check, role and tenant on their own: the server sends this ahead of
-- BEGIN in the message that opens a request transaction (postgres/session.rs).
CREATE FUNCTION hydracore_enter(
    p_tenant_id     uuid,  -- NULL: no tenant (sees nothing tenant-owned)
    p_credential_id uuid   -- NULL: not by key (a JWT); else checked live
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', COALESCE(p_tenant_id::text, ''), true)
    WHERE p_credential_id IS NULL OR EXISTS (
        SELECT 1 FROM credentials AS c
        WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    );
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
END
$$;

-- A key lookup, which every request starts with unless the server holds the
-- key in its cache. The SELECT runs as hydracore_app under credentials_by_key:
-- the row shows only to who presents its key.
CREATE FUNCTION hydracore_credential_by_key(p_key_hash bytea)
RETURNS TABLE (
    id          uuid,
    kind        text,
    tenant_id   uuid,
    instance_id uuid,
    scopes      text[],
    key_prefix  text,
    created_at  timestamptz,
    revoked_at  timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.key_hash', encode(p_key_hash, 'hex'), true);
    RETURN QUERY
        SELECT c.id, c.kind, c.tenant_id, c.instance_id, c.scopes, c.key_prefix,
               c.created_at, c.revoked_at
        FROM credentials AS c
        WHERE c.key_hash = p_key_hash;
END
$$;

-- A workflow, with its history when asked: the read agents make most, and
-- the read a change starts from. Its columns are crate::rows's
-- WORKFLOW_COLUMNS, then the history, joined with commas in seq order.
--
-- With and without the history are two statements, so that each keeps its
-- cached generic plan: as one statement with CASE WHEN p_with_history, the
-- plan made for a call's own values could drop the history subquery, which
-- made it look so much cheaper than the generic plan that PostgreSQL
-- planned every call afresh once most calls were reads without history.
CREATE FUNCTION hydracore_workflow(
    p_tenant_id     uuid,
    p_instance_id   uuid,  -- NULL: any instance of the tenant
    p_credential_id uuid,  -- NULL: not by key (a JWT); else checked live
    p_id            uuid,
    p_history       integer  -- the newest this many entries; 0: none
)
RETURNS TABLE (
    id               uuid,
    tenant_id        uuid,
    instance_id      uuid,
    customer_id      uuid,
    workflow_type    text,
    status           text,
    stage            text,
    title            text,
    reference        text,
    assigned_to      text,
    approver_id      uuid,
    escalation_level bigint,
    workflow_state   json,
    suspended_step   text,
    suspend_payload  json,
    suspended_at     timestamptz,
    created_at       timestamptz,
    updated_at       timestamptz,
    last_action_at   timestamptz,
    next_action_at   timestamptz,
    expires_at       timestamptz,
    completed_at     timestamptz,
    version          bigint,
    history          text
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', COALESCE(p_tenant_id::text, ''), true)
    WHERE p_credential_id IS NULL OR EXISTS (
        SELECT 1 FROM credentials AS c
        WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    );
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
    IF p_history > 0 THEN
        RETURN QUERY
            SELECT w.id, w.tenant_id, w.instance_id, w.customer_id, w.workflow_type,
                   w.status, w.stage, w.title, w.reference, w.assigned_to, w.approver_id,
                   w.escalation_level, w.workflow_state, w.suspended_step,
                   w.suspend_payload, w.suspended_at, w.created_at, w.updated_at,
                   w.last_action_at, w.next_action_at, w.expires_at, w.completed_at,
                   w.version,
                   (SELECT string_agg(h.entry, ',' ORDER BY h.seq)
                    FROM workflow_history AS h
                    WHERE h.tenant_id = w.tenant_id AND h.workflow_id = w.id
                      AND h.seq > w.version - p_history)
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id
              AND w.id = p_id
              AND (p_instance_id IS NULL OR w.instance_id = p_instance_id);
    ELSE
        RETURN QUERY
            SELECT w.id, w.tenant_id, w.instance_id, w.customer_id, w.workflow_type,
                   w.status, w.stage, w.title, w.reference, w.assigned_to, w.approver_id,
                   w.escalation_level, w.workflow_state, w.suspended_step,
                   w.suspend_payload, w.suspended_at, w.created_at, w.updated_at,
                   w.last_action_at, w.next_action_at, w.expires_at, w.completed_at,
                   w.version, NULL::text
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id
              AND w.id = p_id
              AND (p_instance_id IS NULL OR w.instance_id = p_instance_id);
    END IF;
END
$$;

-- What a create and a change send: a workflow record and its history
-- entries, each as one composite value whose fields are named like the
-- columns they fill. Not thirty positional parameters, whose order only a
-- comment could check; and not a JSON document either, which the server
-- would parse once more to pull the fields out (workflow_state included)
-- and whose times would travel as text. A composite value travels in
-- binary, field by field; the client matches the fields by name against
-- the type when it prepares the call, and the call stays one prepared
-- statement whose inner plans are cached.
--
-- Types of their own rather than the tables' row types, so that a column
-- added to a table later does not change what replicas of an older build
-- send meanwhile. A record has no tenant_id nor instance_id: the call
-- writes it into the request's own tenant and instance, its parameters.
CREATE TYPE hydracore_workflow_record AS (
    id               uuid,
    customer_id      uuid,
    workflow_type    text,
    title            text,
    reference        text,
    created_at       timestamptz,
    status           text,
    stage            text,
    assigned_to      text,
    approver_id      uuid,
    escalation_level bigint,
    workflow_state   json,
    suspended_step   text,
    suspend_payload  json,
    suspended_at     timestamptz,
    updated_at       timestamptz,
    last_action_at   timestamptz,
    next_action_at   timestamptz,
    expires_at       timestamptz,
    completed_at     timestamptz,
    version          bigint
);

-- workflow_history's columns after its keys, in their order.
CREATE TYPE hydracore_history_entry AS (
    seq           bigint,
    at            timestamptz,
    action        text,
    action_detail json,
    actor         text,
    from_status   text,
    to_status     text,
    from_stage    text,
    to_stage      text,
    entry         text
);

-- A create: the workflow, the entries it is created with (in seq order,
-- inserted after it, so that the history's foreign key finds it) and, when
-- the request came with an Idempotency-Key, the key's claim completed.
CREATE FUNCTION hydracore_create_workflow(
    p_tenant_id       uuid,  -- the request's tenant
    p_instance_id     uuid,
    p_credential_id   uuid,  -- NULL: not by key; else checked live
    p_workflow        hydracore_workflow_record,
    p_history         hydracore_history_entry[],
    p_idempotency_key text   -- NULL: none
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', COALESCE(p_tenant_id::text, ''), true)
    WHERE p_credential_id IS NULL OR EXISTS (
        SELECT 1 FROM credentials AS c
        WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    );
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
    INSERT INTO workflows (tenant_id, instance_id, id, customer_id, workflow_type, title,
                           reference, created_at, status, stage, assigned_to, approver_id,
                           escalation_level, workflow_state, suspended_step, suspend_payload,
                           suspended_at, updated_at, last_action_at, next_action_at,
                           expires_at, completed_at, version)
    VALUES (p_tenant_id, p_instance_id, (p_workflow).*);
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                  actor, from_status, to_status, from_stage, to_stage, entry)
    SELECT p_tenant_id, p_workflow.id, e.*
    FROM unnest(p_history) AS e;
    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys SET workflow_id = p_workflow.id
        WHERE tenant_id = p_tenant_id AND instance_id = p_instance_id
          AND key = p_idempotency_key;
    END IF;
END
$$;

-- A change's write: every column a command may change, and its history
-- entry, written only if the workflow is still the record the change was
-- made from (optimistic concurrency). When another change landed first,
-- nothing is written, `changed` is false and the server starts over from
-- a fresh read.
--
-- The record is known by its version and its updated_at. A replica starts
-- a change from the record it wrote last instead of reading it
-- (postgres/last_written.rs), so this condition is all that tells that
-- record from the stored one, and the version alone can match a different
-- record: after a failover to an asynchronous standby that lost this
-- replica's last write, another replica can write the same version anew.
-- Each write sets updated_at to its own microsecond, so the two records
-- differ there. (A change made by hand in SQL must still bump version,
-- which is also what clients' ETags rely on: docs/scaling.md.)
--
-- The UPDATE's row lock, held to the end of the call's transaction, orders
-- the history entries: the one appended here follows every earlier one,
-- all of which `earlier` returns when p_with_history (a SELECT after the
-- insert sees every committed entry).
CREATE FUNCTION hydracore_change_workflow(
    p_tenant_id           uuid,
    p_instance_id         uuid,  -- NULL: any instance of the tenant
    p_credential_id       uuid,  -- NULL: not by key; else checked live
    p_expected_version    bigint,
    p_expected_updated_at timestamptz,
    p_workflow            hydracore_workflow_record,
    p_entry               hydracore_history_entry,
    p_history             integer,  -- the newest this many entries back; 0: none
    OUT changed           boolean,
    OUT earlier           text
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', COALESCE(p_tenant_id::text, ''), true)
    WHERE p_credential_id IS NULL OR EXISTS (
        SELECT 1 FROM credentials AS c
        WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    );
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
    UPDATE workflows AS w
    SET status = p_workflow.status, stage = p_workflow.stage,
        assigned_to = p_workflow.assigned_to, approver_id = p_workflow.approver_id,
        escalation_level = p_workflow.escalation_level,
        workflow_state = p_workflow.workflow_state,
        suspended_step = p_workflow.suspended_step,
        suspend_payload = p_workflow.suspend_payload,
        suspended_at = p_workflow.suspended_at, updated_at = p_workflow.updated_at,
        last_action_at = p_workflow.last_action_at,
        next_action_at = p_workflow.next_action_at,
        expires_at = p_workflow.expires_at, completed_at = p_workflow.completed_at,
        version = p_workflow.version
    WHERE w.tenant_id = p_tenant_id AND w.id = p_workflow.id
      AND (p_instance_id IS NULL OR w.instance_id = p_instance_id)
      AND w.version = p_expected_version
      AND w.updated_at = p_expected_updated_at;
    changed := FOUND;
    IF NOT changed THEN
        RETURN;
    END IF;
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                  actor, from_status, to_status, from_stage, to_stage, entry)
    VALUES (p_tenant_id, p_workflow.id, (p_entry).*);
    IF p_history > 1 THEN
        SELECT string_agg(h.entry, ',' ORDER BY h.seq) INTO earlier
        FROM workflow_history AS h
        WHERE h.tenant_id = p_tenant_id AND h.workflow_id = p_workflow.id
          AND h.seq < p_entry.seq AND h.seq > p_entry.seq - p_history;
    END IF;
END
$$;

-- A page of one instance's workflows in one status, with its exact total:
-- the list agents make (?status=... on their own instance's path) and the
-- dashboard's list of one instance in one status. Other filters run in a
-- request transaction (postgres/workflows.rs).
--
-- The columns are hydracore_workflow's, then the total. The count (from
-- workflow_counts) and the page are one statement, so they agree as one
-- snapshot makes them agree. The count's subquery always gives one row: a
-- page past the end comes back as that row with the workflow's columns
-- NULL.
--
-- LIMIT and OFFSET are parameters here. A plan made for a call's own
-- values looks far cheaper than the generic plan, which must guess the
-- LIMIT (a tenth of the rows), so PostgreSQL would plan every call afresh.
-- The generic plan is the ordered scan of workflows_by_instance_status
-- whatever the LIMIT, and the function's SET keeps it for the call alone
-- (this statement and the key check, a primary-key read), not for the
-- connection.
CREATE FUNCTION hydracore_list_workflows(
    p_tenant_id     uuid,
    p_instance_id   uuid,
    p_credential_id uuid,  -- NULL: not by key (a JWT); else checked live
    p_status        text,
    p_limit         bigint,
    p_offset        bigint,
    p_history       integer  -- each workflow's newest this many entries
)
RETURNS TABLE (
    id               uuid,
    tenant_id        uuid,
    instance_id      uuid,
    customer_id      uuid,
    workflow_type    text,
    status           text,
    stage            text,
    title            text,
    reference        text,
    assigned_to      text,
    approver_id      uuid,
    escalation_level bigint,
    workflow_state   json,
    suspended_step   text,
    suspend_payload  json,
    suspended_at     timestamptz,
    created_at       timestamptz,
    updated_at       timestamptz,
    last_action_at   timestamptz,
    next_action_at   timestamptz,
    expires_at       timestamptz,
    completed_at     timestamptz,
    version          bigint,
    history          text,
    total            bigint
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', COALESCE(p_tenant_id::text, ''), true)
    WHERE p_credential_id IS NULL OR EXISTS (
        SELECT 1 FROM credentials AS c
        WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    );
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
    RETURN QUERY
        SELECT p.*, c.total
        FROM (SELECT COALESCE(SUM(n.n), 0)::bigint AS total
              FROM workflow_counts AS n
              WHERE n.tenant_id = p_tenant_id AND n.instance_id = p_instance_id
                AND n.status = p_status) AS c
        LEFT JOIN LATERAL (
            SELECT w.id, w.tenant_id, w.instance_id, w.customer_id, w.workflow_type,
                   w.status, w.stage, w.title, w.reference, w.assigned_to, w.approver_id,
                   w.escalation_level, w.workflow_state, w.suspended_step,
                   w.suspend_payload, w.suspended_at, w.created_at, w.updated_at,
                   w.last_action_at, w.next_action_at, w.expires_at, w.completed_at,
                   w.version,
                   (SELECT string_agg(h.entry, ',' ORDER BY h.seq)
                    FROM workflow_history AS h
                    WHERE h.tenant_id = w.tenant_id AND h.workflow_id = w.id
                      AND h.seq > w.version - p_history)
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id AND w.instance_id = p_instance_id
              AND w.status = p_status
            ORDER BY w.created_at DESC, w.id DESC
            LIMIT p_limit OFFSET p_offset
        ) AS p ON true;
END
$$;

-- Only the login that migrated (the owner) calls the request functions.
REVOKE EXECUTE ON FUNCTION hydracore_enter(uuid, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_credential_by_key(bytea) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_workflow(uuid, uuid, uuid, uuid, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_create_workflow(
    uuid, uuid, uuid, hydracore_workflow_record, hydracore_history_entry[], text
) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_change_workflow(
    uuid, uuid, uuid, bigint, timestamptz, hydracore_workflow_record, hydracore_history_entry,
    integer
) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_list_workflows(uuid, uuid, uuid, text, bigint, bigint, integer)
    FROM PUBLIC;
