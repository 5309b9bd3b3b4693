-- hydracore_change_workflow (0005) with one more condition: the row must
-- still have the `updated_at` as well as the `version` the change was
-- made from.
--
-- A replica now starts a change from the record it wrote last instead of
-- reading it (postgres/last_written.rs), so the write's condition is all
-- that tells that record from the stored one. The version alone can
-- match a different record: after a failover to an asynchronous standby
-- that lost this replica's last write, another replica can write the same
-- version anew, and a change from the lost record would overwrite it.
-- Each write sets `updated_at` to its own microsecond, so the two records
-- differ there. (A change made by hand in SQL must still bump `version`,
-- which is also what clients' ETags rely on: docs/scaling.md.)
--
-- 0005's function stays for replicas of an older build during a rolling
-- deploy; they read before each write, as it expects.
CREATE FUNCTION hydracore_change_workflow(
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

REVOKE EXECUTE ON FUNCTION hydracore_change_workflow(
    uuid, uuid, uuid, uuid, bigint, timestamptz, text, text, text, uuid, bigint, jsonb, text,
    jsonb, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz,
    bigint, bigint, timestamptz, text, jsonb, text, text, text, text, text, text, boolean
) FROM PUBLIC;
