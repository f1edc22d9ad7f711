//! The identity of a unit of work, and the transaction that carries it.
//!
//! Row-level security reads `keyinfra.user_id` and `keyinfra.user_role`, which
//! [`Database::begin`](crate::Database::begin) sets with `set_config(..., true)` (local to
//! the transaction) in the same round trip as `BEGIN`, and a group-commit batch
//! ([`certificates::record_issued_batch`](crate::certificates::record_issued_batch)) sets
//! the same way inside its one implicit transaction. They vanish at COMMIT or ROLLBACK, so
//! a pooled connection never carries one request's identity into the next.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::types::UserRole;

/// Who a transaction acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// No identity: row-level security shows no per-user row (public data such as CA
    /// certificates and CRLs stays readable).
    Anonymous,
    /// A logged-in user; an ADMIN sees every row, a USER only their own.
    User { id: Uuid, role: UserRole },
    /// Background jobs and operator commands: sees every row.
    System,
    /// The bearer of an access token. The database checks the claims against the users row
    /// as the transaction begins (`keyinfra_check_token`): a deleted or disabled user, a
    /// changed role, or a session epoch that has moved on (password or role changed, user
    /// disabled or enabled, logout; migration 0015) fails the BEGIN with
    /// [`DbError::Unauthenticated`](crate::DbError::Unauthenticated).
    Token {
        id: Uuid,
        role: UserRole,
        session_epoch: OffsetDateTime,
    },
}

/// What row-level security reads for an [`Actor`]: the `keyinfra.user_id` and
/// `keyinfra.user_role` settings, and for a bearer token the issue time to check first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// A hyphenated UUID, or empty for no user.
    pub user_id: String,
    /// `ADMIN`, `USER`, `SYSTEM`, or empty.
    pub role: &'static str,
    /// Set for [`Actor::Token`]: `keyinfra_check_token` runs before anything else.
    pub token_epoch: Option<OffsetDateTime>,
}

impl Actor {
    pub(crate) fn identity(&self) -> Identity {
        let (user_id, role, token_epoch) = match self {
            Actor::Anonymous => (String::new(), "", None),
            Actor::User { id, role } => (id.hyphenated().to_string(), role.as_str(), None),
            Actor::System => (String::new(), "SYSTEM", None),
            Actor::Token {
                id,
                role,
                session_epoch,
            } => (
                id.hyphenated().to_string(),
                role.as_str(),
                Some(*session_epoch),
            ),
        };
        Identity {
            user_id,
            role,
            token_epoch,
        }
    }

    /// `BEGIN` plus the identity, as one simple-protocol statement. The values are a UUID
    /// and a fixed keyword, formatted by us: nothing from a client is spliced in.
    pub(crate) fn begin_statement(&self) -> String {
        let Identity {
            user_id,
            role,
            token_epoch,
        } = self.identity();
        let set_identity = format!(
            "BEGIN; SELECT set_config('keyinfra.user_id', '{user_id}', true), \
             set_config('keyinfra.user_role', '{role}', true)"
        );
        match token_epoch {
            // The check runs before BEGIN so that a refused token leaves the connection idle
            // (the rest of the message is skipped), not inside an aborted transaction.
            // The epoch is compared for equality, so it goes as exact microseconds since
            // 1970 (no float on the way).
            Some(epoch) => format!(
                "SELECT keyinfra_check_token('{user_id}', '{role}', \
                 timestamptz 'epoch' + {} * interval '1 microsecond'); {set_identity}",
                epoch_micros(epoch)
            ),
            None => set_identity,
        }
    }
}

/// Microseconds since 1970: a session epoch's exact value (PostgreSQL's precision).
pub fn epoch_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The inverse of [`epoch_micros`].
pub fn epoch_from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()
}

/// A transaction with an identity. Dropping it without [`Tx::commit`] rolls it back.
#[derive(Debug)]
pub struct Tx {
    pub(crate) inner: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl Tx {
    pub(crate) fn new(inner: sqlx::Transaction<'static, sqlx::Postgres>) -> Self {
        Self { inner }
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.inner
    }

    /// Overrides the pool's statement timeout for the rest of this transaction (batch work).
    pub async fn set_statement_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<(), DbError> {
        sqlx::query("SELECT set_config('statement_timeout', $1, true)")
            .bind(format!("{}ms", timeout.as_millis()))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.inner.commit().await.map_err(DbError::from)
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.inner.rollback().await.map_err(DbError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_statement_sets_both_settings() {
        let id = Uuid::nil();
        let sql = Actor::User {
            id,
            role: UserRole::Admin,
        }
        .begin_statement();
        assert!(sql.starts_with("BEGIN;"));
        assert!(sql.contains("'00000000-0000-0000-0000-000000000000'"));
        assert!(sql.contains("'ADMIN'"));
        let anon = Actor::Anonymous.begin_statement();
        assert!(
            anon.contains("'keyinfra.user_id', ''") && anon.contains("'keyinfra.user_role', ''")
        );
        assert!(Actor::System.begin_statement().contains("'SYSTEM'"));
        let token = Actor::Token {
            id,
            role: UserRole::User,
            session_epoch: OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(1_500_001),
        };
        let sql = token.begin_statement();
        assert!(sql.starts_with("SELECT keyinfra_check_token("), "{sql}");
        assert!(
            sql.contains(
                "timestamptz 'epoch' + 1500001 * interval '1 microsecond'); BEGIN; SELECT set_config('keyinfra.user_id'"
            ),
            "{sql}"
        );
        let at = OffsetDateTime::UNIX_EPOCH
            + time::Duration::days(20_000)
            + time::Duration::microseconds(123_456);
        assert_eq!(epoch_from_micros(epoch_micros(at)), Some(at));
    }
}
