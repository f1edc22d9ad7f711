//! The issuer: the one entry point that signs end-entity certificates. Every channel (the
//! REST API, the UI, the CLI, `--tls auto`, and the enrollment protocols to come) calls
//! [`Authority::issue`]; nothing else reaches a CA's signer for a leaf.

use std::sync::Arc;

use keyinfra_db::certificates::CertificateRecord;
use keyinfra_db::{CertificateStatus, Database, DbError};
use keyinfra_pki::ca::LeafKey;
use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::profile::Profile;
use keyinfra_pki::seal;
use keyinfra_pki::{KeyAlgorithm, PkiError, RandomSource};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ErrorCode;
use crate::authority::Authority;
use crate::certificates::CertificateDraft;
use crate::error::CoreError;
use crate::policy::{Candidate, CompiledPolicy};
use crate::principal::Principal;

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

/// A request as a channel received it: text and bytes, not yet parsed.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub key: KeySource,
    /// RFC 4514; required with `Generate`, overrides the CSR's subject with `Csr`.
    pub subject: Option<String>,
    /// DNS names, IP addresses, `email:` and `URI:` names; overrides the CSR's SANs.
    pub san: Option<Vec<String>>,
    pub profile: String,
    pub validity_days: Option<u32>,
    pub owner_id: Option<Uuid>,
    pub ca_id: Option<Uuid>,
    /// The policy to check against instead of the owner's (ADMIN only).
    pub policy_id: Option<Uuid>,
}

/// The key a parsed request certifies.
#[derive(Debug, Clone)]
pub enum RequestedKey {
    /// Generate one of this algorithm (after every check passed).
    Generate(KeyAlgorithm),
    /// The requester's own public key (SubjectPublicKeyInfo DER), from its CSR.
    Public {
        spki: Vec<u8>,
        algorithm: KeyAlgorithm,
    },
}

impl RequestedKey {
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            RequestedKey::Generate(a) | RequestedKey::Public { algorithm: a, .. } => *a,
        }
    }
}

/// A request with every field parsed: what the issuer checks and signs. Channels build it
/// from their own wire format ([`ParsedRequest::parse`] for the REST, UI and CLI form).
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub subject: DistinguishedName,
    pub sans: Vec<SubjectAltName>,
    pub key: RequestedKey,
    pub profile: String,
    pub validity_days: Option<u32>,
    pub owner_id: Option<Uuid>,
    pub ca_id: Option<Uuid>,
    /// CSR extensions KeyInfra did not copy (the audit log records them).
    pub ignored_csr_extensions: Option<Vec<String>>,
}

impl ParsedRequest {
    /// Parses the names and the CSR. Cheap checks only: no database, no key generation.
    pub fn parse(request: &IssueRequest) -> Result<Self, CoreError> {
        // Names: from the request, else from the CSR.
        let csr = match &request.key {
            KeySource::Generate(_) => None,
            KeySource::Csr(bytes) => Some(parse_csr(bytes).map_err(pki_to_request_error)?),
        };
        let subject = match (&request.subject, &csr) {
            (Some(s), _) => DistinguishedName::parse(s)
                .map_err(|e| invalid_name(ErrorCode::InvalidSubject, e))?,
            (None, Some(csr)) => csr
                .subject
                .clone()
                .map_err(|e| invalid_name(ErrorCode::InvalidSubject, e))?,
            (None, None) => {
                return Err(CoreError::invalid(
                    ErrorCode::InvalidSubject,
                    "subject is required when the server generates the key (e.g. \"CN=edge-router-1,O=Example\")",
                ));
            }
        };
        let sans = match (&request.san, &csr) {
            (Some(list), _) => SubjectAltName::parse_list(list)
                .map_err(|e| invalid_name(ErrorCode::InvalidSan, e))?,
            (None, Some(csr)) => csr
                .sans
                .clone()
                .map_err(|e| invalid_name(ErrorCode::InvalidSan, e))?,
            (None, None) => Vec::new(),
        };
        let key = match (&request.key, csr.as_ref()) {
            (KeySource::Generate(algorithm), _) => RequestedKey::Generate(*algorithm),
            (KeySource::Csr(_), Some(csr)) => RequestedKey::Public {
                spki: csr.public_key_der.clone(),
                algorithm: csr.key_algorithm,
            },
            (KeySource::Csr(_), None) => return Err(CoreError::Internal("no CSR".into())),
        };
        Ok(ParsedRequest {
            subject,
            sans,
            key,
            profile: request.profile.clone(),
            validity_days: request.validity_days,
            owner_id: request.owner_id,
            ca_id: request.ca_id,
            ignored_csr_extensions: csr.map(|c| c.ignored_extensions),
        })
    }
}

