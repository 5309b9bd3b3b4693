-- A page of one instance's workflows in one status, with its exact total,
-- in one round trip: the list agents make (`?status=...` on their own
-- instance's path) and the dashboard's list of one instance in one status.
-- As a request transaction it was four round trips (its opening with the
-- role and tenant, the count, the page, COMMIT); other filters still take
-- that path (postgres/workflows.rs).
--
-- The count (from workflow_counts, 0004) and the page are one statement,
-- so they agree as the repeatable-read transaction made them agree. The
-- count's subquery always gives one row: a page past the end comes back as
-- that row with the workflow's columns NULL.
--
-- LIMIT and OFFSET are parameters here. A plan made for a call's own
-- values looks far cheaper than the generic plan, which must guess the
-- LIMIT (a tenth of the rows), so PostgreSQL would plan every call afresh,
-- as it did for the list statements before LIMIT was written into them
-- (docs/benchmarks.md, step 10). The generic plan is the ordered scan of
-- workflows_by_instance_status whatever the LIMIT, and the function's SET
-- keeps it for the call alone (this statement and hydracore_enter's key
-- check, a primary-key read), not for the connection.
CREATE FUNCTION hydracore_list_workflows(
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
    PERFORM hydracore_enter(p_tenant_id, p_credential_id);
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

REVOKE EXECUTE ON FUNCTION hydracore_list_workflows(uuid, uuid, uuid, text, bigint, bigint)
    FROM PUBLIC;
