//! How the sweeper's purges (old events, idempotency keys, deliveries,
//! web-page tokens) bound a batch: each deletes, across tenants, the rows
//! older than a time, where that time is the purge's own bound or, when
//! more rows than the batch's limit are older, just past the limit-th
//! oldest (rows that share its time go too).
//!
//! A read and then a DELETE by time alone, rather than one DELETE of a
//! locked, limited subquery: Citus runs a statement across tenants only
//! without row locks or a limited subquery in it. Two replicas purging at
//! once delete the same rows; the second waits for the first's row locks
//! and finds them gone.

use chrono::{DateTime, Duration, Utc};

use super::pool::Client;
use super::rows::get;
use crate::StoreError;

/// The time a batch of at most about `limit` rows ends before. `nth`
/// selects the time of the rows before `$1` in order, at offset `$2`.
pub async fn bound(
    conn: &Client,
    nth: &str,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<DateTime<Utc>, StoreError> {
    let offset = i64::from(limit.max(1) - 1);
    let Some(row) = conn.query_opt(nth, &[&before, &offset]).await? else {
        return Ok(before);
    };
    let last: DateTime<Utc> = get(&row, 0)?;
    // PostgreSQL keeps microseconds: the next instant after `last`.
    Ok((last + Duration::microseconds(1)).min(before))
}
