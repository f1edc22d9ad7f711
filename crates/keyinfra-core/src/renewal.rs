//! Renewal: a new certificate with the same names and profile, version + 1; the previous
//! version becomes SUPERSEDED (or REVOKED as superseded).

use keyinfra_db::audit::AuditAction;
use keyinfra_db::certificates::{self, CertificateRecord};
use keyinfra_db::{CertificateStatus, Database, Tx};
use keyinfra_pki::RevocationReason;
use keyinfra_pki::ca::{LeafKey, public_key_of_certificate};
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::seal::{self, SealedKey};
use keyinfra_pki::{PkiError, PrivateKey, RandomSource, SerialNumber};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ErrorCode;
use std::sync::Arc;

use crate::certificates::{CertificateDraft, RecordHooks};
use crate::crl::CrlPublisher;
use crate::error::CoreError;
use crate::issuer::Issuer;
use crate::issuer::{LeafContent, pki_to_request_error};
use crate::keys::insert_sealed_key;
use crate::ocsp::OcspService;
use crate::policy::Candidate;
use crate::principal::Principal;
use crate::queries::Queries;
use crate::revocation::revoke_locked;

#[derive(Debug, Clone)]
pub struct RenewRequest {
    pub validity_days: Option<u32>,
    pub rekey: bool,
    pub revoke_previous: bool,
}

/// Renewing certificates: the issuer's signing path under the owner's current policy.
#[derive(Debug)]
pub struct Renewals {
    issuer: Arc<Issuer>,
    crls: Arc<CrlPublisher>,
    ocsp: Arc<OcspService>,
    queries: Queries,
}

impl Renewals {
    pub(crate) fn new(
        issuer: Arc<Issuer>,
        crls: Arc<CrlPublisher>,
        ocsp: Arc<OcspService>,
        queries: Queries,
    ) -> Self {
        Self {
            issuer,
            crls,
            ocsp,
            queries,
        }
    }

    /// An ADMIN renews: a new certificate (new serial, version + 1) with the same names and
    /// profile; the previous one becomes SUPERSEDED, or REVOKED (superseded) if asked.
    pub async fn renew(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        request: RenewRequest,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        by.require_admin()?;
        self.renew_with(db, by, id, request, DeviceRequest::default(), rng)
            .await
    }

    /// A device renews its own certificate through an enrollment protocol (SCEP's
    /// RenewalReq, signed with that certificate's key): the same checks and recording as
    /// an ADMIN's renewal, with the public key of the device's new CSR (its old one, or a
    /// new one). `by` is the enrollment principal of the certificate's owner, so row-level
    /// security confines the lookup to that owner's certificates.
    pub async fn renew_for_device(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        public_key: &[u8],
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let device = DeviceRequest {
            public_key: Some(public_key),
            names: None,
        };
        self.renew_with(db, by, id, DEVICE_RENEWAL, device, rng)
            .await
    }

    /// As [`Self::renew_for_device`], with other names than the certificate has: for an
    /// owner whose policy allows name changes on renewal (`renewal_name_changes`, which
    /// the caller checked). The new names pass the owner's policy like any request's,
    /// KeyInfra's own reserved names included.
    pub async fn renew_for_device_with_names(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        public_key: &[u8],
        names: (DistinguishedName, Vec<SubjectAltName>),
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let device = DeviceRequest {
            public_key: Some(public_key),
            names: Some(names),
        };
        self.renew_with(db, by, id, DEVICE_RENEWAL, device, rng)
            .await
    }

