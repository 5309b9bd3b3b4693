-- The four request functions (the read, the change, the create and the
-- list) with hydracore_enter's key check, role and tenant as one
-- statement of their own instead of a call to it.
--
-- hydracore_enter is a PL/pgSQL function of two statements, so each
-- request paid for a statement that calls it, a function start and its two
-- statements: under the agent mix, executor start-up was a ninth of all
-- CPU samples and PL/pgSQL a third (docs/benchmarks.md, round 5). The
-- read alone, by pgbench in alternating 3 s runs: this statement in place
-- of the call was faster in 10 of 12 pairs, mean 7,958 -> 8,585 calls/s;
-- hydracore_enter rewritten as one statement but still called gained
-- nothing (round 6).
--
-- The role and the tenant are set in the statement's target list, which
-- runs only when its WHERE (the key check) holds. Nothing rests on that
-- order: when the key is revoked the statement yields no row and the call
-- raises before any other statement, and the raise rolls back whatever
-- set_config did. The check reads `credentials` as the login, since a
-- statement's row-level security is fixed when it is planned.
--
-- hydracore_enter stays: the server sends it ahead of every request
-- transaction (postgres/session.rs), and 0005's change function calls it
-- for replicas of older builds. The check is now written five times, there
-- and in each function here; a change to one is a change to all.
--
-- The bodies are otherwise those of 0006, 0009, 0007 and 0008.

