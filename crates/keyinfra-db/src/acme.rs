//! ACME state (issue 21): the spent replay nonces (migration 0028), external account
//! binding keys and accounts (migration 0031).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{DbError, Tx};

/// Records a nonce as spent: true the first time, false if it was spent before (by any
/// replica). `nonce_hash` is the SHA-256 of the nonce; `expires_at` when it would be
/// refused for its age anyway. Any identity may spend one.
pub async fn spend_nonce(
    tx: &mut Tx,
    nonce_hash: &[u8; 32],
    expires_at: OffsetDateTime,
) -> Result<bool, DbError> {
    let inserted = sqlx::query!(
        "INSERT INTO acme_spent_nonces (nonce_hash, expires_at) VALUES ($1, $2)
         ON CONFLICT (nonce_hash) DO NOTHING",
        nonce_hash.as_slice(),
        expires_at
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Deletes up to `limit` spent nonces that expired before `before`; returns how many. SYSTEM
/// (the `acme-nonces` job) repeats it until fewer than `limit` go, so that each
/// transaction stays short.
pub async fn purge_spent_nonces(
    tx: &mut Tx,
    before: OffsetDateTime,
    limit: i64,
) -> Result<u64, DbError> {
    let deleted = sqlx::query!(
        "DELETE FROM acme_spent_nonces
         WHERE nonce_hash IN (SELECT nonce_hash FROM acme_spent_nonces
                              WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        before,
        limit
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(deleted)
}

/// An external account binding key as listed (migration 0031): never a secret, which is
/// derived, not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EabKeyRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub account_id: Option<Uuid>,
}

/// Takes the owner's EAB-key lock for the rest of the transaction and counts the owner's
/// live keys (unused, unexpired at `now`), so that two creates cannot both pass the limit.
pub async fn lock_and_count_live_eab_keys(
    tx: &mut Tx,
    owner_id: Uuid,
    now: OffsetDateTime,
) -> Result<i64, DbError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('keyinfra.acme-eab.' || $1::uuid::text, 0))",
        owner_id
    )
    .execute(tx.conn())
    .await?;
    let live = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM acme_eab_keys
           WHERE owner_id = $1 AND used_at IS NULL AND expires_at > $2"#,
        owner_id,
        now
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(live)
}

