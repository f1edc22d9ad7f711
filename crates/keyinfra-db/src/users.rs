//! The `users` table. Authentication rules live in the core; this is storage only.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;
use crate::types::UserRole;

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    /// A PHC string; never a plaintext password.
    pub password_hash: &'a str,
    pub role: UserRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub role: UserRole,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub password_changed_at: OffsetDateTime,
}

/// Inserts a user. A name taken in any letter case fails with
/// `UniqueViolation { constraint: "users_username_lower_key" }`.
pub async fn insert(tx: &mut Tx, user: &NewUser<'_>) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING id",
        user.username,
        user.password_hash,
        user.role as UserRole,
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The user with this id, if the current actor may see it.
pub async fn find(tx: &mut Tx, id: Uuid) -> Result<Option<UserRecord>, DbError> {
    let user = sqlx::query_as!(
        UserRecord,
        r#"SELECT id, username, role AS "role: UserRole", disabled, created_at, updated_at,
                  password_changed_at
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(user)
}

/// Deletes a user; returns whether a row was deleted. The caller revokes the user's
/// certificates first, in the same transaction.
pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<bool, DbError> {
    let result = sqlx::query!("DELETE FROM users WHERE id = $1", id)
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected() == 1)
}
