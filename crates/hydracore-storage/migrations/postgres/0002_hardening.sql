-- Who was authenticated behind each history entry, a budget in bytes for
-- the history a record embeds, indexes for the list filters that had none,
-- and decisions: what a suspension expects as its answer and how it
-- escalates, the inbox and the sweeper's escalation list.

-- The authenticated party (instance:<id>, api_key:<id>, user:<sub>,
-- system), which the request cannot set; NULL on entries written before.
ALTER TABLE workflow_history ADD COLUMN principal text;
ALTER TYPE hydracore_history_entry ADD ATTRIBUTE principal text;

-- While suspended: seconds between escalations once next_action_at (the
-- decision's due time) has passed, the level they stop at, and the JSON
-- Schema the resume's data must satisfy. NULL otherwise.
ALTER TABLE workflows ADD COLUMN escalate_every bigint,
                      ADD COLUMN max_escalation_level bigint,
                      ADD COLUMN resume_schema json;
ALTER TYPE hydracore_workflow_record ADD ATTRIBUTE escalate_every bigint,
                                     ADD ATTRIBUTE max_escalation_level bigint,
                                     ADD ATTRIBUTE resume_schema json;

-- A suspend, resume or abort made with an Idempotency-Key keeps its answer
-- here to answer a retry with (a create's retry reads the workflow).
ALTER TABLE idempotency_keys ADD COLUMN answer json;

-- The outbox: one event per create and change, written in its
-- transaction. Events are ordered by the writing transaction's id, then by
-- insertion, and readers take only the events of transactions older than
-- every one still running (pg_snapshot_xmin), so an event that commits
-- late is never passed over by a reader that has moved on.
CREATE TABLE events (
    tenant_id   uuid        NOT NULL,
    xid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    instance_id uuid        NOT NULL,
    workflow_id uuid        NOT NULL,
    version     bigint      NOT NULL,
    actor       text,
    data        json        NOT NULL,
    PRIMARY KEY (tenant_id, xid, seq)
);
-- The sweeper's purge, oldest first, across tenants.
CREATE INDEX events_by_age ON events (occurred_at, tenant_id);
GRANT SELECT, INSERT ON events TO hydracore_app;
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_tenant ON events TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY events_admin ON events TO CURRENT_USER
    USING (true) WITH CHECK (true);

-- How far the sweeper has purged events (across tenants): a reader asking
-- for events after an older point is told that some are gone (410).
CREATE TABLE events_purged (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    xid  xid8    NOT NULL,
    seq  bigint  NOT NULL
);
GRANT SELECT ON events_purged TO hydracore_app;

-- An event as the write functions take it.
CREATE TYPE hydracore_event AS (
    type        text,
    occurred_at timestamptz,
    instance_id uuid,
    workflow_id uuid,
    version     bigint,
    actor       text,
    data        json
);

-- The decisions inbox: a tenant's suspensions, due first (none last),
-- then oldest suspension; the second serves the assignee filter and the
-- summary's counts, which read the raw due time it includes and nothing
-- else (an index-only scan).
CREATE INDEX workflows_inbox ON workflows
    (tenant_id, COALESCE(next_action_at, 'infinity'), suspended_at, id)
    WHERE status = 'suspended';
CREATE INDEX workflows_inbox_by_assignee ON workflows
    (tenant_id, assigned_to, COALESCE(next_action_at, 'infinity'), suspended_at, id)
    INCLUDE (next_action_at)
    WHERE status = 'suspended';
-- The sweeper's escalation list, across tenants, soonest due first.
CREATE INDEX workflows_escalating ON workflows (next_action_at, tenant_id)
    WHERE status = 'suspended' AND escalate_every IS NOT NULL
      AND escalation_level < max_escalation_level;

-- The filtered lists, each in the lists' order, so that a page (and a
-- cursor page) reads its own rows and the total counts the matches only.
CREATE INDEX workflows_by_customer ON workflows (tenant_id, customer_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_type ON workflows (tenant_id, workflow_type, created_at DESC, id DESC);
CREATE INDEX workflows_by_reference ON workflows (tenant_id, reference, created_at DESC, id DESC);

-- The history a record embeds: of its entries up to seq p_newest, the
-- newest p_entries, fewer when they would not start within p_bytes of the
-- newest as the API renders them (so at most one entry goes past the
-- budget, and the newest is always there). Joined with commas in seq
-- order; NULL when there are none. octet_length of a stored text reads
-- its size from its header, so the entries left out are never loaded.
CREATE FUNCTION hydracore_history_inline(
    p_tenant_id   uuid,
    p_workflow_id uuid,
    p_newest      bigint,
    p_entries     integer,
    p_bytes       integer
) RETURNS text
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT string_agg(e.entry, ',' ORDER BY e.seq)
    FROM (SELECT h.seq, h.entry,
                 sum(octet_length(h.entry)) OVER (ORDER BY h.seq DESC)
                   - octet_length(h.entry) AS newer
          FROM workflow_history AS h
          WHERE h.tenant_id = p_tenant_id AND h.workflow_id = p_workflow_id
            AND h.seq <= p_newest AND h.seq > p_newest - p_entries) AS e
    WHERE e.newer < p_bytes
$$;

-- The request functions of 0001_init that read or write history, with the
-- entry's new principal, the byte budget, the new workflow columns and the
-- event each write adds; otherwise as they were. A
-- database migrated here takes only replicas of this build (migrate.rs).
DROP FUNCTION hydracore_create_workflow(
    uuid, uuid, uuid, hydracore_workflow_record, hydracore_history_entry[], text
);
CREATE FUNCTION hydracore_create_workflow(
    p_tenant_id       uuid,  -- the request's tenant
    p_instance_id     uuid,
    p_credential_id   uuid,  -- NULL: not by key; else checked live
    p_workflow        hydracore_workflow_record,
    p_history         hydracore_history_entry[],
    p_idempotency_key text,  -- NULL: none
    p_event           hydracore_event
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
                           expires_at, completed_at, version, escalate_every,
                           max_escalation_level, resume_schema)
    VALUES (p_tenant_id, p_instance_id, (p_workflow).*);
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                  actor, from_status, to_status, from_stage, to_stage, entry,
                                  principal)
    SELECT p_tenant_id, p_workflow.id, e.*
    FROM unnest(p_history) AS e;
    INSERT INTO events (tenant_id, type, occurred_at, instance_id, workflow_id, version, actor,
                        data)
    VALUES (p_tenant_id, (p_event).*);
    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys SET workflow_id = p_workflow.id
        WHERE tenant_id = p_tenant_id AND instance_id = p_instance_id
          AND key = p_idempotency_key;
    END IF;
END
$$;

DROP FUNCTION hydracore_workflow(uuid, uuid, uuid, uuid, integer);
CREATE FUNCTION hydracore_workflow(
    p_tenant_id     uuid,
    p_instance_id   uuid,  -- NULL: any instance of the tenant
    p_credential_id uuid,  -- NULL: not by key (a JWT); else checked live
    p_id            uuid,
    p_history       integer, -- the newest this many entries; 0: none
    p_history_bytes integer  -- ... that start within this many bytes
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
    escalate_every   bigint,
    max_escalation_level bigint,
    resume_schema    json,
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
                   w.version, w.escalate_every, w.max_escalation_level, w.resume_schema,
                   hydracore_history_inline(w.tenant_id, w.id, w.version, p_history,
                                            p_history_bytes)
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
                   w.version, w.escalate_every, w.max_escalation_level, w.resume_schema,
                   NULL::text
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id
              AND w.id = p_id
              AND (p_instance_id IS NULL OR w.instance_id = p_instance_id);
    END IF;
END
$$;

DROP FUNCTION hydracore_change_workflow(
    uuid, uuid, uuid, bigint, timestamptz, hydracore_workflow_record, hydracore_history_entry,
    integer
);
CREATE FUNCTION hydracore_change_workflow(
    p_tenant_id           uuid,
    p_instance_id         uuid,  -- NULL: any instance of the tenant
    p_credential_id       uuid,  -- NULL: not by key; else checked live
    p_expected_version    bigint,
    p_expected_updated_at timestamptz,
    p_workflow            hydracore_workflow_record,
    p_entry               hydracore_history_entry,
    p_history             integer,  -- the newest this many entries back; 0: none
    p_history_bytes       integer,  -- ... that start within this many bytes
    p_event               hydracore_event,
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
        version = p_workflow.version, escalate_every = p_workflow.escalate_every,
        max_escalation_level = p_workflow.max_escalation_level,
        resume_schema = p_workflow.resume_schema
    WHERE w.tenant_id = p_tenant_id AND w.id = p_workflow.id
      AND (p_instance_id IS NULL OR w.instance_id = p_instance_id)
      AND w.version = p_expected_version
      AND w.updated_at = p_expected_updated_at;
    changed := FOUND;
    IF NOT changed THEN
        RETURN;
    END IF;
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                  actor, from_status, to_status, from_stage, to_stage, entry,
                                  principal)
    VALUES (p_tenant_id, p_workflow.id, (p_entry).*);
    INSERT INTO events (tenant_id, type, occurred_at, instance_id, workflow_id, version, actor,
                        data)
    VALUES (p_tenant_id, (p_event).*);
    IF p_history > 1 THEN
        earlier := hydracore_history_inline(p_tenant_id, p_workflow.id, p_entry.seq - 1,
                                            p_history - 1,
                                            p_history_bytes - octet_length(p_entry.entry));
    END IF;
END
$$;

DROP FUNCTION hydracore_list_workflows(uuid, uuid, uuid, text, bigint, bigint, integer);
CREATE FUNCTION hydracore_list_workflows(
    p_tenant_id     uuid,
    p_instance_id   uuid,
    p_credential_id uuid,  -- NULL: not by key (a JWT); else checked live
    p_status        text,
    p_limit         bigint,
    p_offset        bigint,
    p_history       integer, -- each workflow's newest this many entries
    p_history_bytes integer  -- ... that start within this many bytes
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
    escalate_every   bigint,
    max_escalation_level bigint,
    resume_schema    json,
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
                   w.version, w.escalate_every, w.max_escalation_level, w.resume_schema,
                   hydracore_history_inline(w.tenant_id, w.id, w.version, p_history,
                                            p_history_bytes)
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id AND w.instance_id = p_instance_id
              AND w.status = p_status
            ORDER BY w.created_at DESC, w.id DESC
            LIMIT p_limit OFFSET p_offset
        ) AS p ON true;
END
$$;

REVOKE EXECUTE ON FUNCTION hydracore_workflow(uuid, uuid, uuid, uuid, integer, integer)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_change_workflow(
    uuid, uuid, uuid, bigint, timestamptz, hydracore_workflow_record, hydracore_history_entry,
    integer, integer, hydracore_event
) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_create_workflow(
    uuid, uuid, uuid, hydracore_workflow_record, hydracore_history_entry[], text, hydracore_event
) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION hydracore_list_workflows(
    uuid, uuid, uuid, text, bigint, bigint, integer, integer
) FROM PUBLIC;
