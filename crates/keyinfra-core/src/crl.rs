//! CRLs: one per CA, v2, numbered by the database, re-issued after revocations (a burst is
//! coalesced into one) and again well before nextUpdate.
//!
//! Publishing takes the next CRL number with `UPDATE ... RETURNING`, which locks the CA row
//! until the transaction ends; the revoked list is read after that lock, in the same
//! transaction. So when two replicas publish at once, the second waits for the first and its
//! CRL (with the higher number) contains everything the first one's does. Revocation
//! requests never take that lock: their cost does not grow with the CRL.

use std::collections::HashSet;

use keyinfra_db::crls::{self, CrlRecord, NewCrl};
use keyinfra_db::{Actor, Database, authorities, revocations};
use keyinfra_pki::SerialNumber;
use keyinfra_pki::ca::{CaSigner, RevokedEntry};
use keyinfra_pki::crl::{CrlHeader, CrlKind, encode_entry};
use uuid::Uuid;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::Clock;
use crate::authority::AuthoritySettings;
use crate::ca_registry::CaRegistry;
use crate::error::CoreError;

/// Complete and delta CRLs kept per CA, each (older ones are pruned).
const CRLS_KEPT: i64 = 3;

/// How far before its base's thisUpdate a delta CRL starts listing revocations (see
/// `publish`): more than any clock skew between replicas or any revocation transaction.
const DELTA_OVERLAP: time::Duration = time::Duration::hours(1);

/// Revoked rows read from the database per round trip while a CRL is written.
const CRL_FETCH_BATCH: u32 = 10_000;

/// Bytes of encoded CRL sent to the database per part.
const CRL_PART_BYTES: usize = 1 << 20;

/// What one publication wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    pub ca_id: Uuid,
    /// The complete CRL the new delta is over: the one just published, or (after
    /// revocations within `crl_full_min_interval`) the newest earlier one.
    pub crl_number: i64,
    /// Whether this publication wrote a new complete CRL.
    pub full_published: bool,
    pub full_entries: Option<usize>,
    pub full_bytes: Option<usize>,
    pub delta_crl_number: i64,
    pub delta_entries: usize,
    pub this_update: time::OffsetDateTime,
    pub next_update: time::OffsetDateTime,
}

/// Entries and bytes of one written CRL.
#[derive(Debug, Clone, Copy)]
struct Written {
    entries: usize,
    bytes: usize,
}

/// Where the encoded entries start among the staged parts: part 0 is the CRL's outer
/// header and part 1 the start of its TBS, both known only once the entries are counted.
const FIRST_ENTRIES_PART: i32 = 2;

/// Streams one CRL into the transaction's staging table (see `keyinfra_db::crls`) in one
/// pass over the revoked rows: their entries are encoded and staged in parts as the cursor
/// yields them, which counts the length that DER's headers need up front. Then the TBS's
/// start is known, and the staged entries are read back, one part at a time, to be hashed
/// after it (reading 1 MiB parts back costs far less than reading a million rows twice).
/// The memory it holds is one batch of rows and one part, whatever the length of the CRL.
async fn write_crl(
    tx: &mut keyinfra_db::Tx,
    signer: &CaSigner,
    ca_id: Uuid,
    header: &CrlHeader<'_>,
    revoked_since: Option<time::OffsetDateTime>,
) -> Result<Written, CoreError> {
    revocations::open_crl_cursor(tx, ca_id, header.this_update, revoked_since).await?;
    let mut entries = 0usize;
    let mut entries_len = 0usize;
    let mut part = Vec::with_capacity(CRL_PART_BYTES + 1024);
    let mut seq = FIRST_ENTRIES_PART;
    loop {
        let rows = revocations::fetch_crl_cursor(tx, CRL_FETCH_BATCH).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            encode_entry(&revoked_entry(row)?, &mut part);
            entries += 1;
            if part.len() >= CRL_PART_BYTES {
                crls::stage_part(tx, seq, &part).await?;
                entries_len += part.len();
                seq += 1;
                part.clear();
            }
        }
    }
    revocations::close_crl_cursor(tx).await?;
    if !part.is_empty() {
        crls::stage_part(tx, seq, &part).await?;
        entries_len += part.len();
        seq += 1;
    }
    let (mut writer, start) = signer.crl_writer(header, entries_len)?;
    for entries_part in FIRST_ENTRIES_PART..seq {
        let staged = crls::staged_part(tx, entries_part).await?;
        writer.hash_encoded_entries(&staged)?;
    }
    let ends = writer.finish()?;
    crls::stage_part(tx, 1, &start).await?;
    crls::stage_part(tx, seq, &ends.tail).await?;
    crls::stage_part(tx, 0, &ends.head).await?;
    let bytes = ends.head.len() + start.len() + entries_len + ends.tail.len();
    Ok(Written { entries, bytes })
}

