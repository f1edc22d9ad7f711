//! The OCSP responder (RFC 6960, with RFC 5019's lightweight profile): "is this
//! certificate revoked?" for every CA whose key KeyInfra holds, answered from the same
//! records the CRL is built from.
//!
//! A request names its certificates by CertID (hashes of the issuer's name and key, and
//! the serial). The issuer is found among our CAs by those hashes (SHA-1 or SHA-256); a
//! CertID naming a CA we do not run, or one whose key we do not hold, is `unauthorized`,
//! as is a request mixing CAs (one response has one signer). Each CA's answers are signed
//! by its delegated responder ([`responders`]). A single-certificate request without a
//! nonce (what RFC 5019 clients send) is answered from a cache of pre-signed answers
//! ([`cache`]); a nonce makes every answer freshly signed, with the status that cache holds
//! when it holds one (revocations evict it, so it is as current as the database).
//!
//! Statuses: `good` for a certificate the CA issued that is not revoked (a SUPERSEDED or
//! EXPIRED one included, as a CRL would list it only if revoked), and for the certificate
//! of one of our CAs that this CA signed (an issuing CA: CAs cannot be revoked yet);
//! `revoked` with its time and reason; `unknown` for a serial the CA never issued, and
//! also for one whose records retention has deleted (two years after expiry,
//! `KEYINFRA_RETENTION_DAYS`), which RFC 6960 allows. Malformed requests get
//! `malformedRequest`, a database that cannot be reached `tryLater`: never an HTTP error.

mod cache;
pub mod responders;

use std::sync::Arc;

use keyinfra_db::ocsp::{self as ocsp_rows, RevocationFeed};
use keyinfra_db::{Actor, Database, DbError};
use keyinfra_pki::ca::{inspect_ca_certificate, signed_by};
use keyinfra_pki::ocsp::{
    BasicResponse, CertId, CertStatus, IssuerHashes, Nonce, OcspRequest, OcspResponseStatus,
    RequestLimits, SingleResponse, error_response, parse_request,
};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_pki::{RandomSource, RevocationReason};
use time::{Duration, OffsetDateTime};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Clock;
use crate::authority::AuthoritySettings;
use crate::ca_registry::CaRegistry;
use crate::error::CoreError;
pub use cache::CachedAnswer;
use cache::{CacheKey, ResponseCache};
use responders::Responders;

/// How an answer ended, for the metrics and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspOutcome {
    Good,
    Revoked,
    Unknown,
    /// Several certificates in one request (each counted in `statuses`).
    Several,
    Malformed,
    Unauthorized,
    TryLater,
    InternalError,
}

impl OcspOutcome {
    /// Every outcome, in declaration order (a series per outcome is kept by index).
    pub const ALL: [OcspOutcome; 8] = [
        OcspOutcome::Good,
        OcspOutcome::Revoked,
        OcspOutcome::Unknown,
        OcspOutcome::Several,
        OcspOutcome::Malformed,
        OcspOutcome::Unauthorized,
        OcspOutcome::TryLater,
        OcspOutcome::InternalError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            OcspOutcome::Good => "good",
            OcspOutcome::Revoked => "revoked",
            OcspOutcome::Unknown => "unknown",
            OcspOutcome::Several => "several",
            OcspOutcome::Malformed => "malformed_request",
            OcspOutcome::Unauthorized => "unauthorized",
            OcspOutcome::TryLater => "try_later",
            OcspOutcome::InternalError => "internal_error",
        }
    }
}

/// An OCSPResponse to send, and what HTTP caching may say about it.
#[derive(Debug, Clone)]
pub struct OcspAnswer {
    pub der: Arc<[u8]>,
    pub outcome: OcspOutcome,
    /// Set for a signed answer without a nonce: it may be cached until `next_update`.
    pub cacheable: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Answered without the database: a pre-signed answer, or one signed for a nonce
    /// with the status the cache of pre-signed answers holds.
    pub from_cache: bool,
}

impl OcspAnswer {
    fn error(outcome: OcspOutcome, status: OcspResponseStatus) -> Self {
        Self {
            der: Arc::from(error_response(status)),
            outcome,
            cacheable: None,
            from_cache: false,
        }
    }
}