CREATE OR REPLACE FUNCTION hydracore_workflow(
    p_tenant_id     uuid,
    p_instance_id   uuid,  -- NULL: any instance of the tenant
    p_credential_id uuid,  -- NULL: not by key (a JWT); else checked live
    p_id            uuid,
    p_with_history  boolean
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
    workflow_state   jsonb,
    suspended_step   text,
    suspend_payload  jsonb,
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
    -- hydracore_enter's work (0005), as one statement.
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
    IF p_with_history THEN
        RETURN QUERY
            SELECT w.id, w.tenant_id, w.instance_id, w.customer_id, w.workflow_type,
                   w.status, w.stage, w.title, w.reference, w.assigned_to, w.approver_id,
                   w.escalation_level, w.workflow_state, w.suspended_step,
                   w.suspend_payload, w.suspended_at, w.created_at, w.updated_at,
                   w.last_action_at, w.next_action_at, w.expires_at, w.completed_at,
                   w.version,
                   (SELECT string_agg(h.entry, ',' ORDER BY h.seq)
                    FROM workflow_history AS h
                    WHERE h.tenant_id = w.tenant_id AND h.workflow_id = w.id)
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

CREATE OR REPLACE FUNCTION hydracore_change_workflow(
    p_tenant_id        uuid,
    p_instance_id      uuid,  -- NULL: any instance of the tenant
    p_credential_id    uuid,  -- NULL: not by key; else checked live
    p_id               uuid,
    p_expected_version bigint,
    p_expected_updated_at timestamptz,
    p_status           text,
    p_stage            text,
    p_assigned_to      text,
    p_approver_id      uuid,
    p_escalation_level bigint,
    p_workflow_state   jsonb,
    p_suspended_step   text,
    p_suspend_payload  jsonb,
    p_suspended_at     timestamptz,
    p_updated_at       timestamptz,
    p_last_action_at   timestamptz,
    p_next_action_at   timestamptz,
    p_expires_at       timestamptz,
    p_completed_at     timestamptz,
    p_version          bigint,
    p_seq              bigint,
    p_at               timestamptz,
    p_action           text,
    p_action_detail    jsonb,
    p_actor            text,
    p_from_status      text,
    p_to_status        text,
    p_from_stage       text,
    p_to_stage         text,
    p_entry            text,
    p_with_history     boolean,
    OUT changed        boolean,
    OUT earlier        text
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    -- hydracore_enter's work (0005), as one statement.
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
    SET status = p_status, stage = p_stage, assigned_to = p_assigned_to,
        approver_id = p_approver_id, escalation_level = p_escalation_level,
        workflow_state = p_workflow_state, suspended_step = p_suspended_step,
        suspend_payload = p_suspend_payload, suspended_at = p_suspended_at,
        updated_at = p_updated_at, last_action_at = p_last_action_at,
        next_action_at = p_next_action_at, expires_at = p_expires_at,
        completed_at = p_completed_at, version = p_version
    WHERE w.tenant_id = p_tenant_id AND w.id = p_id
      AND (p_instance_id IS NULL OR w.instance_id = p_instance_id)
      AND w.version = p_expected_version
      AND w.updated_at = p_expected_updated_at;
    changed := FOUND;
    IF NOT changed THEN
        RETURN;
    END IF;
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                  actor, from_status, to_status, from_stage, to_stage, entry)
    VALUES (p_tenant_id, p_id, p_seq, p_at, p_action, p_action_detail, p_actor,
            p_from_status, p_to_status, p_from_stage, p_to_stage, p_entry);
    IF p_with_history THEN
        SELECT string_agg(h.entry, ',' ORDER BY h.seq) INTO earlier
        FROM workflow_history AS h
        WHERE h.tenant_id = p_tenant_id AND h.workflow_id = p_id AND h.seq < p_seq;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION hydracore_create_workflow(
    p_tenant_id        uuid,  -- the request's tenant
    p_instance_id      uuid,
    p_credential_id    uuid,  -- NULL: not by key; else checked live
    p_id               uuid,
    p_customer_id      uuid,
    p_workflow_type    text,
    p_title            text,
    p_reference        text,
    p_created_at       timestamptz,
    p_status           text,
    p_stage            text,
    p_assigned_to      text,
    p_approver_id      uuid,
    p_escalation_level bigint,
    p_workflow_state   jsonb,
    p_suspended_step   text,
    p_suspend_payload  jsonb,
    p_suspended_at     timestamptz,
    p_updated_at       timestamptz,
    p_last_action_at   timestamptz,
    p_next_action_at   timestamptz,
    p_expires_at       timestamptz,
    p_completed_at     timestamptz,
    p_version          bigint,
    p_seq              bigint[],
    p_at               timestamptz[],
    p_action           text[],
    p_action_detail    jsonb[],
    p_actor            text[],
    p_from_status      text[],
    p_to_status        text[],
    p_from_stage       text[],
    p_to_stage         text[],
    p_entry            text[],
    p_idempotency_key  text   -- NULL: none
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    -- hydracore_enter's work (0005), as one statement.
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
    INSERT INTO workflows (id, tenant_id, instance_id, customer_id, workflow_type, title,
                           reference, created_at, status, stage, assigned_to, approver_id,
                           escalation_level, workflow_state, suspended_step, suspend_payload,
                           suspended_at, updated_at, last_action_at, next_action_at,
                           expires_at, completed_at, version)
    VALUES (p_id, p_tenant_id, p_instance_id, p_customer_id, p_workflow_type, p_title,
            p_reference, p_created_at, p_status, p_stage, p_assigned_to, p_approver_id,
            p_escalation_level, p_workflow_state, p_suspended_step, p_suspend_payload,
            p_suspended_at, p_updated_at, p_last_action_at, p_next_action_at,
            p_expires_at, p_completed_at, p_version);
    INSERT INTO workflow_history (tenant_id, workflow_id, seq, at, action, action_detail,
                                  actor, from_status, to_status, from_stage, to_stage, entry)
    SELECT p_tenant_id, p_id, e.*
    FROM unnest(p_seq, p_at, p_action, p_action_detail, p_actor, p_from_status,
                p_to_status, p_from_stage, p_to_stage, p_entry) AS e;
    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys SET workflow_id = p_id
        WHERE tenant_id = p_tenant_id AND instance_id = p_instance_id
          AND key = p_idempotency_key;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION hydracore_list_workflows(
    p_tenant_id     uuid,
    p_instance_id   uuid,
    p_credential_id uuid,  -- NULL: not by key (a JWT); else checked live
    p_status        text,
    p_limit         bigint,
    p_offset        bigint
)
RETURNS TABLE (
    total            bigint,
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
    workflow_state   jsonb,
    suspended_step   text,
    suspend_payload  jsonb,
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
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- hydracore_enter's work (0005), as one statement.
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
        SELECT c.total, p.*
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
                    WHERE h.tenant_id = w.tenant_id AND h.workflow_id = w.id)
            FROM workflows AS w
            WHERE w.tenant_id = p_tenant_id AND w.instance_id = p_instance_id
              AND w.status = p_status
            ORDER BY w.created_at DESC, w.id DESC
            LIMIT p_limit OFFSET p_offset
        ) AS p ON true;
END
$$;
