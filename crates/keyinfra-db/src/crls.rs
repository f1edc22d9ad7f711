//! The `crls` table: every published CRL of a CA, as DER.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    pub ca_id: Uuid,
    pub crl_number: i64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub crl_der: Vec<u8>,
}

pub async fn insert(tx: &mut Tx, crl: &CrlRecord) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO crls (ca_id, crl_number, this_update, next_update, crl_der)
         VALUES ($1, $2, $3, $4, $5)",
        crl.ca_id,
        crl.crl_number,
        crl.this_update,
        crl.next_update,
        crl.crl_der
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The newest CRL of a CA.
pub async fn latest(tx: &mut Tx, ca_id: Uuid) -> Result<Option<CrlRecord>, DbError> {
    let row = sqlx::query_as!(
        CrlRecord,
        "SELECT ca_id, crl_number, this_update, next_update, crl_der
         FROM crls WHERE ca_id = $1 ORDER BY crl_number DESC LIMIT 1",
        ca_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// When the newest CRL of each CA runs out (for the refresh job), without reading DER.
pub async fn next_updates(tx: &mut Tx) -> Result<Vec<(Uuid, Option<OffsetDateTime>)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT a.id AS "id!", (SELECT c.next_update FROM crls AS c WHERE c.ca_id = a.id
                               ORDER BY c.crl_number DESC LIMIT 1) AS next_update
           FROM certificate_authorities AS a
           WHERE a.private_key_id IS NOT NULL"#
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.next_update)).collect())
}

/// Deletes all but the newest `keep` CRLs of a CA.
pub async fn prune(tx: &mut Tx, ca_id: Uuid, keep: i64) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "DELETE FROM crls WHERE ca_id = $1 AND crl_number <= (
             SELECT crl_number FROM crls WHERE ca_id = $1
             ORDER BY crl_number DESC OFFSET $2 LIMIT 1)",
        ca_id,
        keep
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
