-- hydracore_workflow (0005) with and without the history as two
-- statements, so that each keeps its cached generic plan.
--
-- As one statement, `CASE WHEN p_with_history` let the plan PostgreSQL
-- makes for a call's own values drop the history subquery when the
-- history was not wanted. Such a plan looks far cheaper than the generic
-- one, so once most of a connection's calls were reads without history,
-- PostgreSQL's plan cache planned every call afresh. Every change
-- (advance, suspend, resume, abort, the sweeper's expiry) starts with such
-- a read: under a load of changes alone the planner was 8.6 % of all
-- samples. pgbench on the call alone: 3,848-6,731 calls/s without the
-- history against 7,501-9,581 with it; with the two statements, 10,050-
-- 10,789 without (docs/benchmarks.md, round 4, step 14).
--
-- Forcing generic plans for every request instead (plan_cache_mode, set
-- by hydracore_enter) was tried: it gave this read the same gain, but
-- lists nothing measurable, and it would take plan choice away from every
-- statement a request makes, including those whose values matter.
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
    PERFORM hydracore_enter(p_tenant_id, p_credential_id);
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
