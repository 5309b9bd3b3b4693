-- The web page's tokens: sign-in links, sessions and approval links. A
-- token is handed out once as its tenant and a secret; only the secret's
-- SHA-256 is kept, so a copy of the database signs nobody in. The tenant
-- in the token lets a request read its row under the tenant's row-level
-- security, as every other request does.
CREATE TABLE ui_tokens (
    tenant_id  uuid        NOT NULL,
    token_hash bytea       NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('sign_in', 'session', 'approval')),
    -- What the token stands for, as the service reads it.
    detail     json        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- A sign-in or approval link once used, a session once ended.
    ended_at   timestamptz,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX ui_tokens_by_expiry ON ui_tokens (expires_at);
GRANT SELECT, INSERT, UPDATE ON ui_tokens TO hydracore_app;
ALTER TABLE ui_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE ui_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY ui_tokens_tenant ON ui_tokens TO hydracore_app
    USING (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('hydracore.tenant_id', true), '')::uuid);
CREATE POLICY ui_tokens_admin ON ui_tokens TO CURRENT_USER
    USING (true) WITH CHECK (true);
