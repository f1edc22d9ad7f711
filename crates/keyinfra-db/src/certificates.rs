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

/// A stored certificate with everything the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
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
    pub renewed_from: Option<Uuid>,
    pub renewed_at: Option<OffsetDateTime>,
    pub renewed_by: Option<Uuid>,
    pub certificate_der: Vec<u8>,
    pub fingerprint_sha256: Vec<u8>,
    pub key_algorithm: KeyAlgorithm,
    pub private_key_id: Option<Uuid>,
    pub profile: String,
    pub created_at: OffsetDateTime,
}

/// One certificate by id, if the actor may see it. The registry gives its expiry, so only
/// one partition is read.
pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<CertificateRecord>, DbError> {
    let row = sqlx::query_as!(
        CertificateRecord,
        r#"SELECT c.id, c.ca_id, c.owner_id, c.serial_number, c.subject_dn, c.subject_alt_names,
                  c.not_before, c.not_after, c.status AS "status: CertificateStatus", c.version,
                  c.renewed_from, c.renewed_at, c.renewed_by, c.certificate_der,
                  c.fingerprint_sha256, c.key_algorithm AS "key_algorithm: KeyAlgorithm",
                  c.private_key_id, c.profile, c.created_at
           FROM certificate_serials AS s
           JOIN certificates AS c ON c.id = s.certificate_id AND c.not_after = s.not_after
           WHERE s.certificate_id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// As [`get`], locking the row (revocation, renewal and reassignment change it).
pub async fn get_for_update(tx: &mut Tx, id: Uuid) -> Result<Option<CertificateRecord>, DbError> {
    let row = sqlx::query_as!(
        CertificateRecord,
        r#"SELECT c.id, c.ca_id, c.owner_id, c.serial_number, c.subject_dn, c.subject_alt_names,
                  c.not_before, c.not_after, c.status AS "status: CertificateStatus", c.version,
                  c.renewed_from, c.renewed_at, c.renewed_by, c.certificate_der,
                  c.fingerprint_sha256, c.key_algorithm AS "key_algorithm: KeyAlgorithm",
                  c.private_key_id, c.profile, c.created_at
           FROM certificate_serials AS s
           JOIN certificates AS c ON c.id = s.certificate_id AND c.not_after = s.not_after
           WHERE s.certificate_id = $1
           FOR UPDATE OF c"#,
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// Inventory filters; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    pub owner_id: Option<Uuid>,
    pub status: Option<CertificateStatus>,
    /// Only certificates expiring before this instant (and not yet expired at `as_of`).
    pub expires_before: Option<OffsetDateTime>,
    pub as_of: Option<OffsetDateTime>,
    /// Case-insensitive substring of the subject, a SAN, or a serial-number prefix.
    pub search: Option<String>,
    /// Keyset: certificates strictly after this (not_after, id).
    pub after: Option<(OffsetDateTime, Uuid)>,
}

/// The inventory, soonest expiry first. Row-level security limits a USER to their own.
pub async fn list(
    tx: &mut Tx,
    filter: &CertificateFilter,
    limit: i64,
) -> Result<Vec<CertificateRecord>, DbError> {
    let (after_at, after_id) = match filter.after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let pattern = filter.search.as_ref().map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let serial_prefix = filter
        .search
        .as_ref()
        .map(|q| format!("{}%", q.to_ascii_uppercase().replace([':', ' '], "")));
    let rows = sqlx::query_as!(
        CertificateRecord,
        r#"SELECT c.id, c.ca_id, c.owner_id, c.serial_number, c.subject_dn, c.subject_alt_names,
                  c.not_before, c.not_after, c.status AS "status: CertificateStatus", c.version,
                  c.renewed_from, c.renewed_at, c.renewed_by, c.certificate_der,
                  c.fingerprint_sha256, c.key_algorithm AS "key_algorithm: KeyAlgorithm",
                  c.private_key_id, c.profile, c.created_at
           FROM certificates AS c
           WHERE ($1::uuid IS NULL OR c.owner_id = $1)
             AND ($2::certificate_status IS NULL OR c.status = $2)
             AND ($3::timestamptz IS NULL OR (c.not_after <= $3 AND c.not_after > $4))
             AND ($5::text IS NULL OR c.subject_dn ILIKE $5
                  OR array_to_string(c.subject_alt_names, ' ') ILIKE $5
                  OR c.serial_number LIKE $6)
             AND ($7::timestamptz IS NULL OR (c.not_after, c.id) > ($7, $8::uuid))
           ORDER BY c.not_after, c.id
           LIMIT $9"#,
        filter.owner_id,
        filter.status as Option<CertificateStatus>,
        filter.expires_before,
        filter.as_of,
        pattern,
        serial_prefix,
        after_at,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Every version of the certificate's renewal chain (oldest first) that the actor may see.
pub async fn versions(tx: &mut Tx, id: Uuid) -> Result<Vec<CertificateRecord>, DbError> {
    let rows = sqlx::query_as!(
        CertificateRecord,
        r#"WITH RECURSIVE back AS (
               SELECT c.id, c.renewed_from, 0 AS depth FROM certificates AS c WHERE c.id = $1
               UNION ALL
               SELECT c.id, c.renewed_from, b.depth + 1
               FROM certificates AS c JOIN back AS b ON c.id = b.renewed_from
               WHERE b.depth < 10000
           ), first AS (
               SELECT id FROM back ORDER BY depth DESC LIMIT 1
           ), forward AS (
               SELECT id, 0 AS depth FROM first
               UNION ALL
               SELECT c.id, f.depth + 1
               FROM certificates AS c JOIN forward AS f ON c.renewed_from = f.id
               WHERE f.depth < 10000
           )
           SELECT c.id, c.ca_id, c.owner_id, c.serial_number, c.subject_dn, c.subject_alt_names,
                  c.not_before, c.not_after, c.status AS "status: CertificateStatus", c.version,
                  c.renewed_from, c.renewed_at, c.renewed_by, c.certificate_der,
                  c.fingerprint_sha256, c.key_algorithm AS "key_algorithm: KeyAlgorithm",
                  c.private_key_id, c.profile, c.created_at
           FROM certificates AS c
           WHERE c.id IN (SELECT id FROM forward)
           ORDER BY c.version, c.created_at"#,
        id
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Active, unexpired certificates of an owner (the quota). Takes a transaction-scoped lock
/// per owner first, so two concurrent issuances cannot both pass a quota of one left.
///
/// The lock and the count are two statements on purpose: under READ COMMITTED a statement
/// sees the rows committed before it started, so a count in the statement that waited for
/// the lock would miss the certificates its predecessor committed meanwhile.
pub async fn count_active_for_owner_locked(
    tx: &mut Tx,
    owner_id: Uuid,
    as_of: OffsetDateTime,
) -> Result<i64, DbError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('keyinfra.quota.' || $1::uuid::text, 0))",
        owner_id
    )
    .execute(tx.conn())
    .await?;
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM certificates AS c
           WHERE c.owner_id = $1::uuid AND c.status = 'ACTIVE' AND c.not_after > $2"#,
        owner_id,
        as_of
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(n)
}

/// Moves certificates to a new owner; their revocation rows follow by trigger.
pub async fn set_owner(tx: &mut Tx, ids: &[Uuid], owner_id: Uuid) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "UPDATE certificates AS c SET owner_id = $2
         FROM certificate_serials AS s
         WHERE s.certificate_id = ANY($1) AND c.id = s.certificate_id AND c.not_after = s.not_after",
        ids,
        owner_id
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// One first issue as [`insert_issued_many`] writes it: the sealed key (when the server made
/// it), the certificate (version 1, no renewal columns) and its audit event.
#[derive(Debug, Clone)]
pub struct IssuedRows<'a> {
    pub key: Option<crate::private_keys::NewSealedKey<'a>>,
    pub certificate: NewCertificate<'a>,
    pub audit: crate::audit::NewAuditEvent<'a>,
}

/// Records one first issue in one statement (one round trip). A serial this CA already used
/// fails with [`DbError::SerialCollision`] and writes nothing.
pub async fn insert_issued(tx: &mut Tx, issue: &IssuedRows<'_>) -> Result<(), DbError> {
    insert_issued_many(tx, std::slice::from_ref(issue)).await
}

/// Records several first issues in one statement: every sealed key, certificate (whose
/// trigger registers the serial) and audit event, as one multi-row INSERT per table.
///
/// This is what makes group commit pay: PostgreSQL's cost per issuance is mostly per
/// statement and per transaction (executor start-up for the partitioned table, its CHECKs
/// and triggers, the token check, COMMIT), so N issuances in one statement cost a fraction
/// of N statements. Any failing row fails them all; the caller decides what to retry.
pub async fn insert_issued_many(tx: &mut Tx, issues: &[IssuedRows<'_>]) -> Result<(), DbError> {
    let n = issues.len();
    let mut key_id = Vec::with_capacity(n);
    let mut key_owner = Vec::with_capacity(n);
    let mut key_algorithm = Vec::with_capacity(n);
    let mut key_fingerprint = Vec::with_capacity(n);
    let mut ciphertext = Vec::with_capacity(n);
    let mut nonce = Vec::with_capacity(n);
    let mut salt = Vec::with_capacity(n);
    let mut kek_version = Vec::with_capacity(n);
    let mut id = Vec::with_capacity(n);
    let mut ca_id = Vec::with_capacity(n);
    let mut owner_id = Vec::with_capacity(n);
    let mut serial_number = Vec::with_capacity(n);
    let mut subject_dn = Vec::with_capacity(n);
    // A two-dimensional text[] cannot hold lists of different lengths: each row's SANs
    // travel as one JSON array.
    let mut sans = Vec::with_capacity(n);
    let mut not_before = Vec::with_capacity(n);
    let mut not_after = Vec::with_capacity(n);
    let mut certificate_der = Vec::with_capacity(n);
    let mut fingerprint = Vec::with_capacity(n);
    let mut algorithm = Vec::with_capacity(n);
    let mut profile = Vec::with_capacity(n);
    let mut created_by = Vec::with_capacity(n);
    let mut actor_id = Vec::with_capacity(n);
    let mut actor_name = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut target_type = Vec::with_capacity(n);
    let mut target_id = Vec::with_capacity(n);
    let mut details = Vec::with_capacity(n);
    for issue in issues {
        let key = issue.key.as_ref();
        key_id.push(key.map(|k| k.id));
        key_owner.push(key.and_then(|k| k.owner_id));
        key_algorithm.push(key.map(|k| k.algorithm.as_str()));
        key_fingerprint.push(key.map(|k| k.public_key_fingerprint));
        ciphertext.push(key.map(|k| k.ciphertext));
        nonce.push(key.map(|k| k.nonce));
        salt.push(key.map(|k| k.salt));
        kek_version.push(key.map(|k| k.kek_version));
        let cert = &issue.certificate;
        id.push(cert.id);
        ca_id.push(cert.ca_id);
        owner_id.push(cert.owner_id);
        serial_number.push(cert.serial_number);
        subject_dn.push(cert.subject_dn);
        sans.push(serde_json::json!(cert.subject_alt_names));
        not_before.push(cert.not_before);
        not_after.push(cert.not_after);
        certificate_der.push(cert.certificate_der);
        fingerprint.push(cert.fingerprint_sha256);
        algorithm.push(cert.key_algorithm.as_str());
        profile.push(cert.profile);
        created_by.push(cert.created_by);
        let audit = &issue.audit;
        actor_id.push(audit.actor_id);
        actor_name.push(audit.actor_name);
        action.push(audit.action);
        target_type.push(audit.target_type);
        target_id.push(audit.target_id);
        details.push(audit.details.clone());
    }
    sqlx::query!(
        r#"WITH input AS (
               SELECT * FROM unnest(
                   $1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[],
                   $7::bytea[], $8::integer[],
                   $9::uuid[], $10::uuid[], $11::uuid[], $12::text[], $13::text[], $14::jsonb[],
                   $15::timestamptz[], $16::timestamptz[], $17::bytea[], $18::bytea[], $19::text[],
                   $20::text[], $21::uuid[],
                   $22::uuid[], $23::text[], $24::text[], $25::text[], $26::uuid[], $27::jsonb[])
               AS i(key_id, key_owner, key_algorithm, key_fingerprint, ciphertext, nonce,
                    salt, kek_version,
                    id, ca_id, owner_id, serial_number, subject_dn, sans,
                    not_before, not_after, certificate_der, fingerprint_sha256, algorithm,
                    profile, created_by,
                    actor_id, actor_name, action, target_type, target_id, details)
           ), new_keys AS (
               INSERT INTO private_keys
                   (id, owner_id, algorithm, public_key_fingerprint, ciphertext, nonce, salt, kek_version)
               SELECT key_id, key_owner, key_algorithm::key_algorithm, key_fingerprint, ciphertext,
                      nonce, salt, kek_version
               FROM input WHERE key_id IS NOT NULL
           ), new_certificates AS (
               INSERT INTO certificates
                   (id, ca_id, owner_id, serial_number, subject_dn, subject_alt_names, not_before,
                    not_after, version, renewed_from, renewed_at, renewed_by, certificate_der,
                    fingerprint_sha256, key_algorithm, private_key_id, profile, created_by)
               SELECT id, ca_id, owner_id, serial_number, subject_dn,
                      ARRAY(SELECT jsonb_array_elements_text(sans)), not_before, not_after,
                      1, NULL, NULL, NULL, certificate_der, fingerprint_sha256,
                      algorithm::key_algorithm, key_id, profile, created_by
               FROM input
           )
           INSERT INTO audit_events (actor_id, actor_name, action, target_type, target_id, details)
           SELECT actor_id, actor_name, action, target_type, target_id, details FROM input"#,
        &key_id as &[Option<Uuid>],
        &key_owner as &[Option<Uuid>],
        &key_algorithm as &[Option<&str>],
        &key_fingerprint as &[Option<&[u8]>],
        &ciphertext as &[Option<&[u8]>],
        &nonce as &[Option<&[u8]>],
        &salt as &[Option<&[u8]>],
        &kek_version as &[Option<i32>],
        &id,
        &ca_id,
        &owner_id as &[Option<Uuid>],
        &serial_number as &[&str],
        &subject_dn as &[&str],
        &sans,
        &not_before,
        &not_after,
        &certificate_der as &[&[u8]],
        &fingerprint as &[&[u8]],
        &algorithm as &[&str],
        &profile as &[&str],
        &created_by as &[Option<Uuid>],
        &actor_id as &[Option<Uuid>],
        &actor_name as &[Option<&str>],
        &action as &[&str],
        &target_type as &[Option<&str>],
        &target_id as &[Option<Uuid>],
        &details,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Marks up to `limit` certificates whose `not_after` is at or before `as_of` EXPIRED (from
/// ACTIVE or SUPERSEDED; REVOKED stays REVOKED). Only the partitions up to `as_of` are read.
/// Returns how many changed; callers repeat until 0 so that each transaction stays short.
pub async fn mark_expired(tx: &mut Tx, as_of: OffsetDateTime, limit: i64) -> Result<u64, DbError> {
    let done = sqlx::query!(
        r#"UPDATE certificates AS c SET status = 'EXPIRED'
           FROM (SELECT id, not_after FROM certificates
                 WHERE not_after <= $1 AND status IN ('ACTIVE', 'SUPERSEDED')
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED) AS due
           WHERE c.id = due.id AND c.not_after = due.not_after"#,
        as_of,
        limit
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
