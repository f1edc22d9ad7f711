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
