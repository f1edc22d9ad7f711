//! Recording issued certificates.
//!
//! A certificate's serial number is inside its signed bytes, so a serial collision (which
//! only the database can detect, across every partition) means signing again with a new
//! serial. [`record_new_certificate`] owns that loop; the signing itself is a parameter, so
//! that the CA use cases (and tests) plug in what they sign with.

use keyinfra_db::certificates::{self, NewCertificate};
use keyinfra_db::{Actor, Database, DbError, KeyAlgorithm};
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

/// Draws a serial, signs, and stores, retrying with a fresh serial when the database
/// reports that this CA already used it. Each attempt is its own transaction, so a
/// collision leaves nothing behind.
pub async fn record_new_certificate<S>(
    db: &Database,
    actor: &Actor,
    rng: &mut (dyn RandomSource + Send),
    draft: &CertificateDraft,
    mut sign: S,
) -> Result<RecordedCertificate, CoreError>
where
    S: FnMut(&SerialNumber) -> Result<Vec<u8>, CoreError>,
{
    for attempt in 1..=SERIAL_ATTEMPTS {
        let serial = SerialNumber::random(rng)?;
        let der = sign(&serial)?;
        let fingerprint = sha256_fingerprint(&der);
        let serial_hex = serial.to_hex();
        let mut tx = db.begin(actor).await?;
        let stored = certificates::insert(
            &mut tx,
            &NewCertificate {
                id: draft.id,
                ca_id: draft.ca_id,
                owner_id: draft.owner_id,
                serial_number: &serial_hex,
                subject_dn: &draft.subject_dn,
                subject_alt_names: &draft.subject_alt_names,
                not_before: draft.not_before,
                not_after: draft.not_after,
                version: 1,
                renewed_from: None,
                renewed_at: None,
                renewed_by: None,
                certificate_der: &der,
                fingerprint_sha256: &fingerprint,
                key_algorithm: draft.key_algorithm,
                private_key_id: draft.private_key_id,
                profile: &draft.profile,
                created_by: draft.created_by,
            },
        )
        .await;
        match stored {
            Ok(()) => {
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
