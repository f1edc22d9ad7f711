//! Handing out what was issued: the PKCS#12 file with the stored key, and the PEM chain.

use keyinfra_db::audit::AuditAction;
use keyinfra_db::certificates::{self};
use keyinfra_db::{CertificateStatus, Database};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::pkcs12::{Pin, Pkcs12Compat, build_pkcs12};
use serde_json::json;
use uuid::Uuid;

use crate::ErrorCode;
use std::sync::Arc;

use keyinfra_pki::seal::MasterKeys;

use crate::ca_registry::{CaRegistry, LoadedCa};
use crate::error::CoreError;
use crate::keys::unseal_record;
use crate::principal::Principal;
use crate::queries::Queries;

/// Handing out certificates and keys: PEM chains and PIN-protected PKCS#12 files.
#[derive(Debug)]
pub struct Exports {
    masters: Arc<MasterKeys>,
    cas: Arc<CaRegistry>,
    queries: Queries,
}

impl Exports {
    pub(crate) fn new(masters: Arc<MasterKeys>, cas: Arc<CaRegistry>, queries: Queries) -> Self {
        Self {
            masters,
            cas,
            queries,
        }
    }

    /// A PKCS#12 file with the key, the certificate and the CA chain (owner or ADMIN).
    pub async fn export_pkcs12(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        pin: Pin,
        compat: Pkcs12Compat,
    ) -> Result<Vec<u8>, CoreError> {
        pin.allows(compat)
            .map_err(|e| CoreError::invalid(ErrorCode::InvalidPin, e.to_string()))?;
        let mut tx = db.begin(&by.actor()).await?;
        let (cert, key_id, sealed) = exportable_key(&mut tx, id).await?;
        crate::principal::audit_certificate(
            &mut tx,
            by,
            AuditAction::CertificateExported,
            id,
            json!({
                "format": "pkcs12",
                "compat": compat.label(),
                "private_key_id": key_id,
                "serial_number": cert.serial_number,
            }),
        )
        .await?;
        let ca = self.cas.signer(db, cert.ca_id).await?;
        let masters = std::sync::Arc::clone(&self.masters);
        let friendly = DistinguishedName::parse(&cert.subject_dn)
            .ok()
            .and_then(|dn| dn.common_name().map(str::to_owned))
            .unwrap_or_else(|| cert.serial_number.clone());
        let der = cert.certificate_der.clone();
        let chain = ca.chain.clone();
        // Two PBKDF2 runs: off the async workers.
        let p12 = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, CoreError> {
            let key = unseal_record(&masters, &sealed)?;
            let chain_refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
            Ok(build_pkcs12(
                &key,
                &der,
                &chain_refs,
                &friendly,
                &pin,
                compat,
            )?)
        })
        .await
        .map_err(|e| CoreError::Internal(format!("export task failed: {e}")))??;
        // Audited only if the file was built: the event and the export succeed together.
        tx.commit().await?;
        Ok(p12)
    }

    /// The private key of a certificate issued with a server-made key, as unencrypted
    /// PKCS#8 DER, for a channel that delivers it over TLS in the answer to the issue
    /// itself (EST serverkeygen). Audited as an export (format `pkcs8`), in one
    /// transaction with the read; the owner or an ADMIN only (row-level security).
    pub async fn pkcs8_for_delivery(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let (cert, key_id, sealed) = exportable_key(&mut tx, id).await?;
        crate::principal::audit_certificate(
            &mut tx,
            by,
            AuditAction::CertificateExported,
            id,
            json!({
                "format": "pkcs8",
                "private_key_id": key_id,
                "serial_number": cert.serial_number,
            }),
        )
        .await?;
        let key = unseal_record(&self.masters, &sealed)?;
        let der = key.to_pkcs8_der()?;
        tx.commit().await?;
        Ok(der)
    }

    /// PEM of the certificate followed by its CA chain.
    pub async fn pem_chain(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<String, CoreError> {
        let cert = self.queries.get(db, by, id).await?;
        let ca: std::sync::Arc<LoadedCa> = self.cas.signer(db, cert.ca_id).await?;
        let mut text = keyinfra_pki::certificate_pem(&cert.certificate_der);
        for der in &ca.chain {
            text.push_str(&keyinfra_pki::certificate_pem(der));
        }
        Ok(text)
    }
}

/// The certificate `id` (as `tx`'s identity sees it) and its stored sealed key, if that
/// key may be handed out: KeyInfra made it (not a CSR's), and the certificate is not
/// revoked. A revoked certificate's key is not handed out again, to anyone: it may be the
/// compromised key the revocation was for, and a device given it would present a
/// certificate every relying party refuses.
async fn exportable_key(
    tx: &mut keyinfra_db::Tx,
    id: Uuid,
) -> Result<
    (
        certificates::CertificateRecord,
        Uuid,
        keyinfra_db::private_keys::SealedKeyRecord,
    ),
    CoreError,
> {
    let cert = certificates::get(tx, id)
        .await?
        .ok_or(CoreError::NotFound("certificate"))?;
    if cert.status == CertificateStatus::Revoked {
        return Err(CoreError::Conflict {
            code: ErrorCode::CertificateRevoked,
            detail: "the certificate is revoked; its private key is no longer exported".into(),
        });
    }
    let key_id = cert.private_key_id.ok_or(CoreError::Conflict {
        code: ErrorCode::NoPrivateKey,
        detail: "this certificate was issued from a CSR: KeyInfra never held its private key"
            .into(),
    })?;
    let sealed = keyinfra_db::private_keys::get(tx, key_id)
        .await?
        .ok_or(CoreError::NotFound("certificate"))?;
    Ok((cert, key_id, sealed))
}
