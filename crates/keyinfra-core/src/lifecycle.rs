//! The certificate lifecycle: issue, inspect, reassign, renew, revoke, export. The API and
//! the CLI both call these; there is no second implementation.
//!
//! Authorisation happens twice: here (role rules, e.g. only an ADMIN renews), and in the
//! database through row-level security (a USER's transaction cannot see another user's
//! certificate, so it answers 404, never 403, and never reveals that it exists).

use keyinfra_db::audit::NewAuditEvent;
use keyinfra_db::certificates::{self, CertificateFilter, CertificateRecord, NewCertificate};
use keyinfra_db::private_keys::NewSealedKey;
use keyinfra_db::{CertificateStatus, Database, DbError, RevocationReason, Tx, revocations, users};
use keyinfra_pki::ca::{LeafKey, LeafSpec, public_key_of_certificate};
use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::pkcs12::{Pin, Pkcs12Compat, build_pkcs12};
use keyinfra_pki::seal::{self, SealedKey};
use keyinfra_pki::{KeyAlgorithm, PkiError, PrivateKey, RandomSource, SerialNumber};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::authority::{Authority, LoadedCa, db_algorithm, insert_sealed_key, unseal_record};
use crate::certificates::{CertificateDraft, RecordHooks, record_new_certificate};
use crate::error::CoreError;
use crate::requester::Requester;

/// Where the certificate's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Generated here, sealed and stored.
    Generate(KeyAlgorithm),
    /// The device's own key, from its PKCS#10 request (PEM or DER); nothing is stored.
    Csr(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub key: KeySource,
    /// RFC 4514; required with `Generate`, overrides the CSR's subject with `Csr`.
    pub subject: Option<String>,
    /// DNS names and IP addresses; overrides the CSR's SANs when given.
    pub san: Option<Vec<String>>,
    pub profile: String,
    pub validity_days: Option<u32>,
    pub owner_id: Option<Uuid>,
    pub ca_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct RenewRequest {
    pub validity_days: Option<u32>,
    pub rekey: bool,
    pub revoke_previous: bool,
}

/// The RFC 5280 reasons a request may give (no certificateHold: revocation is final).
/// `cACompromise` parses, and [`Authority::revoke`] refuses it for the end-entity
/// certificates this table holds, saying why.
pub fn parse_reason(name: &str) -> Result<RevocationReason, CoreError> {
    Ok(match name {
        "unspecified" => RevocationReason::Unspecified,
        "keyCompromise" => RevocationReason::KeyCompromise,
        "cACompromise" => RevocationReason::CaCompromise,
        "affiliationChanged" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessationOfOperation" => RevocationReason::CessationOfOperation,
        "privilegeWithdrawn" => RevocationReason::PrivilegeWithdrawn,
        _ => {
            return Err(CoreError::invalid(
                "invalid_reason",
                "reason must be one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn",
            ));
        }
    })
}

pub fn reason_label(reason: RevocationReason) -> &'static str {
    match reason {
        RevocationReason::Unspecified => "unspecified",
        RevocationReason::KeyCompromise => "keyCompromise",
        RevocationReason::CaCompromise => "cACompromise",
        RevocationReason::AffiliationChanged => "affiliationChanged",
        RevocationReason::Superseded => "superseded",
        RevocationReason::CessationOfOperation => "cessationOfOperation",
        RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        RevocationReason::AaCompromise => "aACompromise",
    }
}

fn invalid_name(code: &'static str, e: impl std::fmt::Display) -> CoreError {
    CoreError::invalid(code, e.to_string())
}

fn pki_to_request_error(e: PkiError) -> CoreError {
    match e {
        PkiError::InvalidCsr(text) => CoreError::invalid("invalid_csr", text),
        PkiError::CsrSignatureInvalid => CoreError::invalid(
            "csr_signature_invalid",
            "the CSR's signature does not verify",
        ),
        PkiError::UnsupportedKeyAlgorithm => CoreError::invalid(
            "unsupported_key",
            "the CSR's key is not ECDSA P-256/P-384, Ed25519 or RSA 2048/3072/4096",
        ),
        PkiError::UnsupportedRsaExponent => CoreError::invalid(
            "unsupported_key",
            "the CSR's RSA key has a public exponent other than 65537; KeyInfra accepts only 65537",
        ),
        PkiError::InvalidName(text) => CoreError::invalid("invalid_san", text),
        PkiError::BeyondCaValidity => CoreError::invalid(
            "beyond_ca_validity",
            "the certificate would outlive its CA; ask for a shorter validity",
        ),
        other => other.into(),
    }
}

