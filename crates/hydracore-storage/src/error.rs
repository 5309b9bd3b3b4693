//! Storage failures: the database's, never the domain's (those are values,
//! `ChangeOutcome` and `UseCaseError`). The HTTP layer maps them:
//! `KeyRevoked` → 401, `Unavailable` → 503, the rest → 500 (logged, never
//! shown).
//!
//! No variant names a driver: each backend turns its driver's errors into
//! these (`From` impls below), deciding there what is a connection failure
//! worth retrying and what a refused statement.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request's key (`Scope::credential_id`) was revoked after it was
    /// looked up.
    #[error("the request's key has been revoked")]
    KeyRevoked,
    /// The database cannot be reached now, or is shutting down or starting
    /// up, or the store is closed; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A setting that makes no sense, or a database this build must not
    /// serve (a migration it does not know), found at connect time.
    #[error("{0}")]
    Config(String),
    /// A stored value this build cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database refused or failed a statement (a constraint, a missing
    /// privilege, a failing disk): a bug or an operator's problem, not the
    /// caller's.
    #[error("database error: {message}")]
    Database {
        /// The driver's error with its causes, for the log.
        message: String,
        /// Whether the connection that failed can serve another request
        /// ([`StoreError::leaves_connection_usable`]).
        reusable: bool,
    },
}

impl StoreError {
    /// A failure of the database that says nothing of the connection's
    /// state (the SQLite backend's connections are its own threads').
    pub fn database(message: impl Into<String>) -> Self {
        StoreError::Database {
            message: message.into(),
            reusable: false,
        }
    }

    /// Whether the PostgreSQL connection that produced this error can serve
    /// another request: yes when the database answered (a refused
    /// statement, a domain rule, a row this build cannot read); no when the
    /// failure may have left it broken or mid-conversation. (`Unavailable`
    /// also covers a change that lost too many races, on a healthy
    /// connection: closing it then is a rare, harmless waste.)
    pub(crate) fn leaves_connection_usable(&self) -> bool {
        match self {
            StoreError::KeyRevoked | StoreError::Config(_) | StoreError::Corrupt(_) => true,
            StoreError::Database { reusable, .. } => *reusable,
            StoreError::Unavailable(_) => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::database(e.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let message = describe(&e);
        let fatal = e
            .as_db_error()
            .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"));
        match e.code().map(tokio_postgres::error::SqlState::code) {
            Some(KEY_REVOKED) => StoreError::KeyRevoked,
            Some(code) if is_unavailable_sqlstate(code) => StoreError::Unavailable(message),
            // The server ended the session (an idle-session timeout, a
            // conflict with recovery), or the connection is gone.
            _ if fatal || e.is_closed() || is_io(&e) => StoreError::Unavailable(message),
            // The server refused the statement and is ready for the next.
            _ if e.as_db_error().is_some() => StoreError::Database {
                message,
                reusable: true,
            },
            // Anything else (a message the driver could not parse, a value
            // it could not encode) may have left the conversation out of
            // step: the connection is closed rather than trusted.
            _ => StoreError::Database {
                message,
                reusable: false,
            },
        }
    }
}

/// The error and its causes: tokio-postgres's own text names only the kind
/// ("db error"); the server's message is its source.
fn describe(e: &tokio_postgres::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn is_io(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// What the key check raises: `hydracore_enter` and its copies in the
/// request functions (PostgreSQL migration 0001).
const KEY_REVOKED: &str = "HC401";

/// PostgreSQL states that mean "the server is not serving now" rather than
/// "this query is wrong": connection failures (class 08), shutdown and
/// start-up (57P01..57P03), a full connection table (53300), and a
/// statement ended by `statement_timeout` (57014): worth a retry (503).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "57014")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_states_that_mean_not_serving_now_are_unavailable() {
        assert!(is_unavailable_sqlstate("57P03"));
        assert!(is_unavailable_sqlstate("08006"));
        assert!(!is_unavailable_sqlstate("23505"));
    }

    #[test]
    fn only_failures_the_database_answered_leave_a_connection_reusable() {
        assert!(StoreError::KeyRevoked.leaves_connection_usable());
        assert!(StoreError::Corrupt("a bad row".into()).leaves_connection_usable());
        assert!(!StoreError::Unavailable("gone".into()).leaves_connection_usable());
        assert!(!StoreError::database("a failing disk").leaves_connection_usable());
        let refused = StoreError::Database {
            message: "db error: ERROR: duplicate key".into(),
            reusable: true,
        };
        assert!(refused.leaves_connection_usable());
    }

    #[test]
    fn a_busy_sqlite_file_is_unavailable() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(StoreError::from(busy), StoreError::Unavailable(_)));
    }
}