/// The CAs a CertID may name, by their hashes; rebuilt when a CertID matches none and
/// either this replica has created or imported a CA since, or at least [`CA_INDEX_TTL`] has
/// passed (a CA created on another replica shows up then). The TTL keeps requests naming
/// CAs we do not run from reading the CA list each time.
#[derive(Debug, Default)]
struct CaIndex {
    cas: Vec<(Uuid, IssuerHashes, bool)>,
    built_at: Option<OffsetDateTime>,
    registry_changes: u64,
}

const CA_INDEX_TTL: Duration = Duration::seconds(30);

/// Pre-signed answers kept per replica by default (about 1 KB each).
pub const DEFAULT_CACHE_ENTRIES: usize = 200_000;

#[derive(Debug)]
pub struct OcspService {
    settings: Arc<AuthoritySettings>,
    clock: Arc<dyn Clock>,
    cas: Arc<CaRegistry>,
    responders: Responders,
    cache: Arc<ResponseCache>,
    index: RwLock<CaIndex>,
    limits: RequestLimits,
}

impl OcspService {
    pub(crate) fn new(
        settings: Arc<AuthoritySettings>,
        clock: Arc<dyn Clock>,
        masters: Arc<MasterKeys>,
        cas: Arc<CaRegistry>,
    ) -> Self {
        Self {
            cache: Arc::new(ResponseCache::new(settings.ocsp_cache_entries)),
            responders: Responders::new(masters, Arc::clone(&clock), Arc::clone(&cas)),
            settings,
            clock,
            cas,
            index: RwLock::new(CaIndex::default()),
            limits: RequestLimits::default(),
        }
    }

    /// The largest request body accepted (the HTTP layer refuses more before reading it).
    pub fn max_request_bytes(&self) -> usize {
        self.limits.max_bytes
    }

