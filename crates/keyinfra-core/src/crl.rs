//! CRLs: one per CA, v2, numbered by the database, re-issued after revocations (a burst is
//! coalesced into one) and again well before nextUpdate.
//!
//! Publishing takes the next CRL number with `UPDATE ... RETURNING`, which locks the CA row
//! until the transaction ends; the revoked list is read after that lock, in the same
//! transaction. So when two replicas publish at once, the second waits for the first and its
//! CRL (with the higher number) contains everything the first one's does. Revocation
//! requests never take that lock: their cost does not grow with the CRL.

use std::collections::HashSet;

use keyinfra_db::crls::{self, CrlRecord};
use keyinfra_db::{Actor, Database, authorities, revocations};
use keyinfra_pki::SerialNumber;
use keyinfra_pki::ca::{CrlSpec, RevokedEntry};
use uuid::Uuid;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::Clock;
use crate::authority::AuthoritySettings;
use crate::ca_registry::CaRegistry;
use crate::error::CoreError;

/// CRLs kept per CA (older ones are pruned).
const CRLS_KEPT: i64 = 3;

/// Builds, stores and serves each CA's CRL, and re-issues it after revocations.
#[derive(Debug)]
pub struct CrlPublisher {
    settings: Arc<AuthoritySettings>,
    clock: Arc<dyn Clock>,
    cas: Arc<CaRegistry>,
    requests: mpsc::UnboundedSender<Uuid>,
    receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Uuid>>>,
}

