-- A key lookup in one round trip instead of four (BEGIN, set role and key,
-- SELECT, COMMIT): every request starts with one, so this is on the hot
-- path. Called by the login outside any transaction, so its implicit
-- transaction ends with the call and the transaction-local role and key go
-- with it. The SELECT runs as hydracore_app, under the same policy as
-- before (credentials_by_key): the row shows only to who presents its key.
-- PL/pgSQL, not SQL: a SQL function's statements are all rewritten before
-- the first runs, so row-level security would be applied as the login.
CREATE FUNCTION hydracore_credential_by_key(p_key_hash bytea)
RETURNS TABLE (
    id          uuid,
    kind        text,
    tenant_id   uuid,
    instance_id uuid,
    scopes      text[],
    key_prefix  text,
    created_at  timestamptz,
    revoked_at  timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('role', 'hydracore_app', true),
            set_config('hydracore.key_hash', encode(p_key_hash, 'hex'), true);
    RETURN QUERY
        SELECT c.id, c.kind, c.tenant_id, c.instance_id, c.scopes, c.key_prefix,
               c.created_at, c.revoked_at
        FROM credentials AS c
        WHERE c.key_hash = p_key_hash;
END
$$;

-- Only the login that migrated (the owner) calls it.
REVOKE EXECUTE ON FUNCTION hydracore_credential_by_key(bytea) FROM PUBLIC;