    /// Answers one DER OCSPRequest. Never fails: every problem is an OCSP error status.
    pub async fn respond(
        &self,
        db: &Database,
        request_der: &[u8],
        rng: &mut (dyn RandomSource + Send),
    ) -> OcspAnswer {
        let request = match parse_request(request_der, &self.limits) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(error = %e, "malformed OCSP request");
                return OcspAnswer::error(OcspOutcome::Malformed, e.response_status());
            }
        };
        let ca_id = match self.issuer_of(db, request.cert_ids()).await {
            Ok(Some(ca_id)) => ca_id,
            Ok(None) => {
                return OcspAnswer::error(
                    OcspOutcome::Unauthorized,
                    OcspResponseStatus::Unauthorized,
                );
            }
            Err(e) => return self.failed(&e),
        };
        let now = self.clock.now();
        // One certificate (what RFC 5019 clients, and nearly all others, ask about): its
        // cached answer is served as it is to a request without a nonce (RFC 5019), and
        // gives the status for one with a nonce, which must be signed anew.
        let cache_key = match request.cert_ids() {
            [only] => only
                .serial()
                .number()
                .zip(only.hash_algorithm())
                .map(|(serial, hash)| CacheKey {
                    ca_id,
                    serial: serial.to_hex(),
                    hash,
                }),
            _ => None,
        };
        if let (Some(key), [only]) = (&cache_key, request.cert_ids())
            && let Some(hit) = self.cache.get(key, only.der(), now)
        {
            if request.nonce().is_none() {
                return OcspAnswer {
                    der: Arc::clone(&hit.der),
                    outcome: outcome_of(&[hit.status]),
                    cacheable: Some((hit.this_update, hit.next_update)),
                    from_cache: true,
                };
            }
            // The entry is evicted when its certificate is revoked (on every replica), and
            // the cache is off while revocations might go unheard: its status is as
            // current as a database read, which it saves.
            let signed = self
                .sign(
                    db,
                    ca_id,
                    &request,
                    request.nonce(),
                    &[hit.status],
                    now,
                    rng,
                )
                .await;
            return match signed {
                Ok(der) => {
                    count_signed(&[hit.status]);
                    OcspAnswer {
                        der,
                        outcome: outcome_of(&[hit.status]),
                        cacheable: None,
                        from_cache: true,
                    }
                }
                Err(e) => self.failed(&e),
            };
        }
        // Boxed, as the index rebuild below: the database read makes a large future, which
        // the cached answers above would otherwise carry and copy onto the heap per request.
        match Box::pin(self.sign_fresh(db, ca_id, &request, cache_key, now, rng)).await {
            Ok(answer) => answer,
            Err(e) => self.failed(&e),
        }
    }

    fn failed(&self, e: &CoreError) -> OcspAnswer {
        match e {
            CoreError::Db(DbError::Unavailable { .. }) => {
                tracing::warn!(error = %e, "OCSP: the database is unavailable; answering tryLater");
                OcspAnswer::error(OcspOutcome::TryLater, OcspResponseStatus::TryLater)
            }
            CoreError::Conflict { .. } | CoreError::NotFound(_) => {
                tracing::debug!(error = %e, "OCSP: answering unauthorized");
                OcspAnswer::error(OcspOutcome::Unauthorized, OcspResponseStatus::Unauthorized)
            }
            _ => {
                tracing::error!(error = %e, "OCSP: answering internalError");
                OcspAnswer::error(
                    OcspOutcome::InternalError,
                    OcspResponseStatus::InternalError,
                )
            }
        }
    }

    async fn sign_fresh(
        &self,
        db: &Database,
        ca_id: Uuid,
        request: &OcspRequest,
        cache_key: Option<CacheKey>,
        now: OffsetDateTime,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<OcspAnswer, CoreError> {
        let generation = self.cache.generation();
        let serials: Vec<String> = request
            .cert_ids()
            .iter()
            .filter_map(|id| id.serial().number().map(|s| s.to_hex()))
            .collect();
        let mut tx = db.begin(&Actor::System).await?;
        let known = ocsp_rows::status(&mut tx, ca_id, &serials).await?;
        tx.commit().await?;
        let unknown: Vec<&String> = serials
            .iter()
            .filter(|s| !known.iter().any(|k| &k.serial_number == *s))
            .collect();
        let sub_cas = if unknown.is_empty() {
            Vec::new()
        } else {
            self.ca_certificates_signed_by(db, ca_id, &unknown).await?
        };
        let next_update = now + self.settings.ocsp_validity;
        let statuses: Vec<CertStatus> = request
            .cert_ids()
            .iter()
            .map(|id| {
                let serial = id.serial().number().map(|s| s.to_hex());
                match known
                    .iter()
                    .find(|k| Some(&k.serial_number) == serial.as_ref())
                {
                    // Revoking a CA is not supported yet, so a CA certificate this CA
                    // signed is good.
                    None if serial.as_ref().is_some_and(|s| sub_cas.contains(s)) => {
                        CertStatus::Good
                    }
                    None => CertStatus::Unknown,
                    Some(k) => match k.revocation {
                        None => CertStatus::Good,
                        Some((at, reason)) => CertStatus::Revoked {
                            revocation_time: at,
                            // RFC 5280 5.3.1: unspecified is written as no reason code.
                            reason: (reason != RevocationReason::Unspecified).then_some(reason),
                        },
                    },
                }
            })
            .collect();
        let der = self
            .sign(db, ca_id, request, request.nonce(), &statuses, now, rng)
            .await?;
        count_signed(&statuses);
        let cacheable = request.nonce().is_none().then_some((now, next_update));
        if let (Some(key), [only], [status]) = (cache_key, request.cert_ids(), statuses.as_slice())
            && !matches!(status, CertStatus::Unknown)
            && self.cache.is_enabled()
        {
            // A nonce answer cannot be served again: the cache gets one without, which
            // also gives the status to this certificate's next nonce requests. One more
            // signature, once per certificate and fresh period.
            let presigned = match request.nonce() {
                None => Arc::clone(&der),
                Some(_) => {
                    self.sign(db, ca_id, request, None, &statuses, now, rng)
                        .await?
                }
            };
            let fresh_for = self.settings.ocsp_validity / 2;
            self.cache.put(
                key,
                Arc::new(CachedAnswer {
                    cert_id_der: only.der().to_vec(),
                    der: presigned,
                    this_update: now,
                    next_update,
                    fresh_until: now + fresh_for,
                    status: *status,
                }),
                generation,
            );
        }
        Ok(OcspAnswer {
            der,
            outcome: outcome_of(&statuses),
            cacheable,
            from_cache: false,
        })
    }

    /// Signs an answer to `request`'s CertIDs with these statuses, one per CertID, valid
    /// from `now` for the configured validity, echoing `nonce`.
    #[allow(clippy::too_many_arguments)] // Each is one part of the answer; a struct would only rename them.
    async fn sign(
        &self,
        db: &Database,
        ca_id: Uuid,
        request: &OcspRequest,
        nonce: Option<&Nonce>,
        statuses: &[CertStatus],
        now: OffsetDateTime,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Arc<[u8]>, CoreError> {
        let responder = self.responders.current(db, ca_id, rng).await?;
        let next_update = now + self.settings.ocsp_validity;
        let singles: Vec<SingleResponse<'_>> = request
            .cert_ids()
            .iter()
            .zip(statuses)
            .map(|(cert_id, status)| SingleResponse {
                cert_id,
                status: *status,
                this_update: now,
                next_update: Some(next_update),
            })
            .collect();
        let der: Arc<[u8]> = Arc::from(responder.responder.sign(&BasicResponse {
            produced_at: now,
            responses: &singles,
            nonce,
        })?);
        Ok(der)
    }

    /// Which of `serials` are certificates of our CAs that CA `ca_id` signed. They are in
    /// no certificates table, but a relying party that follows an issuing CA's AIA asks
    /// the parent's responder about it. A serial alone proves nothing (any CA may write
    /// any serial), so the certificate must verify under the parent's key.
    async fn ca_certificates_signed_by(
        &self,
        db: &Database,
        ca_id: Uuid,
        serials: &[&String],
    ) -> Result<Vec<String>, CoreError> {
        let cas = self.cas.list_cas(db).await?;
        let Some(parent) = cas.iter().find(|ca| ca.id == ca_id) else {
            return Ok(Vec::new());
        };
        Ok(cas
            .iter()
            .filter(|ca| ca.id != ca_id)
            .filter_map(|ca| {
                let serial = inspect_ca_certificate(&ca.certificate_der)
                    .ok()?
                    .serial?
                    .to_hex();
                (serials.contains(&&serial)
                    && signed_by(&ca.certificate_der, &parent.certificate_der))
                .then_some(serial)
            })
            .collect())
    }

    /// The CA every CertID names, if they all name the same CA whose key we hold.
    async fn issuer_of(&self, db: &Database, ids: &[CertId]) -> Result<Option<Uuid>, CoreError> {
        let now = self.clock.now();
        let found = self.lookup(ids).await;
        let found = match found {
            Some(found) => Some(found),
            None => {
                let stale = {
                    let index = self.index.read().await;
                    index.built_at.is_none_or(|at| now - at >= CA_INDEX_TTL)
                        || index.registry_changes != self.cas.changes()
                };
                if !stale {
                    return Ok(None);
                }
                Box::pin(self.rebuild_index(db, now)).await?;
                self.lookup(ids).await
            }
        };
        Ok(found.and_then(|(ca_id, holds_key)| holds_key.then_some(ca_id)))
    }

    async fn lookup(&self, ids: &[CertId]) -> Option<(Uuid, bool)> {
        let index = self.index.read().await;
        let mut found: Option<(Uuid, bool)> = None;
        for id in ids {
            let (ca_id, _, holds_key) =
                index.cas.iter().find(|(_, hashes, _)| hashes.matches(id))?;
            match found {
                Some((other, _)) if other != *ca_id => return None,
                _ => found = Some((*ca_id, *holds_key)),
            }
        }
        found
    }

    async fn rebuild_index(&self, db: &Database, now: OffsetDateTime) -> Result<(), CoreError> {
        // Read before listing: a CA created meanwhile leaves the index stale, not missed.
        let registry_changes = self.cas.changes();
        let cas = self.cas.list_cas(db).await?;
        let mut entries = Vec::with_capacity(cas.len());
        for ca in cas {
            match IssuerHashes::from_certificate(&ca.certificate_der) {
                Ok(hashes) => entries.push((ca.id, hashes, ca.private_key_id.is_some())),
                Err(e) => {
                    tracing::warn!(ca_id = %ca.id, error = %e, "a CA certificate does not parse; OCSP skips it")
                }
            }
        }
        let mut index = self.index.write().await;
        index.cas = entries;
        index.built_at = Some(now);
        index.registry_changes = registry_changes;
        Ok(())
    }

    /// Drops this replica's cached answers about a certificate (a revocation calls it
    /// before it answers, so this replica's next OCSP answer says revoked).
    pub fn forget(&self, ca_id: Uuid, serial_hex: &str) {
        self.cache.evict(ca_id, serial_hex);
    }

    /// Pre-signed answers held now (for /metrics).
    pub fn cached_answers(&self) -> usize {
        self.cache.len()
    }

    /// Makes a responder for every CA whose key we hold when its newest has less than
    /// [`responders::RENEW_BEFORE`] left, and deletes responders expired a week ago. The
    /// `ocsp-responders` job runs it. Returns how many were made.
    pub async fn renew_responders(
        &self,
        db: &Database,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<usize, CoreError> {
        let now = self.clock.now();
        let mut made = 0;
        for ca in self.cas.list_cas(db).await? {
            if ca.private_key_id.is_none() || ca.not_after <= now {
                continue;
            }
            let (_, new) = self
                .responders
                .ensure(db, ca.id, responders::RENEW_BEFORE, rng)
                .await?;
            made += usize::from(new);
        }
        let mut tx = db.begin(&Actor::System).await?;
        ocsp_rows::delete_expired_responders(&mut tx, now - Duration::days(7)).await?;
        tx.commit().await?;
        Ok(made)
    }

    /// Keeps the cache in step with revocations made on every replica: listens on the
    /// database's revocation channel and evicts what it names. The cache is on only while
    /// this runs connected; after a lost connection it is emptied and the listener starts
    /// over. Returns when `shutdown` resolves.
    pub async fn run_revocation_listener(&self, db: &Database, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            let feed = tokio::select! {
                () = &mut shutdown => return,
                feed = RevocationFeed::listen(db) => feed,
            };
            let mut feed = match feed {
                Ok(feed) => feed,
                Err(e) => {
                    tracing::warn!(error = %e, "OCSP: cannot listen for revocations; answers are signed fresh meanwhile");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                    continue;
                }
            };
            backoff = std::time::Duration::from_millis(100);
            self.cache.set_enabled(true);
            loop {
                let next = tokio::select! {
                    () = &mut shutdown => {
                        self.cache.set_enabled(false);
                        return;
                    }
                    next = feed.next() => next,
                };
                match next {
                    Ok(Some(revoked)) => self.cache.evict(revoked.ca_id, &revoked.serial_number),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "OCSP: the revocation listener lost its connection; emptying the cache");
                        self.cache.set_enabled(false);
                        break;
                    }
                }
            }
        }
    }
}

/// Statuses in answers signed for a request (not those signed for the cache alone).
fn count_signed(statuses: &[CertStatus]) {
    for status in statuses {
        metrics::counter!("keyinfra_ocsp_statuses_total", "status" => status_label(status))
            .increment(1);
    }
}

fn outcome_of(statuses: &[CertStatus]) -> OcspOutcome {
    match statuses {
        [CertStatus::Good] => OcspOutcome::Good,
        [CertStatus::Revoked { .. }] => OcspOutcome::Revoked,
        [CertStatus::Unknown] => OcspOutcome::Unknown,
        _ => OcspOutcome::Several,
    }
}

fn status_label(status: &CertStatus) -> &'static str {
    match status {
        CertStatus::Good => "good",
        CertStatus::Revoked { .. } => "revoked",
        CertStatus::Unknown => "unknown",
    }
}