fn revoked_entry(row: revocations::CrlEntry) -> Result<RevokedEntry, CoreError> {
    Ok(RevokedEntry {
        serial: SerialNumber::from_hex(&row.serial_number)?,
        revoked_at: row.revoked_at,
        reason: row.reason,
        invalidity_date: row.invalidity_date,
    })
}

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

    /// Builds, signs and stores a new complete CRL for the CA, and a delta CRL over it.
    pub async fn publish_crl(&self, db: &Database, ca_id: Uuid) -> Result<CrlSummary, CoreError> {
        self.publish(db, ca_id, true).await
    }

    /// After revocations: a new delta CRL, and a new complete CRL too unless the newest one
    /// is younger than `crl_full_min_interval` (devices that read only complete CRLs see a
    /// revocation when the next complete CRL is issued).
    pub async fn publish_after_revocations(
        &self,
        db: &Database,
        ca_id: Uuid,
    ) -> Result<CrlSummary, CoreError> {
        let full = if self.settings.crl_full_min_interval.is_zero() {
            true
        } else {
            let mut tx = db.begin(&Actor::System).await?;
            let base = crls::latest_base(&mut tx, ca_id).await?;
            tx.commit().await?;
            base.is_none_or(|(_, issued)| {
                self.clock.now() - issued >= self.settings.crl_full_min_interval
            })
        };
        self.publish(db, ca_id, full).await
    }

    async fn publish(
        &self,
        db: &Database,
        ca_id: Uuid,
        full: bool,
    ) -> Result<CrlSummary, CoreError> {
        let ca = self.cas.signer(db, ca_id).await?;
        let started = std::time::Instant::now();
        let mut tx = db.begin(&Actor::System).await?;
        // The first number locks the CA row: the time and the base are read after it, so a
        // publisher that waited here sees everything the one before it wrote.
        let first_number = Self::next_number(&mut tx, ca_id).await?;
        let this_update = self.clock.now();
        let next_update = this_update + self.settings.crl_validity;
        crls::stage_begin(&mut tx).await?;
        let base = match crls::latest_base(&mut tx, ca_id).await? {
            Some(base) if !full => Some(base),
            _ => None,
        };
        let delta_url = self.settings.delta_crl_url(ca_id);
        let mut full_written = None;
        let (base, delta_number) = match base {
            Some(base) => (base, first_number),
            None => {
                let number = first_number;
                let header = CrlHeader {
                    number: number.unsigned_abs(),
                    this_update,
                    next_update,
                    kind: CrlKind::Full {
                        delta_url: Some(&delta_url),
                    },
                };
                let written = write_crl(&mut tx, &ca.signer, ca_id, &header, None).await?;
                crls::insert_staged(
                    &mut tx,
                    &NewCrl {
                        ca_id,
                        crl_number: number,
                        base_crl_number: None,
                        this_update,
                        next_update,
                    },
                )
                .await?;
                full_written = Some((number, written));
                (
                    (number, this_update),
                    Self::next_number(&mut tx, ca_id).await?,
                )
            }
        };
        // The delta lists what was revoked since its base was built, plus an overlap that
        // covers a revocation whose time was taken (on another replica's clock) before the
        // base's snapshot but that committed after it. Listing a certificate the base also
        // lists is harmless; missing one is not.
        let since = base.1 - DELTA_OVERLAP;
        let header = CrlHeader {
            number: delta_number.unsigned_abs(),
            this_update,
            next_update,
            kind: CrlKind::Delta {
                base: base.0.unsigned_abs(),
            },
        };
        let delta = write_crl(&mut tx, &ca.signer, ca_id, &header, Some(since)).await?;
        crls::insert_staged(
            &mut tx,
            &NewCrl {
                ca_id,
                crl_number: delta_number,
                base_crl_number: Some(base.0),
                this_update,
                next_update,
            },
        )
        .await?;
        crls::prune(&mut tx, ca_id, CRLS_KEPT).await?;
        tx.commit().await?;
        let elapsed = started.elapsed();
        metrics::histogram!("keyinfra_crl_build_duration_seconds").record(elapsed.as_secs_f64());
        let ca_label = ca_id.to_string();
        if let Some((number, written)) = full_written {
            metrics::gauge!("keyinfra_crl_size_bytes", "ca_id" => ca_label.clone())
                .set(written.bytes as f64);
            metrics::gauge!("keyinfra_crl_entries", "ca_id" => ca_label.clone())
                .set(written.entries as f64);
            metrics::counter!("keyinfra_crls_published_total", "kind" => "full").increment(1);
            tracing::info!(
                %ca_id,
                crl_number = number,
                entries = written.entries,
                bytes = written.bytes,
                "published CRL"
            );
        }
        metrics::gauge!("keyinfra_delta_crl_entries", "ca_id" => ca_label)
            .set(delta.entries as f64);
        metrics::counter!("keyinfra_crls_published_total", "kind" => "delta").increment(1);
        tracing::info!(
            %ca_id,
            crl_number = delta_number,
            base_crl_number = base.0,
            entries = delta.entries,
            build_ms = elapsed.as_millis() as u64,
            "published delta CRL"
        );
        Ok(CrlSummary {
            ca_id,
            crl_number: base.0,
            full_published: full_written.is_some(),
            full_entries: full_written.map(|(_, w)| w.entries),
            full_bytes: full_written.map(|(_, w)| w.bytes),
            delta_crl_number: delta_number,
            delta_entries: delta.entries,
            this_update,
            next_update,
        })
    }

    /// The CA's next CRL number. `UPDATE ... RETURNING` locks the CA row until commit: a
    /// second publisher waits, and its CRLs then contain everything this one's do.
    async fn next_number(tx: &mut keyinfra_db::Tx, ca_id: Uuid) -> Result<i64, CoreError> {
        authorities::next_crl_number(tx, ca_id)
            .await?
            .ok_or(CoreError::NotFound("certificate authority"))
    }

    /// The newest CRL of a CA (public).
    pub async fn latest_crl(&self, db: &Database, ca_id: Uuid) -> Result<CrlRecord, CoreError> {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let crl = crls::latest(&mut tx, ca_id).await?;
        tx.commit().await?;
        crl.ok_or(CoreError::NotFound("CRL"))
    }

    /// The newest delta CRL of a CA (public).
    pub async fn latest_delta_crl(
        &self,
        db: &Database,
        ca_id: Uuid,
    ) -> Result<CrlRecord, CoreError> {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let crl = crls::latest_delta(&mut tx, ca_id).await?;
        tx.commit().await?;
        crl.ok_or(CoreError::NotFound("delta CRL"))
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
                if let Err(e) = self.publish_after_revocations(db, ca).await {
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
    /// The newest delta CRL, if one was published.
    pub delta: Option<PublishedDelta>,
}

/// A CA's newest delta CRL as published.
#[derive(Debug, Clone)]
pub struct PublishedDelta {
    pub crl_number: i64,
    pub base_crl_number: i64,
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
        let delta = crls::latest_delta(&mut tx, ca_id).await?;
        tx.commit().await?;
        let Some(crl) = crl else {
            return Ok(None);
        };
        let size_bytes = crl.crl_der.len();
        let info = read_stored_crl(crl.crl_der).await?;
        let delta = match delta {
            Some(delta) => {
                let size_bytes = delta.crl_der.len();
                let info = read_stored_crl(delta.crl_der).await?;
                Some(PublishedDelta {
                    crl_number: delta.crl_number,
                    base_crl_number: delta.base_crl_number.unwrap_or_default(),
                    this_update: delta.this_update,
                    next_update: delta.next_update,
                    size_bytes,
                    entries: info.entries,
                })
            }
            None => None,
        };
        Ok(Some(PublishedCrl {
            delta,
            ca_id,
            crl_number: crl.crl_number,
            this_update: crl.this_update,
            next_update: crl.next_update,
            size_bytes,
            entries: info.entries,
        }))
    }
}

/// Reads a stored CRL's entries back. A CRL can hold many thousands of entries: parsed off
/// the async workers.
async fn read_stored_crl(der: Vec<u8>) -> Result<keyinfra_pki::ca::CrlInfo, CoreError> {
    tokio::task::spawn_blocking(move || keyinfra_pki::ca::read_crl(&der))
        .await
        .map_err(|e| CoreError::Internal(format!("CRL parsing task failed: {e}")))?
        .map_err(|e| CoreError::Internal(format!("a stored CRL does not parse: {e}")))
}
