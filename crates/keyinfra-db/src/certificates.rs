//! The partitioned `certificates` table. Every query here names `not_after` (the partition
//! key) or goes through a function that does, so PostgreSQL reads only the partitions it
//! needs; see ARCHITECTURE.md.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;
use crate::types::{CertificateStatus, KeyAlgorithm};

/// A certificate to record. `serial_number` must be canonical (uppercase hex, no leading
/// zero byte); a serial this CA already used fails with [`DbError::SerialCollision`].
#[derive(Debug, Clone)]
pub struct NewCertificate<'a> {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub serial_number: &'a str,
    pub subject_dn: &'a str,
    pub subject_alt_names: &'a [String],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub version: i32,
    pub renewed_from: Option<Uuid>,
    pub renewed_at: Option<OffsetDateTime>,
    pub renewed_by: Option<Uuid>,
    pub certificate_der: &'a [u8],
    /// SHA-256 of `certificate_der`; the database checks it.
    pub fingerprint_sha256: &'a [u8],
    pub key_algorithm: KeyAlgorithm,
    pub private_key_id: Option<Uuid>,
    pub profile: &'a str,
    pub created_by: Option<Uuid>,
}

/// A stored certificate, without its DER (list views do not need it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub serial_number: String,
    pub subject_dn: String,
    pub subject_alt_names: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub status: CertificateStatus,
    pub version: i32,
    pub key_algorithm: KeyAlgorithm,
    pub profile: String,
}

pub async fn insert(tx: &mut Tx, cert: &NewCertificate<'_>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO certificates
             (id, ca_id, owner_id, serial_number, subject_dn, subject_alt_names, not_before,
              not_after, version, renewed_from, renewed_at, renewed_by, certificate_der,
              fingerprint_sha256, key_algorithm, private_key_id, profile, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        cert.id,
        cert.ca_id,
        cert.owner_id,
        cert.serial_number,
        cert.subject_dn,
        cert.subject_alt_names,
        cert.not_before,
        cert.not_after,
        cert.version,
        cert.renewed_from,
        cert.renewed_at,
        cert.renewed_by,
        cert.certificate_der,
        cert.fingerprint_sha256,
        cert.key_algorithm as KeyAlgorithm,
        cert.private_key_id,
        cert.profile,
        cert.created_by,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A user's certificates, soonest expiry first (index certificates_owner_not_after_idx).
/// Row-level security applies on top: a USER asking for someone else gets nothing.
pub async fn list_for_owner(
    tx: &mut Tx,
    owner_id: Uuid,
    limit: i64,
) -> Result<Vec<CertificateSummary>, DbError> {
    let rows = sqlx::query_as!(
        CertificateSummary,
        r#"SELECT id, ca_id, owner_id, serial_number, subject_dn, subject_alt_names, not_before,
                  not_after, status AS "status: CertificateStatus", version,
                  key_algorithm AS "key_algorithm: KeyAlgorithm", profile
           FROM certificates
           WHERE owner_id = $1
           ORDER BY not_after, id
           LIMIT $2"#,
        owner_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Active certificates expiring in (as_of, as_of + within], soonest first, through the
/// database function `certificates_expiring`. `limit` bounds the page.
pub async fn expiring(
    tx: &mut Tx,
    within: Duration,
    as_of: OffsetDateTime,
    limit: i64,
) -> Result<Vec<CertificateSummary>, DbError> {
    let within = sqlx::postgres::types::PgInterval::try_from(within)
        .map_err(|e| DbError::Internal(format!("expiry window out of range: {e}")))?;
    let rows = sqlx::query_as!(
        CertificateSummary,
        r#"SELECT id AS "id!", ca_id AS "ca_id!", owner_id, serial_number AS "serial_number!",
                  subject_dn AS "subject_dn!", subject_alt_names AS "subject_alt_names!",
                  not_before AS "not_before!", not_after AS "not_after!",
                  status AS "status!: CertificateStatus", version AS "version!",
                  key_algorithm AS "key_algorithm!: KeyAlgorithm", profile AS "profile!"
           FROM certificates_expiring($1, $2)
           LIMIT $3"#,
        within,
        as_of,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// As [`expiring`], for one owner. Row-level security would filter to the caller's rows
/// anyway, but its `owner_id = me OR admin` condition cannot drive an index; naming the owner
/// lets the query use certificates_owner_not_after_idx.
pub async fn expiring_for_owner(
    tx: &mut Tx,
    owner_id: Uuid,
    within: Duration,
    as_of: OffsetDateTime,
    limit: i64,
) -> Result<Vec<CertificateSummary>, DbError> {
    let within = sqlx::postgres::types::PgInterval::try_from(within)
        .map_err(|e| DbError::Internal(format!("expiry window out of range: {e}")))?;
    let rows = sqlx::query_as!(
        CertificateSummary,
        r#"SELECT id AS "id!", ca_id AS "ca_id!", owner_id, serial_number AS "serial_number!",
                  subject_dn AS "subject_dn!", subject_alt_names AS "subject_alt_names!",
                  not_before AS "not_before!", not_after AS "not_after!",
                  status AS "status!: CertificateStatus", version AS "version!",
                  key_algorithm AS "key_algorithm!: KeyAlgorithm", profile AS "profile!"
           FROM certificates_expiring($1, $2)
           WHERE owner_id = $3
           LIMIT $4"#,
        within,
        as_of,
        owner_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// The certificate with this canonical serial, of one CA or of any.
pub async fn find_by_serial(
    tx: &mut Tx,
    serial_number: &str,
    ca_id: Option<Uuid>,
) -> Result<Option<CertificateSummary>, DbError> {
    let row = sqlx::query_as!(
        CertificateSummary,
        r#"SELECT id AS "id!", ca_id AS "ca_id!", owner_id, serial_number AS "serial_number!",
                  subject_dn AS "subject_dn!", subject_alt_names AS "subject_alt_names!",
                  not_before AS "not_before!", not_after AS "not_after!",
                  status AS "status!: CertificateStatus", version AS "version!",
                  key_algorithm AS "key_algorithm!: KeyAlgorithm", profile AS "profile!"
           FROM certificate_by_serial($1, $2)"#,
        serial_number,
        ca_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// Moves a certificate to a new status; the database refuses transitions that are not
/// one-way (see migration 0004). Returns false if no visible certificate has this id.
pub async fn set_status(tx: &mut Tx, id: Uuid, status: CertificateStatus) -> Result<bool, DbError> {
    // The registry knows not_after, so the UPDATE touches one partition.
    let result = sqlx::query!(
        "UPDATE certificates AS c SET status = $2
         FROM certificate_serials AS s
         WHERE s.certificate_id = $1 AND c.id = s.certificate_id AND c.not_after = s.not_after",
        id,
        status as CertificateStatus
    )
    .execute(tx.conn())
    .await?;
    Ok(result.rows_affected() == 1)
}
