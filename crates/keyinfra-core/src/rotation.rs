//! `keyinfra keys rotate`: re-seals every private key under the newest master key.
//!
//! Batches of rows are locked (`FOR UPDATE SKIP LOCKED`), re-sealed and committed one
//! batch per transaction, with an audit event per batch. Each row changes atomically from
//! "sealed under version n" to "sealed under the newest version", so an interruption at any
//! moment leaves every key readable (old versions stay configured until the rotation has
//! finished), and running the command again continues where it stopped.

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::{Actor, Database, private_keys};
use keyinfra_pki::RandomSource;
use keyinfra_pki::seal;
use serde_json::json;

use std::sync::Arc;

use keyinfra_pki::seal::MasterKeys;

use crate::Clock;
use crate::error::CoreError;
use crate::keys::sealed_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    pub done: u64,
    pub total: u64,
}

/// Re-sealing every stored private key under the newest master key.
#[derive(Debug)]
pub struct KeyRotation {
    masters: Arc<MasterKeys>,
    clock: Arc<dyn Clock>,
}

impl KeyRotation {
    pub(crate) fn new(masters: Arc<MasterKeys>, clock: Arc<dyn Clock>) -> Self {
        Self { masters, clock }
    }

    /// Keys not yet under the newest master key.
    pub async fn keys_to_rotate(&self, db: &Database) -> Result<(i32, u64), CoreError> {
        let newest = self
            .masters
            .newest_version()
            .ok_or(CoreError::Internal("no master key is configured".into()))?;
        let mut tx = db.begin(&Actor::System).await?;
        let n = private_keys::count_not_at_version(&mut tx, newest).await?;
        tx.commit().await?;
        Ok((newest, u64::try_from(n).unwrap_or_default()))
    }

    pub async fn rotate_keys(
        &self,
        db: &Database,
        batch_size: i64,
        rng: &mut (dyn RandomSource + Send),
        mut progress: impl FnMut(RotationProgress),
    ) -> Result<RotationProgress, CoreError> {
        let (newest, total) = self.keys_to_rotate(db).await?;
        let mut state = RotationProgress { done: 0, total };
        progress(state);
        loop {
            let mut tx = db.begin(&Actor::System).await?;
            let batch =
                private_keys::lock_batch_not_at_version(&mut tx, newest, batch_size).await?;
            if batch.is_empty() {
                tx.commit().await?;
                break;
            }
            let mut from_versions: Vec<i32> = Vec::new();
            for row in &batch {
                let sealed = sealed_of(row)?;
                let resealed = seal::reseal(&self.masters, row.id.as_bytes(), &sealed, rng)
                    .map_err(|e| {
                        CoreError::Internal(format!("key {} cannot be re-sealed: {e}", row.id))
                    })?;
                private_keys::reseal(
                    &mut tx,
                    row.id,
                    &resealed.ciphertext,
                    &resealed.nonce,
                    &resealed.salt,
                    resealed.kek_version,
                    self.clock.now(),
                )
                .await?;
                if !from_versions.contains(&row.kek_version) {
                    from_versions.push(row.kek_version);
                }
            }
            audit::append(
                &mut tx,
                &NewAuditEvent {
                    actor_id: None,
                    actor_name: Some("operator"),
                    action: AuditAction::KeysResealed,
                    target_type: Some("private_key"),
                    target_id: None,
                    details: json!({
                        "count": batch.len(),
                        "from_versions": from_versions,
                        "to_version": newest,
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            state.done += batch.len() as u64;
            state.total = state.total.max(state.done);
            progress(state);
        }
        Ok(state)
    }
}
