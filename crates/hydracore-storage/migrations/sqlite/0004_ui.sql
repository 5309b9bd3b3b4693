-- The web page's tokens: sign-in links, sessions and approval links. A
-- token is handed out once as its tenant and a secret; only the secret's
-- SHA-256 is kept, so a copy of the database signs nobody in.
CREATE TABLE ui_tokens (
    tenant_id  BLOB    NOT NULL,
    token_hash BLOB    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('sign_in', 'session', 'approval')),
    -- What the token stands for, as the service reads it (JSON).
    detail     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- A sign-in or approval link once used, a session once ended.
    ended_at   INTEGER,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX ui_tokens_by_expiry ON ui_tokens (expires_at);
