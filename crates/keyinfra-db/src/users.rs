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
    /// Where the user's expiry alerts go.
    pub email: Option<&'a str>,
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
    pub email: Option<String>,
    /// The user's issuance policy; `None` is the default policy (migration 0016).
    pub policy_id: Option<Uuid>,
}

/// Inserts a user. A name taken in any letter case fails with
/// `UniqueViolation { constraint: "users_username_lower_key" }`.
pub async fn insert(tx: &mut Tx, user: &NewUser<'_>) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO users (username, password_hash, role, email) VALUES ($1, $2, $3, $4) RETURNING id",
        user.username,
        user.password_hash,
        user.role as UserRole,
        user.email,
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
                  password_changed_at, email, policy_id
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

/// What a login needs to know about a name (case-insensitive), before there is an identity.
/// The database answers only a transaction without identity, once per transaction
/// (migration 0014).
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub role: UserRole,
    pub disabled: bool,
}

pub async fn login_lookup(tx: &mut Tx, username: &str) -> Result<Option<LoginRecord>, DbError> {
    let row = sqlx::query_as!(
        LoginRecord,
        r#"SELECT id AS "id!", username AS "username!", password_hash AS "password_hash!",
                  role AS "role!: UserRole", disabled AS "disabled!"
           FROM keyinfra_login_lookup($1)"#,
        username
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The id of the user with this name (case-insensitive), if the actor may see it. For
/// naming users (the CLI's `--owner`); it reads no password hash, unlike [`login_lookup`].
pub async fn id_by_username(tx: &mut Tx, username: &str) -> Result<Option<Uuid>, DbError> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM users WHERE lower(username) = lower($1)",
        username
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(id)
}

/// True when no user exists (first start).
pub async fn none_exist(tx: &mut Tx) -> Result<bool, DbError> {
    let empty = sqlx::query_scalar!(r#"SELECT keyinfra_users_empty() AS "empty!""#)
        .fetch_one(tx.conn())
        .await?;
    Ok(empty)
}

/// One page of users in creation order, after the keyset `after` (created_at, id).
pub async fn list(
    tx: &mut Tx,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<UserRecord>, DbError> {
    let (after_at, after_id) = match after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        UserRecord,
        r#"SELECT id, username, role AS "role: UserRole", disabled, created_at, updated_at,
                  password_changed_at, email, policy_id
           FROM users
           WHERE $1::timestamptz IS NULL OR (created_at, id) > ($1, $2::uuid)
           ORDER BY created_at, id
           LIMIT $3"#,
        after_at,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Changes role and/or the disabled flag; returns the updated user, or None if not visible.
pub async fn update_status(
    tx: &mut Tx,
    id: Uuid,
    role: Option<UserRole>,
    disabled: Option<bool>,
) -> Result<Option<UserRecord>, DbError> {
    let row = sqlx::query_as!(
        UserRecord,
        r#"UPDATE users SET role = coalesce($2, role), disabled = coalesce($3, disabled)
           WHERE id = $1
           RETURNING id, username, role AS "role: UserRole", disabled, created_at, updated_at,
                     password_changed_at, email, policy_id"#,
        id,
        role as Option<UserRole>,
        disabled
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// Sets or clears a user's e-mail address; returns the updated user, or None if not visible.
pub async fn set_email(
    tx: &mut Tx,
    id: Uuid,
    email: Option<&str>,
) -> Result<Option<UserRecord>, DbError> {
    let row = sqlx::query_as!(
        UserRecord,
        r#"UPDATE users SET email = $2 WHERE id = $1
           RETURNING id, username, role AS "role: UserRole", disabled, created_at, updated_at,
                     password_changed_at, email, policy_id"#,
        id,
        email
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The stored hash of the transaction's own user (for verifying the current password);
/// None for any other `id`. keyinfra_app cannot read the column itself, and the database
/// hands out one hash per transaction (migration 0014).
pub async fn password_hash(tx: &mut Tx, id: Uuid) -> Result<Option<String>, DbError> {
    let hash = sqlx::query_scalar!(
        r#"SELECT CASE WHEN keyinfra_current_user_id() = $1 THEN keyinfra_own_password_hash() END
                  AS "hash""#,
        id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(hash)
}

/// Replaces the password hash. `changed` says whether this is a password change (which ends
/// every token issued before it) or only a rehash under new parameters (which does not).
pub async fn set_password_hash(
    tx: &mut Tx,
    id: Uuid,
    password_hash: &str,
    changed: bool,
) -> Result<bool, DbError> {
    let result = sqlx::query!(
        "UPDATE users SET password_hash = $2,
                password_changed_at = CASE WHEN $3 THEN now() ELSE password_changed_at END
         WHERE id = $1",
        id,
        password_hash,
        changed
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The usernames of those of `ids` the actor may see (pages show names, not ids).
pub async fn usernames(tx: &mut Tx, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, DbError> {
    let rows = sqlx::query!(
        "SELECT id, username FROM users WHERE id = ANY($1::uuid[])",
        ids
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.username)).collect())
}

/// The user's session epoch (migration 0015): what a token issued now must carry.
pub async fn session_epoch(tx: &mut Tx, id: Uuid) -> Result<Option<OffsetDateTime>, DbError> {
    let epoch = sqlx::query_scalar!("SELECT session_epoch FROM users WHERE id = $1", id)
        .fetch_optional(tx.conn())
        .await?;
    Ok(epoch)
}

/// Ends every session of the user (logout): the trigger moves the epoch forward, whatever
/// value is written. Returns false when the user is not visible.
pub async fn end_sessions(tx: &mut Tx, id: Uuid) -> Result<bool, DbError> {
    let result = sqlx::query!(
        "UPDATE users SET session_epoch = clock_timestamp() WHERE id = $1",
        id
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves a user to another issuance policy (`None`: the default). Only ADMIN and SYSTEM
/// may (row-level security and the guard trigger); false when no visible user has the id.
pub async fn set_policy(tx: &mut Tx, id: Uuid, policy_id: Option<Uuid>) -> Result<bool, DbError> {
    let result = sqlx::query!(
        "UPDATE users SET policy_id = $2 WHERE id = $1",
        id,
        policy_id
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// How many users hold each policy that anyone holds; a user without one (NULL) holds
/// `default_id`'s.
pub async fn count_by_policy(tx: &mut Tx, default_id: Uuid) -> Result<Vec<(Uuid, i64)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT coalesce(policy_id, $1) AS "policy_id!", count(*) AS "count!"
           FROM users GROUP BY 1"#,
        default_id
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|r| (r.policy_id, r.count)).collect())
}

/// How many users hold a policy (a policy they hold cannot be deleted).
pub async fn count_with_policy(tx: &mut Tx, policy_id: Uuid) -> Result<i64, DbError> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM users WHERE policy_id = $1"#,
        policy_id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(count)
}
