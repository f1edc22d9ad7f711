//! The `enrollment_requests` table (migration 0022): enrollments waiting for an ADMIN's
//! decision, and the decisions. The rules (who decides, when a request expires, what an
//! approval issues) live in `keyinfra_core::enrollment::requests`; this is storage only.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

/// A request's stored status. "Expired" is not stored: it is a pending request older than
/// the core's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Result<Self, DbError> {
        match text {
            "pending" => Ok(RequestStatus::Pending),
            "approved" => Ok(RequestStatus::Approved),
            "rejected" => Ok(RequestStatus::Rejected),
            other => Err(DbError::Internal(format!(
                "enrollment request status {other:?}"
            ))),
        }
    }
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: Uuid,
    pub challenge_id: Uuid,
    pub owner_id: Uuid,
    pub channel: String,
    pub transaction_id: String,
    pub requester_key_sha256: Vec<u8>,
    pub csr_der: Vec<u8>,
    pub requested_subject: Option<String>,
    pub profile: String,
    pub validity_days: Option<i32>,
    pub subject: Option<String>,
    pub names: Option<serde_json::Value>,
    pub status: RequestStatus,
    pub created_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    pub decided_by: Option<Uuid>,
    pub reason: Option<String>,
    pub certificate_id: Option<Uuid>,
}

/// What a device's request writes.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub challenge_id: Uuid,
    pub owner_id: Uuid,
    pub channel: &'a str,
    pub transaction_id: &'a str,
    pub requester_key_sha256: &'a [u8],
    pub csr_der: &'a [u8],
    pub requested_subject: Option<&'a str>,
    pub profile: &'a str,
    pub validity_days: Option<i32>,
    pub subject: Option<&'a str>,
    pub names: Option<&'a serde_json::Value>,
    pub created_at: OffsetDateTime,
}

struct Row {
    id: Uuid,
    challenge_id: Uuid,
    owner_id: Uuid,
    channel: String,
    transaction_id: String,
    requester_key_sha256: Vec<u8>,
    csr_der: Vec<u8>,
    requested_subject: Option<String>,
    profile: String,
    validity_days: Option<i32>,
    subject: Option<String>,
    names: Option<serde_json::Value>,
    status: String,
    created_at: OffsetDateTime,
    decided_at: Option<OffsetDateTime>,
    decided_by: Option<Uuid>,
    reason: Option<String>,
    certificate_id: Option<Uuid>,
}

impl TryFrom<Row> for RequestRecord {
    type Error = DbError;

    fn try_from(r: Row) -> Result<Self, DbError> {
        Ok(RequestRecord {
            id: r.id,
            challenge_id: r.challenge_id,
            owner_id: r.owner_id,
            channel: r.channel,
            transaction_id: r.transaction_id,
            requester_key_sha256: r.requester_key_sha256,
            csr_der: r.csr_der,
            requested_subject: r.requested_subject,
            profile: r.profile,
            validity_days: r.validity_days,
            subject: r.subject,
            names: r.names,
            status: RequestStatus::parse(&r.status)?,
            created_at: r.created_at,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
            reason: r.reason,
            certificate_id: r.certificate_id,
        })
    }
}

