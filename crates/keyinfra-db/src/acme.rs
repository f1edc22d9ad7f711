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

/// Rolls a valid account over to a new key (RFC 8555 7.3.5); false if the actor cannot
/// see it or it is not valid. Another account with the key is a UniqueViolation.
pub async fn set_account_key(
    tx: &mut Tx,
    id: Uuid,
    jwk: &serde_json::Value,
    thumbprint: &[u8],
) -> Result<bool, DbError> {
    let updated = sqlx::query!(
        "UPDATE acme_accounts SET jwk = $2, jwk_thumbprint = $3 WHERE id = $1 AND status = 'valid'",
        id,
        jwk,
        thumbprint
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

/// An ACME order's status, as stored (RFC 8555 7.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "acme_order_status", rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Ready => "ready",
            OrderStatus::Processing => "processing",
            OrderStatus::Valid => "valid",
            OrderStatus::Invalid => "invalid",
        }
    }
}

/// An ACME authorization's status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "acme_authorization_status", rename_all = "lowercase")]
pub enum AuthorizationStatus {
    Pending,
    Valid,
    Invalid,
    Deactivated,
    Expired,
    Revoked,
}

impl AuthorizationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationStatus::Pending => "pending",
            AuthorizationStatus::Valid => "valid",
            AuthorizationStatus::Invalid => "invalid",
            AuthorizationStatus::Deactivated => "deactivated",
            AuthorizationStatus::Expired => "expired",
            AuthorizationStatus::Revoked => "revoked",
        }
    }
}

/// An ACME challenge's status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "acme_challenge_status", rename_all = "lowercase")]
pub enum ChallengeStatus {
    Pending,
    Processing,
    Valid,
    Invalid,
}

impl ChallengeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeStatus::Pending => "pending",
            ChallengeStatus::Processing => "processing",
            ChallengeStatus::Valid => "valid",
            ChallengeStatus::Invalid => "invalid",
        }
    }
}

/// An order row.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub owner_id: Uuid,
    pub ca_id: Uuid,
    pub status: OrderStatus,
    pub identifiers: serde_json::Value,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub error: Option<serde_json::Value>,
    pub replaces: Option<String>,
    pub certificate_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

/// An authorization row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRecord {
    pub id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub owner_id: Uuid,
    pub identifier_type: String,
    pub identifier_value: String,
    pub wildcard: bool,
    pub status: AuthorizationStatus,
    pub expires_at: OffsetDateTime,
}

/// A challenge row.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeRecord {
    pub id: Uuid,
    pub authorization_id: Uuid,
    pub kind: String,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated_at: Option<OffsetDateTime>,
    pub error: Option<serde_json::Value>,
}

/// A new order's columns.
#[derive(Debug)]
pub struct NewOrder<'a> {
    pub account_id: Uuid,
    pub owner_id: Uuid,
    pub ca_id: Uuid,
    pub identifiers: &'a serde_json::Value,
    pub not_after: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// RFC 9773: the certID of the certificate this order renews.
    pub replaces: Option<&'a str>,
}

/// Inserts an order (as its owner) and returns its id.
pub async fn insert_order(tx: &mut Tx, new: &NewOrder<'_>) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO acme_orders
             (account_id, owner_id, ca_id, identifiers, not_after, expires_at, created_at,
              replaces)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        new.account_id,
        new.owner_id,
        new.ca_id,
        new.identifiers,
        new.not_after,
        new.expires_at,
        new.created_at,
        new.replaces
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Inserts an order's authorization for one identifier (`value` without a wildcard's `*.`).
#[allow(clippy::too_many_arguments)]
pub async fn insert_authorization(
    tx: &mut Tx,
    order_id: Uuid,
    account_id: Uuid,
    owner_id: Uuid,
    identifier_type: &str,
    identifier_value: &str,
    wildcard: bool,
    expires_at: OffsetDateTime,
) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO acme_authorizations
             (order_id, account_id, owner_id, identifier_type, identifier_value, wildcard,
              expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        order_id,
        account_id,
        owner_id,
        identifier_type,
        identifier_value,
        wildcard,
        expires_at
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Inserts a pending challenge of an authorization.
pub async fn insert_challenge(
    tx: &mut Tx,
    authorization_id: Uuid,
    account_id: Uuid,
    owner_id: Uuid,
    kind: &str,
    token: &str,
) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO acme_challenges (authorization_id, account_id, owner_id, type, token)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        authorization_id,
        account_id,
        owner_id,
        kind,
        token
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Whether an order that is not invalid already replaces the certificate `cert_id` names
/// (RFC 9773 5: one replacement each). SYSTEM: the replacing order may be another owner's
/// after a reassignment.
pub async fn order_replacing(tx: &mut Tx, cert_id: &str) -> Result<bool, DbError> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM acme_orders
                          WHERE replaces = $1 AND status <> 'invalid') AS "found!""#,
        cert_id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(found)
}

