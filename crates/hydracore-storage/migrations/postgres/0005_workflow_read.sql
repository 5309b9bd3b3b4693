-- Whether the key a request came with is still unrevoked, checked inside
-- the request's own transaction: the server may then take the key's
-- credential from a cache (the lookup is otherwise a round trip of its
-- own on every request) while a revocation, from any replica or the
-- command line, still stops the key's next read or write. Called by the
-- login, before a request switches to hydracore_app (which sees a
-- credential only by its key). SQLSTATE HC401: the server answers 401.
CREATE FUNCTION hydracore_key_live(p_credential_id uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM credentials AS c
                   WHERE c.id = p_credential_id AND c.revoked_at IS NULL) THEN
        RAISE EXCEPTION 'the key of credential % is revoked', p_credential_id
            USING ERRCODE = 'HC401';
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION hydracore_key_live(uuid) FROM PUBLIC;

-- A workflow and its history in one round trip and one cached plan: the
-- read agents make most. As a prepared transaction it was four round trips
-- (BEGIN with the role and tenant, SELECT, COMMIT, each its own message);
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
    IF p_credential_id IS NOT NULL THEN
        PERFORM hydracore_key_live(p_credential_id);
    END IF;
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.tenant_id', p_tenant_id::text, true);
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
