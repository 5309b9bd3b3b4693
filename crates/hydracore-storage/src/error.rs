//! Storage failures. Handlers map them: `NotFound` → 404, `Transition` →
//! 409, `Unavailable` → 503, the rest → 500 (logged, never shown).

use hydracore_domain::transition::TransitionError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("workflow not found")]
    NotFound,
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
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(ref db) if db.message().contains("database is locked") => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
}
