-- A create in one round trip, as a get and a change's write are (0005):
-- the workflow, the entries it is created with and, when the request
-- came with an Idempotency-Key, the key's claim completed, in the call's
-- implicit transaction. It was three round trips (the request
-- transaction's opening, the insert, COMMIT), plus one with a key.
--
-- The entries come as one array per column, in `seq` order, and are
-- inserted after the workflow, so the history's foreign key finds it.
-- p_tenant_id is the request's tenant: the call enters it and writes
-- every row in it, under row-level security, so a create can only ever
-- write into its own request's tenant. It comes first, as in the other
-- request functions, so that Citus can route a call by it
-- (docs/scaling.md).
CREATE FUNCTION hydracore_create_workflow(
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
    PERFORM hydracore_enter(p_tenant_id, p_credential_id);
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

-- Only the login that migrated (the owner) calls it.
REVOKE EXECUTE ON FUNCTION hydracore_create_workflow(
    uuid, uuid, uuid, uuid, uuid, text, text, text, timestamptz, text, text, text, uuid,
    bigint, jsonb, text, jsonb, timestamptz, timestamptz, timestamptz, timestamptz,
    timestamptz, timestamptz, bigint, bigint[], timestamptz[], text[], jsonb[], text[],
    text[], text[], text[], text[], text[], text
) FROM PUBLIC;
