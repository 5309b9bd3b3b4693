-- Exact list totals without counting rows: how many workflows each
-- instance has in each status, kept by a trigger in the transaction that
-- changes them (so a snapshot sees counts and rows agree). A list filtered
-- only by scope, instance and status sums a few rows here instead of
-- counting every match: a tenant-wide total over a million workflows was
-- 10 lists/s with COUNT(*) (docs/benchmarks.md).
--
-- Each count row is a point of contention: writes that change the counts
-- of one (instance, status) take its row lock until they commit. Both
-- counts a status change touches are updated by one statement, which locks
-- them in index order, so two opposite changes cannot deadlock.
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
        -- Make sure the new status has its row (no lock when it exists),
        -- then move one from the old status to the new in one statement.
        INSERT INTO workflow_counts (tenant_id, instance_id, status, n)
        VALUES (NEW.tenant_id, NEW.instance_id, NEW.status, 0)
        ON CONFLICT (tenant_id, instance_id, status) DO NOTHING;
        UPDATE workflow_counts
        SET n = n + CASE WHEN status = NEW.status THEN 1 ELSE -1 END
        WHERE tenant_id = NEW.tenant_id AND instance_id = NEW.instance_id
          AND status IN (OLD.status, NEW.status);
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
