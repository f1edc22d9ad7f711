//! The append-only `audit_events` table.

use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<&'a str>,
    /// Dotted lowercase, e.g. `user.login_failed`, `certificate.issued`.
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<Uuid>,
    /// A JSON object. Never a secret: no password, PIN, token or key material.
    pub details: serde_json::Value,
}

/// Appends an event. No RETURNING: an INSERT ... RETURNING must also pass the SELECT policy,
/// and a user may append an anonymous event that they cannot read back.
///
/// The id is made here, not by the column's default. Events of one transaction share their
/// `occurred_at` (the transaction's `now()`), so [`list`] orders them by id alone. The
/// database's `keyinfra_uuid_v7()` is random after the millisecond, so a batch of events
/// written within one millisecond came back shuffled (58, 59, 55, 54, ...); `Uuid::now_v7`
/// counts within the millisecond, so this process's events list in the order they were
/// appended. Like the certificate ids the core makes, it reads the system clock: an id is
/// an order, not a time anyone relies on (`occurred_at` is).
pub async fn append(tx: &mut Tx, event: &NewAuditEvent<'_>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO audit_events (id, actor_id, actor_name, action, target_type, target_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        event.actor_id,
        event.actor_name,
        event.action,
        event.target_type,
        event.target_id,
        event.details,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub occurred_at: time::OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub details: serde_json::Value,
}

/// Filters of the audit page; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub since: Option<time::OffsetDateTime>,
    pub until: Option<time::OffsetDateTime>,
    /// Only events about this object (a user or certificate id); audit_events_target_idx.
    pub target_id: Option<Uuid>,
    /// Keyset: events strictly older than this (occurred_at, id).
    pub before: Option<(time::OffsetDateTime, Uuid)>,
}

/// Newest first: by `occurred_at`, then by the time-ordered id, so that events of one
/// transaction (one timestamp) keep a stable order; the keyset in `filter.before` is the
/// same pair, so pages continue exactly where the previous one stopped.
pub async fn list(
    tx: &mut Tx,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRecord>, DbError> {
    let (before_at, before_id) = match filter.before {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        AuditRecord,
        r#"SELECT id, occurred_at, actor_id, actor_name, action, target_type, target_id, details
           FROM audit_events
           WHERE ($1::uuid IS NULL OR actor_id = $1)
             AND ($2::text IS NULL OR action = $2)
             AND ($3::timestamptz IS NULL OR occurred_at >= $3)
             AND ($4::timestamptz IS NULL OR occurred_at < $4)
             AND ($5::timestamptz IS NULL OR (occurred_at, id) < ($5, $6::uuid))
             AND ($8::uuid IS NULL OR target_id = $8)
           ORDER BY occurred_at DESC, id DESC
           LIMIT $7"#,
        filter.actor_id,
        filter.action,
        filter.since,
        filter.until,
        before_at,
        before_id,
        limit,
        filter.target_id
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}