    async fn renew_with(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        request: RenewRequest,
        device: DeviceRequest<'_>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let DeviceRequest {
            public_key: new_public_key,
            names: new_names,
        } = device;
        self.issuer.writes.take(by, self.issuer.clock.now())?;
        let previous = self.queries.get(db, by, id).await?;
        if previous.status != CertificateStatus::Active {
            return Err(CoreError::Conflict {
                code: ErrorCode::NotRenewable,
                detail: format!(
                    "only an ACTIVE certificate can be renewed; this one is {}",
                    previous.status.as_str()
                ),
            });
        }
        let profile = self.issuer.settings.profile(&previous.profile)?.clone();
        let validity = self.issuer.validity(&profile, request.validity_days)?;
        // Issued under older rules, the names or the key may break today's: not renewed
        // (409), rather than re-signed or failed as the server's fault.
        let changes_names = new_names.is_some();
        let (subject, sans) = match new_names {
            Some(names) => names,
            None => (
                DistinguishedName::parse(&previous.subject_dn).map_err(not_renewable)?,
                previous
                    .subject_alt_names
                    .iter()
                    .map(|s| SubjectAltName::parse(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(not_renewable)?,
            ),
        };
        self.issuer
            .cas
            .check_may_sign_leaves(db, previous.ca_id)
            .await
            .map_err(|e| match e {
                CoreError::Invalid { code, detail } => CoreError::Conflict { code, detail },
                other => other,
            })?;
        let ca = self.issuer.cas.signer(db, previous.ca_id).await?;
        ca.check_name_constraints(&subject, &sans)?;
        let now = self.issuer.clock.now();
        let not_before = now - self.issuer.settings.backdate;
        let not_after = now + validity;
        if not_after > ca.signer.not_after() {
            return Err(pki_to_request_error(PkiError::BeyondCaValidity));
        }
        // Same algorithm as before; without rekey, the same public key, unless the device
        // brought a key of its own.
        let old_spki = public_key_of_certificate(&previous.certificate_der)?;
        let new_spki = new_public_key.unwrap_or(&old_spki);
        let algorithm = keyinfra_pki::keys::algorithm_of_spki(new_spki).map_err(not_renewable)?;
        // Today's policy of the owner decides, not the one the certificate was issued under.
        let policy = self
            .issuer
            .policies
            .for_owner(db, previous.owner_id)
            .await?;
        let checked = policy
            .check(
                &Candidate {
                    subject: &subject,
                    sans: &sans,
                    profile: &profile.name,
                    algorithm,
                    validity_days: u32::try_from(validity.whole_days()).unwrap_or(u32::MAX),
                    ca_id: previous.ca_id,
                },
                // The same names: an ADMIN's renewal, or a device's of names it was given.
                // New names from a device: refused like any USER's request.
                (changes_names && !by.is_admin()).then_some(&self.issuer.settings.reserved_names),
            )
            .map_err(|e| {
                if changes_names {
                    e
                } else {
                    no_longer_allowed(e)
                }
            })?;
        if checked != subject {
            return Err(no_longer_allowed(CoreError::invalid(
                ErrorCode::SubjectNotAllowed,
                format!(
                    "policy {:?} now fixes subject attributes this certificate lacks ({checked} instead of {subject})",
                    policy.policy.name
                ),
            )));
        }
        let generated = match request.rekey {
            true => Some(self.issuer.generate_leaf_key(algorithm).await?),
            false => None,
        };
        let key_id = Uuid::now_v7();
        let sealed = match &generated {
            Some(key) => Some(seal::seal(
                &self.issuer.masters,
                key_id.as_bytes(),
                key,
                rng,
            )?),
            None => None,
        };
        let leaf_key = match &generated {
            Some(key) => LeafKey::Generated(key),
            None => LeafKey::Spki(new_spki),
        };
        let cert_id = Uuid::now_v7();
        let draft = CertificateDraft {
            id: cert_id,
            ca_id: previous.ca_id,
            owner_id: previous.owner_id,
            // The signed names: a device's renewal may have changed them.
            subject_dn: if changes_names {
                subject.to_string()
            } else {
                previous.subject_dn.clone()
            },
            subject_alt_names: if changes_names {
                sans.iter().map(SubjectAltName::to_tagged).collect()
            } else {
                previous.subject_alt_names.clone()
            },
            not_before,
            not_after,
            key_algorithm: algorithm,
            private_key_id: if generated.is_some() {
                Some(key_id)
            } else if new_spki == old_spki.as_slice() {
                previous.private_key_id
            } else {
                // The device's new key: KeyInfra holds no copy of it.
                None
            },
            profile: previous.profile.clone(),
            created_by: by.user_id(),
            version: previous.version + 1,
            renewed_from: Some(previous.id),
            renewed_at: Some(now),
            renewed_by: by.user_id(),
            channel: by.issuance_channel(),
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
        self.issuer
            .sign_and_record(db, by, rng, &ca, &draft, &content, &mut hooks)
            .await?;
        if request.revoke_previous {
            self.crls.crl_changed(previous.ca_id);
            self.ocsp.forget(previous.ca_id, &previous.serial_number);
        }
        self.queries.get(db, by, cert_id).await
    }
}

/// A renewal the owner's current policy refuses: the same code as the refusal, and a
/// detail that says the policy changed since the certificate was issued.
/// A device's renewal: the profile's default validity, its own key (no rekey here), the
/// previous certificate superseded, not revoked.
const DEVICE_RENEWAL: RenewRequest = RenewRequest {
    validity_days: None,
    rekey: false,
    revoke_previous: false,
};

/// What a device's renewal brings of its own: the key of its new CSR, and (where the
/// policy allows it) other names. An ADMIN's renewal brings neither.
#[derive(Default)]
struct DeviceRequest<'a> {
    public_key: Option<&'a [u8]>,
    names: Option<(DistinguishedName, Vec<SubjectAltName>)>,
}

fn no_longer_allowed(e: CoreError) -> CoreError {
    match e {
        CoreError::Invalid { code, detail } => CoreError::Invalid {
            code,
            detail: format!(
                "not renewed: the owner's current policy no longer allows this certificate: {detail}"
            ),
        },
        other => other,
    }
}

fn not_renewable(e: impl std::fmt::Display) -> CoreError {
    CoreError::Conflict {
        code: ErrorCode::NotRenewable,
        detail: format!(
            "the certificate was issued under older rules that no longer hold ({e}); issue a new one"
        ),
    }
}

struct RenewHooks<'a> {
    by: &'a Principal,
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
                code: ErrorCode::NotRenewable,
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
        crate::principal::audit_certificate(
            tx,
            self.by,
            AuditAction::CertificateRenewed,
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
