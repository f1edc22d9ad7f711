//! The certificate authority: its CAs and their signing keys, and the settings every
//! lifecycle use case reads. The lifecycle itself is in the use-case modules
//! ([`crate::issuer`], [`crate::renewal`], [`crate::revocation`], ...), CRLs in
//! [`crate::crl`], master-key rotation in [`crate::rotation`].
//!
//! CA private keys are sealed in `private_keys` like every other key (owner NULL, so only
//! SYSTEM reads them). Each replica unseals a CA's key once, on first use, and keeps the
//! signer in memory.

use std::collections::HashMap;
use std::sync::Arc;

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::authorities::{self, AuthorityRecord};
use keyinfra_db::private_keys::{self, NewSealedKey};
use keyinfra_db::{Actor, Database, Tx};
use keyinfra_pki::ca::{CaSigner, inspect_ca_certificate};
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::profile::Profile;
use keyinfra_pki::seal::{self, MasterKeys, SealedKey};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use time::Duration;
use tokio::sync::{RwLock, mpsc};
use uuid::Uuid;

use crate::Clock;
use crate::ErrorCode;
use crate::error::CoreError;
use crate::principal::Principal;

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
                    ErrorCode::UnknownProfile,
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
                    code: ErrorCode::CaConstraintsUnsupported,
                    detail: format!(
                        "CA {ca_name:?} carries name constraints KeyInfra cannot check ({}), so KeyInfra does not sign under it",
                        constraints.unsupported.join(", ")
                    ),
                });
            }
            constraints.permits(subject, sans).map_err(|v| {
                CoreError::invalid(
                    ErrorCode::NameNotAllowed,
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

/// The CA service shared by the API, the CLI and background jobs.
#[derive(Debug)]
pub struct Authority {
    pub settings: AuthoritySettings,
    pub(crate) masters: Arc<MasterKeys>,
    pub(crate) clock: Arc<dyn Clock>,
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
                code: ErrorCode::NoIssuingCa,
                detail: "no CA can issue: run `keyinfra init` or `keyinfra ca import`".into(),
            })
    }

    /// The CA an issue signs with. Only an ADMIN (or the operator) may name one; without a
    /// name, the default issuing CA, which is never a root while an issuing CA exists.
    pub(crate) async fn issuing_ca_for(
        &self,
        db: &Database,
        by: &Principal,
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
                ErrorCode::RootCaCannotIssue,
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
            code: ErrorCode::CaKeyNotHeld,
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
        by: &Principal,
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
