//! The partitioned `certificates` table. Every query here names `not_after` (the partition
//! key) or goes through a function that does, so PostgreSQL reads only the partitions it
//! needs; see ARCHITECTURE.md. (Slightly over 600 lines: one table's repository, whose
//! queries belong together for that rule to be checked at a glance.)

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
    pub key_algorithm: keyinfra_pki::KeyAlgorithm,
    pub private_key_id: Option<Uuid>,
    pub profile: &'a str,
    pub created_by: Option<Uuid>,
    /// api, cli, server, scep, est or acme: the `issuance_channel` enum (migration 0023).
    pub channel: &'a str,
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
              fingerprint_sha256, key_algorithm, private_key_id, profile, created_by, channel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19::text::issuance_channel)",
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
        KeyAlgorithm::from(cert.key_algorithm) as KeyAlgorithm,
        cert.private_key_id,
        cert.profile,
        cert.created_by,
        cert.channel,
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
    /// How it was requested: api, cli, server, scep, est or acme (migration 0023).
    pub channel: String,
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
                  c.private_key_id, c.profile, c.created_at, c.channel::text AS "channel!"
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
                  c.private_key_id, c.profile, c.created_at, c.channel::text AS "channel!"
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
                  c.private_key_id, c.profile, c.created_at, c.channel::text AS "channel!"
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
                  c.private_key_id, c.profile, c.created_at, c.channel::text AS "channel!"
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
/// `keyinfra_lock_and_count_active` (migration 0012), which a batch's quota check calls
/// too, takes the lock and counts in two statements on purpose: under READ COMMITTED a
/// statement sees the rows committed before it started, so a count in the statement that
/// waited for the lock would miss the certificates its predecessor committed meanwhile.
pub async fn count_active_for_owner_locked(
    tx: &mut Tx,
    owner_id: Uuid,
    as_of: OffsetDateTime,
) -> Result<i64, DbError> {
    let n = sqlx::query_scalar!(
        r#"SELECT keyinfra_lock_and_count_active($1, $2) AS "n!""#,
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

/// One first issue as [`insert_issued`] and [`record_issued_batch`] write it: the sealed key
/// (when the server made it), the certificate (version 1, no renewal columns) and its audit
/// event.
#[derive(Debug, Clone)]
pub struct IssuedRows<'a> {
    pub key: Option<crate::private_keys::NewSealedKey<'a>>,
    pub certificate: NewCertificate<'a>,
    /// The audit event's id: `Uuid::now_v7()`, made when the issue was signed. A batch's
    /// events share `occurred_at`, so the audit log orders them by this id alone, and the
    /// database's default is random within a millisecond (migration 0017).
    pub audit_id: Uuid,
    pub audit: crate::audit::NewAuditEvent<'a>,
    /// The enrollment challenge (SCEP, EST) this issue used up: the same statement links
    /// the challenge to the certificate (migration 0027).
    pub challenge_id: Option<Uuid>,
}

/// Records one first issue in the caller's transaction, in one statement (one round trip):
/// `keyinfra_insert_issued` (migrations 0012, 0017, 0023, 0027), the same function a batch writes with. A serial
/// this CA already used fails with [`DbError::SerialCollision`] and writes nothing.
pub async fn insert_issued(tx: &mut Tx, issue: &IssuedRows<'_>) -> Result<(), DbError> {
    let columns = IssuedColumns::from_rows(std::slice::from_ref(issue));
    columns
        .bind(sqlx::query(
            "SELECT keyinfra_insert_issued($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, \
             $30)",
        ))
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An owner whose quota a batch must respect, and the limit. How many certificates the
/// batch adds for them is counted by the database from the rows themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerQuota {
    pub owner_id: Uuid,
    pub limit: u32,
}

/// Records a batch of first issues that share `actor`, in one round trip and its own
/// transaction: `keyinfra_record_issuances` (migrations 0012, 0017, 0023, 0027) checks the actor's
/// token and sets its identity as [`Database::begin`](crate::Database::begin) would, checks
/// each owner's quota (active certificates at `as_of`) under that owner's lock, and writes
/// the rows as [`insert_issued`] does, one multi-row INSERT per table. The call is sent outside
/// any explicit transaction, so PostgreSQL commits it when it returns; this is what makes
/// group commit pay, since PostgreSQL's cost per issuance is mostly per statement and per
/// transaction, and a batch's latency mostly round trips.
///
/// Any failure writes nothing, and is not told apart (a quota that would be exceeded is an
/// internal error here): the caller learns each issue's own answer on the one-transaction
/// path. Only [`DbError::Unavailable`] means what it says.
pub async fn record_issued_batch(
    db: &crate::Database,
    actor: &crate::Actor,
    quotas: &[OwnerQuota],
    as_of: OffsetDateTime,
    issues: &[IssuedRows<'_>],
) -> Result<(), DbError> {
    let identity = actor.identity();
    let mut quotas = quotas.to_vec();
    // A fixed order, so that two batches never wait for each other's locks in opposite
    // orders; each owner once, so that no lock is taken twice.
    quotas.sort_by_key(|quota| (quota.owner_id, quota.limit));
    quotas.dedup_by_key(|quota| quota.owner_id);
    let quota_owner: Vec<Uuid> = quotas.iter().map(|q| q.owner_id).collect();
    let quota_limit: Vec<i64> = quotas.iter().map(|q| i64::from(q.limit)).collect();
    let columns = IssuedColumns::from_rows(issues);
    let query = sqlx::query(
        "SELECT keyinfra_record_issuances($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, \
         $30, $31, $32, $33, $34, $35, $36)",
    )
    .bind(&identity.user_id)
    .bind(identity.role)
    .bind(identity.token_epoch)
    .bind(&quota_owner)
    .bind(&quota_limit)
    .bind(as_of);
    let mut conn = db.acquire().await?;
    columns.bind(query).execute(&mut *conn).await?;
    conn.finished();
    Ok(())
}

/// [`IssuedRows`] as the parallel arrays `keyinfra_insert_issued` takes, one element per
/// issue. A two-dimensional text[] cannot hold lists of different lengths, so each row's
/// SANs travel as one JSON array.
struct IssuedColumns<'a> {
    key_id: Vec<Option<Uuid>>,
    key_owner: Vec<Option<Uuid>>,
    key_algorithm: Vec<Option<&'static str>>,
    key_fingerprint: Vec<Option<&'a [u8]>>,
    ciphertext: Vec<Option<&'a [u8]>>,
    nonce: Vec<Option<&'a [u8]>>,
    salt: Vec<Option<&'a [u8]>>,
    kek_version: Vec<Option<i32>>,
    id: Vec<Uuid>,
    ca_id: Vec<Uuid>,
    owner_id: Vec<Option<Uuid>>,
    serial_number: Vec<&'a str>,
    subject_dn: Vec<&'a str>,
    sans: Vec<serde_json::Value>,
    not_before: Vec<OffsetDateTime>,
    not_after: Vec<OffsetDateTime>,
    certificate_der: Vec<&'a [u8]>,
    fingerprint: Vec<&'a [u8]>,
    algorithm: Vec<&'static str>,
    profile: Vec<&'a str>,
    created_by: Vec<Option<Uuid>>,
    channel: Vec<&'a str>,
    audit_id: Vec<Uuid>,
    actor_id: Vec<Option<Uuid>>,
    actor_name: Vec<Option<&'a str>>,
    action: Vec<&'a str>,
    target_type: Vec<Option<&'a str>>,
    target_id: Vec<Option<Uuid>>,
    details: Vec<serde_json::Value>,
    /// `None` when no issue has a challenge: the function then skips the links.
    challenge_id: Option<Vec<Option<Uuid>>>,
}

impl<'a> IssuedColumns<'a> {
    fn from_rows(issues: &'a [IssuedRows<'a>]) -> Self {
        let key = |issue: &'a IssuedRows<'a>| issue.key.as_ref();
        Self {
            key_id: issues.iter().map(|i| key(i).map(|k| k.id)).collect(),
            key_owner: issues
                .iter()
                .map(|i| key(i).and_then(|k| k.owner_id))
                .collect(),
            key_algorithm: issues
                .iter()
                .map(|i| key(i).map(|k| k.algorithm.label()))
                .collect(),
            key_fingerprint: issues
                .iter()
                .map(|i| key(i).map(|k| k.public_key_fingerprint))
                .collect(),
            ciphertext: issues
                .iter()
                .map(|i| key(i).map(|k| k.ciphertext))
                .collect(),
            nonce: issues.iter().map(|i| key(i).map(|k| k.nonce)).collect(),
            salt: issues.iter().map(|i| key(i).map(|k| k.salt)).collect(),
            kek_version: issues
                .iter()
                .map(|i| key(i).map(|k| k.kek_version))
                .collect(),
            id: issues.iter().map(|i| i.certificate.id).collect(),
            ca_id: issues.iter().map(|i| i.certificate.ca_id).collect(),
            owner_id: issues.iter().map(|i| i.certificate.owner_id).collect(),
            serial_number: issues.iter().map(|i| i.certificate.serial_number).collect(),
            subject_dn: issues.iter().map(|i| i.certificate.subject_dn).collect(),
            sans: issues
                .iter()
                .map(|i| serde_json::json!(i.certificate.subject_alt_names))
                .collect(),
            not_before: issues.iter().map(|i| i.certificate.not_before).collect(),
            not_after: issues.iter().map(|i| i.certificate.not_after).collect(),
            certificate_der: issues
                .iter()
                .map(|i| i.certificate.certificate_der)
                .collect(),
            fingerprint: issues
                .iter()
                .map(|i| i.certificate.fingerprint_sha256)
                .collect(),
            algorithm: issues
                .iter()
                .map(|i| i.certificate.key_algorithm.label())
                .collect(),
            profile: issues.iter().map(|i| i.certificate.profile).collect(),
            created_by: issues.iter().map(|i| i.certificate.created_by).collect(),
            channel: issues.iter().map(|i| i.certificate.channel).collect(),
            audit_id: issues.iter().map(|i| i.audit_id).collect(),
            actor_id: issues.iter().map(|i| i.audit.actor_id).collect(),
            actor_name: issues.iter().map(|i| i.audit.actor_name).collect(),
            action: issues.iter().map(|i| i.audit.action.as_str()).collect(),
            target_type: issues.iter().map(|i| i.audit.target_type).collect(),
            target_id: issues.iter().map(|i| i.audit.target_id).collect(),
            details: issues.iter().map(|i| i.audit.details.clone()).collect(),
            challenge_id: issues
                .iter()
                .any(|i| i.challenge_id.is_some())
                .then(|| issues.iter().map(|i| i.challenge_id).collect()),
        }
    }

    /// Binds the 30 arrays in `keyinfra_insert_issued`'s order, after whatever `query`
    /// already bound.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.key_id)
            .bind(&self.key_owner)
            .bind(&self.key_algorithm)
            .bind(&self.key_fingerprint)
            .bind(&self.ciphertext)
            .bind(&self.nonce)
            .bind(&self.salt)
            .bind(&self.kek_version)
            .bind(&self.id)
            .bind(&self.ca_id)
            .bind(&self.owner_id)
            .bind(&self.serial_number)
            .bind(&self.subject_dn)
            .bind(&self.sans)
            .bind(&self.not_before)
            .bind(&self.not_after)
            .bind(&self.certificate_der)
            .bind(&self.fingerprint)
            .bind(&self.algorithm)
            .bind(&self.profile)
            .bind(&self.created_by)
            .bind(&self.channel)
            .bind(&self.audit_id)
            .bind(&self.actor_id)
            .bind(&self.actor_name)
            .bind(&self.action)
            .bind(&self.target_type)
            .bind(&self.target_id)
            .bind(&self.details)
            .bind(&self.challenge_id)
    }
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
