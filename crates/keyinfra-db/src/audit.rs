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
pub async fn append(tx: &mut Tx, event: &NewAuditEvent<'_>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO audit_events (actor_id, actor_name, action, target_type, target_id, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
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
