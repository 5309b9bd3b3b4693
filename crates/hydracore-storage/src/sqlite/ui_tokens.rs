//! The web page's tokens on SQLite.

use hydracore_domain::{Scope, Timestamp};
use rusqlite::{params, Connection, OptionalExtension as _};

use super::rows::SqliteRow;
use crate::ui_tokens::{ui_token_row, UI_TOKEN_COLUMNS};
use crate::{StoreError, UiToken};

type Result<T, E = StoreError> = std::result::Result<T, E>;

pub fn insert(conn: &Connection, t: &UiToken) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ui_tokens (tenant_id, token_hash, kind, detail, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        t.tenant_id,
        t.token_hash,
        t.kind.as_str(),
        t.detail.to_string(),
        t.created_at.unix_micros(),
        t.expires_at.unix_micros(),
    ])?;
    Ok(())
}

pub fn get(conn: &Connection, scope: Scope, hash: &[u8]) -> Result<Option<UiToken>> {
    conn.prepare_cached(&format!(
        "SELECT {UI_TOKEN_COLUMNS} FROM ui_tokens WHERE tenant_id = ?1 AND token_hash = ?2"
    ))?
    .query_row(params![scope.tenant_id, hash], |row| {
        Ok(ui_token_row(&SqliteRow(row), hash.to_vec()))
    })
    .optional()?
    .transpose()
}

pub fn end(conn: &Connection, scope: Scope, hash: &[u8], now: Timestamp) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE ui_tokens SET ended_at = ?3 WHERE tenant_id = ?1 AND token_hash = ?2 \
             AND ended_at IS NULL AND expires_at > ?3",
        )?
        .execute(params![scope.tenant_id, hash, now.unix_micros()])?;
    Ok(n == 1)
}

pub fn purge(conn: &Connection, before: Timestamp, limit: u32) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM ui_tokens WHERE rowid IN \
             (SELECT rowid FROM ui_tokens WHERE expires_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before.unix_micros(), limit])?;
    Ok(n as u64)
}
