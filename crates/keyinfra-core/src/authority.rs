//! The certificate authority: its CAs and their signing keys, and the settings every
//! lifecycle use case reads. The lifecycle itself is in [`crate::lifecycle`], CRLs in
//! [`crate::crl`], master-key rotation in [`crate::rotation`].
//!
//! CA private keys are sealed in `private_keys` like every other key (owner NULL, so only
//! SYSTEM reads them). Each replica unseals a CA's key once, on first use, and keeps the
//! signer in memory.

use std::collections::HashMap;
use std::sync::Arc;

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::authorities::{self, AuthorityRecord, NewAuthority};
use keyinfra_db::private_keys::{self, NewSealedKey};
use keyinfra_db::{Actor, Database, DbError, Tx};
use keyinfra_pki::ca::{CaSigner, CaSpec, inspect_ca_certificate};
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::profile::Profile;
use keyinfra_pki::seal::{self, MasterKeys, SealedKey};
use keyinfra_pki::{KeyAlgorithm, PrivateKey, RandomSource, SerialNumber, sha256_fingerprint};
use serde_json::json;
use time::Duration;
use tokio::sync::{RwLock, mpsc};
use uuid::Uuid;

use crate::Clock;
use crate::error::CoreError;
use crate::principal::Principal as Requester;

/// Settings of the CA (each is a `keyinfra serve` flag and environment variable).
#[derive(Debug, Clone)]
pub struct AuthoritySettings {
    /// Base URL clients reach this server at; CRL distribution points and AIA URLs are
    /// built from it (KEYINFRA_PUBLIC_URL).
    pub public_url: String,
    pub profiles: Vec<Profile>,
    /// Most active certificates a user may own; `None` = no limit.
    pub quota: Option<u32>,
    /// nextUpdate - thisUpdate of every CRL.
    pub crl_validity: Duration,
    /// A CRL is re-issued once it is this old, well before its nextUpdate.
    pub crl_republish_after: Duration,
    /// Revocations within this window are published in one CRL.
    pub crl_coalesce: std::time::Duration,
    /// Certificates are back-dated by this much, for devices with slightly slow clocks.
    pub backdate: Duration,
    /// Certificate writes (issue, renew, revoke) a user may make a minute; `None` = no
    /// limit (KEYINFRA_ISSUE_RATE).
    pub write_rate: Option<crate::rate::WriteRate>,
    /// The names of KeyInfra's own TLS certificate (`--tls-names`, the listen address,
    /// localhost): only ADMIN, the operator and the server may get them.
    pub reserved_names: crate::policy::names::ReservedNames,
}

impl AuthoritySettings {
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            profiles: keyinfra_pki::profile::builtin_profiles(None),
            quota: Some(10),
            crl_validity: Duration::days(7),
            crl_republish_after: Duration::days(1),
            crl_coalesce: std::time::Duration::from_millis(500),
            backdate: Duration::minutes(5),
            write_rate: Some(crate::rate::WriteRate {
                per_minute: crate::rate::WriteRate::DEFAULT_PER_MINUTE,
                admins_too: false,
            }),
            reserved_names: crate::policy::names::ReservedNames::new([], []),
        }
    }

    pub fn profile(&self, name: &str) -> Result<&Profile, CoreError> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<_> = self.profiles.iter().map(|p| p.name.as_str()).collect();
                CoreError::invalid(
                    "unknown_profile",
                    format!(
                        "unknown profile {name:?}; known profiles: {}",
                        known.join(", ")
                    ),
                )
            })
    }

    pub fn crl_url(&self, ca_id: Uuid) -> String {
        format!("{}/crl/{ca_id}.crl", self.public_url)
    }

    pub fn ca_certificate_url(&self, ca_id: Uuid) -> String {
        format!("{}/ca/{ca_id}.crt", self.public_url)
    }
}

/// A CA whose key this replica holds, ready to sign.
#[derive(Debug)]
pub struct LoadedCa {
    pub id: Uuid,
    pub name: String,
    pub signer: CaSigner,
    /// DER certificates from this CA up to its root (this CA first).
    pub chain: Vec<Vec<u8>>,
    /// The name constraints of every CA in the chain that has some, with that CA's name:
    /// a relying party applies them all, so every leaf must satisfy each.
    pub name_constraints: Vec<(String, NameConstraints)>,
}

