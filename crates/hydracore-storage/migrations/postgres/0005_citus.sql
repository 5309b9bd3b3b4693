-- The request functions in a form Citus runs (postgres/citus.rs), with
-- the same results on one server.
--
-- Citus sends a statement that reads one tenant's rows to that tenant's
-- worker whole, function calls included; there a function that reads a
-- distributed table fails (a query from a query on a shard). So the
-- history a record embeds is a subquery written out where a statement
-- selects it (here, and postgres/rows.rs), not a call of
-- hydracore_history_inline, which stays for the write that runs it on
-- its own, as PL/pgSQL: Citus cannot run a SQL function's parameterized
-- statement. The subqueries name the request's tenant, so that Citus sees
-- the whole statement read one tenant's rows and routes it to its worker. And a create inserts its history entries one by one: Citus
-- turns an INSERT ... SELECT into a COPY, which row-level security
-- refuses.

CREATE OR REPLACE FUNCTION hydracore_history_inline(
    p_tenant_id   uuid,
    p_workflow_id uuid,
    p_newest      bigint,
    p_entries     integer,
    p_bytes       integer
) RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    RETURN (SELECT string_agg(e.entry, ',' ORDER BY e.seq)
    FROM (SELECT h.seq, h.entry,
                 sum(octet_length(h.entry)) OVER (ORDER BY h.seq DESC)
                   - octet_length(h.entry) AS newer
          FROM workflow_history AS h
          WHERE h.tenant_id = p_tenant_id AND h.workflow_id = p_workflow_id
            AND h.seq <= p_newest AND h.seq > p_newest - p_entries) AS e
    WHERE e.newer < p_bytes);
END
$$;

CREATE OR REPLACE FUNCTION hydracore_create_workflow(
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
DECLARE
    new_entry hydracore_history_entry;
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
    FOREACH new_entry IN ARRAY p_history LOOP
        INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                      actor, from_status, to_status, from_stage, to_stage,
                                      entry, principal)
        VALUES (p_tenant_id, p_workflow.id, (new_entry).*);
    END LOOP;
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

CREATE OR REPLACE FUNCTION hydracore_workflow(
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
                   (SELECT string_agg(e.entry, ',' ORDER BY e.seq)
                    FROM (SELECT h.seq, h.entry,
                                 sum(octet_length(h.entry)) OVER (ORDER BY h.seq DESC)
                                   - octet_length(h.entry) AS newer
                          FROM workflow_history AS h
                          WHERE h.tenant_id = p_tenant_id AND h.workflow_id = w.id
                            AND h.seq <= w.version AND h.seq > w.version - p_history) AS e
                    WHERE e.newer < p_history_bytes)
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

CREATE OR REPLACE FUNCTION hydracore_list_workflows(
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
                   (SELECT string_agg(e.entry, ',' ORDER BY e.seq)
                    FROM (SELECT h.seq, h.entry,
                                 sum(octet_length(h.entry)) OVER (ORDER BY h.seq DESC)
                                   - octet_length(h.entry) AS newer
                          FROM workflow_history AS h
                          WHERE h.tenant_id = p_tenant_id AND h.workflow_id = w.id
                            AND h.seq <= w.version AND h.seq > w.version - p_history) AS e
                    WHERE e.newer < p_history_bytes)
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id AND w.instance_id = p_instance_id
              AND w.status = p_status
            ORDER BY w.created_at DESC, w.id DESC
            LIMIT p_limit OFFSET p_offset
        ) AS p ON true;
END
$$;
