//! Each CA's delegated OCSP responder (RFC 6960 4.2.2.2): a short-lived certificate with
//! id-kp-OCSPSigning and id-pkix-ocsp-nocheck that the CA issues to a key of its own, so
//! that the CA key signs once a rotation instead of once a response.
//!
//! Key: ECDSA P-256 under an ECDSA or Ed25519 CA (every OCSP client verifies it, and it is
//! the cheapest to sign with), RSA 2048 under an RSA CA (a relying party that only knows
//! RSA keeps working). Validity: [`RESPONDER_VALIDITY`]; the `ocsp-responders` job makes a
//! new one once the newest has less than [`RENEW_BEFORE`] left, and a request makes one
//! when a CA has none (a fresh install). Creation takes a per-CA advisory lock and looks
//! again under it, so replicas never make two at once. A CA whose key KeyInfra does not
//! hold (an imported parent) has no responder and is not answered for (`unauthorized`).

use std::collections::HashMap;
use std::sync::Arc;

use keyinfra_db::ocsp::{self, ResponderRecord};
use keyinfra_db::{Actor, Database, private_keys};
use keyinfra_pki::ca::LeafKey;
use keyinfra_pki::ocsp::{OcspResponder, ResponderCertSpec};
use keyinfra_pki::seal::{self, MasterKeys};
use keyinfra_pki::{KeyAlgorithm, RandomSource};
use time::{Duration, OffsetDateTime};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Clock;
use crate::ca_registry::CaRegistry;
use crate::error::CoreError;
use crate::keys::{generate_key, insert_sealed_key, unseal_record};

/// How long a responder certificate is valid.
pub const RESPONDER_VALIDITY: Duration = Duration::days(30);
/// A new responder is made once the newest has less than this left.
pub const RENEW_BEFORE: Duration = Duration::days(10);
/// A replica looks for a newer responder (made by another replica's job) this often.
const RECHECK_EVERY: Duration = Duration::minutes(10);

/// A loaded responder and when this replica last looked for a newer one.
#[derive(Debug)]
pub(crate) struct ActiveResponder {
    pub(crate) responder: OcspResponder,
    pub(crate) not_after: OffsetDateTime,
    checked_at: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Responders {
    masters: Arc<MasterKeys>,
    clock: Arc<dyn Clock>,
    cas: Arc<CaRegistry>,
    loaded: RwLock<HashMap<Uuid, Arc<ActiveResponder>>>,
}

impl Responders {
    pub(crate) fn new(
        masters: Arc<MasterKeys>,
        clock: Arc<dyn Clock>,
        cas: Arc<CaRegistry>,
    ) -> Self {
        Self {
            masters,
            clock,
            cas,
            loaded: RwLock::new(HashMap::new()),
        }
    }

    /// The responder that signs for a CA now: the one loaded, a newer one from the
    /// database, or (when the CA has none valid for another day) a new one.
    pub(crate) async fn current(
        &self,
        db: &Database,
        ca_id: Uuid,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Arc<ActiveResponder>, CoreError> {
        let now = self.clock.now();
        if let Some(active) = self.loaded.read().await.get(&ca_id)
            && now - active.checked_at < RECHECK_EVERY
            && active.not_after - now > Duration::days(1)
        {
            return Ok(Arc::clone(active));
        }
        // Boxed: this path's future (database reads, maybe a new key and certificate) is
        // tens of kilobytes, and every OCSP request's future would otherwise carry it and
        // copy it onto the heap, though it runs once in ten minutes.
        Box::pin(self.reload(db, ca_id, now, rng)).await
    }

    async fn reload(
        &self,
        db: &Database,
        ca_id: Uuid,
        now: OffsetDateTime,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Arc<ActiveResponder>, CoreError> {
        let record = match self.newest(db, ca_id, now + Duration::days(1)).await? {
            Some(record) => record,
            None => self.ensure(db, ca_id, Duration::days(1), rng).await?.0,
        };
        let active = Arc::new(self.load(db, record, now).await?);
        self.loaded.write().await.insert(ca_id, Arc::clone(&active));
        Ok(active)
    }

    async fn newest(
        &self,
        db: &Database,
        ca_id: Uuid,
        valid_at: OffsetDateTime,
    ) -> Result<Option<ResponderRecord>, CoreError> {
        let mut tx = db.begin(&Actor::System).await?;
        let record = ocsp::newest_responder(&mut tx, ca_id, valid_at).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn load(
        &self,
        db: &Database,
        record: ResponderRecord,
        now: OffsetDateTime,
    ) -> Result<ActiveResponder, CoreError> {
        let mut tx = db.begin(&Actor::System).await?;
        let sealed = private_keys::get(&mut tx, record.private_key_id)
            .await?
            .ok_or_else(|| {
                CoreError::Internal(format!("OCSP responder {} has no key row", record.id))
            })?;
        tx.commit().await?;
        let key = unseal_record(&self.masters, &sealed)?;
        Ok(ActiveResponder {
            responder: OcspResponder::new(record.certificate_der, key)?,
            not_after: record.not_after,
            checked_at: now,
        })
    }

    /// Makes a responder for the CA unless one is valid for at least `wanted` more; true
    /// in the second member when it made one. Replicas serialise on the CA's lock.
    pub(crate) async fn ensure(
        &self,
        db: &Database,
        ca_id: Uuid,
        wanted: Duration,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<(ResponderRecord, bool), CoreError> {
        let ca = self.cas.signer(db, ca_id).await?;
        let now = self.clock.now();
        let algorithm = match ca.signer.key_algorithm() {
            a if a.is_rsa() => KeyAlgorithm::Rsa2048,
            _ => KeyAlgorithm::EcdsaP256,
        };
        let mut tx = db.begin(&Actor::System).await?;
        ocsp::lock_responders(&mut tx, ca_id).await?;
        if let Some(existing) = ocsp::newest_responder(&mut tx, ca_id, now + wanted).await? {
            tx.commit().await?;
            return Ok((existing, false));
        }
        let key = generate_key(algorithm).await?;
        // Backdated like every certificate, and never beyond the CA.
        let not_before = now - Duration::minutes(5);
        let not_after = (now + RESPONDER_VALIDITY).min(ca.signer.not_after());
        let certificate = ca.signer.issue_ocsp_responder(
            &ResponderCertSpec {
                public_key: LeafKey::Generated(&key),
                not_before,
                not_after,
            },
            rng,
        )?;
        let key_id = Uuid::now_v7();
        let sealed = seal::seal(&self.masters, key_id.as_bytes(), &key, rng)?;
        insert_sealed_key(&mut tx, key_id, None, &key, &sealed).await?;
        let record = ResponderRecord {
            id: Uuid::now_v7(),
            ca_id,
            certificate_der: certificate.der,
            private_key_id: key_id,
            not_before,
            not_after,
        };
        ocsp::insert_responder(&mut tx, &record).await?;
        tx.commit().await?;
        tracing::info!(%ca_id, not_after = %not_after, "issued an OCSP responder certificate");
        Ok((record, true))
    }
}
