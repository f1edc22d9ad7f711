//! Revocation. A revocation writes a row and signals the CRL publisher ([`crate::crl`]);
//! it never builds the CRL itself, so its cost does not grow with the CRL.

use keyinfra_db::audit::AuditAction;
use keyinfra_db::certificates::{self, CertificateRecord};
use keyinfra_db::{CertificateStatus, Database, Tx, revocations};
use keyinfra_pki::RevocationReason;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ErrorCode;
use std::sync::Arc;

use crate::Clock;
use crate::crl::CrlPublisher;
use crate::error::CoreError;
use crate::ocsp::OcspService;
use crate::principal::Principal;
use crate::rate::WriteLimiter;

/// The reason a revocation request names (RFC 5280 names, no certificateHold: revocation
/// is final). `cACompromise` parses, and [`Revocations::revoke`] refuses it for the
/// end-entity certificates this table holds, saying why; `aACompromise` does not parse.
pub fn parse_reason(name: &str) -> Result<RevocationReason, CoreError> {
    match RevocationReason::from_name(name) {
        Some(reason) if reason != RevocationReason::AaCompromise => Ok(reason),
        _ => Err(CoreError::invalid(
            ErrorCode::InvalidReason,
            format!(
                "reason must be one of {}",
                RevocationReason::END_ENTITY
                    .map(RevocationReason::name)
                    .join(", ")
            ),
        )),
    }
}

/// Revoking certificates and reading a revocation back.
#[derive(Debug)]
pub struct Revocations {
    clock: Arc<dyn Clock>,
    writes: Arc<WriteLimiter>,
    crls: Arc<CrlPublisher>,
    ocsp: Arc<OcspService>,
}

impl Revocations {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        writes: Arc<WriteLimiter>,
        crls: Arc<CrlPublisher>,
        ocsp: Arc<OcspService>,
    ) -> Self {
        Self {
            clock,
            writes,
            crls,
            ocsp,
        }
    }

    /// Revokes a certificate (its owner or an ADMIN). The CRL is re-issued in the
    /// background, so this request costs the same however long the CRL is.
    pub async fn revoke(
        &self,
        db: &Database,
        by: &Principal,
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
        self.crls.crl_changed(updated.ca_id);
        // Before answering: this replica's next OCSP answer must say revoked. (The other
        // replicas hear of it through the database's notification.)
        self.ocsp.forget(updated.ca_id, &updated.serial_number);
        metrics::counter!("keyinfra_revocations_total", "reason" => reason.name()).increment(1);
        Ok(updated)
    }

    /// How a certificate was revoked (when, why, by whom); None when it is not revoked.
    /// 404 when the requester may not see the certificate.
    pub async fn revocation(
        &self,
        db: &Database,
        by: &Principal,
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
            ErrorCode::InvalidReason,
            "cACompromise is for a CA's certificate; revoke a device's certificate whose key leaked with keyCompromise",
        ));
    }
    if invalidity_date.is_some_and(|d| d > now) {
        return Err(CoreError::invalid(
            ErrorCode::InvalidInvalidityDate,
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
            ErrorCode::InvalidInvalidityDate,
            "invalidity_date is before the certificate's notBefore",
        ));
    }
    Ok(())
}

pub(crate) async fn revoke_locked(
    tx: &mut Tx,
    by: &Principal,
    cert: &CertificateRecord,
    reason: RevocationReason,
    invalidity_date: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), CoreError> {
    match cert.status {
        CertificateStatus::Revoked => {
            return Err(CoreError::Conflict {
                code: ErrorCode::AlreadyRevoked,
                detail: "the certificate is already revoked".into(),
            });
        }
        CertificateStatus::Expired => {
            return Err(CoreError::Conflict {
                code: ErrorCode::CertificateExpired,
                detail: "the certificate has expired; an expired certificate is not revoked".into(),
            });
        }
        _ if cert.not_after <= now => {
            return Err(CoreError::Conflict {
                code: ErrorCode::CertificateExpired,
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
    crate::principal::audit_certificate(
        tx,
        by,
        AuditAction::CertificateRevoked,
        cert.id,
        json!({
            "reason": reason.name(),
            "invalidity_date": invalidity_date.map(|d| d.unix_timestamp()),
            "serial_number": cert.serial_number,
            "ca_id": cert.ca_id,
        }),
    )
    .await
}