/// What an issue would sign, every check passed: the dry run's answer, and the plan the
/// issuer carries out.
#[derive(Debug, Clone)]
pub struct IssuePlan {
    pub subject: DistinguishedName,
    pub sans: Vec<SubjectAltName>,
    pub profile: Profile,
    pub key_algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub ca_id: Uuid,
    pub ca_name: String,
    pub owner_id: Option<Uuid>,
    pub policy_id: Uuid,
    pub policy_name: String,
    /// The owner's quota under the policy (`None`: no limit).
    pub quota: Option<u32>,
}

fn invalid_name(code: ErrorCode, e: impl std::fmt::Display) -> CoreError {
    CoreError::invalid(code, e.to_string())
}

pub(crate) fn pki_to_request_error(e: PkiError) -> CoreError {
    match e {
        PkiError::InvalidCsr(text) => CoreError::invalid(ErrorCode::InvalidCsr, text),
        PkiError::CsrSignatureInvalid => CoreError::invalid(
            ErrorCode::CsrSignatureInvalid,
            "the CSR's signature does not verify",
        ),
        PkiError::UnsupportedKeyAlgorithm => CoreError::invalid(
            ErrorCode::UnsupportedKey,
            "the CSR's key is not ECDSA P-256/P-384, Ed25519 or RSA 2048/3072/4096",
        ),
        PkiError::UnsupportedRsaExponent => CoreError::invalid(
            ErrorCode::UnsupportedKey,
            "the CSR's RSA key has a public exponent other than 65537; KeyInfra accepts only 65537",
        ),
        PkiError::InvalidName(text) => CoreError::invalid(ErrorCode::InvalidSan, text),
        PkiError::BeyondCaValidity => CoreError::invalid(
            ErrorCode::BeyondCaValidity,
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
                ErrorCode::InvalidValidity,
                "validity_days must be at least 1",
            ));
        }
        if days > profile.max_validity_days {
            return Err(CoreError::invalid(
                ErrorCode::ValidityTooLong,
                format!(
                    "validity_days {days} exceeds the {} profile's maximum of {}",
                    profile.name, profile.max_validity_days
                ),
            ));
        }
        Ok(Duration::days(i64::from(days)))
    }

    /// Issues a certificate from a REST, UI or CLI request: parses it, finds the policy
    /// that governs it, and hands it to [`Authority::issue_parsed`].
    pub async fn issue(
        &self,
        db: &Database,
        by: &Principal,
        request: IssueRequest,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        // The rate comes first: a refused request costs nothing else.
        self.writes.take(by, self.clock.now())?;
        let policy_id = request.policy_id;
        let parsed = ParsedRequest::parse(&request)?;
        let policy = self.policy_for(db, by, &parsed, policy_id).await?;
        self.issue_parsed(db, by, parsed, &policy, rng).await
    }

    /// The dry run: what [`Authority::issue`] would sign, or its refusal. Writes nothing
    /// and generates no key.
    pub async fn preview(
        &self,
        db: &Database,
        by: &Principal,
        request: IssueRequest,
    ) -> Result<IssuePlan, CoreError> {
        let policy_id = request.policy_id;
        let parsed = ParsedRequest::parse(&request)?;
        let policy = self.policy_for(db, by, &parsed, policy_id).await?;
        self.plan(db, by, &parsed, &policy).await
    }

    /// The policy a request is checked against: the one an ADMIN names, else the
    /// owner's (the requester's own when it names no owner).
    pub async fn policy_for(
        &self,
        db: &Database,
        by: &Principal,
        request: &ParsedRequest,
        named: Option<Uuid>,
    ) -> Result<Arc<CompiledPolicy>, CoreError> {
        match named {
            Some(id) => self.policies.named(db, by, id).await,
            None => {
                let owner = request.owner_id.or(by.default_owner());
                self.policies.for_owner(db, owner).await
            }
        }
    }

    /// Every check an issue makes, in order of cost, and none of its writes: the role
    /// rules, the profile's and the policy's limits, the CA. Shared by the dry run and the
    /// issue itself, so that a preview never promises what the issue refuses.
    pub async fn plan(
        &self,
        db: &Database,
        by: &Principal,
        request: &ParsedRequest,
        policy: &CompiledPolicy,
    ) -> Result<IssuePlan, CoreError> {
        let profile = self.settings.profile(&request.profile)?.clone();
        // Without a requested validity, the profile's default, shortened to what the
        // policy allows: a request that names nothing is never refused for its default.
        let days = request.validity_days.unwrap_or(
            profile
                .default_validity_days
                .min(policy.policy.max_validity_days),
        );
        let validity = self.validity(&profile, Some(days))?;
        let owner_id = match (request.owner_id, by.default_owner()) {
            (Some(owner), Some(me)) if owner != me => {
                by.require_admin()?;
                Some(owner)
            }
            (Some(owner), _) => Some(owner),
            (None, me) => me,
        };
        let ca_id = self.issuing_ca_for(db, by, request.ca_id).await?;
        let validity_days = u32::try_from(validity.whole_days()).unwrap_or(u32::MAX);
        let reserved = (!by.is_admin()).then_some(&self.settings.reserved_names);
        let subject = policy.check(
            &Candidate {
                subject: &request.subject,
                sans: &request.sans,
                profile: &profile.name,
                algorithm: request.key.algorithm(),
                validity_days,
                ca_id,
            },
            reserved,
        )?;
        let ca = self.signer(db, ca_id).await.map_err(|e| match e {
            // A body field naming nothing is the client's mistake (422), not a missing URL.
            CoreError::NotFound(_) => CoreError::invalid(
                ErrorCode::UnknownCa,
                format!("no certificate authority has id {ca_id}"),
            ),
            other => other,
        })?;
        ca.check_name_constraints(&subject, &request.sans)?;
        let now = self.clock.now();
        let not_before = now - self.settings.backdate;
        let not_after = now + validity;
        if not_after > ca.signer.not_after() {
            return Err(pki_to_request_error(PkiError::BeyondCaValidity));
        }
        Ok(IssuePlan {
            subject,
            sans: request.sans.clone(),
            profile,
            key_algorithm: request.key.algorithm(),
            validity_days,
            not_before,
            not_after,
            ca_id,
            ca_name: ca.name.clone(),
            owner_id,
            policy_id: policy.policy.id,
            policy_name: policy.policy.name.clone(),
            quota: policy.policy.quota.or(self.settings.quota),
        })
    }

    /// The one entry point that signs an end-entity certificate, for every channel. All
    /// checks ([`Authority::plan`]) run before the key is generated or anything is
    /// written; then the key is made and sealed, the leaf signed, and the certificate,
    /// key and audit event recorded together (group commit, else one transaction with the
    /// serial retry).
    pub async fn issue_parsed(
        &self,
        db: &Database,
        by: &Principal,
        request: ParsedRequest,
        policy: &CompiledPolicy,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let started = std::time::Instant::now();
        let plan = self.plan(db, by, &request, policy).await?;
        let ca = self.signer(db, plan.ca_id).await?;
        let IssuePlan {
            subject,
            sans,
            profile,
            key_algorithm: algorithm,
            not_before,
            not_after,
            ca_id,
            owner_id,
            quota,
            ..
        } = plan;
        let now = self.clock.now();
        // An owner_id that names no user fails the inserts' foreign key: map_owner_fk turns
        // that into unknown_owner (422), and the transaction leaves nothing behind.

        // An RSA key costs up to seconds of CPU: an owner already at the quota is refused
        // before it is made. (The check under the owner's lock at insert still decides; this
        // one only saves the work. Cheaper keys skip it, so that issuance keeps its single
        // round trip.)
        if let (RequestedKey::Generate(alg), Some(quota), Some(owner)) =
            (&request.key, quota, owner_id)
            && alg.is_rsa()
        {
            let mut tx = db.begin(&by.actor()).await?;
            check_quota(&mut tx, owner, quota, 1, now).await?;
            tx.commit().await?;
        }
        let generated = match &request.key {
            RequestedKey::Generate(alg) => Some(self.generate_leaf_key(*alg).await?),
            RequestedKey::Public { .. } => None,
        };
        // Time-ordered (version 7) ids, as for every row issuance writes: their index
        // entries append at the right-hand edge instead of a random page (migration 0013).
        let key_id = Uuid::now_v7();
        let sealed = match &generated {
            Some(key) => Some(seal::seal(&self.masters, key_id.as_bytes(), key, rng)?),
            None => None,
        };
        let leaf_key = match (&generated, &request.key) {
            (Some(key), _) => LeafKey::Generated(key),
            (None, RequestedKey::Public { spki, .. }) => LeafKey::Spki(spki),
            (None, RequestedKey::Generate(_)) => {
                return Err(CoreError::Internal("no public key".into()));
            }
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
            key_algorithm: algorithm,
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
            quota,
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
                "policy_id": policy.policy.id,
                "key_algorithm": algorithm.label(),
                "key_source": if generated.is_some() { "server" } else { "csr" },
                "ignored_csr_extensions": request.ignored_csr_extensions,
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
            key_algorithm: draft.key_algorithm.into(),
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
            CoreError::invalid(ErrorCode::UnknownOwner, "owner_id names no user")
        }
        other => other,
    }
}
