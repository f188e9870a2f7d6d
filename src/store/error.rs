//! `StoreError`: errors with meaning at the storage boundary, and the mapping of a database's
//! unique violation to the attribute it protects, written once for both backends.

use uuid::Uuid;

use crate::scim::ScimError;

/// Errors with meaning at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the payload names the attribute.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The caller's read-modify-write function refused the change; nothing was written.
    #[error(transparent)]
    Rejected(#[from] ScimError),
    /// The write adds a user-attribute key the organization has not defined (checked in
    /// the write's transaction); the caller words the refusal for its profile.
    #[error("user attribute {0:?} is not defined")]
    UndefinedUserAttribute(String),
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database could not be reached or is going away: worth a 503 and a retry, not a
    /// 500. Besides socket errors and an exhausted pool, that is a connection the server
    /// ended (SQLSTATE class 57, e.g. `57P01` on shutdown) or a connection exception
    /// (class 08): a pooled connection finds out at its next statement.
    ///
    /// A statement stopped by the statement timeout ([`StoreError::is_statement_timeout`]) is
    /// one too: the query may well succeed once the database is less busy, and the client is
    /// told when to retry. So is a statement whose prepared form a migration made stale
    /// (`sql::is_stale_plan`). And so is a transaction Postgres rolled back to end a deadlock
    /// or a serialization failure (SQLSTATE class 40): nothing of it was written, and the
    /// same request made again goes through (two statements that change the memberships of
    /// the same users lock their rows in id order, but a transaction of several such
    /// statements can still meet another in the opposite order).
    pub fn is_unavailable(&self) -> bool {
        let unreachable = match self {
            StoreError::Backend(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => true,
            StoreError::Backend(sqlx::Error::Database(e)) => e.code().is_some_and(|code| {
                code.starts_with("57") || code.starts_with("08") || code.starts_with("40")
            }),
            _ => false,
        };
        // A statement prepared before a migration changed its result's type: the connection
        // has dropped its statements, and the retry prepares them afresh.
        let stale = matches!(self, StoreError::Backend(e) if super::sql::is_stale_plan(e));
        unreachable || stale || self.is_statement_timeout()
    }

    /// The database stopped a statement that ran past [`StoreOptions::statement_timeout`]:
    /// Postgres's `query_canceled` (SQLSTATE 57014) or SQLite's `SQLITE_INTERRUPT` (9), which
    /// the SQLite store's progress handler causes at the deadline.
    pub fn is_statement_timeout(&self) -> bool {
        match self {
            StoreError::Backend(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|code| code == "57014" || code == "9")
            }
            _ => false,
        }
    }
}

/// The rejection for a member id that is not a user of the organization.
pub fn unknown_member(id: &Uuid) -> StoreError {
    StoreError::Rejected(ScimError::invalid_value(format!(
        "member {id} is not a user of this organization"
    )))
}

/// Maps a unique violation to `Conflict(attribute)`; other errors pass through.
pub fn conflict_as(attribute: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(attribute),
        _ => StoreError::Backend(e),
    }
}
