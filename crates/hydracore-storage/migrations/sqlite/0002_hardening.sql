-- Who was authenticated behind each history entry, and indexes for the
-- list filters that had none.

-- The authenticated party (instance:<id>, api_key:<id>, user:<sub>,
-- system), which the request cannot set; NULL on entries written before.
ALTER TABLE workflow_history ADD COLUMN principal TEXT;

-- The filtered lists, each in the lists' order, so that a page (and a
-- cursor page) reads its own rows and the total counts the matches only.
CREATE INDEX workflows_by_customer ON workflows (tenant_id, customer_id, created_at DESC, id DESC);
CREATE INDEX workflows_by_type ON workflows (tenant_id, workflow_type, created_at DESC, id DESC);
CREATE INDEX workflows_by_reference ON workflows (tenant_id, reference, created_at DESC, id DESC);