/// How many orders an account made since `since` (the new-order rate).
pub async fn count_orders_since(
    tx: &mut Tx,
    account_id: Uuid,
    since: OffsetDateTime,
) -> Result<i64, DbError> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM acme_orders
           WHERE account_id = $1 AND created_at >= $2"#,
        account_id,
        since
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(count)
}

/// The order `id`, if the actor may see it.
pub async fn get_order(tx: &mut Tx, id: Uuid) -> Result<Option<OrderRecord>, DbError> {
    let row = sqlx::query_as!(
        OrderRecord,
        r#"SELECT id, account_id, owner_id, ca_id, status AS "status: OrderStatus",
                  identifiers, not_before, not_after, expires_at, error, replaces,
                  certificate_id, created_at
           FROM acme_orders WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// An order's authorizations, in the order they were made (its identifiers' order).
pub async fn order_authorizations(
    tx: &mut Tx,
    order_id: Uuid,
) -> Result<Vec<AuthorizationRecord>, DbError> {
    let rows = sqlx::query_as!(
        AuthorizationRecord,
        r#"SELECT id, order_id, account_id, owner_id, identifier_type, identifier_value,
                  wildcard, status AS "status: AuthorizationStatus", expires_at
           FROM acme_authorizations WHERE order_id = $1 ORDER BY id"#,
        order_id
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// The authorization `id`, if the actor may see it.
pub async fn get_authorization(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Option<AuthorizationRecord>, DbError> {
    let row = sqlx::query_as!(
        AuthorizationRecord,
        r#"SELECT id, order_id, account_id, owner_id, identifier_type, identifier_value,
                  wildcard, status AS "status: AuthorizationStatus", expires_at
           FROM acme_authorizations WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// An authorization's challenges, in the order they were made.
pub async fn authorization_challenges(
    tx: &mut Tx,
    authorization_id: Uuid,
) -> Result<Vec<ChallengeRecord>, DbError> {
    let rows = sqlx::query_as!(
        ChallengeRecord,
        r#"SELECT id, authorization_id, type AS kind, token,
                  status AS "status: ChallengeStatus", validated_at, error
           FROM acme_challenges WHERE authorization_id = $1 ORDER BY id"#,
        authorization_id
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// An account's orders that are not invalid, newest first, at most `limit` (RFC 8555
/// 7.1.2.1: the account's orders list).
pub async fn account_orders(
    tx: &mut Tx,
    account_id: Uuid,
    limit: i64,
) -> Result<Vec<Uuid>, DbError> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM acme_orders WHERE account_id = $1 AND status <> 'invalid'
         ORDER BY created_at DESC, id DESC LIMIT $2",
        account_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(ids)
}

// ---------------------------------------------------------------------------------------
// Validation (RFC 8555 7.5.1, 8): a client's POST starts one challenge of a pending
// authorization; the validator takes due challenges with a lease, and records the outcome
// on the challenge, its authorization and its order in one transaction.

/// Locks an authorization (as its owner), so that of two challenges started at once only
/// one starts; returns it.
pub async fn lock_authorization(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Option<AuthorizationRecord>, DbError> {
    let row = sqlx::query_as!(
        AuthorizationRecord,
        r#"SELECT id, order_id, account_id, owner_id, identifier_type, identifier_value,
                  wildcard, status AS "status: AuthorizationStatus", expires_at
           FROM acme_authorizations WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The challenge `id`, if the actor may see it, with the account it belongs to.
pub async fn get_challenge(
    tx: &mut Tx,
    id: Uuid,
) -> Result<Option<(ChallengeRecord, Uuid)>, DbError> {
    let row = sqlx::query!(
        r#"SELECT id, authorization_id, type AS kind, token, account_id,
                  status AS "status: ChallengeStatus", validated_at, error
           FROM acme_challenges WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| {
        (
            ChallengeRecord {
                id: r.id,
                authorization_id: r.authorization_id,
                kind: r.kind,
                token: r.token,
                status: r.status,
                validated_at: r.validated_at,
                error: r.error,
            },
            r.account_id,
        )
    }))
}

/// Starts a pending challenge: processing, due at `now`. The caller holds the lock of its
/// authorization ([`lock_authorization`]) and has checked that the authorization is
/// pending; this refuses when another challenge of it has started already (RFC 8555 7.1.6:
/// one challenge decides an authorization). Returns whether it started.
pub async fn start_challenge(tx: &mut Tx, id: Uuid, now: OffsetDateTime) -> Result<bool, DbError> {
    let updated = sqlx::query!(
        "UPDATE acme_challenges AS c SET status = 'processing', next_attempt_at = $2
         WHERE c.id = $1 AND c.status = 'pending'
           AND NOT EXISTS (SELECT 1 FROM acme_challenges AS o
                           WHERE o.authorization_id = c.authorization_id
                             AND o.status <> 'pending')",
        id,
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// A challenge the validator took: what checking it needs.
#[derive(Debug, Clone)]
pub struct DueChallenge {
    pub id: Uuid,
    pub authorization_id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub owner_id: Uuid,
    pub kind: String,
    pub token: String,
    /// Attempts made, this one included.
    pub attempts: i32,
    pub identifier_type: String,
    pub identifier_value: String,
    pub authorization_expires_at: OffsetDateTime,
    /// The account's public key (RFC 7517 JSON): key authorizations are made from it.
    pub jwk: serde_json::Value,
}

/// Takes up to `limit` challenges due at `now` (SYSTEM): each gets one more attempt and a
/// lease until `lease_until`, so that another replica's validator skips it meanwhile and
/// takes it again if this one dies before recording an outcome.
pub async fn claim_due_challenges(
    tx: &mut Tx,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<DueChallenge>, DbError> {
    let rows = sqlx::query_as!(
        DueChallenge,
        r#"UPDATE acme_challenges AS c
           SET attempts = c.attempts + 1, next_attempt_at = $2
           FROM acme_authorizations AS a, acme_accounts AS acc
           WHERE c.id IN (SELECT d.id FROM acme_challenges AS d
                          WHERE d.status = 'processing' AND d.next_attempt_at <= $1
                          ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             AND a.id = c.authorization_id AND acc.id = c.account_id
           RETURNING c.id, c.authorization_id, a.order_id, c.account_id, c.owner_id,
                     c.type AS kind, c.token, c.attempts, a.identifier_type,
                     a.identifier_value, a.expires_at AS authorization_expires_at,
                     acc.jwk"#,
        now,
        lease_until,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Locks an order, so that two authorizations of it validated at once see each other.
pub async fn lock_order(tx: &mut Tx, id: Uuid) -> Result<Option<OrderStatus>, DbError> {
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: OrderStatus" FROM acme_orders WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(status)
}

/// A challenge passed: it, its authorization, and (when every authorization of the order
/// is valid now) the order, which becomes ready. The caller holds the order's lock
/// ([`lock_order`]). Returns whether the order became ready.
pub async fn record_challenge_valid(
    tx: &mut Tx,
    challenge: &DueChallenge,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    sqlx::query!(
        "UPDATE acme_challenges SET status = 'valid', validated_at = $2, error = NULL,
                next_attempt_at = NULL
         WHERE id = $1 AND status = 'processing'",
        challenge.id,
        now
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE acme_authorizations SET status = 'valid' WHERE id = $1 AND status = 'pending'",
        challenge.authorization_id
    )
    .execute(tx.conn())
    .await?;
    let ready = sqlx::query!(
        "UPDATE acme_orders AS o SET status = 'ready'
         WHERE o.id = $1 AND o.status = 'pending'
           AND NOT EXISTS (SELECT 1 FROM acme_authorizations AS a
                           WHERE a.order_id = o.id AND a.status <> 'valid')",
        challenge.order_id
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(ready == 1)
}

/// A challenge failed for good: it, its authorization and its order become invalid, each
/// with the problem document `error`. The caller holds the order's lock.
pub async fn record_challenge_invalid(
    tx: &mut Tx,
    challenge: &DueChallenge,
    now: OffsetDateTime,
    error: &serde_json::Value,
) -> Result<(), DbError> {
    // validated_at on an invalid challenge is when it failed: the failed-validation rate
    // counts those (acme_challenges_failed_idx).
    sqlx::query!(
        "UPDATE acme_challenges SET status = 'invalid', validated_at = $2, error = $3,
                next_attempt_at = NULL
         WHERE id = $1 AND status = 'processing'",
        challenge.id,
        now,
        error
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE acme_authorizations SET status = 'invalid' WHERE id = $1 AND status = 'pending'",
        challenge.authorization_id
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE acme_orders SET status = 'invalid', error = $2
         WHERE id = $1 AND status IN ('pending', 'ready')",
        challenge.order_id,
        error
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A challenge failed this attempt and will be tried again at `next_at`; `error` says why
/// it failed so far (RFC 8555 8.2: a client may see it while the challenge is processing).
pub async fn record_challenge_retry(
    tx: &mut Tx,
    id: Uuid,
    next_at: OffsetDateTime,
    error: &serde_json::Value,
) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE acme_challenges SET next_attempt_at = $2, error = $3
         WHERE id = $1 AND status = 'processing'",
        id,
        next_at,
        error
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Validations an account failed since `since` (the failed-validation rate).
pub async fn count_failed_validations_since(
    tx: &mut Tx,
    account_id: Uuid,
    since: OffsetDateTime,
) -> Result<i64, DbError> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM acme_challenges
           WHERE account_id = $1 AND status = 'invalid' AND validated_at >= $2"#,
        account_id,
        since
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(count)
}

// ---------------------------------------------------------------------------------------
// Finalization (RFC 8555 7.4): ready -> processing -> valid (or invalid).

/// Moves a ready, unexpired order of `account_id` to processing; false when it is not
/// ready (the caller reads it to say why). Two finalize requests at once: one wins.
pub async fn begin_finalize(
    tx: &mut Tx,
    id: Uuid,
    account_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, DbError> {
    let updated = sqlx::query!(
        "UPDATE acme_orders SET status = 'processing'
         WHERE id = $1 AND account_id = $2 AND status = 'ready' AND expires_at > $3",
        id,
        account_id,
        now
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Where a processing order goes: valid with its certificate, invalid with a problem
/// document, or back to ready (a transient failure: the client may finalize again).
#[derive(Debug)]
pub enum FinalizeOutcome<'a> {
    Issued(Uuid),
    Refused(&'a serde_json::Value),
    Retry,
}

/// Records how a finalization ended.
pub async fn end_finalize(
    tx: &mut Tx,
    id: Uuid,
    outcome: FinalizeOutcome<'_>,
) -> Result<(), DbError> {
    match outcome {
        FinalizeOutcome::Issued(certificate_id) => {
            sqlx::query!(
                "UPDATE acme_orders SET status = 'valid', certificate_id = $2
                 WHERE id = $1 AND status = 'processing'",
                id,
                certificate_id
            )
            .execute(tx.conn())
            .await?;
        }
        FinalizeOutcome::Refused(error) => {
            sqlx::query!(
                "UPDATE acme_orders SET status = 'invalid', error = $2
                 WHERE id = $1 AND status = 'processing'",
                id,
                error
            )
            .execute(tx.conn())
            .await?;
        }
        FinalizeOutcome::Retry => {
            sqlx::query!(
                "UPDATE acme_orders SET status = 'ready' WHERE id = $1 AND status = 'processing'",
                id
            )
            .execute(tx.conn())
            .await?;
        }
    }
    Ok(())
}

/// Whether an order of `account_id` issued the certificate `certificate_id` (its download
/// URL, and revokeCert by account key).
pub async fn account_issued(
    tx: &mut Tx,
    account_id: Uuid,
    certificate_id: Uuid,
) -> Result<bool, DbError> {
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM acme_orders
                          WHERE certificate_id = $1 AND account_id = $2) AS "found!""#,
        certificate_id,
        account_id
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(found)
}
