//! Moving a certificate (its whole renewal chain and stored keys) to another owner.

use keyinfra_db::certificates::{self, CertificateRecord};
use keyinfra_db::{CertificateStatus, Database, users};
use serde_json::json;
use uuid::Uuid;

use crate::authority::Authority;
use crate::error::CoreError;
use crate::issuer::check_quota;
use crate::principal::Principal as Requester;

impl Authority {
    /// An ADMIN moves a certificate to another user: the whole renewal chain moves (every
    /// version is the same device), with the stored keys; revocation rows follow by
    /// trigger. The new owner's quota counts the active certificates that move. Audited.
    pub async fn reassign(
        &self,
        db: &Database,
        by: &Requester,
        id: Uuid,
        new_owner: Uuid,
    ) -> Result<CertificateRecord, CoreError> {
        by.require_admin()?;
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await?;
        let cert = certificates::get_for_update(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("certificate"))?;
        let target = users::find(&mut tx, new_owner).await?.ok_or_else(|| {
            CoreError::invalid("unknown_owner", format!("no user has id {new_owner}"))
        })?;
        if target.disabled {
            return Err(CoreError::invalid(
                "owner_disabled",
                "the new owner's account is disabled",
            ));
        }
        let chain = certificates::versions(&mut tx, id).await?;
        let moving: Vec<&CertificateRecord> = chain
            .iter()
            .filter(|c| c.owner_id != Some(new_owner))
            .collect();
        if let Some(quota) = self.settings.quota {
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
        Authority::audit(
            &mut tx,
            by,
            "certificate.reassigned",
            id,
            json!({
                "from_owner_id": cert.owner_id,
                "to_owner_id": new_owner,
                "to_username": target.username,
                "certificates_moved": ids,
                "keys_moved": key_ids.len(),
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