impl LoadedCa {
    /// Refuses a leaf whose names a relying party would reject under the name constraints
    /// of this CA or of any CA above it. Called before a key is generated or anything is
    /// signed.
    pub fn check_name_constraints(
        &self,
        subject: &DistinguishedName,
        sans: &[SubjectAltName],
    ) -> Result<(), CoreError> {
        for (ca_name, constraints) in &self.name_constraints {
            if !constraints.unsupported.is_empty() {
                return Err(CoreError::Conflict {
                    code: "ca_constraints_unsupported",
                    detail: format!(
                        "CA {ca_name:?} carries name constraints KeyInfra cannot check ({}), so KeyInfra does not sign under it",
                        constraints.unsupported.join(", ")
                    ),
                });
            }
            constraints.permits(subject, sans).map_err(|v| {
                CoreError::invalid(
                    "name_not_allowed",
                    format!(
                        "{} is outside the name constraints of CA {ca_name:?} ({})",
                        v.name, v.rule
                    ),
                )
            })?;
        }
        Ok(())
    }
}

/// What `keyinfra init` (or the first `serve`) creates.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub root_subject: String,
    pub root_algorithm: KeyAlgorithm,
    pub root_validity: Duration,
    /// An issuing CA under the root, which then signs every certificate.
    pub intermediate_subject: Option<String>,
    pub intermediate_validity: Duration,
    /// Written into the CA that signs leaves: the intermediate when there is one (the root
    /// stays unconstrained, so that `ca create --parent` can add CAs for other names),
    /// else the root.
    pub name_constraints: Option<NameConstraints>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            root_subject: "CN=KeyInfra Root CA,O=KeyInfra".into(),
            root_algorithm: KeyAlgorithm::EcdsaP384,
            root_validity: Duration::days(20 * 365 + 5),
            intermediate_subject: None,
            intermediate_validity: Duration::days(10 * 365 + 2),
            name_constraints: None,
        }
    }
}

/// The CA service shared by the API, the CLI and background jobs.
#[derive(Debug)]
pub struct Authority {
    pub settings: AuthoritySettings,
    pub(crate) masters: Arc<MasterKeys>,
    pub clock: Arc<dyn Clock>,
    signers: RwLock<HashMap<Uuid, Arc<LoadedCa>>>,
    pub(crate) crl_requests: mpsc::UnboundedSender<Uuid>,
    pub(crate) crl_receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Uuid>>>,
    default_ca: std::sync::Mutex<Option<(Uuid, time::OffsetDateTime)>>,
    /// Group commit for first issues; started by the first one (it needs a runtime).
    issue_batcher: std::sync::OnceLock<crate::group_commit::IssueBatcher>,
    /// Per-user rate of issues, renewals and revocations.
    pub(crate) writes: crate::rate::WriteLimiter,
    /// Bounds concurrent RSA key generation (up to seconds of CPU each).
    pub(crate) rsa_keygen: crate::WorkGate,
    /// Leaf keys this replica has generated, for the tests that check that a refused
    /// request made none.
    leaf_keys_generated: std::sync::atomic::AtomicU64,
    /// Issuance policies and the per-replica cache the issuer reads them through.
    pub policies: crate::policy::Policies,
}

