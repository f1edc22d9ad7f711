//! Every storage failure, classified so that the layers above can answer it precisely.
//!
//! The classification follows PostgreSQL's SQLSTATE classes (the design's "database-level
//! error handling"): the caller's mistakes (constraint violations) are kept apart from the
//! database being unavailable (which callers turn into 503 + Retry-After) and from our own
//! bugs (`Internal`, never shown to clients in detail).

use std::time::Duration;

/// Why the database could not serve a request right now. All of these are transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnavailableReason {
    /// Every pooled connection was busy for the whole acquire timeout.
    PoolExhausted,
    /// The server could not be reached, or the connection broke.
    ConnectionLost,
    /// A statement ran past `statement_timeout`, or the server is shutting down.
    Timeout,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database is unavailable ({reason:?}); retry after {retry_after:?}")]
    Unavailable {
        reason: UnavailableReason,
        retry_after: Duration,
    },

    #[error("cannot connect to PostgreSQL at {target} ({setting}): {message}")]
    Connect {
        target: String,
        setting: &'static str,
        message: String,
    },

    /// The serial number is already used by another certificate of the same CA.
    #[error("serial number already used by this certificate authority")]
    SerialCollision,

    /// A unique constraint other than the serial registry's.
    #[error("conflicts with an existing row ({constraint})")]
    UniqueViolation { constraint: String },

    /// A referenced row does not exist (or, with a RESTRICT, is still referenced).
    #[error("a referenced row does not exist or is still referenced ({constraint})")]
    ForeignKeyViolation { constraint: String },

    /// A CHECK constraint or a guard trigger refused the values.
    #[error("refused by constraint {constraint}")]
    CheckViolation { constraint: String },

    /// Row-level security or a privilege refused the operation for the current actor.
    #[error("not permitted for the current identity")]
    PermissionDenied,

    /// The access token's user no longer exists, is disabled, changed role or password.
    #[error("the access token is no longer valid")]
    Unauthenticated,

    /// An enrollment challenge a certificate was issued under was used by another request,
    /// withdrawn or its owner disabled before the certificate was recorded (KI410,
    /// migration 0032): the certificate is not recorded.
    #[error("the enrollment challenge is no longer usable")]
    ChallengeSpent,

    /// A serialization failure or deadlock: the whole transaction may be retried.
    #[error("transaction conflict; retry")]
    RetryableConflict,

    #[error(
        "the schema is not current: the database is at version {found}, this build expects {expected}"
    )]
    SchemaNotCurrent { found: i64, expected: i64 },

    #[error("migration failed: {0}")]
    Migration(String),

    /// Anything else: a bug on our side, or a misconfigured database.
    #[error("internal database error: {0}")]
    Internal(String),
}

/// How long clients are told to wait when the database is unavailable.
const RETRY_AFTER: Duration = Duration::from_secs(2);

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        let unavailable = |reason| DbError::Unavailable {
            reason,
            retry_after: RETRY_AFTER,
        };
        match &error {
            sqlx::Error::PoolTimedOut => unavailable(UnavailableReason::PoolExhausted),
            sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                unavailable(UnavailableReason::ConnectionLost)
            }
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
                unavailable(UnavailableReason::ConnectionLost)
            }
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let constraint = db.constraint().unwrap_or("unknown").to_owned();
                match code.as_str() {
                    "23505" if constraint == "certificate_serials_ca_serial_key" => {
                        DbError::SerialCollision
                    }
                    "23505" => DbError::UniqueViolation { constraint },
                    "23503" => DbError::ForeignKeyViolation { constraint },
                    "23514" | "23502" | "23000" | "22001" | "22023" => {
                        DbError::CheckViolation { constraint }
                    }
                    "42501" => DbError::PermissionDenied,
                    "KI401" => DbError::Unauthenticated,
                    "KI410" => DbError::ChallengeSpent,
                    "40001" | "40P01" => DbError::RetryableConflict,
                    // query_canceled (statement_timeout), admin_shutdown, crash_shutdown,
                    // cannot_connect_now, too_many_connections, and the connection class.
                    "57014" | "57P01" | "57P02" | "57P03" | "53300" => {
                        unavailable(UnavailableReason::Timeout)
                    }
                    c if c.starts_with("08") => unavailable(UnavailableReason::ConnectionLost),
                    _ => DbError::Internal(format!("SQLSTATE {code}: {}", db.message())),
                }
            }
            _ => DbError::Internal(error.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(inner) => match DbError::from(inner) {
                unavailable @ DbError::Unavailable { .. } => unavailable,
                other => DbError::Migration(other.to_string()),
            },
            other => DbError::Migration(other.to_string()),
        }
    }
}

impl DbError {
    /// What a request that found no connection within the acquire timeout gets; also for
    /// work that waited as long for a turn on one (group commit's queue).
    pub fn pool_exhausted() -> Self {
        DbError::Unavailable {
            reason: UnavailableReason::PoolExhausted,
            retry_after: RETRY_AFTER,
        }
    }
}