/// Inserts a pending request and returns its id.
pub async fn insert(tx: &mut Tx, new: &NewRequest<'_>) -> Result<Uuid, DbError> {
    let id = sqlx::query_scalar!(
        "INSERT INTO enrollment_requests
             (challenge_id, owner_id, channel, transaction_id, requester_key_sha256, csr_der,
              requested_subject, profile, validity_days, subject, names, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING id",
        new.challenge_id,
        new.owner_id,
        new.channel,
        new.transaction_id,
        new.requester_key_sha256,
        new.csr_der,
        new.requested_subject,
        new.profile,
        new.validity_days,
        new.subject,
        new.names,
        new.created_at,
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// The request with this id, if the actor may see it; `lock` takes its row lock.
pub async fn get(tx: &mut Tx, id: Uuid, lock: bool) -> Result<Option<RequestRecord>, DbError> {
    let row = if lock {
        sqlx::query_as!(
            Row,
            "SELECT id, challenge_id, owner_id, channel, transaction_id, requester_key_sha256,
                    csr_der, requested_subject, profile, validity_days, subject, names, status,
                    created_at, decided_at, decided_by, reason, certificate_id
             FROM enrollment_requests WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(tx.conn())
        .await?
    } else {
        sqlx::query_as!(
            Row,
            "SELECT id, challenge_id, owner_id, channel, transaction_id, requester_key_sha256,
                    csr_der, requested_subject, profile, validity_days, subject, names, status,
                    created_at, decided_at, decided_by, reason, certificate_id
             FROM enrollment_requests WHERE id = $1",
            id
        )
        .fetch_optional(tx.conn())
        .await?
    };
    row.map(RequestRecord::try_from).transpose()
}

/// The request a device's poll names: its transaction id, from the same key.
pub async fn find_for_poll(
    tx: &mut Tx,
    channel: &str,
    transaction_id: &str,
    requester_key_sha256: &[u8],
) -> Result<Option<RequestRecord>, DbError> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, challenge_id, owner_id, channel, transaction_id, requester_key_sha256,
                csr_der, requested_subject, profile, validity_days, subject, names, status,
                created_at, decided_at, decided_by, reason, certificate_id
         FROM enrollment_requests
         WHERE transaction_id = $1 AND requester_key_sha256 = $2 AND channel = $3
         ORDER BY created_at DESC LIMIT 1",
        transaction_id,
        requester_key_sha256,
        channel
    )
    .fetch_optional(tx.conn())
    .await?;
    row.map(RequestRecord::try_from).transpose()
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub owner_id: Option<Uuid>,
    pub status: Option<RequestStatus>,
    /// Only requests made after / at or before this instant (a pending request's expiry
    /// is its age: the core tells pending from expired with these).
    pub created_after: Option<OffsetDateTime>,
    pub created_until: Option<OffsetDateTime>,
    /// Keyset: the (created_at, id) of the previous page's last item.
    pub after: Option<(OffsetDateTime, Uuid)>,
}

/// The visible requests, newest first.
pub async fn list(
    tx: &mut Tx,
    filter: &RequestFilter,
    limit: i64,
) -> Result<Vec<RequestRecord>, DbError> {
    let (after_at, after_id) = match filter.after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id, challenge_id, owner_id, channel, transaction_id, requester_key_sha256,
                  csr_der, requested_subject, profile, validity_days, subject, names, status,
                  created_at, decided_at, decided_by, reason, certificate_id
           FROM enrollment_requests
           WHERE ($1::uuid IS NULL OR owner_id = $1)
             AND ($2::text IS NULL OR status = $2)
             AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
             AND ($6::timestamptz IS NULL OR created_at > $6)
             AND ($7::timestamptz IS NULL OR created_at <= $7)
           ORDER BY created_at DESC, id DESC
           LIMIT $5"#,
        filter.owner_id,
        filter.status.map(RequestStatus::as_str),
        after_at,
        after_id,
        limit,
        filter.created_after,
        filter.created_until
    )
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter().map(RequestRecord::try_from).collect()
}

/// Records a decision: the status, who and when, and a reason. `None` status `pending`
/// undoes a decision (an approval whose issue was refused).
pub async fn decide(
    tx: &mut Tx,
    id: Uuid,
    status: RequestStatus,
    decided: Option<(OffsetDateTime, Option<Uuid>)>,
    reason: Option<&str>,
) -> Result<(), DbError> {
    let (decided_at, decided_by) = match decided {
        Some((at, by)) => (Some(at), by),
        None => (None, None),
    };
    sqlx::query!(
        "UPDATE enrollment_requests
         SET status = $2, decided_at = $3, decided_by = $4, reason = $5
         WHERE id = $1",
        id,
        status.as_str(),
        decided_at,
        decided_by,
        reason
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records the certificate an approval issued.
pub async fn record_certificate(
    tx: &mut Tx,
    id: Uuid,
    certificate_id: Uuid,
) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE enrollment_requests SET certificate_id = $2 WHERE id = $1",
        id,
        certificate_id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}
