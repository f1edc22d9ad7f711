//! Recording issued certificates.
//!
//! A certificate's serial number is inside its signed bytes, so a serial collision (which
//! only the database can detect, across every partition) means signing again with a new
//! serial. [`record_new_certificate`] owns that loop; the signing itself is a parameter, and
//! [`RecordHooks`] add the other writes of the same transaction (the key, the quota check,
//! the previous version's status, the audit event), so a collision leaves nothing behind.

use keyinfra_db::certificates::{self, NewCertificate};
use keyinfra_db::{Actor, Database, DbError, Tx};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::{RandomSource, SerialNumber, sha256_fingerprint};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::CoreError;

/// How often a collision is retried before the RNG is declared broken. One retry would
/// already be a once-in-the-universe event.
pub const SERIAL_ATTEMPTS: u32 = 3;

/// Everything about a new certificate except its serial and DER.
#[derive(Debug, Clone)]
pub struct CertificateDraft {
    pub id: Uuid,
    pub ca_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub subject_dn: String,
    pub subject_alt_names: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key_algorithm: KeyAlgorithm,
    pub private_key_id: Option<Uuid>,
    pub profile: String,
    pub created_by: Option<Uuid>,
    /// 1 for a first issue; a renewal's is the previous version's plus one.
    pub version: i32,
    pub renewed_from: Option<Uuid>,
    pub renewed_at: Option<OffsetDateTime>,
    pub renewed_by: Option<Uuid>,
    /// How it was requested ([`crate::Principal::issuance_channel`]).
    pub channel: &'static str,
}

impl CertificateDraft {
    /// The row to insert, once the certificate is signed with `serial_hex`.
    pub fn row<'a>(
        &'a self,
        serial_hex: &'a str,
        certificate_der: &'a [u8],
        fingerprint_sha256: &'a [u8],
    ) -> NewCertificate<'a> {
        NewCertificate {
            id: self.id,
            ca_id: self.ca_id,
            owner_id: self.owner_id,
            serial_number: serial_hex,
            subject_dn: &self.subject_dn,
            subject_alt_names: &self.subject_alt_names,
            not_before: self.not_before,
            not_after: self.not_after,
            version: self.version,
            renewed_from: self.renewed_from,
            renewed_at: self.renewed_at,
            renewed_by: self.renewed_by,
            certificate_der,
            fingerprint_sha256,
            key_algorithm: self.key_algorithm,
            private_key_id: self.private_key_id,
            profile: &self.profile,
            created_by: self.created_by,
            channel: self.channel,
        }
    }
}

/// A certificate as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCertificate {
    pub id: Uuid,
    pub serial_number: SerialNumber,
    pub certificate_der: Vec<u8>,
    /// How many serials were drawn (1 unless a collision happened).
    pub attempts: u32,
}

/// The other writes of the transaction that records a certificate.
pub trait RecordHooks {
    /// Runs after BEGIN, before the certificate row is inserted.
    fn before_insert(&mut self, tx: &mut Tx) -> impl Future<Output = Result<(), CoreError>> + Send;
    /// Inserts the certificate row; a hook may write more in the same statement.
    fn insert(
        &mut self,
        tx: &mut Tx,
        certificate: &NewCertificate<'_>,
    ) -> impl Future<Output = Result<(), DbError>> + Send {
        certificates::insert(tx, certificate)
    }
    /// Runs after the certificate row is inserted, before COMMIT.
    fn after_insert(
        &mut self,
        tx: &mut Tx,
        serial: &SerialNumber,
    ) -> impl Future<Output = Result<(), CoreError>> + Send;
}

/// No other writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl RecordHooks for NoHooks {
    async fn before_insert(&mut self, _tx: &mut Tx) -> Result<(), CoreError> {
        Ok(())
    }
    async fn after_insert(
        &mut self,
        _tx: &mut Tx,
        _serial: &SerialNumber,
    ) -> Result<(), CoreError> {
        Ok(())
    }
}

/// Draws a serial, signs, and stores, retrying with a fresh serial when the database
/// reports that this CA already used it. Each attempt is its own transaction.
pub async fn record_new_certificate<S, H>(
    db: &Database,
    actor: &Actor,
    rng: &mut (dyn RandomSource + Send),
    draft: &CertificateDraft,
    mut sign: S,
    hooks: &mut H,
) -> Result<RecordedCertificate, CoreError>
where
    S: FnMut(&SerialNumber) -> Result<Vec<u8>, CoreError>,
    H: RecordHooks,
{
    for attempt in 1..=SERIAL_ATTEMPTS {
        let serial = SerialNumber::random(rng)?;
        let der = sign(&serial)?;
        let fingerprint = sha256_fingerprint(&der);
        let serial_hex = serial.to_hex();
        let mut tx = db.begin(actor).await?;
        hooks.before_insert(&mut tx).await?;
        let stored = hooks
            .insert(&mut tx, &draft.row(&serial_hex, &der, &fingerprint))
            .await;
        match stored {
            Ok(()) => {
                hooks.after_insert(&mut tx, &serial).await?;
                tx.commit().await?;
                return Ok(RecordedCertificate {
                    id: draft.id,
                    serial_number: serial,
                    certificate_der: der,
                    attempts: attempt,
                });
            }
            Err(DbError::SerialCollision) => {
                tracing::warn!(ca_id = %draft.ca_id, attempt, "serial number collision; drawing a new one");
                tx.rollback().await?;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(CoreError::SerialRetriesExhausted {
        attempts: SERIAL_ATTEMPTS,
    })
}
