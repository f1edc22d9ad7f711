//! The `revoked_certificates` table.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;
// The column's mapping, which the queries' type overrides name; callers see the reason
// itself, keyinfra_pki::RevocationReason.
use crate::types::RevocationReason;

#[derive(Debug, Clone)]
pub struct NewRevocation {
    pub certificate_id: Uuid,
    pub revoked_at: OffsetDateTime,
    pub reason: keyinfra_pki::RevocationReason,
    pub invalidity_date: Option<OffsetDateTime>,
    pub revoked_by: Option<Uuid>,
}

/// Records a revocation, copying the CRL's columns from the certificate. Returns false when
/// no certificate visible to the actor has this id. A second revocation of the same
/// certificate fails with `UniqueViolation { constraint: "revoked_certificates_certificate_key" }`.
pub async fn insert(tx: &mut Tx, revocation: &NewRevocation) -> Result<bool, DbError> {
    let result = sqlx::query!(
        "INSERT INTO revoked_certificates
             (certificate_id, ca_id, serial_number, not_after, owner_id, revoked_at, reason,
              invalidity_date, revoked_by)
         SELECT c.id, c.ca_id, c.serial_number, c.not_after, c.owner_id, $2, $3, $4, $5
         FROM certificate_serials AS s
         JOIN certificates AS c ON c.id = s.certificate_id AND c.not_after = s.not_after
         WHERE s.certificate_id = $1",
        revocation.certificate_id,
        revocation.revoked_at,
        RevocationReason::from(revocation.reason) as RevocationReason,
        revocation.invalidity_date,
        revocation.revoked_by,
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revokes every active or superseded certificate of `owner_id` (used before the user is
/// deleted); returns how many were revoked.
pub async fn revoke_all_of_owner(
    tx: &mut Tx,
    owner_id: Uuid,
    revoked_at: OffsetDateTime,
    reason: keyinfra_pki::RevocationReason,
    revoked_by: Option<Uuid>,
) -> Result<u64, DbError> {
    let inserted = sqlx::query!(
        "INSERT INTO revoked_certificates
             (certificate_id, ca_id, serial_number, not_after, owner_id, revoked_at, reason, revoked_by)
         SELECT id, ca_id, serial_number, not_after, owner_id, $2, $3, $4
         FROM certificates
         WHERE owner_id = $1 AND status IN ('ACTIVE', 'SUPERSEDED')",
        owner_id,
        revoked_at,
        RevocationReason::from(reason) as RevocationReason,
        revoked_by
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "UPDATE certificates SET status = 'REVOKED'
         WHERE owner_id = $1 AND status IN ('ACTIVE', 'SUPERSEDED')",
        owner_id
    )
    .execute(tx.conn())
    .await?;
    Ok(inserted.rows_affected())
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    pub serial_number: String,
    pub revoked_at: OffsetDateTime,
    pub reason: keyinfra_pki::RevocationReason,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// The CRL's contents, read in batches through a cursor: the revoked certificates of a CA
/// that have not expired at `as_of`, and for a delta CRL only those revoked since
/// `revoked_since`, read in one pass from one snapshot (a revocation that commits meanwhile
/// is in the next CRL). An index-only scan of revoked_certificates_crl_idx.
pub async fn open_crl_cursor(
    tx: &mut Tx,
    ca_id: Uuid,
    as_of: OffsetDateTime,
    revoked_since: Option<OffsetDateTime>,
) -> Result<(), DbError> {
    // Runtime-checked: DECLARE cannot be described at build time.
    sqlx::query(
        "DECLARE keyinfra_crl_rows NO SCROLL CURSOR FOR
         SELECT serial_number, revoked_at, reason, invalidity_date
         FROM revoked_certificates
         WHERE ca_id = $1 AND not_after > $2 AND ($3::timestamptz IS NULL OR revoked_at >= $3)",
    )
    .bind(ca_id)
    .bind(as_of)
    .bind(revoked_since)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The next `batch` rows of the cursor; empty at the end.
pub async fn fetch_crl_cursor(tx: &mut Tx, batch: u32) -> Result<Vec<CrlEntry>, DbError> {
    use sqlx::Row;
    // FETCH takes no bind parameter for its count; `batch` is an integer.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "FETCH FORWARD {batch} FROM keyinfra_crl_rows"
    )))
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(CrlEntry {
                serial_number: row.try_get("serial_number")?,
                revoked_at: row.try_get("revoked_at")?,
                reason: row.try_get::<RevocationReason, _>("reason")?.into(),
                invalidity_date: row.try_get("invalidity_date")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

pub async fn close_crl_cursor(tx: &mut Tx) -> Result<(), DbError> {
    sqlx::query("CLOSE keyinfra_crl_rows")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// A certificate's revocation, as recorded (the detail page shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub certificate_id: Uuid,
    pub revoked_at: OffsetDateTime,
    pub reason: keyinfra_pki::RevocationReason,
    pub invalidity_date: Option<OffsetDateTime>,
    /// The user who revoked it; None when the operator (CLI) did, or that user was deleted.
    pub revoked_by: Option<Uuid>,
}

/// The revocation of one certificate, if it is revoked and visible to the actor.
pub async fn for_certificate(
    tx: &mut Tx,
    certificate_id: Uuid,
) -> Result<Option<RevocationRecord>, DbError> {
    let row = sqlx::query_as!(
        RevocationRecord,
        r#"SELECT certificate_id, revoked_at, reason AS "reason: RevocationReason",
                  invalidity_date, revoked_by
           FROM revoked_certificates WHERE certificate_id = $1"#,
        certificate_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}
