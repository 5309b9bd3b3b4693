-- Exact list totals without counting rows: how many workflows each
-- instance has in each status, kept by a trigger in the transaction that
-- changes them (so a snapshot sees counts and rows agree). A list filtered
-- only by scope, instance and status sums a few rows here instead of
-- counting every match: a tenant-wide total over a million workflows was
-- 10 lists/s with COUNT(*) (docs/benchmarks.md).
--
-- Each count row is a point of contention: writes that change the counts
-- of one (instance, status) take its row lock until they commit. A status
-- change locks its two count rows in the order of their status names,
-- whatever the change, so two opposite changes cannot deadlock; and no
-- transaction changes more than one workflow's counts (the sweeper expires
-- one workflow per transaction).

-- Writers of other replicas (an older build during a rolling deploy) wait
-- until the counts and their trigger exist: none can slip between the
-- backfill and the trigger.
LOCK TABLE workflows IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE workflow_counts (
    tenant_id   uuid   NOT NULL,
    instance_id uuid   NOT NULL,
    status      text   NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, status)
);

INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
SELECT tenant_id, instance_id, status, count(*) FROM workflows
GROUP BY tenant_id, instance_id, status;

GRANT SELECT, INSERT, UPDATE ON workflow_counts TO hydracore_app;

ALTER TABLE workflow_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_counts_tenant ON workflow_counts TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY workflow_counts_admin ON workflow_counts TO CURRENT_USER
    USING (true) WITH CHECK (true);

CREATE FUNCTION workflow_counts_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
        VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 1)
        ON CONFLICT (tenant_id, instance_id, status) DO UPDATE SET n = workflow_counts.n + 1;
    ELSIF TG_OP = 'UPDATE' THEN
        -- The two rows one at a time, in the order of their status names
        -- (a single statement would lock them in whatever order its plan
        -- reads them).
        IF OLD.status < NEW.status THEN
            UPDATE workflow_counts SET n = n - 1
            WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id
              AND status = OLD.status;
        END IF;
        INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
        VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 1)
        ON CONFLICT (tenant_id, instance_id, status) DO UPDATE SET n = workflow_counts.n + 1;
        IF OLD.status > NEW.status THEN
            UPDATE workflow_counts SET n = n - 1
            WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id
              AND status = OLD.status;
        END IF;
    ELSE
        UPDATE workflow_counts SET n = n - 1
        WHERE tenant_id = OLD.tenant_id AND instance_id = OLD.instance_id
          AND status = OLD.status;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflow_counts_insert AFTER INSERT ON workflows
FOR EACH ROW EXECUTE FUNCTION workflow_counts_follow();
CREATE TRIGGER workflow_counts_status AFTER UPDATE OF status ON workflows
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION workflow_counts_follow();
CREATE TRIGGER workflow_counts_delete AFTER DELETE ON workflows
FOR EACH ROW EXECUTE FUNCTION workflow_counts_follow();
