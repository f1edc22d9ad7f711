//! Moving a certificate (its whole renewal chain and stored keys) to another owner.

use keyinfra_db::audit::AuditAction;
use keyinfra_db::certificates::{self, CertificateRecord};
use keyinfra_db::{CertificateStatus, Database, users};
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use serde_json::json;
use uuid::Uuid;

use crate::ErrorCode;
use std::sync::Arc;

use crate::Clock;
use crate::authority::AuthoritySettings;
use crate::error::CoreError;
use crate::issuer::check_quota;
use crate::policy::Policies;
use crate::policy::{Candidate, CompiledPolicy};
use crate::principal::Principal;

/// Giving a certificate to another owner, under that owner's policy.
#[derive(Debug)]
pub struct Reassignment {
    settings: Arc<AuthoritySettings>,
    clock: Arc<dyn Clock>,
    policies: Arc<Policies>,
}

impl Reassignment {
    pub(crate) fn new(
        settings: Arc<AuthoritySettings>,
        clock: Arc<dyn Clock>,
        policies: Arc<Policies>,
    ) -> Self {
        Self {
            settings,
            clock,
            policies,
        }
    }

    /// An ADMIN moves a certificate to another user: the whole renewal chain moves (every
    /// version is the same device), with the stored keys; revocation rows follow by
    /// trigger. The new owner's quota counts the active certificates that move, and the
    /// new owner's policy must allow the certificate, unless `force` (audited). Audited.
    pub async fn reassign(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        new_owner: Uuid,
        force: bool,
    ) -> Result<CertificateRecord, CoreError> {
        by.require_admin()?;
        let now = self.clock.now();
        let policy = self.policies.for_owner(db, Some(new_owner)).await?;
        let mut tx = db.begin(&by.actor()).await?;
        let cert = certificates::get_for_update(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        let target = users::find(&mut tx, new_owner).await?.ok_or_else(|| {
            CoreError::invalid(
                ErrorCode::UnknownOwner,
                format!("no user has id {new_owner}"),
            )
        })?;
        if target.disabled {
            return Err(CoreError::invalid(
                ErrorCode::OwnerDisabled,
                "the new owner's account is disabled",
            ));
        }
        if !force {
            check_new_owner_policy(&policy, &cert).map_err(|e| match e {
                CoreError::Invalid { code, detail } => CoreError::Invalid {
                    code,
                    detail: format!(
                        "the new owner's policy does not allow this certificate: {detail}; an ADMIN may move it anyway with \"force\": true"
                    ),
                },
                other => other,
            })?;
        }
        let chain = certificates::versions(&mut tx, id).await?;
        let moving: Vec<&CertificateRecord> = chain
            .iter()
            .filter(|c| c.owner_id != Some(new_owner))
            .collect();
        if let Some(quota) = policy.policy.quota.or(self.settings.quota) {
            let active = moving
                .iter()
                .filter(|c| c.status == CertificateStatus::Active && c.not_after > now)
                .count();
            check_quota(&mut tx, new_owner, quota, active as i64, now).await?;
        }
        let ids: Vec<Uuid> = moving.iter().map(|c| c.id).collect();
        let mut key_ids: Vec<Uuid> = moving.iter().filter_map(|c| c.private_key_id).collect();
        key_ids.dedup();
        certificates::set_owner(&mut tx, &ids, new_owner).await?;
        keyinfra_db::private_keys::set_owner(&mut tx, &key_ids, new_owner).await?;
        crate::principal::audit_certificate(
            &mut tx,
            by,
            AuditAction::CertificateReassigned,
            id,
            json!({
                "from_owner_id": cert.owner_id,
                "to_owner_id": new_owner,
                "to_username": target.username,
                "certificates_moved": ids,
                "keys_moved": key_ids.len(),
                "policy_id": policy.policy.id,
                "forced": force,
            }),
        )
        .await?;
        let updated = certificates::get(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        tx.commit().await?;
        Ok(updated)
    }
}

/// The new owner's policy against what the certificate holds: its names, subject, profile,
/// key, validity and CA. (ADMIN moves it, so the server's reserved names are not refused.)
fn check_new_owner_policy(
    policy: &CompiledPolicy,
    cert: &CertificateRecord,
) -> Result<(), CoreError> {
    let unreadable = |e: keyinfra_pki::names::NameError| {
        CoreError::invalid(
            ErrorCode::NameNotAllowed,
            format!("its names do not parse: {e}"),
        )
    };
    let subject = DistinguishedName::parse(&cert.subject_dn).map_err(unreadable)?;
    let sans = cert
        .subject_alt_names
        .iter()
        .map(|s| SubjectAltName::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    let algorithm = cert.key_algorithm.algorithm().ok_or_else(|| {
        CoreError::invalid(
            ErrorCode::KeyAlgorithmNotAllowed,
            format!(
                "{} keys are not issued any more",
                cert.key_algorithm.as_str()
            ),
        )
    })?;
    let days = (cert.not_after - cert.not_before).whole_days();
    let checked = policy.check(
        &Candidate {
            subject: &subject,
            sans: &sans,
            profile: &cert.profile,
            algorithm,
            validity_days: u32::try_from(days).unwrap_or(u32::MAX),
            ca_id: cert.ca_id,
        },
        None,
    )?;
    if checked != subject {
        return Err(CoreError::invalid(
            ErrorCode::SubjectNotAllowed,
            format!(
                "policy {:?} fixes subject attributes this certificate lacks",
                policy.policy.name
            ),
        ));
    }
    Ok(())
}
