//! The issuer: the one entry point that signs end-entity certificates. Every channel (the
//! REST API, the UI, the CLI, `--tls auto`, and the enrollment protocols to come) calls
//! [`Authority::issue`]; nothing else reaches a CA's signer for a leaf.

use keyinfra_db::certificates::CertificateRecord;
use keyinfra_db::{CertificateStatus, Database, DbError};
use keyinfra_pki::ca::LeafKey;
use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::seal::{self};
use keyinfra_pki::{KeyAlgorithm, PkiError, RandomSource};
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use crate::authority::{Authority, db_algorithm};
use crate::certificates::CertificateDraft;
use crate::error::CoreError;
use crate::principal::Principal as Requester;

mod record;

pub(crate) use record::{IssueHooks, LeafContent, check_quota};

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

fn invalid_name(code: &'static str, e: impl std::fmt::Display) -> CoreError {
    CoreError::invalid(code, e.to_string())
}

pub(crate) fn pki_to_request_error(e: PkiError) -> CoreError {
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

impl Authority {
    pub(crate) fn validity(
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
        ca.check_name_constraints(&subject, &sans)?;
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
