//! What the OCSP responder reads and writes: certificate status by serial (through the
//! definer function `keyinfra_ocsp_status`, migration 0018), the `ocsp_responders` table,
//! and the `keyinfra_revocations` notifications every revocation sends at commit.

use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;
use crate::types::RevocationReason;

/// The channel `revoked_certificates`' trigger notifies, with payload "<ca id> <serial>".
pub const REVOCATIONS_CHANNEL: &str = "keyinfra_revocations";

/// What the database knows of one serial of a CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialStatus {
    pub serial_number: String,
    /// Set when the certificate is revoked.
    pub revocation: Option<(OffsetDateTime, keyinfra_pki::RevocationReason)>,
}

/// The status of each serial (canonical hex) the CA issued; serials it did not issue (or
/// whose registry row retention has deleted) are absent.
pub async fn status(
    tx: &mut Tx,
    ca_id: Uuid,
    serials: &[String],
) -> Result<Vec<SerialStatus>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT serial_number AS "serial_number!", revoked_at,
                  reason AS "reason: RevocationReason"
           FROM keyinfra_ocsp_status($1, $2)"#,
        ca_id,
        serials
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SerialStatus {
            serial_number: r.serial_number,
            revocation: match (r.revoked_at, r.reason) {
                (Some(at), Some(reason)) => Some((at, reason.into())),
                _ => None,
            },
        })
        .collect())
}

/// A CA's delegated OCSP responder certificate and its sealed key's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderRecord {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub certificate_der: Vec<u8>,
    pub private_key_id: Uuid,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The CA's responder that lives longest, if it is still valid at `valid_at`.
pub async fn newest_responder(
    tx: &mut Tx,
    ca_id: Uuid,
    valid_at: OffsetDateTime,
) -> Result<Option<ResponderRecord>, DbError> {
    let row = sqlx::query_as!(
        ResponderRecord,
        "SELECT id, ca_id, certificate_der, private_key_id, not_before, not_after
         FROM ocsp_responders WHERE ca_id = $1 AND not_after > $2
         ORDER BY not_after DESC LIMIT 1",
        ca_id,
        valid_at
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

pub async fn insert_responder(tx: &mut Tx, responder: &ResponderRecord) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO ocsp_responders
             (id, ca_id, certificate_der, private_key_id, not_before, not_after)
         VALUES ($1, $2, $3, $4, $5, $6)",
        responder.id,
        responder.ca_id,
        responder.certificate_der,
        responder.private_key_id,
        responder.not_before,
        responder.not_after
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Deletes responders that expired before `before`; their keys then become orphans, which
/// partition maintenance deletes.
pub async fn delete_expired_responders(
    tx: &mut Tx,
    before: OffsetDateTime,
) -> Result<u64, DbError> {
    let result = sqlx::query!("DELETE FROM ocsp_responders WHERE not_after < $1", before)
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected())
}

/// Serialises responder creation for one CA across replicas until the transaction ends:
/// the second replica then finds the first one's responder instead of making another.
pub async fn lock_responders(tx: &mut Tx, ca_id: Uuid) -> Result<(), DbError> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('keyinfra.ocsp.' || $1::uuid::text, 0))",
        ca_id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// A connection listening on [`REVOCATIONS_CHANNEL`].
pub struct RevocationFeed {
    listener: PgListener,
}

impl std::fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationFeed").finish_non_exhaustive()
    }
}

/// One announced revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub ca_id: Uuid,
    pub serial_number: String,
}

impl RevocationFeed {
    /// Starts listening; notifications sent before this returns are not seen.
    pub async fn listen(db: &crate::Database) -> Result<Self, DbError> {
        // A connection of its own, outside the application pool: the listener holds it for
        // as long as the server runs, and must not take a request's place in the pool.
        let options = (*db.pool().connect_options()).clone();
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&own).await?;
        // No automatic reconnect: a notification lost while reconnecting would be missed
        // without anyone knowing. recv() reports the loss, and the caller starts over.
        listener.ignore_pool_close_event(false);
        listener.listen(REVOCATIONS_CHANNEL).await?;
        Ok(Self { listener })
    }

    /// The next revocation (None for a payload that does not parse, which is skipped). An
    /// error means the connection was lost, and notifications may have been missed.
    pub async fn next(&mut self) -> Result<Option<Revoked>, DbError> {
        let notification = self.listener.try_recv().await?;
        let Some(notification) = notification else {
            return Err(DbError::Unavailable {
                reason: crate::error::UnavailableReason::ConnectionLost,
                retry_after: std::time::Duration::from_secs(1),
            });
        };
        let mut parts = notification.payload().splitn(2, ' ');
        let ca_id = parts.next().and_then(|id| id.parse::<Uuid>().ok());
        let serial = parts.next();
        Ok(match (ca_id, serial) {
            (Some(ca_id), Some(serial)) => Some(Revoked {
                ca_id,
                serial_number: serial.to_owned(),
            }),
            _ => None,
        })
    }
}
