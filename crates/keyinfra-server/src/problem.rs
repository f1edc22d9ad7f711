//! RFC 9457 problem details: every error response of KeyInfra.
//!
//! The `code` is stable and documented; clients branch on it, never on `title` or `detail`.
//! Internal failures are logged here, once, with their cause, and reach the client only as
//! a generic 500 without SQL, paths or stack traces.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyinfra_core::ErrorCode;
use keyinfra_db::DbError;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// The `WWW-Authenticate` challenge of a 401: Bearer for the API, Basic for EST.
    #[serde(skip)]
    pub www_authenticate: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!(
                "https://keyinfra.dev/problems/{}",
                code.as_str().replace('_', "-")
            ),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            retry_after: None,
            www_authenticate: None,
        }
    }

    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.type_uri = format!(
            "https://keyinfra.dev/problems/{}",
            code.as_str().replace('_', "-")
        );
        self.code = code;
        self
    }

    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// The single mapping from storage failures to answers.
impl From<DbError> for Problem {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable { retry_after, .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseUnavailable,
                "the database is busy or unreachable; retry shortly",
            )
            .retry_after(retry_after),
            DbError::Connect { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseUnavailable,
                "the database is unreachable; retry shortly",
            )
            .retry_after(Duration::from_secs(5)),
            DbError::RetryableConflict => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TransactionConflict,
                "the request conflicted with a concurrent one; retry it",
            )
            .retry_after(Duration::from_secs(1)),
            DbError::SchemaNotCurrent { .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::SchemaNotCurrent,
                "the database schema is being migrated; retry shortly",
            )
            .retry_after(Duration::from_secs(5)),
            DbError::UniqueViolation { .. } | DbError::SerialCollision => Problem::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "conflicts with an existing object",
            ),
            DbError::ForeignKeyViolation { .. } => Problem::new(
                StatusCode::CONFLICT,
                ErrorCode::ReferenceConflict,
                "refers to an object that does not exist, or is still referred to",
            ),
            // The use cases check every rule first, so this is a rule they missed: logged
            // with the constraint's name for the operator; the client never sees a table,
            // column or constraint.
            DbError::CheckViolation { constraint } => {
                tracing::warn!(%constraint, "the database refused values a use case let through");
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::ConstraintViolation,
                    "the request's values break a rule of the stored data",
                )
            }
            DbError::Unauthenticated => unauthorized("the access token is no longer valid"),
            // The issuer turns this into its own answer; only a path that forgot to lands here.
            DbError::ChallengeSpent => Problem::new(
                StatusCode::CONFLICT,
                ErrorCode::ChallengeUsed,
                "the enrollment challenge was used, withdrawn or its owner disabled meanwhile",
            ),
            // Row-level security hid or refused a row: never reveal that it exists.
            DbError::PermissionDenied => {
                Problem::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such object")
            }
            internal @ (DbError::Migration(_) | DbError::Internal(_)) => {
                tracing::error!(error = %internal, "internal database error");
                internal_error()
            }
        }
    }
}

/// The single mapping from use-case failures to answers.
impl From<keyinfra_core::CoreError> for Problem {
    fn from(error: keyinfra_core::CoreError) -> Self {
        use keyinfra_core::CoreError as E;
        match error {
            E::Db(db) => db.into(),
            E::Forbidden => Problem::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this requires the ADMIN role",
            ),
            E::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("no such {what}"),
            ),
            E::Conflict { code, detail } => Problem::new(StatusCode::CONFLICT, code, detail),
            E::Denied { code, detail } => Problem::new(StatusCode::FORBIDDEN, code, detail),
            E::Invalid { code, detail } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
            }
            E::InvalidCredentials => unauthorized("the username or password is wrong")
                .with_code(ErrorCode::InvalidCredentials),
            E::Unauthenticated(detail) => unauthorized(detail),
            E::Throttled(wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyAttempts,
                "too many failed logins; wait before trying again",
            )
            .retry_after(Duration::from_secs(
                wait.whole_seconds().max(1).unsigned_abs(),
            )),
            E::RateLimited(wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many requests of this kind; wait before trying again",
            )
            .retry_after(Duration::from_secs(
                wait.whole_seconds().max(1).unsigned_abs(),
            )),
            E::Busy { what, retry_after } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ServerBusy,
                format!(
                    "the server is saturated with {}; nothing was done, try again shortly",
                    what.replace('_', " ")
                ),
            )
            .retry_after(Duration::from_secs(
                retry_after.whole_seconds().max(1).unsigned_abs(),
            )),
            internal @ (E::Pki(_) | E::SerialRetriesExhausted { .. } | E::Internal(_)) => {
                tracing::error!(error = %internal, "internal error");
                internal_error()
            }
        }
    }
}

/// 401 with `WWW-Authenticate: Bearer` (RFC 6750).
pub fn unauthorized(detail: &str) -> Problem {
    let mut problem = Problem::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, detail);
    problem.www_authenticate = Some("Bearer realm=\"keyinfra\"");
    problem
}

pub fn internal_error() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "the server failed; the error is logged for the operator",
    )
}

pub(crate) async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such resource",
    )
}

pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this resource does not support that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_map_to_stable_codes_without_internals() {
        let unavailable = Problem::from(DbError::Unavailable {
            reason: keyinfra_db::UnavailableReason::PoolExhausted,
            retry_after: Duration::from_secs(2),
        });
        assert_eq!(
            (unavailable.status, unavailable.code),
            (503, ErrorCode::DatabaseUnavailable)
        );
        assert_eq!(unavailable.retry_after, Some(Duration::from_secs(2)));

        let internal = Problem::from(DbError::Internal(
            "SQLSTATE XX000: relation foo at /var/lib".into(),
        ));
        assert_eq!(
            (internal.status, internal.code),
            (500, ErrorCode::InternalError)
        );
        assert!(!internal.detail.contains("SQLSTATE") && !internal.detail.contains("/var/lib"));

        assert_eq!(Problem::from(DbError::PermissionDenied).status, 404);
        assert_eq!(
            Problem::from(DbError::UniqueViolation {
                constraint: "x".into()
            })
            .status,
            409
        );
        assert_eq!(
            Problem::from(DbError::CheckViolation {
                constraint: "x".into()
            })
            .status,
            422
        );
        // No answer names a database object.
        for error in [
            DbError::CheckViolation {
                constraint: "certificates_sans_valid".into(),
            },
            DbError::UniqueViolation {
                constraint: "users_username_key".into(),
            },
            DbError::ForeignKeyViolation {
                constraint: "certificates_owner_id_fkey".into(),
            },
        ] {
            let shown = serde_json::to_string(&Problem::from(error)).unwrap();
            for object in ["certificates", "users", "_key", "_fkey", "sans_valid"] {
                assert!(!shown.contains(object), "{shown}");
            }
        }
        assert_eq!(Problem::from(DbError::RetryableConflict).status, 503);
    }

    #[test]
    fn the_response_is_problem_json_with_retry_after() {
        let response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DatabaseUnavailable,
            "x",
        )
        .retry_after(Duration::from_millis(1500))
        .into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
