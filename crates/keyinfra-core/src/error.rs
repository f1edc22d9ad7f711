use keyinfra_db::DbError;
use keyinfra_pki::PkiError;

use crate::ErrorCode;

/// Every failure of a use case. The server maps each variant to one HTTP answer
/// (`keyinfra_server::Problem`); `code`s are stable.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// Every serial drawn collided: with 127 random bits this means the random number
    /// generator is broken, not bad luck.
    #[error(
        "no unique serial number after {attempts} attempts; the random number generator is suspect"
    )]
    SerialRetriesExhausted { attempts: u32 },
    /// The caller's role does not allow this.
    #[error("this requires the ADMIN role")]
    Forbidden,
    /// The object does not exist, or the caller may not see it.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A valid request that conflicts with the current state (409).
    #[error("{detail}")]
    Conflict { code: ErrorCode, detail: String },
    /// A well-formed request that breaks a rule (422).
    #[error("{detail}")]
    Invalid { code: ErrorCode, detail: String },
    /// The credential presented is recognised but may not do this (403 with its own code):
    /// a revoked or expired TLS client certificate, one KeyInfra did not issue.
    #[error("{detail}")]
    Denied { code: ErrorCode, detail: String },
    /// Wrong username or password (the same answer for both).
    #[error("the username or password is wrong")]
    InvalidCredentials,
    /// The access token is missing, invalid, expired or revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many failed logins: retry after this long.
    #[error("too many failed logins; retry later")]
    Throttled(time::Duration),
    /// Too many requests of this kind from this caller: retry after this long (429).
    #[error("too many requests; retry later")]
    RateLimited(time::Duration),
    /// The server is saturated with this kind of work (password hashing, RSA key
    /// generation): retry after this long (503). Nothing was done.
    #[error("the server is busy with {what}; retry later")]
    Busy {
        what: &'static str,
        retry_after: time::Duration,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(code: ErrorCode, detail: impl Into<String>) -> Self {
        CoreError::Invalid {
            code,
            detail: detail.into(),
        }
    }
}