/// Inserts a binding key and returns its id (the `kid`). An owner that names no user fails
/// with a foreign-key violation.
pub async fn insert_eab_key(
    tx: &mut Tx,
    owner_id: Uuid,
    created_by: Option<Uuid>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO acme_eab_keys (owner_id, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
        owner_id,
        created_by,
        created_at,
        expires_at
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The binding keys the actor may see, newest first: one owner's, or (ADMIN) everyone's;
/// `after` is the (created_at, id) of the previous page's last key.
pub async fn list_eab_keys(
    tx: &mut Tx,
    owner_id: Option<Uuid>,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<EabKeyRecord>, DbError> {
    let (after_at, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        EabKeyRecord,
        "SELECT id, owner_id, created_by, created_at, expires_at, used_at, account_id
         FROM acme_eab_keys
         WHERE ($1::uuid IS NULL OR owner_id = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
        owner_id,
        after_at,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// The owner of the binding key `id` if it may still bind an account (unused, unexpired at
/// `now`, its owner enabled). Any identity: a definer function, read only.
pub async fn eab_key_owner(
    tx: &mut Tx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, DbError> {
    let owner = sqlx::query_scalar!("SELECT keyinfra_acme_eab_owner($1, $2)", id, now)
        .fetch_one(tx.conn())
        .await?;
    Ok(owner)
}

/// Uses up binding key `id` for `account_id`: true if it was still unused and unexpired.
/// Runs as the key's owner, in the transaction that creates the account.
pub async fn use_eab_key(
    tx: &mut Tx,
    id: Uuid,
    account_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let used = sqlx::query!(
        "UPDATE acme_eab_keys SET used_at = $3, account_id = $2
         WHERE id = $1 AND used_at IS NULL AND expires_at > $3",
        id,
        account_id,
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(used == 1)
}

/// An ACME account's status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "acme_account_status", rename_all = "lowercase")]
pub enum AccountStatus {
    Valid,
    Deactivated,
    Revoked,
}

impl AccountStatus {
    /// RFC 8555's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Valid => "valid",
            AccountStatus::Deactivated => "deactivated",
            AccountStatus::Revoked => "revoked",
        }
    }
}

/// An ACME account row.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub jwk: serde_json::Value,
    pub jwk_thumbprint: Vec<u8>,
    pub status: AccountStatus,
    pub contact: Vec<String>,
    pub terms_agreed: bool,
    pub eab_key_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub deactivated_at: Option<OffsetDateTime>,
}

/// What a JWS naming account `id` by `kid` needs before it is verified: the owner, the
/// public key and the status. Any identity (a definer function).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountKey {
    pub owner_id: Uuid,
    pub jwk: serde_json::Value,
    pub status: AccountStatus,
}

pub async fn account_key(tx: &mut Tx, id: Uuid) -> Result<Option<AccountKey>, DbError> {
    let row = sqlx::query_as!(
        AccountKey,
        r#"SELECT owner_id AS "owner_id!", jwk AS "jwk!",
                  status AS "status!: AccountStatus"
           FROM keyinfra_acme_account_key($1)"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The account whose key has this RFC 7638 thumbprint (SHA-256, 32 bytes), if any: (id,
/// owner, status). Any identity (a definer function).
pub async fn account_by_thumbprint(
    tx: &mut Tx,
    thumbprint: &[u8],
) -> Result<Option<(Uuid, Uuid, AccountStatus)>, DbError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id!", owner_id AS "owner_id!", status AS "status!: AccountStatus"
           FROM keyinfra_acme_account_by_thumbprint($1)"#,
        thumbprint
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| (r.id, r.owner_id, r.status)))
}

/// A new account's columns.
#[derive(Debug)]
pub struct NewAccount<'a> {
    pub owner_id: Uuid,
    pub jwk: &'a serde_json::Value,
    pub jwk_thumbprint: &'a [u8],
    pub contact: &'a [String],
    pub terms_agreed: bool,
    pub eab_key_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// Inserts an account and returns it. A key that already has an account fails with a
/// unique violation (a concurrent newAccount with the same key).
pub async fn insert_account(tx: &mut Tx, new: &NewAccount<'_>) -> Result<AccountRecord, DbError> {
    let row = sqlx::query_as!(
        AccountRecord,
        r#"INSERT INTO acme_accounts
               (owner_id, jwk, jwk_thumbprint, contact, terms_agreed, eab_key_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id, owner_id, jwk, jwk_thumbprint, status AS "status: AccountStatus",
                     contact, terms_agreed, eab_key_id, created_at, deactivated_at"#,
        new.owner_id,
        new.jwk,
        new.jwk_thumbprint,
        new.contact,
        new.terms_agreed,
        new.eab_key_id,
        new.created_at
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(row)
}

/// The account `id`, if the actor may see it.
pub async fn get_account(tx: &mut Tx, id: Uuid) -> Result<Option<AccountRecord>, DbError> {
    let row = sqlx::query_as!(
        AccountRecord,
        r#"SELECT id, owner_id, jwk, jwk_thumbprint, status AS "status: AccountStatus",
                  contact, terms_agreed, eab_key_id, created_at, deactivated_at
           FROM acme_accounts WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The accounts the actor may see, newest first: one owner's, or (ADMIN) everyone's;
/// `after` is the (created_at, id) of the previous page's last account.
pub async fn list_accounts(
    tx: &mut Tx,
    owner_id: Option<Uuid>,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<AccountRecord>, DbError> {
    let (after_at, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        AccountRecord,
        r#"SELECT id, owner_id, jwk, jwk_thumbprint, status AS "status: AccountStatus",
                  contact, terms_agreed, eab_key_id, created_at, deactivated_at
           FROM acme_accounts
           WHERE ($1::uuid IS NULL OR owner_id = $1)
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC LIMIT $4"#,
        owner_id,
        after_at,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Replaces an account's contact URLs; false if the actor cannot see it or it is not valid.
pub async fn set_account_contact(
    tx: &mut Tx,
    id: Uuid,
    contact: &[String],
) -> Result<bool, DbError> {
    let updated = sqlx::query!(
        "UPDATE acme_accounts SET contact = $2 WHERE id = $1 AND status = 'valid'",
        id,
        contact
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Deactivates a valid account (RFC 8555 7.3.6): true if it was valid and the actor may
/// see it. A deactivated account stays, as the record of what it ordered.
pub async fn deactivate_account(
    tx: &mut Tx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let updated = sqlx::query!(
        "UPDATE acme_accounts SET status = 'deactivated', deactivated_at = $2
         WHERE id = $1 AND status = 'valid'",
        id,
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(updated == 1)
}
