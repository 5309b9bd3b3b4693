//! Storage failures. Handlers map them: `NotFound` → 404, `Transition` →
//! 409, `Unavailable` → 503, the rest → 500 (logged, never shown).

use hydracore_domain::transition::TransitionError;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgDatabaseError, PgSeverity};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("workflow not found")]
    NotFound,
    /// The request's key (`Scope::credential_id`) was revoked after it was
    /// looked up.
    #[error("the request's key has been revoked")]
    KeyRevoked,
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The database cannot be reached now; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A setting that makes no sense, found at connect time.
    #[error("{0}")]
    Config(String),
    /// A stored value this build cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A failure of a call on the pipelined PostgreSQL connections
    /// (`postgres::pipelined`), which use tokio-postgres.
    #[error("database error: {0}")]
    Pipelined(tokio_postgres::Error),
    /// A failure of a SQLite connection (the writer's or a reader's), as
    /// text: one failed commit fails every write of its batch.
    #[error("database error: {0}")]
    Sqlite(String),
}

impl StoreError {
    /// Whether the PostgreSQL connection that produced this error can serve
    /// another request: yes when the database answered (a refused
    /// statement, a domain rule, a row this build cannot read); no when the
    /// failure may have left it broken or mid-conversation. (`Unavailable`
    /// also covers a change that lost too many races, on a healthy
    /// connection: closing it then is a rare, harmless waste.)
    pub(crate) fn leaves_connection_usable(&self) -> bool {
        match self {
            StoreError::NotFound
            | StoreError::KeyRevoked
            | StoreError::Transition(_)
            | StoreError::Config(_)
            | StoreError::Corrupt(_) => true,
            // Never from a pooled connection: the pipelined ones are
            // replaced by their own rule (closed or not).
            StoreError::Pipelined(_) => true,
            StoreError::Database(e) => match e {
                // Unless the server ended the session with it (FATAL: an
                // idle-session timeout, a conflict with recovery).
                sqlx::Error::Database(db) => {
                    !db.try_downcast_ref::<PgDatabaseError>().is_some_and(|pg| {
                        matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
                    })
                }
                // sqlx reads what a failed decode left unread before the
                // connection's next statement.
                sqlx::Error::RowNotFound
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnIndexOutOfBounds { .. }
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::Decode(_)
                | sqlx::Error::TypeNotFound { .. } => true,
                _ => false,
            },
            StoreError::Unavailable(_) | StoreError::Migrate(_) | StoreError::Sqlite(_) => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(ref db) if db.message().contains("database is locked") => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some(KEY_REVOKED) => {
                StoreError::KeyRevoked
            }
            sqlx::Error::Database(ref db)
                if db.code().as_deref().is_some_and(is_unavailable_sqlstate) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let cut = e.is_closed()
            || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
            // The server ended the session (an idle-session timeout, a
            // conflict with recovery): its connection is gone.
            || e.as_db_error()
                .is_some_and(|db| matches!(db.severity(), "FATAL" | "PANIC"));
        match e.code().map(tokio_postgres::error::SqlState::code) {
            Some(KEY_REVOKED) => StoreError::KeyRevoked,
            Some(code) if is_unavailable_sqlstate(code) => StoreError::Unavailable(e.to_string()),
            _ if cut => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Pipelined(e),
        }
    }
}

/// What the key check raises: `hydracore_enter` (PostgreSQL migration 0005)
/// and its copies in the request functions (0010).
const KEY_REVOKED: &str = "HC401";

/// PostgreSQL states that mean "the server is not serving now" rather than
/// "this query is wrong": connection failures (class 08), shutdown and
/// start-up (57P01..57P03), and a full connection table (53300).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Migration failures, with the one an operator is likely to meet (an older
/// binary on a database a newer one migrated) said plainly.
pub(crate) fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(version) => StoreError::Config(format!(
            "refusing to start: the database has migration {version}, which this build of \
             HydraCore does not know; it was migrated by a newer HydraCore, so run that \
             version (or newer) instead"
        )),
        MigrateError::Execute(inner) => match StoreError::from(inner) {
            StoreError::Database(inner) => StoreError::Migrate(MigrateError::Execute(inner)),
            other => other,
        },
        other => StoreError::Migrate(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_from_a_newer_build_is_a_clear_config_error() {
        let e = migrate_error(MigrateError::VersionMissing(20990101));
        assert!(matches!(&e, StoreError::Config(m) if m.contains("newer HydraCore")));
    }

    #[test]
    fn connection_failures_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(io)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(is_unavailable_sqlstate("57P03"));
        assert!(is_unavailable_sqlstate("08006"));
        assert!(!is_unavailable_sqlstate("23505"));
    }

    #[test]
    fn only_failures_the_database_answered_leave_a_connection_reusable() {
        let io = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "cut");
        assert!(StoreError::NotFound.leaves_connection_usable());
        assert!(StoreError::KeyRevoked.leaves_connection_usable());
        assert!(StoreError::Corrupt("a bad row".into()).leaves_connection_usable());
        assert!(!StoreError::from(sqlx::Error::Io(io())).leaves_connection_usable());
        assert!(
            !StoreError::Database(sqlx::Error::Protocol("odd".into())).leaves_connection_usable()
        );
        assert!(!StoreError::Unavailable("gone".into()).leaves_connection_usable());
        assert!(StoreError::Database(sqlx::Error::RowNotFound).leaves_connection_usable());
    }
}
