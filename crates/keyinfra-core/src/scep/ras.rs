//! Each CA's SCEP RA certificate: an RSA-2048 key the CA certifies to open SCEP requests
//! and sign SCEP replies (why an RA at all: `keyinfra_pki::scep`).
//!
//! Validity: [`RA_VALIDITY`]; the `scep-ras` job makes a new one once the newest has less
//! than [`RENEW_BEFORE`] left, and a request makes one when a CA has none (a fresh
//! install). An older RA keeps opening requests until it expires: a device may encrypt to
//! the certificate it fetched with GetCACert weeks ago. Creation takes a per-CA advisory
//! lock and looks again under it, so replicas never make two at once. A CA whose key
//! KeyInfra does not hold cannot certify an RA, and is not served over SCEP.

use std::collections::HashMap;
use std::sync::Arc;

use keyinfra_db::scep::{self, RaRecord};
use keyinfra_db::{Actor, Database, private_keys};
use keyinfra_pki::ca::LeafKey;
use keyinfra_pki::scep::{RaCertSpec, RaKey};
use keyinfra_pki::seal::{self, MasterKeys};
use keyinfra_pki::{KeyAlgorithm, RandomSource};
use time::{Duration, OffsetDateTime};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Clock;
use crate::ca_registry::CaRegistry;
use crate::error::CoreError;
use crate::keys::{generate_key, insert_sealed_key, unseal_record};

/// How long an RA certificate is valid. Devices keep the RA certificate they enrolled
/// with (Cisco IOS stores it in the trustpoint), so it is not short-lived like the OCSP
/// responder's; a year, renewed a month ahead, and never beyond the CA.
pub const RA_VALIDITY: Duration = Duration::days(365);
/// A new RA is made once the newest has less than this left.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// A replica looks for a newer RA (made by another replica's job) this often.
const RECHECK_EVERY: Duration = Duration::minutes(10);

/// The RAs of one CA that this replica has loaded: the newest first.
#[derive(Debug)]
pub struct ActiveRas {
    pub ras: Vec<Arc<RaKey>>,
    checked_at: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl ActiveRas {
    /// The RA GetCACert hands out and replies are signed by.
    pub fn newest(&self) -> Option<&Arc<RaKey>> {
        self.ras.first()
    }
}

#[derive(Debug)]
pub(crate) struct RegistrationAuthorities {
    masters: Arc<MasterKeys>,
    clock: Arc<dyn Clock>,
    cas: Arc<CaRegistry>,
    loaded: RwLock<HashMap<Uuid, Arc<ActiveRas>>>,
}

impl RegistrationAuthorities {
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

    /// The CA's valid RAs: those loaded, newer ones from the database, or (when the CA
    /// has none valid for another day) a new one.
    pub(crate) async fn current(
        &self,
        db: &Database,
        ca_id: Uuid,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Arc<ActiveRas>, CoreError> {
        let now = self.clock.now();
        if let Some(active) = self.loaded.read().await.get(&ca_id)
            && now - active.checked_at < RECHECK_EVERY
            && active.not_after - now > Duration::days(1)
        {
            return Ok(Arc::clone(active));
        }
        // Boxed: the reload (database reads, maybe an RSA key and a certificate) is a large
        // future that every SCEP request would otherwise carry.
        Box::pin(self.reload(db, ca_id, now, rng)).await
    }

    async fn reload(
        &self,
        db: &Database,
        ca_id: Uuid,
        now: OffsetDateTime,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Arc<ActiveRas>, CoreError> {
        let mut records = self.valid(db, ca_id, now).await?;
        if records
            .first()
            .is_none_or(|r| r.not_after - now <= Duration::days(1))
        {
            self.ensure(db, ca_id, Duration::days(1), rng).await?;
            records = self.valid(db, ca_id, now).await?;
        }
        let not_after = records
            .first()
            .map(|r| r.not_after)
            .ok_or_else(|| CoreError::Internal(format!("CA {ca_id} has no SCEP RA")))?;
        let mut ras = Vec::with_capacity(records.len());
        for record in records {
            ras.push(Arc::new(self.load(db, record).await?));
        }
        let active = Arc::new(ActiveRas {
            ras,
            checked_at: now,
            not_after,
        });
        self.loaded.write().await.insert(ca_id, Arc::clone(&active));
        Ok(active)
    }

    async fn valid(
        &self,
        db: &Database,
        ca_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<RaRecord>, CoreError> {
        let mut tx = db.begin(&Actor::System).await?;
        let records = scep::valid_ras(&mut tx, ca_id, now).await?;
        tx.commit().await?;
        Ok(records)
    }

    async fn load(&self, db: &Database, record: RaRecord) -> Result<RaKey, CoreError> {
        let mut tx = db.begin(&Actor::System).await?;
        let sealed = private_keys::get(&mut tx, record.private_key_id)
            .await?
            .ok_or_else(|| CoreError::Internal(format!("SCEP RA {} has no key row", record.id)))?;
        tx.commit().await?;
        let key = unseal_record(&self.masters, &sealed)?;
        Ok(RaKey::new(record.certificate_der, &key)?)
    }

    /// Makes an RA for the CA unless one is valid for at least `wanted` more; true when it
    /// made one. Replicas serialise on the CA's lock.
    pub(crate) async fn ensure(
        &self,
        db: &Database,
        ca_id: Uuid,
        wanted: Duration,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<bool, CoreError> {
        let ca = self.cas.signer(db, ca_id).await?;
        let now = self.clock.now();
        let mut tx = db.begin(&Actor::System).await?;
        scep::lock_ras(&mut tx, ca_id).await?;
        if !scep::valid_ras(&mut tx, ca_id, now + wanted)
            .await?
            .is_empty()
        {
            tx.commit().await?;
            return Ok(false);
        }
        let key = generate_key(KeyAlgorithm::Rsa2048).await?;
        // Backdated like every certificate, and never beyond the CA: a prepared CA's RA
        // starts with it (GetNextCACert hands it out before then).
        let not_before = (now - Duration::minutes(5)).max(ca.signer.not_before());
        let not_after = (now + RA_VALIDITY).min(ca.signer.not_after());
        let certificate_der = ca.signer.issue_scep_ra(
            &RaCertSpec {
                public_key: LeafKey::Generated(&key),
                not_before,
                not_after,
            },
            rng,
        )?;
        let key_id = Uuid::now_v7();
        let sealed = seal::seal(&self.masters, key_id.as_bytes(), &key, rng)?;
        insert_sealed_key(&mut tx, key_id, None, &key, &sealed).await?;
        scep::insert_ra(
            &mut tx,
            &RaRecord {
                id: Uuid::now_v7(),
                ca_id,
                certificate_der,
                private_key_id: key_id,
                not_before,
                not_after,
            },
        )
        .await?;
        tx.commit().await?;
        // This replica's next request loads it.
        self.loaded.write().await.remove(&ca_id);
        tracing::info!(%ca_id, not_after = %not_after, "issued a SCEP RA certificate");
        Ok(true)
    }
}
