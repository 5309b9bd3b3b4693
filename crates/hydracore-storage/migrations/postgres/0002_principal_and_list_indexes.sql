-- Who was authenticated behind each history entry, and indexes for the
-- list filters that had none.

-- The authenticated party (instance:<id>, api_key:<id>, user:<sub>,
-- system), which the request cannot set; NULL on entries written before.
ALTER TABLE workflow_history ADD COLUMN principal text;
ALTER TYPE hydracore_history_entry ADD ATTRIBUTE principal text;

-- The filtered lists, each in the lists' order, so that a page (and a
-- cursor page) reads its own rows and the total counts the matches only.
CREATE INDEX workflows_by_customer ON workflows (tenant_id, customer_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_type ON workflows (tenant_id, workflow_type, created_at DESC, id DESC);
CREATE INDEX workflows_by_reference ON workflows (tenant_id, reference, created_at DESC, id DESC);

-- The two writes of 0001_init, with the entry's new last column in their
-- column lists; otherwise as they were.
CREATE OR REPLACE FUNCTION hydracore_create_workflow(
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
                                  actor, from_status, to_status, from_stage, to_stage, entry,
                                  principal)
    SELECT p_tenant_id, p_workflow.id, e.*
    FROM unnest(p_history) AS e;
    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys SET workflow_id = p_workflow.id
        WHERE tenant_id = p_tenant_id AND instance_id = p_instance_id
          AND key = p_idempotency_key;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION hydracore_change_workflow(
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
                                  actor, from_status, to_status, from_stage, to_stage, entry,
                                  principal)
    VALUES (p_tenant_id, p_workflow.id, (p_entry).*);
    IF p_history > 1 THEN
        SELECT string_agg(h.entry, ',' ORDER BY h.seq) INTO earlier
        FROM workflow_history AS h
        WHERE h.tenant_id = p_tenant_id AND h.workflow_id = p_workflow.id
          AND h.seq < p_entry.seq AND h.seq > p_entry.seq - p_history;
    END IF;
END
$$;