/// Writes beside the certificate row of a first issue.
struct IssueHooks<'a> {
    by: &'a Requester,
    owner_id: Option<Uuid>,
    quota: Option<u32>,
    now: OffsetDateTime,
    key: Option<(Uuid, &'a PrivateKey, &'a SealedKey)>,
    cert_id: Uuid,
    details: serde_json::Value,
}

impl RecordHooks for IssueHooks<'_> {
    async fn before_insert(&mut self, tx: &mut Tx) -> Result<(), CoreError> {
        if let (Some(quota), Some(owner)) = (self.quota, self.owner_id) {
            check_quota(tx, owner, quota, 1, self.now).await?;
        }
        Ok(())
    }

    /// Key, certificate and audit event in one statement: issuance is the hot path.
    async fn insert(
        &mut self,
        tx: &mut Tx,
        certificate: &NewCertificate<'_>,
    ) -> Result<(), DbError> {
        let fingerprint = self.key.map(|(_, key, _)| key.public_key_fingerprint());
        let key = match (self.key, &fingerprint) {
            (Some((id, key, sealed)), Some(fingerprint)) => Some(NewSealedKey {
                id,
                owner_id: self.owner_id,
                algorithm: db_algorithm(key.algorithm()),
                public_key_fingerprint: fingerprint,
                ciphertext: &sealed.ciphertext,
                nonce: &sealed.nonce,
                salt: &sealed.salt,
                kek_version: sealed.kek_version,
            }),
            _ => None,
        };
        let mut details = self.details.clone();
        details["serial_number"] = json!(certificate.serial_number);
        let audit = NewAuditEvent {
            actor_id: self.by.user_id(),
            actor_name: self.by.audit_name(),
            action: "certificate.issued",
            target_type: Some("certificate"),
            target_id: Some(self.cert_id),
            details,
        };
        let rows = certificates::IssuedRows {
            key,
            certificate: certificate.clone(),
            audit,
        };
        certificates::insert_issued(tx, &rows).await
    }

    async fn after_insert(
        &mut self,
        _tx: &mut Tx,
        _serial: &SerialNumber,
    ) -> Result<(), CoreError> {
        Ok(())
    }
}

pub(crate) async fn check_quota(
    tx: &mut Tx,
    owner: Uuid,
    quota: u32,
    adding: i64,
    now: OffsetDateTime,
) -> Result<(), CoreError> {
    let active = certificates::count_active_for_owner_locked(tx, owner, now).await?;
    if active + adding > i64::from(quota) {
        return Err(CoreError::invalid(
            "quota_exceeded",
            format!(
                "the owner already has {active} active certificates and the limit is {quota}; revoke one or ask an administrator to raise KEYINFRA_CERT_QUOTA"
            ),
        ));
    }
    Ok(())
}

