//! Creating CAs: the root (and an issuing CA under it) by `keyinfra init` or the first
//! `serve`, and adopting an existing one by `keyinfra ca import`. A CA under an existing
//! one is [`crate::issuing_ca`].

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::authorities::{self, AuthorityRecord, NewAuthority};
use keyinfra_db::{Actor, Database, DbError, Tx};
use keyinfra_pki::ca::{CaSigner, CaSpec, inspect_ca_certificate};
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::seal::{self};
use keyinfra_pki::{KeyAlgorithm, PrivateKey, RandomSource, SerialNumber, sha256_fingerprint};
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use crate::error::CoreError;
use crate::principal::Principal;

use std::sync::Arc;

use keyinfra_pki::seal::MasterKeys;

use crate::authority::AuthoritySettings;
use crate::ca_registry::CaRegistry;
use crate::crl::CrlPublisher;
use crate::keys::{generate_key, insert_sealed_key};
use crate::policy::Policies;
use crate::{Clock, ErrorCode};

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

/// Creating and adopting CAs: `keyinfra init`, `ca import`, `ca create --parent`.
#[derive(Debug)]
pub struct CaSetup {
    pub(crate) settings: Arc<AuthoritySettings>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) masters: Arc<MasterKeys>,
    pub(crate) cas: Arc<CaRegistry>,
    pub(crate) crls: Arc<CrlPublisher>,
    pub(crate) policies: Arc<Policies>,
}

impl CaSetup {
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
        self.cas.forget_default_ca();
        for ca in &created {
            self.crls.publish_crl(db, ca.id).await?;
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
                code: ErrorCode::AlreadyInitialized,
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
        let root_dn = DistinguishedName::parse(&options.root_subject).map_err(|e| {
            CoreError::invalid(ErrorCode::InvalidSubject, format!("root subject: {e}"))
        })?;
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
        let operator = &Principal::Operator;
        let root_record = self
            .store_ca(tx, operator, "root", &root, None, rng)
            .await?;
        let mut created = vec![root_record];
        if let Some(subject) = &options.intermediate_subject {
            let dn = DistinguishedName::parse(subject).map_err(|e| {
                CoreError::invalid(
                    ErrorCode::InvalidSubject,
                    format!("intermediate subject: {e}"),
                )
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
                &self.settings.parent_urls(created[0].id),
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
        by: &Principal,
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
        by: &Principal,
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
                    code: ErrorCode::CaExists,
                    detail: "this CA certificate is already here".into(),
                }
            }
            DbError::UniqueViolation { constraint } if constraint.contains("name") => {
                CoreError::Conflict {
                    code: ErrorCode::CaNameTaken,
                    detail: format!("a CA named {name:?} exists; choose another --name"),
                }
            }
            DbError::CheckViolation { constraint } if constraint.contains("name") => {
                CoreError::invalid(
                    ErrorCode::InvalidCaName,
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
                ErrorCode::CaExpired,
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
                self.store_ca(&mut tx, &Principal::Operator, name, signer, parent, rng)
                    .await?
            }
            None => {
                self.record_ca(&mut tx, &Principal::Operator, name, &der, None, parent)
                    .await?
            }
        };
        tx.commit().await?;
        self.cas.forget_default_ca();
        if signer.is_some() {
            self.crls.publish_crl(db, record.id).await?;
        }
        Ok(record)
    }
}

/// The audit log's form of a CA's name constraints.
fn constraints_json(c: &NameConstraints) -> serde_json::Value {
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