impl Authority {
    pub fn new(settings: AuthoritySettings, masters: MasterKeys, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            writes: crate::rate::WriteLimiter::new(settings.write_rate),
            rsa_keygen: crate::WorkGate::per_core("rsa_key_generation"),
            leaf_keys_generated: std::sync::atomic::AtomicU64::new(0),
            policies: crate::policy::Policies::new(settings.profiles.clone(), Arc::clone(&clock)),
            settings,
            masters: Arc::new(masters),
            clock,
            signers: RwLock::new(HashMap::new()),
            crl_requests: tx,
            crl_receiver: std::sync::Mutex::new(Some(rx)),
            default_ca: std::sync::Mutex::new(None),
            issue_batcher: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn issue_batcher(&self) -> &crate::group_commit::IssueBatcher {
        self.issue_batcher
            .get_or_init(crate::group_commit::IssueBatcher::start)
    }

    pub fn master_key_versions(&self) -> Vec<i32> {
        self.masters.versions()
    }

    /// Creates the root CA (and the issuing intermediate, if asked) unless a CA exists.
    /// Returns the CAs created (empty when one already existed). Safe with several
    /// replicas starting at once.
    pub async fn ensure_initialized(
        &self,
        db: &Database,
        options: &InitOptions,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Vec<AuthorityRecord>, CoreError> {
        self.policies.ensure_default(db).await?;
        let mut tx = db.begin(&Actor::System).await?;
        authorities::lock_for_creation(&mut tx).await?;
        if !authorities::list(&mut tx).await?.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let created = self.create_hierarchy(&mut tx, options, rng).await?;
        tx.commit().await?;
        self.forget_default_ca();
        for ca in &created {
            self.publish_crl(db, ca.id).await?;
        }
        Ok(created)
    }

    /// `keyinfra init`: refuses when a CA exists (a second root is made by import).
    pub async fn init(
        &self,
        db: &Database,
        options: &InitOptions,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Vec<AuthorityRecord>, CoreError> {
        let created = self.ensure_initialized(db, options, rng).await?;
        if created.is_empty() {
            return Err(CoreError::Conflict {
                code: "already_initialized",
                detail: "a CA already exists; use `keyinfra ca import` to add another".into(),
            });
        }
        Ok(created)
    }

    async fn create_hierarchy(
        &self,
        tx: &mut Tx,
        options: &InitOptions,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Vec<AuthorityRecord>, CoreError> {
        let now = self.clock.now();
        let root_dn = DistinguishedName::parse(&options.root_subject)
            .map_err(|e| CoreError::invalid("invalid_subject", format!("root subject: {e}")))?;
        let root_key = generate_key(options.root_algorithm).await?;
        let constraints = options.name_constraints.as_ref();
        let (root_constraints, issuing_constraints) = match options.intermediate_subject {
            Some(_) => (None, constraints),
            None => (constraints, None),
        };
        let root = CaSigner::create_root(
            root_key,
            &CaSpec {
                subject: &root_dn,
                serial: &SerialNumber::random(rng)?,
                not_before: now - self.settings.backdate,
                not_after: now + options.root_validity,
                path_len: None,
                name_constraints: root_constraints,
            },
        )?;
        let operator = &Requester::Operator;
        let root_record = self
            .store_ca(tx, operator, "root", &root, None, rng)
            .await?;
        let mut created = vec![root_record];
        if let Some(subject) = &options.intermediate_subject {
            let dn = DistinguishedName::parse(subject).map_err(|e| {
                CoreError::invalid("invalid_subject", format!("intermediate subject: {e}"))
            })?;
            let key = generate_key(options.root_algorithm).await?;
            let not_after = (now + options.intermediate_validity).min(root.not_after());
            let issuing = root.create_subordinate(
                key,
                &CaSpec {
                    subject: &dn,
                    serial: &SerialNumber::random(rng)?,
                    not_before: now - self.settings.backdate,
                    not_after,
                    path_len: Some(0),
                    name_constraints: issuing_constraints,
                },
            )?;
            let record = self
                .store_ca(tx, operator, "issuing", &issuing, Some(created[0].id), rng)
                .await?;
            created.push(record);
        }
        Ok(created)
    }

    /// Seals the CA's key and records the CA, with an audit event.
    pub(crate) async fn store_ca(
        &self,
        tx: &mut Tx,
        by: &Requester,
        name: &str,
        signer: &CaSigner,
        parent: Option<Uuid>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<AuthorityRecord, CoreError> {
        let key_id = Uuid::now_v7();
        let sealed = seal::seal(&self.masters, key_id.as_bytes(), signer.key(), rng)?;
        insert_sealed_key(tx, key_id, None, signer.key(), &sealed).await?;
        self.record_ca(tx, by, name, signer.certificate_der(), Some(key_id), parent)
            .await
    }

    async fn record_ca(
        &self,
        tx: &mut Tx,
        by: &Requester,
        name: &str,
        certificate_der: &[u8],
        key_id: Option<Uuid>,
        parent: Option<Uuid>,
    ) -> Result<AuthorityRecord, CoreError> {
        let info = inspect_ca_certificate(certificate_der)?;
        let fingerprint = sha256_fingerprint(certificate_der);
        let id = authorities::insert(
            tx,
            &NewAuthority {
                name,
                subject_dn: &info.subject,
                certificate_der,
                fingerprint_sha256: &fingerprint,
                private_key_id: key_id,
                parent_ca_id: parent,
                not_before: info.not_before,
                not_after: info.not_after,
            },
        )
        .await
        .map_err(|e| match e {
            DbError::UniqueViolation { constraint } if constraint.contains("fingerprint") => {
                CoreError::Conflict {
                    code: "ca_exists",
                    detail: "this CA certificate is already here".into(),
                }
            }
            DbError::UniqueViolation { constraint } if constraint.contains("name") => {
                CoreError::Conflict {
                    code: "ca_name_taken",
                    detail: format!("a CA named {name:?} exists; choose another --name"),
                }
            }
            DbError::CheckViolation { constraint } if constraint.contains("name") => {
                CoreError::invalid(
                    "invalid_ca_name",
                    "CA names have 1 to 64 printable characters",
                )
            }
            other => other.into(),
        })?;
        audit::append(
            tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::CaCreated,
                target_type: Some("certificate_authority"),
                target_id: Some(id),
                details: json!({
                    "name": name,
                    "subject": info.subject,
                    "has_private_key": key_id.is_some(),
                    "parent_ca_id": parent,
                    "name_constraints": info.name_constraints.as_ref().map(constraints_json),
                }),
            },
        )
        .await?;
        authorities::get(tx, id)
            .await?
            .ok_or(CoreError::Internal("a CA vanished after insert".into()))
    }

    /// `keyinfra ca import`: adopts an existing CA. Without a key it is recorded as an
    /// offline CA (e.g. the root above an imported intermediate); with a key (PKCS#8 PEM)
    /// it can sign. The CA that issued it is linked when it is already here.
    pub async fn import(
        &self,
        db: &Database,
        name: &str,
        certificate: &[u8],
        key_pem: Option<&str>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<AuthorityRecord, CoreError> {
        let der = keyinfra_pki::certificate_der_from_pem_or_der(certificate)?;
        let info = inspect_ca_certificate(&der)?;
        if info.not_after <= self.clock.now() {
            return Err(CoreError::invalid(
                "ca_expired",
                "the CA certificate has expired",
            ));
        }
        let signer = match key_pem {
            Some(pem) => Some(CaSigner::from_parts(
                der.clone(),
                PrivateKey::from_pkcs8_pem(pem)?,
            )?),
            None => None,
        };
        let mut tx = db.begin(&Actor::System).await?;
        authorities::lock_for_creation(&mut tx).await?;
        let mut parent = None;
        if !info.self_signed {
            for ca in authorities::list(&mut tx).await? {
                let candidate = inspect_ca_certificate(&ca.certificate_der)?;
                if candidate.subject_raw == info.issuer_raw {
                    parent = Some(ca.id);
                }
            }
        }
        let record = match &signer {
            Some(signer) => {
                self.store_ca(&mut tx, &Requester::Operator, name, signer, parent, rng)
                    .await?
            }
            None => {
                self.record_ca(&mut tx, &Requester::Operator, name, &der, None, parent)
                    .await?
            }
        };
        tx.commit().await?;
        self.forget_default_ca();
        if signer.is_some() {
            self.publish_crl(db, record.id).await?;
        }
        Ok(record)
    }

    /// Every CA (public data).
    pub async fn list_cas(&self, db: &Database) -> Result<Vec<AuthorityRecord>, CoreError> {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let cas = authorities::list(&mut tx).await?;
        tx.commit().await?;
        Ok(cas)
    }

    pub async fn ca(&self, db: &Database, id: Uuid) -> Result<AuthorityRecord, CoreError> {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let ca = authorities::get(&mut tx, id).await?;
        tx.commit().await?;
        ca.ok_or(CoreError::NotFound("certificate authority"))
    }

    /// The CA that signs when a request names none: the newest CA holding a key that has
    /// not signed another CA held here (the intermediate under a root), not yet expired.
    /// Cached for a minute: issuance is the hot path, and CAs change rarely (this replica's
    /// own init and import clear the cache at once).
    pub async fn default_issuing_ca(&self, db: &Database) -> Result<Uuid, CoreError> {
        let now = self.clock.now();
        if let Ok(cached) = self.default_ca.lock()
            && let Some((id, at)) = *cached
            && now - at < Duration::minutes(1)
        {
            return Ok(id);
        }
        let id = self.find_default_issuing_ca(db).await?;
        if let Ok(mut cached) = self.default_ca.lock() {
            *cached = Some((id, now));
        }
        Ok(id)
    }

    pub(crate) fn forget_default_ca(&self) {
        if let Ok(mut cached) = self.default_ca.lock() {
            *cached = None;
        }
    }

    async fn find_default_issuing_ca(&self, db: &Database) -> Result<Uuid, CoreError> {
        let cas = self.list_cas(db).await?;
        let now = self.clock.now();
        let candidates: Vec<&AuthorityRecord> = cas
            .iter()
            .filter(|ca| ca.private_key_id.is_some() && ca.not_after > now)
            .filter(|ca| !cas.iter().any(|c| c.parent_ca_id == Some(ca.id)))
            .collect();
        // A root signs leaves only where no issuing CA exists (check_may_sign_leaves).
        let issuing: Vec<&AuthorityRecord> = candidates
            .iter()
            .copied()
            .filter(|ca| !is_self_signed(ca))
            .collect();
        let pool = if issuing.is_empty() {
            candidates
        } else {
            issuing
        };
        pool.into_iter()
            .max_by_key(|ca| (ca.created_at, ca.id))
            .map(|ca| ca.id)
            .ok_or(CoreError::Conflict {
                code: "no_issuing_ca",
                detail: "no CA can issue: run `keyinfra init` or `keyinfra ca import`".into(),
            })
    }

    /// The CA an issue signs with. Only an ADMIN (or the operator) may name one; without a
    /// name, the default issuing CA, which is never a root while an issuing CA exists.
    pub(crate) async fn issuing_ca_for(
        &self,
        db: &Database,
        by: &Requester,
        requested: Option<Uuid>,
    ) -> Result<Uuid, CoreError> {
        match requested {
            Some(id) => {
                by.require_admin()?;
                self.check_may_sign_leaves(db, id).await?;
                Ok(id)
            }
            None => self.default_issuing_ca(db).await,
        }
    }

    /// A self-signed (root) CA may sign end-entity certificates only while no issuing CA
    /// (one KeyInfra holds the key of, unexpired, not self-signed) exists: once one does,
    /// the root's key signs only CAs and CRLs. Applies to every requester, the operator too.
    /// An unknown id passes here and is answered by [`Authority::signer`].
    pub(crate) async fn check_may_sign_leaves(
        &self,
        db: &Database,
        ca_id: Uuid,
    ) -> Result<(), CoreError> {
        let cas = self.list_cas(db).await?;
        let Some(ca) = cas.iter().find(|ca| ca.id == ca_id) else {
            return Ok(());
        };
        let now = self.clock.now();
        let issuing = cas
            .iter()
            .find(|c| c.private_key_id.is_some() && c.not_after > now && !is_self_signed(c));
        match issuing {
            Some(issuing) if is_self_signed(ca) => Err(CoreError::invalid(
                "root_ca_cannot_issue",
                format!(
                    "CA {:?} is a self-signed root and does not sign end-entity certificates while an issuing CA exists; leave ca_id out, or name the issuing CA {:?} ({})",
                    ca.name, issuing.name, issuing.id
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The signer of a CA, unsealing its key on first use.
    pub async fn signer(&self, db: &Database, ca_id: Uuid) -> Result<Arc<LoadedCa>, CoreError> {
        if let Some(loaded) = self.signers.read().await.get(&ca_id) {
            return Ok(Arc::clone(loaded));
        }
        let mut tx = db.begin(&Actor::System).await?;
        let ca = authorities::get(&mut tx, ca_id)
            .await?
            .ok_or(CoreError::NotFound("certificate authority"))?;
        let key_id = ca.private_key_id.ok_or(CoreError::Conflict {
            code: "ca_key_not_held",
            detail: format!("KeyInfra does not hold the private key of CA {:?}", ca.name),
        })?;
        let sealed = private_keys::get(&mut tx, key_id)
            .await?
            .ok_or(CoreError::Internal(format!("CA {ca_id} has no key row")))?;
        let key = unseal_record(&self.masters, &sealed)?;
        let signer = CaSigner::from_parts(ca.certificate_der.clone(), key)?;
        let mut chain = vec![ca.certificate_der.clone()];
        let mut name_constraints = Vec::new();
        if let Some(c) = NameConstraints::from_certificate(&ca.certificate_der)? {
            name_constraints.push((ca.name.clone(), c));
        }
        let mut parent = ca.parent_ca_id;
        // A chain is short; the bound only guards against a cycle the schema cannot express.
        for _ in 0..16 {
            let Some(id) = parent else { break };
            let Some(p) = authorities::get(&mut tx, id).await? else {
                break;
            };
            if let Some(c) = NameConstraints::from_certificate(&p.certificate_der)? {
                name_constraints.push((p.name.clone(), c));
            }
            chain.push(p.certificate_der);
            parent = p.parent_ca_id;
        }
        tx.commit().await?;
        let loaded = Arc::new(LoadedCa {
            id: ca.id,
            name: ca.name,
            signer,
            chain,
            name_constraints,
        });
        self.signers
            .write()
            .await
            .insert(ca_id, Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Asks the CRL publisher to re-issue this CA's CRL (coalesced with other requests).
    pub fn crl_changed(&self, ca_id: Uuid) {
        // No receiver (a CLI run without a publisher): the caller publishes itself.
        let _ = self.crl_requests.send(ca_id);
    }

    /// Audits on behalf of a requester.
    pub(crate) async fn audit(
        tx: &mut Tx,
        by: &Requester,
        action: AuditAction,
        target: Uuid,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        audit::append(
            tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action,
                target_type: Some("certificate"),
                target_id: Some(target),
                details,
            },
        )
        .await?;
        Ok(())
    }
}

impl Authority {
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
}

/// The audit log's form of a CA's name constraints.
pub(crate) fn constraints_json(c: &NameConstraints) -> serde_json::Value {
    fn strings<T: ToString>(list: &[T]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }
    json!({
        "permitted_dns": c.permitted_dns,
        "excluded_dns": c.excluded_dns,
        "permitted_ip": strings(&c.permitted_ip),
        "excluded_ip": strings(&c.excluded_ip),
        "unsupported": c.unsupported,
    })
}

/// Whether a CA's certificate is self-signed (a root). A certificate that does not parse
/// counts as one: it is never preferred for signing leaves.
fn is_self_signed(ca: &AuthorityRecord) -> bool {
    inspect_ca_certificate(&ca.certificate_der).map_or(true, |info| info.self_signed)
}

/// Generates a key; RSA generation (up to seconds for 4096 bits) runs off the async workers.
pub async fn generate_key(algorithm: KeyAlgorithm) -> Result<PrivateKey, CoreError> {
    if algorithm.is_rsa() {
        tokio::task::spawn_blocking(move || PrivateKey::generate(algorithm))
            .await
            .map_err(|e| CoreError::Internal(format!("key generation task failed: {e}")))?
            .map_err(CoreError::from)
    } else {
        Ok(PrivateKey::generate(algorithm)?)
    }
}

pub(crate) async fn insert_sealed_key(
    tx: &mut Tx,
    id: Uuid,
    owner_id: Option<Uuid>,
    key: &PrivateKey,
    sealed: &SealedKey,
) -> Result<(), CoreError> {
    private_keys::insert(
        tx,
        &NewSealedKey {
            id,
            owner_id,
            algorithm: key.algorithm(),
            public_key_fingerprint: &key.public_key_fingerprint(),
            ciphertext: &sealed.ciphertext,
            nonce: &sealed.nonce,
            salt: &sealed.salt,
            kek_version: sealed.kek_version,
        },
    )
    .await?;
    Ok(())
}

pub(crate) fn sealed_of(record: &private_keys::SealedKeyRecord) -> Result<SealedKey, CoreError> {
    let broken = || CoreError::Internal(format!("key row {} is malformed", record.id));
    Ok(SealedKey {
        ciphertext: record.ciphertext.clone(),
        nonce: record.nonce.as_slice().try_into().map_err(|_| broken())?,
        salt: record.salt.as_slice().try_into().map_err(|_| broken())?,
        kek_version: record.kek_version,
    })
}

pub(crate) fn unseal_record(
    masters: &MasterKeys,
    record: &private_keys::SealedKeyRecord,
) -> Result<PrivateKey, CoreError> {
    let sealed = sealed_of(record)?;
    seal::unseal(masters, record.id.as_bytes(), &sealed).map_err(|e| {
        tracing::error!(key_id = %record.id, error = %e, "a stored private key does not open");
        CoreError::Internal(format!("the private key {} does not open: {e}", record.id))
    })
}
