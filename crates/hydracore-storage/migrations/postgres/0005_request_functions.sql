-- What starts every request: the check that the key it came with is still
-- unrevoked (as the login: hydracore_app sees a credential only by its
-- key), then the role and the tenant, transaction-local (set_config(..,
-- true) is SET LOCAL). The server sends it ahead of BEGIN; the functions
-- below call it first. The key check lets the server take a key's
-- credential from a cache (the lookup is otherwise a round trip of its own
-- on every request) while a revocation, from any replica or the command
-- line, still stops the key's next read or write. SQLSTATE HC401: the
-- server answers 401.
CREATE FUNCTION hydracore_enter(
    p_tenant_id     uuid,  -- NULL: no tenant (sees nothing tenant-owned)
    p_credential_id uuid   -- NULL: not by key (a JWT); else checked live
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    IF p_credential_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM credentials AS c
        WHERE c.id = p_credential_id AND c.revoked_at IS NULL
    ) THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', COALESCE(p_tenant_id::text, ''), true);
END
$$;

REVOKE EXECUTE ON FUNCTION hydracore_enter(uuid, uuid) FROM PUBLIC;

-- A workflow and its history in one round trip and one cached plan: the
-- read agents make most. As a prepared transaction it was four round trips
-- (BEGIN, the role and tenant, SELECT, COMMIT, each its own message);
-- as one message of literal SQL, one round trip but parsed and planned on
-- every call, which cost PostgreSQL more than the round trips saved
-- (docs/benchmarks.md). A PL/pgSQL function keeps its plans for the
-- connection's life.
--
-- Called by the login outside any transaction, as
-- hydracore_credential_by_key (0003) is: the role and tenant it sets are
-- local to the call's implicit transaction, and the SELECT, planned and run
-- after the switch, is bound by row-level security as every request is.
-- The explicit tenant condition repeats the policy on purpose. The columns
-- are those of WORKFLOW_COLUMNS and HISTORY_COLUMN (postgres/rows.rs).
CREATE FUNCTION hydracore_workflow(
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
    PERFORM hydracore_enter(p_tenant_id, p_credential_id);
    RETURN QUERY
        SELECT w.id, w.tenant_id, w.instance_id, w.customer_id, w.workflow_type,
               w.status, w.stage, w.title, w.reference, w.assigned_to, w.approver_id,
               w.escalation_level, w.workflow_state, w.suspended_step,
               w.suspend_payload, w.suspended_at, w.created_at, w.updated_at,
               w.last_action_at, w.next_action_at, w.expires_at, w.completed_at,
               w.version,
               CASE WHEN p_with_history THEN
                   (SELECT string_agg(h.entry, ',' ORDER BY h.seq)
                    FROM workflow_history AS h
                    WHERE h.tenant_id = w.tenant_id AND h.workflow_id = w.id)
               END
        FROM workflows AS w
        WHERE w.tenant_id = p_tenant_id
          AND w.id = p_id
          AND (p_instance_id IS NULL OR w.instance_id = p_instance_id);
END
$$;

-- Only the login that migrated (the owner) calls it.
REVOKE EXECUTE ON FUNCTION hydracore_workflow(uuid, uuid, uuid, uuid, boolean) FROM PUBLIC;

-- A request's change to a workflow, written only if the workflow is still
-- at p_expected_version (optimistic concurrency): the server reads the
-- record (hydracore_workflow), applies the command, and calls this; when
-- another change landed in between, nothing is written, `changed` is false
-- and the server starts over from a fresh read. Two round trips and no
-- explicit transaction per change, instead of BEGIN, a locking SELECT, the
-- write and COMMIT. The UPDATE's row lock, held to the end of the call's
-- transaction, orders the history entries: the one appended here follows
-- every earlier one, all of which `earlier` returns (joined as
-- HISTORY_COLUMN joins them, by a SELECT after the insert, which sees
-- every committed entry) when p_with_history.
CREATE FUNCTION hydracore_change_workflow(
    p_tenant_id        uuid,
    p_instance_id      uuid,  -- NULL: any instance of the tenant
    p_credential_id    uuid,  -- NULL: not by key; else checked live
    p_id               uuid,
    p_expected_version bigint,
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
    PERFORM hydracore_enter(p_tenant_id, p_credential_id);
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
      AND w.version = p_expected_version;
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

REVOKE EXECUTE ON FUNCTION hydracore_change_workflow(
    uuid, uuid, uuid, uuid, bigint, text, text, text, uuid, bigint, jsonb, text, jsonb,
    timestamptz, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz, bigint,
    bigint, timestamptz, text, jsonb, text, text, text, text, text, text, boolean
) FROM PUBLIC;
