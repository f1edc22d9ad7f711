//! The CA registry: which CAs exist, which one signs a request, and their signers. Each
//! replica unseals a CA's key once, on first use, and keeps the signer in memory.
//!
//! CA private keys are sealed in `private_keys` like every other key (owner NULL, so only
//! SYSTEM reads them).

use std::collections::HashMap;
use std::sync::Arc;

use keyinfra_db::authorities::{self, AuthorityRecord};
use keyinfra_db::private_keys;
use keyinfra_db::{Actor, Database};
use keyinfra_pki::ca::{CaSigner, inspect_ca_certificate};
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::seal::MasterKeys;
use time::Duration;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::Clock;
use crate::ErrorCode;
use crate::error::CoreError;
use crate::keys::unseal_record;
use crate::principal::Principal;

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

/// The CAs this deployment runs and the signers this replica has loaded.
#[derive(Debug)]
pub struct CaRegistry {
    pub(crate) masters: Arc<MasterKeys>,
    pub(crate) clock: Arc<dyn Clock>,
    signers: RwLock<HashMap<Uuid, Arc<LoadedCa>>>,
    default_ca: std::sync::Mutex<Option<(Uuid, time::OffsetDateTime)>>,
    /// Bumped whenever this replica creates or imports a CA, so caches of the CA list
    /// (the default CA, OCSP's index of CertID hashes) see the new CA at once here.
    changes: std::sync::atomic::AtomicU64,
}

impl CaRegistry {
    pub(crate) fn new(masters: Arc<MasterKeys>, clock: Arc<dyn Clock>) -> Self {
        Self {
            masters,
            clock,
            signers: RwLock::new(HashMap::new()),
            default_ca: std::sync::Mutex::new(None),
            changes: std::sync::atomic::AtomicU64::new(0),
        }
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

    /// This replica created or imported a CA: caches of the CA list are stale.
    pub(crate) fn forget_default_ca(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        if let Ok(mut cached) = self.default_ca.lock() {
            *cached = None;
        }
    }

    /// How many times this replica has changed the CA list (see [`Self::forget_default_ca`]).
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn find_default_issuing_ca(&self, db: &Database) -> Result<Uuid, CoreError> {
        let cas = self.list_cas(db).await?;
        let now = self.clock.now();
        // A CA whose validity has not started is a prepared rollover: what it signed now
        // would not verify until then (`next_issuing_ca`).
        let candidates: Vec<&AuthorityRecord> = cas
            .iter()
            .filter(|ca| ca.private_key_id.is_some() && ca.not_after > now)
            .filter(|ca| ca.not_before <= now)
            .filter(|ca| {
                !cas.iter()
                    .any(|c| c.parent_ca_id == Some(ca.id) && c.not_before <= now)
            })
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

    /// The prepared rollover, if any: the issuing CA (held here, below another CA, with no
    /// CA below it) whose validity starts soonest in the future. It becomes the default
    /// issuing CA when its validity starts; SCEP's GetNextCACert announces it until then.
    pub async fn next_issuing_ca(&self, db: &Database) -> Result<Option<Uuid>, CoreError> {
        let cas = self.list_cas(db).await?;
        let now = self.clock.now();
        Ok(cas
            .iter()
            .filter(|ca| ca.private_key_id.is_some() && ca.not_before > now)
            .filter(|ca| !is_self_signed(ca))
            .filter(|ca| !cas.iter().any(|c| c.parent_ca_id == Some(ca.id)))
            .min_by_key(|ca| (ca.not_before, ca.id))
            .map(|ca| ca.id))
    }

    /// The CA an issue signs with. Only an ADMIN (or the operator) may name one, and a
    /// device enrolling through a protocol whose URL names one (EST's CA label, RFC 7030
    /// 3.2.2), where the owner's policy (`ca_ids`) still decides; without a name, the
    /// default issuing CA, which is never a root while an issuing CA exists.
    pub(crate) async fn issuing_ca_for(
        &self,
        db: &Database,
        by: &Principal,
        requested: Option<Uuid>,
    ) -> Result<Uuid, CoreError> {
        match requested {
            Some(id) => {
                if !matches!(by, Principal::Enrollment { .. }) {
                    by.require_admin()?;
                }
                self.check_may_sign_leaves(db, id).await?;
                Ok(id)
            }
            None => self.default_issuing_ca(db).await,
        }
    }

    /// A self-signed (root) CA may sign end-entity certificates only while no issuing CA
    /// (one KeyInfra holds the key of, unexpired, not self-signed) exists: once one does,
    /// the root's key signs only CAs and CRLs. Applies to every requester, the operator too.
    /// An unknown id passes here and is answered by [`CaRegistry::signer`].
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
        let issuing = cas.iter().find(|c| {
            c.private_key_id.is_some()
                && c.not_before <= now
                && c.not_after > now
                && !is_self_signed(c)
        });
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
}

/// Whether a CA's certificate is self-signed (a root). A certificate that does not parse
/// counts as one: it is never preferred for signing leaves.
fn is_self_signed(ca: &AuthorityRecord) -> bool {
    inspect_ca_certificate(&ca.certificate_der).map_or(true, |info| info.self_signed)
}
