//! Signing a leaf and recording it: the group-commit path for first issues, and the
//! one-transaction path (with the serial-collision retry) that renewals and retried
//! first issues take.

use keyinfra_db::audit::{AuditAction, NewAuditEvent};
use keyinfra_db::certificates::{self, NewCertificate};
use keyinfra_db::private_keys::NewSealedKey;
use keyinfra_db::{Database, DbError, Tx};
use keyinfra_pki::ca::{LeafKey, LeafSpec};
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::seal::SealedKey;
use keyinfra_pki::{KeyAlgorithm, PrivateKey, RandomSource, SerialNumber};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Issuer;
use super::pki_to_request_error;
use crate::ErrorCode;
use crate::ca_registry::LoadedCa;
use crate::certificates::{CertificateDraft, RecordHooks, record_new_certificate};
use crate::error::CoreError;
use crate::principal::Principal;

/// Writes beside the certificate row of a first issue.
pub(crate) struct IssueHooks<'a> {
    pub(crate) by: &'a Principal,
    pub(crate) owner_id: Option<Uuid>,
    pub(crate) quota: Option<u32>,
    pub(crate) now: OffsetDateTime,
    pub(crate) key: Option<(Uuid, &'a PrivateKey, &'a SealedKey)>,
    pub(crate) cert_id: Uuid,
    pub(crate) details: serde_json::Value,
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
                algorithm: key.algorithm(),
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
            action: AuditAction::CertificateIssued,
            target_type: Some("certificate"),
            target_id: Some(self.cert_id),
            details,
        };
        let rows = certificates::IssuedRows {
            key,
            certificate: certificate.clone(),
            // As audit::append makes it: ordered within the millisecond.
            audit_id: Uuid::now_v7(),
            audit,
            challenge_id: self.by.challenge_id(),
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
            ErrorCode::QuotaExceeded,
            format!(
                "the owner already has {active} active certificates and the limit is {quota}; revoke one or ask an administrator to raise KEYINFRA_CERT_QUOTA"
            ),
        ));
    }
    Ok(())
}

/// What a first issue and a renewal both sign.
pub(crate) struct LeafContent<'a> {
    pub(crate) subject: &'a DistinguishedName,
    pub(crate) sans: &'a [SubjectAltName],
    pub(crate) profile: &'a keyinfra_pki::profile::Profile,
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) key: LeafKey<'a>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
}

impl Issuer {
    /// Signs the leaf (again, with a fresh serial, after a collision) and records it with
    /// the hooks' other writes, in one transaction per attempt.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sign_and_record<H: RecordHooks>(
        &self,
        db: &Database,
        by: &Principal,
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
                ocsp_url: self.settings.ocsp_url().as_deref(),
                delta_crl_url: Some(&self.settings.delta_crl_url(ca.id)),
            })
            .map_err(pki_to_request_error)
    }

    /// Signs a first issue and records it through group commit ([`crate::group_commit`]).
    /// `None`: its batch wrote nothing, and the caller records it on the one-transaction
    /// path, which re-signs with a fresh serial and answers any refusal exactly.
    pub(crate) async fn sign_and_record_batched(
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
                algorithm: key.algorithm(),
                public_key_fingerprint: key.public_key_fingerprint(),
                sealed: sealed.clone(),
            }),
            certificate: QueuedCertificate {
                draft: draft.clone(),
                serial_number: serial_hex,
                fingerprint_sha256: keyinfra_pki::sha256_fingerprint(&der),
                certificate_der: der.clone(),
            },
            audit_id: Uuid::now_v7(),
            challenge_id: hooks.by.challenge_id(),
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
}
