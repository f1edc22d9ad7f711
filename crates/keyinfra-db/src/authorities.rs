//! The `certificate_authorities` table.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

#[derive(Debug, Clone)]
pub struct NewAuthority<'a> {
    pub name: &'a str,
    pub subject_dn: &'a str,
    pub certificate_der: &'a [u8],
    /// SHA-256 of `certificate_der`; the database checks it.
    pub fingerprint_sha256: &'a [u8],
    pub private_key_id: Option<Uuid>,
    pub parent_ca_id: Option<Uuid>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

pub async fn insert(tx: &mut Tx, ca: &NewAuthority<'_>) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO certificate_authorities
             (name, subject_dn, certificate_der, fingerprint_sha256, private_key_id, parent_ca_id,
              not_before, not_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id",
        ca.name,
        ca.subject_dn,
        ca.certificate_der,
        ca.fingerprint_sha256,
        ca.private_key_id,
        ca.parent_ca_id,
        ca.not_before,
        ca.not_after,
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Takes the next CRL number of a CA. The row lock serialises concurrent callers, so two
/// servers never get the same number, and numbers only grow.
pub async fn next_crl_number(tx: &mut Tx, ca_id: Uuid) -> Result<Option<i64>, DbError> {
    let number = sqlx::query_scalar!(
        "UPDATE certificate_authorities SET crl_number = crl_number + 1 WHERE id = $1 RETURNING crl_number",
        ca_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(number)
}

/// A CA as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityRecord {
    pub id: Uuid,
    pub name: String,
    /// Unique, URL-safe (`^[a-z0-9][a-z0-9-]{0,31}$`): EST's CA label. Made from the name
    /// when a CA is inserted (migration 0024).
    pub short_name: String,
    pub subject_dn: String,
    pub certificate_der: Vec<u8>,
    pub private_key_id: Option<Uuid>,
    pub parent_ca_id: Option<Uuid>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

/// Every CA, oldest first.
pub async fn list(tx: &mut Tx) -> Result<Vec<AuthorityRecord>, DbError> {
    let rows = sqlx::query_as!(
        AuthorityRecord,
        "SELECT id, name, short_name, subject_dn, certificate_der, private_key_id, parent_ca_id, not_before,
                not_after, created_at
         FROM certificate_authorities
         ORDER BY created_at, id"
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<AuthorityRecord>, DbError> {
    let row = sqlx::query_as!(
        AuthorityRecord,
        "SELECT id, name, short_name, subject_dn, certificate_der, private_key_id, parent_ca_id, not_before,
                not_after, created_at
         FROM certificate_authorities
         WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// Serialises CA creation across replicas (the first `serve` of several at once creates
/// one root, not several). Held until the transaction ends.
pub async fn lock_for_creation(tx: &mut Tx) -> Result<(), DbError> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtextextended('keyinfra.ca_creation', 0))")
        .execute(tx.conn())
        .await?;
    Ok(())
}
