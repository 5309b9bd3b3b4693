//! The web page's tokens on PostgreSQL: a request's in its tenant's
//! transaction (row-level security bounds it), the purge as the login
//! across tenants, as the sweeper's other work.

use hydracore_domain::{Scope, Timestamp};

use super::pool::Client;
use crate::ui_tokens::{ui_token_row, UI_TOKEN_COLUMNS};
use crate::{StoreError, UiToken};

type Result<T, E = StoreError> = std::result::Result<T, E>;

pub async fn insert(tx: &Client, t: &UiToken) -> Result<()> {
    tx.execute(
        "INSERT INTO ui_tokens (tenant_id, token_hash, kind, detail, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &t.tenant_id,
            &t.token_hash,
            &t.kind.as_str(),
            &t.detail,
            &t.created_at.as_datetime(),
            &t.expires_at.as_datetime(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn get(tx: &Client, scope: Scope, hash: &[u8]) -> Result<Option<UiToken>> {
    tx.query_opt(
        &format!(
            "SELECT {UI_TOKEN_COLUMNS} FROM ui_tokens WHERE tenant_id = $1 AND token_hash = $2"
        ),
        &[&scope.tenant_id, &hash],
    )
    .await?
    .map(|row| ui_token_row(&row, hash.to_vec()))
    .transpose()
}

pub async fn end(tx: &Client, scope: Scope, hash: &[u8], now: Timestamp) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE ui_tokens SET ended_at = $3 WHERE tenant_id = $1 AND token_hash = $2 \
             AND ended_at IS NULL AND expires_at > $3",
            &[&scope.tenant_id, &hash, &now.as_datetime()],
        )
        .await?;
    Ok(n == 1)
}

pub async fn purge(conn: &Client, before: Timestamp, limit: u32) -> Result<u64> {
    let before = super::purge::bound(
        conn,
        "SELECT expires_at FROM ui_tokens WHERE expires_at < $1 \
         ORDER BY expires_at OFFSET $2 LIMIT 1",
        before.as_datetime(),
        limit,
    )
    .await?;
    conn.execute("DELETE FROM ui_tokens WHERE expires_at < $1", &[&before])
        .await
}
