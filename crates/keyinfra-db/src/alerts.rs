//! `expiry_alerts`: the record (and outbox) of expiry announcements. See migration 0010.

use sqlx::postgres::types::PgInterval;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;
use crate::types::{AlertChannel, AlertStatus, CertificateStatus};

/// The channels configured for this run of the alert job.
#[derive(Debug, Clone)]
pub struct Channels<'a> {
    /// The webhook URL, when a webhook is configured.
    pub webhook: Option<&'a str>,
    /// Whether e-mail is configured (then the owner and every admin with an address get one).
    pub email: bool,
}

/// Records an alert for every channel and recipient of every ACTIVE certificate that
/// expires within `window` of `as_of` and has not been announced there yet. Renewed
/// (SUPERSEDED) and revoked certificates are not ACTIVE, so they are never announced.
/// Returns how many alerts were recorded.
pub async fn enqueue_expiring(
    tx: &mut Tx,
    window: Duration,
    as_of: OffsetDateTime,
    channels: &Channels<'_>,
) -> Result<u64, DbError> {
    let window = PgInterval::try_from(window)
        .map_err(|e| DbError::Internal(format!("alert window out of range: {e}")))?;
    let done = sqlx::query!(
        r#"INSERT INTO expiry_alerts (certificate_id, ca_id, not_after, owner_id, channel, recipient)
           SELECT c.id, c.ca_id, c.not_after, c.owner_id, r.channel, r.recipient
           FROM certificates_expiring($1, $2) AS c
           CROSS JOIN LATERAL (
               SELECT 'log'::alert_channel AS channel, '' AS recipient
               UNION ALL
               SELECT 'webhook'::alert_channel, $3::text WHERE $3::text IS NOT NULL
               UNION ALL
               SELECT 'email'::alert_channel, u.email
               FROM users AS u
               WHERE $4 AND u.email IS NOT NULL AND NOT u.disabled
                 AND (u.id = c.owner_id OR u.role = 'ADMIN')
           ) AS r
           ON CONFLICT ON CONSTRAINT expiry_alerts_once DO NOTHING"#,
        window,
        as_of,
        channels.webhook,
        channels.email,
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}

/// An alert to deliver, with what the message says about its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: Uuid,
    pub certificate_id: Uuid,
    pub ca_id: Uuid,
    pub channel: AlertChannel,
    pub recipient: String,
    pub attempts: i32,
    pub not_after: OffsetDateTime,
    pub serial_number: String,
    pub subject_dn: String,
    pub subject_alt_names: Vec<String>,
    pub status: CertificateStatus,
    pub owner_id: Option<Uuid>,
    pub owner_username: Option<String>,
}

/// Claims up to `limit` due pending alerts: each gets one more attempt counted and its next
/// attempt pushed `lease` ahead, so that a replica that dies mid-delivery leaves them to be
/// retried, and nobody else picks them meanwhile (SKIP LOCKED).
pub async fn claim_due(tx: &mut Tx, limit: i64, lease: Duration) -> Result<Vec<Delivery>, DbError> {
    let lease = PgInterval::try_from(lease)
        .map_err(|e| DbError::Internal(format!("lease out of range: {e}")))?;
    let rows = sqlx::query_as!(
        Delivery,
        r#"WITH due AS (
               SELECT id FROM expiry_alerts
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at
               LIMIT $1
               FOR UPDATE SKIP LOCKED
           ), claimed AS (
               UPDATE expiry_alerts AS a
               SET attempts = a.attempts + 1, next_attempt_at = now() + $2
               FROM due WHERE a.id = due.id
               RETURNING a.id, a.certificate_id, a.ca_id, a.channel, a.recipient, a.attempts,
                         a.not_after
           )
           SELECT cl.id AS "id!", cl.certificate_id AS "certificate_id!", cl.ca_id AS "ca_id!",
                  cl.channel AS "channel!: AlertChannel", cl.recipient AS "recipient!",
                  cl.attempts AS "attempts!", cl.not_after AS "not_after!",
                  c.serial_number AS "serial_number!", c.subject_dn AS "subject_dn!",
                  c.subject_alt_names AS "subject_alt_names!",
                  c.status AS "status!: CertificateStatus", c.owner_id,
                  u.username AS "owner_username?"
           FROM claimed AS cl
           JOIN certificates AS c ON c.id = cl.certificate_id AND c.not_after = cl.not_after
           LEFT JOIN users AS u ON u.id = c.owner_id
           ORDER BY cl.not_after, cl.id"#,
        limit,
        lease,
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Records a delivery's outcome. `Pending` with `retry_at` schedules another attempt.
pub async fn record_outcome(
    tx: &mut Tx,
    id: Uuid,
    status: AlertStatus,
    retry_at: Option<OffsetDateTime>,
    error: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query!(
        r#"UPDATE expiry_alerts
           SET status = $2,
               sent_at = CASE WHEN $2 = 'sent'::alert_status THEN now() END,
               next_attempt_at = coalesce($3, next_attempt_at),
               last_error = $4
           WHERE id = $1"#,
        id,
        status as AlertStatus,
        retry_at,
        error,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// An alert as GET /api/v1/alerts lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub id: Uuid,
    pub certificate_id: Uuid,
    pub ca_id: Uuid,
    pub not_after: OffsetDateTime,
    pub owner_id: Option<Uuid>,
    pub channel: AlertChannel,
    pub recipient: String,
    pub status: AlertStatus,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub channel: Option<AlertChannel>,
    pub certificate_id: Option<Uuid>,
}

/// Newest first, after the keyset `before` (created_at, id).
pub async fn list(
    tx: &mut Tx,
    filter: &AlertFilter,
    before: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<AlertRecord>, DbError> {
    let (before_at, before_id) = match before {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        AlertRecord,
        r#"SELECT id, certificate_id, ca_id, not_after, owner_id,
                  channel AS "channel: AlertChannel", recipient, status AS "status: AlertStatus",
                  attempts, next_attempt_at, created_at, sent_at, last_error
           FROM expiry_alerts
           WHERE ($1::alert_status IS NULL OR status = $1)
             AND ($2::alert_channel IS NULL OR channel = $2)
             AND ($3::uuid IS NULL OR certificate_id = $3)
             AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
           ORDER BY created_at DESC, id DESC
           LIMIT $6"#,
        filter.status as Option<AlertStatus>,
        filter.channel as Option<AlertChannel>,
        filter.certificate_id,
        before_at,
        before_id,
        limit,
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}