impl CrlPublisher {
    pub(crate) fn new(
        settings: Arc<AuthoritySettings>,
        clock: Arc<dyn Clock>,
        cas: Arc<CaRegistry>,
    ) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        Self {
            settings,
            clock,
            cas,
            requests,
            receiver: std::sync::Mutex::new(Some(receiver)),
        }
    }

    /// Asks the CRL publisher to re-issue this CA's CRL (coalesced with other requests).
    pub fn crl_changed(&self, ca_id: Uuid) {
        // No receiver (a CLI run without a publisher): the caller publishes itself.
        let _ = self.requests.send(ca_id);
    }

    /// Builds, signs and stores a new CRL for the CA.
    pub async fn publish_crl(&self, db: &Database, ca_id: Uuid) -> Result<CrlRecord, CoreError> {
        let ca = self.cas.signer(db, ca_id).await?;
        let mut tx = db.begin(&Actor::System).await?;
        let number = authorities::next_crl_number(&mut tx, ca_id)
            .await?
            .ok_or(CoreError::NotFound("certificate authority"))?;
        let this_update = self.clock.now();
        let next_update = this_update + self.settings.crl_validity;
        let started = std::time::Instant::now();
        let rows = revocations::for_crl(&mut tx, ca_id, this_update).await?;
        let count = rows.len();
        let ca_for_signing = std::sync::Arc::clone(&ca);
        // Signing a long CRL is CPU work: off the async workers.
        let der = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, CoreError> {
            let mut revoked = Vec::with_capacity(rows.len());
            for row in rows {
                revoked.push(RevokedEntry {
                    serial: SerialNumber::from_hex(&row.serial_number)?,
                    revoked_at: row.revoked_at,
                    reason: row.reason,
                    invalidity_date: row.invalidity_date,
                });
            }
            let spec = CrlSpec {
                number: u64::try_from(number).unwrap_or_default(),
                this_update,
                next_update,
                revoked,
            };
            Ok(ca_for_signing.signer.sign_crl(&spec)?)
        })
        .await
        .map_err(|e| CoreError::Internal(format!("CRL task failed: {e}")))??;
        let record = CrlRecord {
            ca_id,
            crl_number: number,
            this_update,
            next_update,
            crl_der: der,
        };
        crls::insert(&mut tx, &record).await?;
        crls::prune(&mut tx, ca_id, CRLS_KEPT).await?;
        tx.commit().await?;
        metrics::histogram!("keyinfra_crl_build_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("keyinfra_crl_size_bytes", "ca_id" => ca_id.to_string())
            .set(record.crl_der.len() as f64);
        metrics::gauge!("keyinfra_crl_entries", "ca_id" => ca_id.to_string()).set(count as f64);
        metrics::counter!("keyinfra_crls_published_total").increment(1);
        tracing::info!(
            %ca_id,
            crl_number = number,
            entries = count,
            build_ms = started.elapsed().as_millis() as u64,
            "published CRL"
        );
        Ok(record)
    }

    /// The newest CRL of a CA (public).
    pub async fn latest_crl(&self, db: &Database, ca_id: Uuid) -> Result<CrlRecord, CoreError> {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let crl = crls::latest(&mut tx, ca_id).await?;
        tx.commit().await?;
        crl.ok_or(CoreError::NotFound("CRL"))
    }

    /// Publishes CRLs that are older than `crl_republish_after` (or missing).
    pub async fn refresh_stale_crls(&self, db: &Database) -> Result<usize, CoreError> {
        let mut tx = db.begin(&Actor::System).await?;
        let cas = crls::next_updates(&mut tx).await?;
        tx.commit().await?;
        let now = self.clock.now();
        let mut published = 0;
        for (ca_id, next_update) in cas {
            let stale = match next_update {
                None => true,
                Some(next) => {
                    now >= next - self.settings.crl_validity + self.settings.crl_republish_after
                }
            };
            if stale {
                self.publish_crl(db, ca_id).await?;
                published += 1;
            }
        }
        Ok(published)
    }

    /// The background publisher: re-issues the CRL of every CA that had revocations, at
    /// most once per `crl_coalesce` window, and refreshes stale CRLs every `tick`. Returns
    /// when `shutdown` resolves. Only one publisher per replica can run.
    pub async fn run_crl_publisher(
        &self,
        db: &Database,
        tick: std::time::Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        let receiver = self.receiver.lock().ok().and_then(|mut r| r.take());
        let Some(mut receiver) = receiver else {
            tracing::warn!("a CRL publisher is already running");
            return;
        };
        let mut interval = tokio::time::interval(tick);
        tokio::pin!(shutdown);
        loop {
            let mut dirty = HashSet::new();
            tokio::select! {
                () = &mut shutdown => return,
                request = receiver.recv() => {
                    let Some(ca) = request else { return };
                    dirty.insert(ca);
                    // Coalesce the burst: wait, then take everything that queued meanwhile.
                    tokio::time::sleep(self.settings.crl_coalesce).await;
                    while let Ok(more) = receiver.try_recv() {
                        dirty.insert(more);
                    }
                }
                _ = interval.tick() => {
                    if let Err(e) = self.refresh_stale_crls(db).await {
                        tracing::error!(error = %e, "refreshing CRLs failed; retrying at the next tick");
                    }
                }
            }
            for ca in dirty {
                if let Err(e) = self.publish_crl(db, ca).await {
                    tracing::error!(ca_id = %ca, error = %e, "publishing a CRL failed; it will be retried");
                    // Retried with the next request or refresh; a failed publish leaves the
                    // previous CRL in place.
                    let _ = self.requests.send(ca);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// A CA's newest CRL as published: the stored row's dates and number, and the entries read
/// back from the signed DER (what a relying party that downloads it sees).
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    pub ca_id: Uuid,
    pub crl_number: i64,
    pub this_update: time::OffsetDateTime,
    pub next_update: time::OffsetDateTime,
    pub size_bytes: usize,
    pub entries: Vec<keyinfra_pki::ca::CrlEntryInfo>,
}

impl CrlPublisher {
    /// The newest CRL of a CA with its entries (public data); None before the first one is
    /// published (a CA whose key is not held here never gets one).
    pub async fn published_crl(
        &self,
        db: &Database,
        ca_id: Uuid,
    ) -> Result<Option<PublishedCrl>, CoreError> {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let crl = crls::latest(&mut tx, ca_id).await?;
        tx.commit().await?;
        let Some(crl) = crl else {
            return Ok(None);
        };
        // A CRL can hold many thousands of entries: parse it off the async workers.
        let der = crl.crl_der;
        let size_bytes = der.len();
        let info = tokio::task::spawn_blocking(move || keyinfra_pki::ca::read_crl(&der))
            .await
            .map_err(|e| CoreError::Internal(format!("CRL parsing task failed: {e}")))?
            .map_err(|e| CoreError::Internal(format!("a stored CRL does not parse: {e}")))?;
        Ok(Some(PublishedCrl {
            ca_id,
            crl_number: crl.crl_number,
            this_update: crl.this_update,
            next_update: crl.next_update,
            size_bytes,
            entries: info.entries,
        }))
    }
}
