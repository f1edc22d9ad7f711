//! What the SCEP endpoint reads and writes: the `scep_registration_authorities` table
//! (migration 0021), each CA's RA certificates and their sealed keys' ids.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

/// A CA's SCEP RA certificate and its sealed key's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaRecord {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub certificate_der: Vec<u8>,
    pub private_key_id: Uuid,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The CA's RAs still valid at `valid_at`, the longest-lived first: the first is the one
/// GetCACert hands out; a request may be encrypted to any of them.
pub async fn valid_ras(
    tx: &mut Tx,
    ca_id: Uuid,
    valid_at: OffsetDateTime,
) -> Result<Vec<RaRecord>, DbError> {
    let rows = sqlx::query_as!(
        RaRecord,
        "SELECT id, ca_id, certificate_der, private_key_id, not_before, not_after
         FROM scep_registration_authorities WHERE ca_id = $1 AND not_after > $2
         ORDER BY not_after DESC LIMIT 8",
        ca_id,
        valid_at
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

pub async fn insert_ra(tx: &mut Tx, ra: &RaRecord) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO scep_registration_authorities
             (id, ca_id, certificate_der, private_key_id, not_before, not_after)
         VALUES ($1, $2, $3, $4, $5, $6)",
        ra.id,
        ra.ca_id,
        ra.certificate_der,
        ra.private_key_id,
        ra.not_before,
        ra.not_after
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Deletes RAs that expired before `before`; their keys then become orphans, which
/// partition maintenance deletes.
pub async fn delete_expired_ras(tx: &mut Tx, before: OffsetDateTime) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "DELETE FROM scep_registration_authorities WHERE not_after < $1",
        before
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// Serialises RA creation for one CA across replicas, until the transaction ends.
pub async fn lock_ras(tx: &mut Tx, ca_id: Uuid) -> Result<(), DbError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('keyinfra.scep-ra.' || $1::uuid::text, 0))",
        ca_id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
