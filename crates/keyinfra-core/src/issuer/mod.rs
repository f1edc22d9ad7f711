//! The issuer: the one entry point that signs end-entity certificates. Every channel (the
//! REST API, the UI, the CLI, `--tls auto`, and the enrollment protocols to come) calls
//! [`Issuer::issue`]; nothing else reaches a CA's signer for a leaf.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use keyinfra_db::certificates::CertificateRecord;
use keyinfra_db::{CertificateStatus, Database, DbError};
use keyinfra_pki::ca::LeafKey;
use keyinfra_pki::names::SubjectAltName;
use keyinfra_pki::seal::{self, MasterKeys};
use keyinfra_pki::{KeyAlgorithm, PkiError, PrivateKey, RandomSource};
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use crate::authority::AuthoritySettings;
use crate::ca_registry::CaRegistry;
use crate::certificates::CertificateDraft;
use crate::enrollment::live::LiveChallenges;
use crate::error::CoreError;
use crate::group_commit::IssueBatcher;
use crate::policy::{Candidate, CompiledPolicy, Policies};
use crate::principal::Principal;
use crate::rate::WriteLimiter;
use crate::{Clock, ErrorCode, WorkGate};

mod record;
mod request;

pub(crate) use record::{IssueHooks, LeafContent, check_quota};
pub(crate) use request::pki_to_request_error;
pub use request::{IssuePlan, IssueRequest, KeySource, ParsedRequest, RequestedKey};

/// The issuer and the state it keeps: the group-commit batcher, the RSA key-generation
/// gate, and the write rate it shares with renewals and revocations.
#[derive(Debug)]
pub struct Issuer {
    pub(crate) settings: Arc<AuthoritySettings>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) masters: Arc<MasterKeys>,
    pub(crate) cas: Arc<CaRegistry>,
    pub(crate) policies: Arc<Policies>,
    /// Per-user rate of issues, renewals and revocations.
    pub(crate) writes: Arc<WriteLimiter>,
    /// Bounds concurrent RSA key generation (up to seconds of CPU each).
    rsa_keygen: WorkGate,
    /// Leaf keys this replica has generated, for the tests that check that a refused
    /// request made none.
    leaf_keys_generated: AtomicU64,
    /// Group commit for first issues; started by the first one (it needs a runtime).
    issue_batcher: OnceLock<IssueBatcher>,
    /// The enrollment challenges this replica made: a certificate recorded under one, or
    /// refused because it was spent, ends its entry.
    live_challenges: Arc<LiveChallenges>,
}

impl Issuer {
    pub(crate) fn new(
        settings: Arc<AuthoritySettings>,
        clock: Arc<dyn Clock>,
        masters: Arc<MasterKeys>,
        cas: Arc<CaRegistry>,
        policies: Arc<Policies>,
        writes: Arc<WriteLimiter>,
        live_challenges: Arc<LiveChallenges>,
    ) -> Self {
        Self {
            settings,
            clock,
            masters,
            cas,
            policies,
            writes,
            rsa_keygen: WorkGate::per_core("rsa_key_generation"),
            leaf_keys_generated: AtomicU64::new(0),
            issue_batcher: OnceLock::new(),
            live_challenges,
        }
    }

    pub(crate) fn issue_batcher(&self) -> &IssueBatcher {
        self.issue_batcher.get_or_init(IssueBatcher::start)
    }
    /// How many leaf keys this replica has started to generate since it started.
    pub fn leaf_keys_generated(&self) -> u64 {
        self.leaf_keys_generated
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Generates a leaf key. RSA generation (0.4–1.6 s of CPU for 4096 bits) runs on the
    /// blocking pool behind a gate of one job per core, so a burst of requests queues
    /// briefly or gets 503 instead of occupying every blocking thread.
    pub(crate) async fn generate_leaf_key(
        &self,
        algorithm: KeyAlgorithm,
    ) -> Result<PrivateKey, CoreError> {
        self.leaf_keys_generated
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if algorithm.is_rsa() {
            self.rsa_keygen
                .run(move || PrivateKey::generate(algorithm))
                .await?
                .map_err(CoreError::from)
        } else {
            Ok(PrivateKey::generate(algorithm)?)
        }
    }

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
    /// that governs it, and hands it to [`Issuer::issue_parsed`].
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

    /// As [`Issuer::issue`], for a channel that has parsed and verified the request's CSR
    /// already (`csr` is `request`'s `KeySource::Csr`, parsed): the same checks, without
    /// parsing and verifying it twice.
    pub(crate) async fn issue_with_csr(
        &self,
        db: &Database,
        by: &Principal,
        request: IssueRequest,
        csr: keyinfra_pki::csr::ParsedCsr,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        self.writes.take(by, self.clock.now())?;
        let policy_id = request.policy_id;
        let parsed = ParsedRequest::with_csr(&request, Some(csr))?;
        let policy = self.policy_for(db, by, &parsed, policy_id).await?;
        self.issue_parsed(db, by, parsed, &policy, rng).await
    }

    /// The dry run: what [`Issuer::issue`] would sign, or its refusal. Writes nothing
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
        let ca_id = self.cas.issuing_ca_for(db, by, request.ca_id).await?;
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
        let ca = self.cas.signer(db, ca_id).await.map_err(|e| match e {
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
    /// checks ([`Issuer::plan`]) run before the key is generated or anything is
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
        let ca = self.cas.signer(db, plan.ca_id).await?;
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
            channel: by.issuance_channel(),
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
            Some(recorded) => Ok(recorded),
            None => self
                .sign_and_record(db, by, rng, &ca, &draft, &content, &mut hooks)
                .await
                .map_err(map_owner_fk),
        };
        if let Some(challenge) = by.challenge_id() {
            // Used by this certificate, or spent meanwhile: either way no longer this
            // replica's to hand out.
            if matches!(
                &recorded,
                Ok(_) | Err(CoreError::Db(DbError::ChallengeSpent))
            ) {
                self.live_challenges.forget(challenge);
            }
        }
        let recorded = recorded.map_err(map_spent_challenge)?;
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
            channel: draft.channel.to_owned(),
        })
    }
}

/// The owner named does not exist (a foreign-key failure on insert): a client mistake.
/// The certificate's statement found its enrollment challenge used by another request,
/// withdrawn, or its owner disabled (migration 0032): the device is refused as it would be
/// had it presented the challenge after that (SCEP: a failure; EST: 401).
fn map_spent_challenge(e: CoreError) -> CoreError {
    match e {
        CoreError::Db(DbError::ChallengeSpent) => CoreError::Conflict {
            code: ErrorCode::ChallengeUsed,
            detail: "the enrollment challenge was used by another request, withdrawn, or its owner disabled before the certificate was recorded".into(),
        },
        other => other,
    }
}

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