/// What a first issue and a renewal both sign.
struct LeafContent<'a> {
    subject: &'a DistinguishedName,
    sans: &'a [SubjectAltName],
    profile: &'a keyinfra_pki::profile::Profile,
    algorithm: KeyAlgorithm,
    key: LeafKey<'a>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Authority {
    /// Signs the leaf (again, with a fresh serial, after a collision) and records it with
    /// the hooks' other writes, in one transaction per attempt.
    #[allow(clippy::too_many_arguments)]
    async fn sign_and_record<H: RecordHooks>(
        &self,
        db: &Database,
        by: &Requester,
        rng: &mut (dyn RandomSource + Send),
        ca: &LoadedCa,
        draft: &CertificateDraft,
        leaf: &LeafContent<'_>,
        hooks: &mut H,
    ) -> Result<crate::certificates::RecordedCertificate, CoreError> {
        let sign = |serial: &SerialNumber| self.sign_leaf(ca, leaf, serial);
        record_new_certificate(db, &by.actor(), rng, draft, sign, hooks).await
    }

    fn sign_leaf(
        &self,
        ca: &LoadedCa,
        leaf: &LeafContent<'_>,
        serial: &SerialNumber,
    ) -> Result<Vec<u8>, CoreError> {
        ca.signer
            .sign_leaf(&LeafSpec {
                subject: leaf.subject,
                sans: leaf.sans,
                profile: leaf.profile,
                key_algorithm: leaf.algorithm,
                public_key: leaf.key,
                serial,
                not_before: leaf.not_before,
                not_after: leaf.not_after,
                crl_url: &self.settings.crl_url(ca.id),
                ca_issuers_url: &self.settings.ca_certificate_url(ca.id),
            })
            .map_err(pki_to_request_error)
    }

    /// Signs a first issue and records it through group commit ([`crate::group_commit`]).
    /// `None`: its batch wrote nothing, and the caller records it on the one-transaction
    /// path, which re-signs with a fresh serial and answers any refusal exactly.
    async fn sign_and_record_batched(
        &self,
        db: &Database,
        rng: &mut (dyn RandomSource + Send),
        ca: &LoadedCa,
        draft: &CertificateDraft,
        leaf: &LeafContent<'_>,
        hooks: &IssueHooks<'_>,
    ) -> Result<Option<crate::certificates::RecordedCertificate>, CoreError> {
        use crate::group_commit::{BatchOutcome, QueuedCertificate, QueuedIssue, QueuedKey};
        let serial = SerialNumber::random(rng)?;
        let der = self.sign_leaf(ca, leaf, &serial)?;
        let serial_hex = serial.to_hex();
        let mut details = hooks.details.clone();
        details["serial_number"] = json!(serial_hex);
        let queued = QueuedIssue {
            db: db.clone(),
            actor: hooks.by.actor(),
            quota: hooks
                .quota
                .zip(hooks.owner_id)
                .map(|(quota, owner)| (owner, quota)),
            now: hooks.now,
            key: hooks.key.map(|(id, key, sealed)| QueuedKey {
                id,
                owner_id: hooks.owner_id,
                algorithm: db_algorithm(key.algorithm()),
                public_key_fingerprint: key.public_key_fingerprint(),
                sealed: sealed.clone(),
            }),
            certificate: QueuedCertificate {
                draft: draft.clone(),
                serial_number: serial_hex,
                fingerprint_sha256: keyinfra_pki::sha256_fingerprint(&der),
                certificate_der: der.clone(),
            },
            audit_actor_id: hooks.by.user_id(),
            audit_actor_name: hooks.by.audit_name(),
            audit_details: details,
        };
        match self.issue_batcher().record(queued).await {
            BatchOutcome::Recorded => Ok(Some(crate::certificates::RecordedCertificate {
                id: draft.id,
                serial_number: serial,
                certificate_der: der,
                attempts: 1,
            })),
            BatchOutcome::Retry => Ok(None),
            BatchOutcome::Unavailable {
                reason,
                retry_after,
            } => Err(DbError::Unavailable {
                reason,
                retry_after,
            }
            .into()),
        }
    }

    fn validity(
        &self,
        profile: &keyinfra_pki::profile::Profile,
        days: Option<u32>,
    ) -> Result<Duration, CoreError> {
        let days = days.unwrap_or(profile.default_validity_days);
        if days == 0 {
            return Err(CoreError::invalid(
                "invalid_validity",
                "validity_days must be at least 1",
            ));
        }
        if days > profile.max_validity_days {
            return Err(CoreError::invalid(
                "validity_too_long",
                format!(
                    "validity_days {days} exceeds the {} profile's maximum of {}",
                    profile.name, profile.max_validity_days
                ),
            ));
        }
        Ok(Duration::days(i64::from(days)))
    }

    /// Issues a certificate. Every check on the request runs before anything is written.
    pub async fn issue(
        &self,
        db: &Database,
        by: &Requester,
        request: IssueRequest,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let started = std::time::Instant::now();
        // The rate comes first: a refused request costs nothing else.
        self.writes.take(by, self.clock.now())?;
        let profile = self.settings.profile(&request.profile)?.clone();
        let validity = self.validity(&profile, request.validity_days)?;
        let owner_id = match (request.owner_id, by.user_id()) {
            (Some(owner), Some(me)) if owner != me => {
                by.require_admin()?;
                Some(owner)
            }
            (Some(owner), _) => Some(owner),
            (None, me) => me,
        };
        // Names: from the request, else from the CSR.
        let (csr, algorithm) = match &request.key {
            KeySource::Generate(alg) => (None, *alg),
            KeySource::Csr(bytes) => {
                let parsed = parse_csr(bytes).map_err(pki_to_request_error)?;
                let alg = parsed.key_algorithm;
                (Some(parsed), alg)
            }
        };
        let subject = match (&request.subject, &csr) {
            (Some(s), _) => {
                DistinguishedName::parse(s).map_err(|e| invalid_name("invalid_subject", e))?
            }
            (None, Some(csr)) => csr
                .subject
                .clone()
                .map_err(|e| invalid_name("invalid_subject", e))?,
            (None, None) => {
                return Err(CoreError::invalid(
                    "invalid_subject",
                    "subject is required when the server generates the key (e.g. \"CN=edge-router-1,O=Example\")",
                ));
            }
        };
        let sans = match (&request.san, &csr) {
            (Some(list), _) => {
                SubjectAltName::parse_list(list).map_err(|e| invalid_name("invalid_san", e))?
            }
            (None, Some(csr)) => csr
                .sans
                .clone()
                .map_err(|e| invalid_name("invalid_san", e))?,
            (None, None) => Vec::new(),
        };
        let ca_id = self.issuing_ca_for(db, by, request.ca_id).await?;
        let ca = self.signer(db, ca_id).await.map_err(|e| match e {
            // A body field naming nothing is the client's mistake (422), not a missing URL.
            CoreError::NotFound(_) => CoreError::invalid(
                "unknown_ca",
                format!("no certificate authority has id {ca_id}"),
            ),
            other => other,
        })?;
        let now = self.clock.now();
        let not_before = now - self.settings.backdate;
        let not_after = now + validity;
        if not_after > ca.signer.not_after() {
            return Err(pki_to_request_error(PkiError::BeyondCaValidity));
        }
        // An owner_id that names no user fails the inserts' foreign key: map_owner_fk turns
        // that into unknown_owner (422), and the transaction leaves nothing behind.

        // An RSA key costs up to seconds of CPU: an owner already at the quota is refused
        // before it is made. (The check under the owner's lock at insert still decides; this
        // one only saves the work. Cheaper keys skip it, so that issuance keeps its single
        // round trip.)
        if let (KeySource::Generate(alg), Some(quota), Some(owner)) =
            (&request.key, self.settings.quota, owner_id)
            && alg.is_rsa()
        {
            let mut tx = db.begin(&by.actor()).await?;
            check_quota(&mut tx, owner, quota, 1, now).await?;
            tx.commit().await?;
        }
        let generated = match &request.key {
            KeySource::Generate(alg) => Some(self.generate_leaf_key(*alg).await?),
            KeySource::Csr(_) => None,
        };
        // Time-ordered (version 7) ids, as for every row issuance writes: their index
        // entries append at the right-hand edge instead of a random page (migration 0013).
        let key_id = Uuid::now_v7();
        let sealed = match &generated {
            Some(key) => Some(seal::seal(&self.masters, key_id.as_bytes(), key, rng)?),
            None => None,
        };
        let public_key_der = csr.as_ref().map(|c| c.public_key_der.clone());
        let leaf_key = match (&generated, &public_key_der) {
            (Some(key), _) => LeafKey::Generated(key),
            (None, Some(spki)) => LeafKey::Spki(spki),
            (None, None) => return Err(CoreError::Internal("no public key".into())),
        };
        let cert_id = Uuid::now_v7();
        let draft = CertificateDraft {
            id: cert_id,
            ca_id,
            owner_id,
            subject_dn: subject.to_string(),
            subject_alt_names: sans.iter().map(SubjectAltName::to_tagged).collect(),
            not_before,
            not_after,
            key_algorithm: db_algorithm(algorithm),
            private_key_id: generated.as_ref().map(|_| key_id),
            profile: profile.name.clone(),
            created_by: by.user_id(),
            version: 1,
            renewed_from: None,
            renewed_at: None,
            renewed_by: None,
        };
        let mut hooks = IssueHooks {
            by,
            owner_id,
            quota: self.settings.quota,
            now,
            key: match (&generated, &sealed) {
                (Some(k), Some(s)) => Some((key_id, k, s)),
                _ => None,
            },
            cert_id,
            details: json!({
                "subject": draft.subject_dn,
                "owner_id": owner_id,
                "ca_id": ca_id,
                "profile": profile.name,
                "key_algorithm": algorithm.label(),
                "key_source": if generated.is_some() { "server" } else { "csr" },
                "ignored_csr_extensions": csr.as_ref().map(|c| c.ignored_extensions.clone()),
            }),
        };
        let content = LeafContent {
            subject: &subject,
            sans: &sans,
            profile: &profile,
            algorithm,
            key: leaf_key,
            not_before,
            not_after,
        };
        let batched = self
            .sign_and_record_batched(db, rng, &ca, &draft, &content, &hooks)
            .await?;
        let recorded = match batched {
            Some(recorded) => recorded,
            None => self
                .sign_and_record(db, by, rng, &ca, &draft, &content, &mut hooks)
                .await
                .map_err(map_owner_fk)?,
        };
        let source = if generated.is_some() { "server" } else { "csr" };
        metrics::counter!("keyinfra_certificates_issued_total",
            "algorithm" => algorithm.label(), "key_source" => source)
        .increment(1);
        metrics::histogram!("keyinfra_issuance_duration_seconds",
            "algorithm" => algorithm.label(), "key_source" => source)
        .record(started.elapsed().as_secs_f64());
        // Everything is known: no second read.
        Ok(CertificateRecord {
            id: cert_id,
            ca_id,
            owner_id,
            serial_number: recorded.serial_number.to_hex(),
            subject_dn: draft.subject_dn,
            subject_alt_names: draft.subject_alt_names,
            not_before,
            not_after,
            status: CertificateStatus::Active,
            version: 1,
            renewed_from: None,
            renewed_at: None,
            renewed_by: None,
            fingerprint_sha256: keyinfra_pki::sha256_fingerprint(&recorded.certificate_der)
                .to_vec(),
            certificate_der: recorded.certificate_der,
            key_algorithm: draft.key_algorithm,
            private_key_id: draft.private_key_id,
            profile: draft.profile,
            created_at: now,
        })
    }

    /// One certificate (404 when the requester may not see it).
    pub async fn get(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
    ) -> Result<CertificateRecord, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let cert = certificates::get(&mut tx, id).await?;
        tx.commit().await?;
        cert.ok_or(CoreError::NotFound("certificate"))
    }

    /// The inventory page: a USER's own certificates, an ADMIN's choice.
    pub async fn list(
        &self,
        db: &Database,
        by: &Requester,
        mut filter: CertificateFilter,
        limit: i64,
    ) -> Result<Vec<CertificateRecord>, CoreError> {
        if !by.is_admin() {
            match filter.owner_id {
                Some(owner) if Some(owner) != by.user_id() => return Ok(Vec::new()),
                // Naming the owner lets the owner index serve the query.
                _ => filter.owner_id = by.user_id(),
            }
        }
        filter.as_of.get_or_insert(self.clock.now());
        let mut tx = db.begin(&by.actor()).await?;
        let page = certificates::list(&mut tx, &filter, limit).await?;
        tx.commit().await?;
        Ok(page)
    }

    /// Active certificates expiring within `days`, through the database function.
    pub async fn expiring(
        &self,
        db: &Database,
        by: &Requester,
        days: u32,
        limit: i64,
    ) -> Result<Vec<keyinfra_db::certificates::CertificateSummary>, CoreError> {
        if days == 0 || days > 3650 {
            return Err(CoreError::invalid(
                "invalid_days",
                "days must be between 1 and 3650",
            ));
        }
        let within = Duration::days(i64::from(days));
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await?;
        let rows = match (by.is_admin(), by.user_id()) {
            (false, Some(me)) => {
                certificates::expiring_for_owner(&mut tx, me, within, now, limit).await?
            }
            _ => certificates::expiring(&mut tx, within, now, limit).await?,
        };
        tx.commit().await?;
        Ok(rows)
    }

    /// The renewal chain of a certificate, oldest version first.
    pub async fn versions(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
    ) -> Result<Vec<CertificateRecord>, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let chain = certificates::versions(&mut tx, id).await?;
        tx.commit().await?;
        if chain.is_empty() {
            return Err(CoreError::NotFound("certificate"));
        }
        Ok(chain)
    }

    /// An ADMIN moves a certificate to another user: the whole renewal chain moves (every
    /// version is the same device), with the stored keys; revocation rows follow by
    /// trigger. The new owner's quota counts the active certificates that move. Audited.
    pub async fn reassign(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
        new_owner: Uuid,
    ) -> Result<CertificateRecord, CoreError> {
        by.require_admin()?;
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await?;
        let cert = certificates::get_for_update(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        let target = users::find(&mut tx, new_owner).await?.ok_or_else(|| {
            CoreError::invalid("unknown_owner", format!("no user has id {new_owner}"))
        })?;
        if target.disabled {
            return Err(CoreError::invalid(
                "owner_disabled",
                "the new owner's account is disabled",
            ));
        }
        let chain = certificates::versions(&mut tx, id).await?;
        let moving: Vec<&CertificateRecord> = chain
            .iter()
            .filter(|c| c.owner_id != Some(new_owner))
            .collect();
        if let Some(quota) = self.settings.quota {
            let active = moving
                .iter()
                .filter(|c| c.status == CertificateStatus::Active && c.not_after > now)
                .count();
            check_quota(&mut tx, new_owner, quota, active as i64, now).await?;
        }
        let ids: Vec<Uuid> = moving.iter().map(|c| c.id).collect();
        let mut key_ids: Vec<Uuid> = moving.iter().filter_map(|c| c.private_key_id).collect();
        key_ids.dedup();
        certificates::set_owner(&mut tx, &ids, new_owner).await?;
        keyinfra_db::private_keys::set_owner(&mut tx, &key_ids, new_owner).await?;
        Authority::audit(
            &mut tx,
            by,
            "certificate.reassigned",
            id,
            json!({
                "from_owner_id": cert.owner_id,
                "to_owner_id": new_owner,
                "to_username": target.username,
                "certificates_moved": ids,
                "keys_moved": key_ids.len(),
            }),
        )
        .await?;
        let updated = certificates::get(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        tx.commit().await?;
        Ok(updated)
    }

    /// An ADMIN renews: a new certificate (new serial, version + 1) with the same names and
    /// profile; the previous one becomes SUPERSEDED, or REVOKED (superseded) if asked.
    pub async fn renew(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
        request: RenewRequest,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        by.require_admin()?;
        self.writes.take(by, self.clock.now())?;
        let previous = self.get(db, by, id).await?;
        if previous.status != CertificateStatus::Active {
            return Err(CoreError::Conflict {
                code: "not_renewable",
                detail: format!(
                    "only an ACTIVE certificate can be renewed; this one is {}",
                    previous.status.as_str()
                ),
            });
        }
        let profile = self.settings.profile(&previous.profile)?.clone();
        let validity = self.validity(&profile, request.validity_days)?;
        // Issued under older rules, the names or the key may break today's: not renewed
        // (409), rather than re-signed or failed as the server's fault.
        let subject = DistinguishedName::parse(&previous.subject_dn).map_err(not_renewable)?;
        let sans = previous
            .subject_alt_names
            .iter()
            .map(|s| SubjectAltName::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(not_renewable)?;
        self.check_may_sign_leaves(db, previous.ca_id)
            .await
            .map_err(|e| match e {
                CoreError::Invalid { code, detail } => CoreError::Conflict { code, detail },
                other => other,
            })?;
        let ca = self.signer(db, previous.ca_id).await?;
        let now = self.clock.now();
        let not_before = now - self.settings.backdate;
        let not_after = now + validity;
        if not_after > ca.signer.not_after() {
            return Err(pki_to_request_error(PkiError::BeyondCaValidity));
        }
        // Same algorithm as before; without rekey, the same public key.
        let old_spki = public_key_of_certificate(&previous.certificate_der)?;
        let algorithm = keyinfra_pki::keys::algorithm_of_spki(&old_spki).map_err(not_renewable)?;
        let generated = match request.rekey {
            true => Some(self.generate_leaf_key(algorithm).await?),
            false => None,
        };
        let key_id = Uuid::now_v7();
        let sealed = match &generated {
            Some(key) => Some(seal::seal(&self.masters, key_id.as_bytes(), key, rng)?),
            None => None,
        };
        let leaf_key = match &generated {
            Some(key) => LeafKey::Generated(key),
            None => LeafKey::Spki(&old_spki),
        };
        let cert_id = Uuid::now_v7();
        let draft = CertificateDraft {
            id: cert_id,
            ca_id: previous.ca_id,
            owner_id: previous.owner_id,
            subject_dn: previous.subject_dn.clone(),
            subject_alt_names: previous.subject_alt_names.clone(),
            not_before,
            not_after,
            key_algorithm: db_algorithm(algorithm),
            private_key_id: if generated.is_some() {
                Some(key_id)
            } else {
                previous.private_key_id
            },
            profile: previous.profile.clone(),
            created_by: by.user_id(),
            version: previous.version + 1,
            renewed_from: Some(previous.id),
            renewed_at: Some(now),
            renewed_by: by.user_id(),
        };
        let mut hooks = RenewHooks {
            by,
            previous_id: previous.id,
            owner_id: previous.owner_id,
            key: match (&generated, &sealed) {
                (Some(k), Some(s)) => Some((key_id, k, s)),
                _ => None,
            },
            revoke_previous: request.revoke_previous,
            now,
            cert_id,
            rekey: request.rekey,
        };
        let content = LeafContent {
            subject: &subject,
            sans: &sans,
            profile: &profile,
            algorithm,
            key: leaf_key,
            not_before,
            not_after,
        };
        self.sign_and_record(db, by, rng, &ca, &draft, &content, &mut hooks)
            .await?;
        if request.revoke_previous {
            self.crl_changed(previous.ca_id);
        }
        self.get(db, by, cert_id).await
    }

    /// Revokes a certificate (its owner or an ADMIN). The CRL is re-issued in the
    /// background, so this request costs the same however long the CRL is.
    pub async fn revoke(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
        reason: RevocationReason,
        invalidity_date: Option<OffsetDateTime>,
    ) -> Result<CertificateRecord, CoreError> {
        let now = self.clock.now();
        // Issue, revoke, issue again would otherwise grow the database and the CRL without
        // bound while the quota (which counts ACTIVE certificates) never fills.
        self.writes.take(by, now)?;
        check_revocation_request(reason, invalidity_date, now)?;
        let updated = crate::retry::transient("revoke", || async {
            let mut tx = db.begin(&by.actor()).await?;
            let cert = certificates::get_for_update(&mut tx, id)
                .await?
                .ok_or(CoreError::NotFound("certificate"))?;
            check_invalidity_date_against(&cert, invalidity_date)?;
            revoke_locked(&mut tx, by, &cert, reason, invalidity_date, now).await?;
            let updated = certificates::get(&mut tx, id)
                .await?
                .ok_or(CoreError::NotFound("certificate"))?;
            tx.commit().await?;
            Ok(updated)
        })
        .await?;
        self.crl_changed(updated.ca_id);
        metrics::counter!("keyinfra_revocations_total", "reason" => reason_label(reason))
            .increment(1);
        Ok(updated)
    }

    /// A PKCS#12 file with the key, the certificate and the CA chain (owner or ADMIN).
    pub async fn export_pkcs12(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
        pin: Pin,
        compat: Pkcs12Compat,
    ) -> Result<Vec<u8>, CoreError> {
        pin.allows(compat)
            .map_err(|e| CoreError::invalid("invalid_pin", e.to_string()))?;
        let mut tx = db.begin(&by.actor()).await?;
        let cert = certificates::get(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        // A revoked certificate's key is not handed out again, to anyone: it may be the
        // compromised key the revocation was for, and a device given it would present a
        // certificate every relying party refuses.
        if cert.status == CertificateStatus::Revoked {
            return Err(CoreError::Conflict {
                code: "certificate_revoked",
                detail: "the certificate is revoked; its private key is no longer exported".into(),
            });
        }
        let key_id = cert.private_key_id.ok_or(CoreError::Conflict {
            code: "no_private_key",
            detail: "this certificate was issued from a CSR: KeyInfra never held its private key"
                .into(),
        })?;
        let sealed = keyinfra_db::private_keys::get(&mut tx, key_id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        Authority::audit(
            &mut tx,
            by,
            "certificate.exported",
            id,
            json!({
                "format": "pkcs12",
                "compat": compat.label(),
                "private_key_id": key_id,
                "serial_number": cert.serial_number,
            }),
        )
        .await?;
        let ca = self.signer(db, cert.ca_id).await?;
        let masters = std::sync::Arc::clone(&self.masters);
        let friendly = DistinguishedName::parse(&cert.subject_dn)
            .ok()
            .and_then(|dn| dn.common_name().map(str::to_owned))
            .unwrap_or_else(|| cert.serial_number.clone());
        let der = cert.certificate_der.clone();
        let chain = ca.chain.clone();
        // Two PBKDF2 runs: off the async workers.
        let p12 = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, CoreError> {
            let key = unseal_record(&masters, &sealed)?;
            let chain_refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            Ok(build_pkcs12(
                &key,
                &der,
                &chain_refs,
                &friendly,
                &pin,
                compat,
            )?)
        })
        .await
        .map_err(|e| CoreError::Internal(format!("export task failed: {e}")))??;
        // Audited only if the file was built: the event and the export succeed together.
        tx.commit().await?;
        Ok(p12)
    }

    /// PEM of the certificate followed by its CA chain.
    pub async fn pem_chain(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
    ) -> Result<String, CoreError> {
        let cert = self.get(db, by, id).await?;
        let ca: std::sync::Arc<LoadedCa> = self.signer(db, cert.ca_id).await?;
        let mut text = keyinfra_pki::certificate_pem(&cert.certificate_der);
        for der in &ca.chain {
            text.push_str(&keyinfra_pki::certificate_pem(der));
        }
        Ok(text)
    }
}

/// The reason and invalidity date a revocation may give, before the certificate is read.
fn check_revocation_request(
    reason: RevocationReason,
    invalidity_date: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), CoreError> {
    // RFC 5280 5.3.1: cACompromise says a CA's key was compromised. Every certificate here
    // is an end-entity's; its own key's compromise is keyCompromise.
    if matches!(
        reason,
        RevocationReason::CaCompromise | RevocationReason::AaCompromise
    ) {
        return Err(CoreError::invalid(
            "invalid_reason",
            "cACompromise is for a CA's certificate; revoke a device's certificate whose key leaked with keyCompromise",
        ));
    }
    if invalidity_date.is_some_and(|d| d > now) {
        return Err(CoreError::invalid(
            "invalid_invalidity_date",
            "invalidity_date is after the revocation (now); it is when the key was (suspected to be) compromised",
        ));
    }
    Ok(())
}

/// The key cannot have been compromised as this certificate's before the certificate
/// existed (RFC 5280 5.3.2).
fn check_invalidity_date_against(
    cert: &CertificateRecord,
    invalidity_date: Option<OffsetDateTime>,
) -> Result<(), CoreError> {
    // The certificate says notBefore in whole seconds.
    let not_before = cert
        .not_before
        .replace_nanosecond(0)
        .unwrap_or(cert.not_before);
    if invalidity_date.is_some_and(|d| d < not_before) {
        return Err(CoreError::invalid(
            "invalid_invalidity_date",
            "invalidity_date is before the certificate's notBefore",
        ));
    }
    Ok(())
}

fn not_renewable(e: impl std::fmt::Display) -> CoreError {
    CoreError::Conflict {
        code: "not_renewable",
        detail: format!(
            "the certificate was issued under older rules that no longer hold ({e}); issue a new one"
        ),
    }
}

async fn revoke_locked(
    tx: &mut Tx,
    by: &Requester,
    cert: &CertificateRecord,
    reason: RevocationReason,
    invalidity_date: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), CoreError> {
    match cert.status {
        CertificateStatus::Revoked => {
            return Err(CoreError::Conflict {
                code: "already_revoked",
                detail: "the certificate is already revoked".into(),
            });
        }
        CertificateStatus::Expired => {
            return Err(CoreError::Conflict {
                code: "certificate_expired",
                detail: "the certificate has expired; an expired certificate is not revoked".into(),
            });
        }
        _ if cert.not_after <= now => {
            return Err(CoreError::Conflict {
                code: "certificate_expired",
                detail: "the certificate has expired; an expired certificate is not revoked".into(),
            });
        }
        _ => {}
    }
    revocations::insert(
        tx,
        &revocations::NewRevocation {
            certificate_id: cert.id,
            revoked_at: now,
            reason,
            invalidity_date,
            revoked_by: by.user_id(),
        },
    )
    .await?;
    certificates::set_status(tx, cert.id, CertificateStatus::Revoked).await?;
    Authority::audit(
        tx,
        by,
        "certificate.revoked",
        cert.id,
        json!({
            "reason": reason_label(reason),
            "invalidity_date": invalidity_date.map(|d| d.unix_timestamp()),
            "serial_number": cert.serial_number,
            "ca_id": cert.ca_id,
        }),
    )
    .await
}

struct RenewHooks<'a> {
    by: &'a Requester,
    previous_id: Uuid,
    owner_id: Option<Uuid>,
    key: Option<(Uuid, &'a PrivateKey, &'a SealedKey)>,
    revoke_previous: bool,
    now: OffsetDateTime,
    cert_id: Uuid,
    rekey: bool,
}

impl RecordHooks for RenewHooks<'_> {
    async fn before_insert(&mut self, tx: &mut Tx) -> Result<(), CoreError> {
        // Locks the previous version: two renewals of it cannot both succeed.
        let previous = certificates::get_for_update(tx, self.previous_id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        if previous.status != CertificateStatus::Active {
            return Err(CoreError::Conflict {
                code: "not_renewable",
                detail: "the certificate was renewed or revoked meanwhile".into(),
            });
        }
        if let Some((id, key, sealed)) = self.key {
            insert_sealed_key(tx, id, self.owner_id, key, sealed).await?;
        }
        Ok(())
    }

    async fn after_insert(&mut self, tx: &mut Tx, serial: &SerialNumber) -> Result<(), CoreError> {
        let previous = certificates::get_for_update(tx, self.previous_id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        certificates::set_status(tx, self.previous_id, CertificateStatus::Superseded).await?;
        if self.revoke_previous {
            let superseded = CertificateRecord {
                status: CertificateStatus::Superseded,
                ..previous
            };
            revoke_locked(
                tx,
                self.by,
                &superseded,
                RevocationReason::Superseded,
                None,
                self.now,
            )
            .await?;
        }
        Authority::audit(
            tx,
            self.by,
            "certificate.renewed",
            self.cert_id,
            json!({
                "renewed_from": self.previous_id,
                "serial_number": serial.to_hex(),
                "rekey": self.rekey,
                "previous_revoked": self.revoke_previous,
            }),
        )
        .await
    }
}

/// The owner named does not exist (a foreign-key failure on insert): a client mistake.
fn map_owner_fk(e: CoreError) -> CoreError {
    match e {
        CoreError::Db(DbError::ForeignKeyViolation { constraint })
            if constraint.contains("owner") =>
        {
            CoreError::invalid("unknown_owner", "owner_id names no user")
        }
        other => other,
    }
}

impl Authority {
    /// How a certificate was revoked (when, why, by whom); None when it is not revoked.
    /// 404 when the requester may not see the certificate.
    pub async fn revocation(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
    ) -> Result<Option<revocations::RevocationRecord>, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        if certificates::get(&mut tx, id).await?.is_none() {
            return Err(CoreError::NotFound("certificate"));
        }
        let revocation = revocations::for_certificate(&mut tx, id).await?;
        tx.commit().await?;
        Ok(revocation)
    }
}
