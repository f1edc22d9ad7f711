//! External account binding keys (RFC 8555 7.3.4): how an ACME account comes to belong to
//! a KeyInfra user. A user (an ADMIN for anyone) asks `POST /api/v1/acme/eab` for a key
//! id and an HMAC key, hands both to an ACME client, and the client's newAccount carries
//! a binding MACed with that key; the account it creates is the user's, and so is
//! everything it orders.
//!
//! The HMAC key is not stored. It is HMAC-SHA256, under a key derived from the server
//! secret the replicas share (as the nonce key is), of the key id: any replica can
//! recompute it, a copy of the database cannot, and there is nothing to seal, rotate or
//! leak from a row. It is shown once, in the create's answer. A key id binds one account,
//! within its lifetime (1 minute to 30 days, 24 hours by default); an owner holds at most
//! [`MAX_LIVE_EAB_KEYS`] unused, unexpired ones, and each create takes a write from the
//! per-user rate (`KEYINFRA_ISSUE_RATE`), as challenges do. Changing the server secret
//! voids every outstanding key (clients ask for new ones).

use std::sync::Arc;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_db::acme::{self as store, EabKeyRecord};
use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::{Database, DbError};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::token::JwtSecret;
use crate::error::CoreError;
use crate::principal::{Principal, check_credential_owner, credential_owner, listed_owner};
use crate::rate::WriteLimiter;
use crate::{Clock, ErrorCode};

pub const DEFAULT_EAB_EXPIRES_IN_MINUTES: u32 = 24 * 60;
/// Thirty days: the CHECK constraint of migration 0031 holds the same bound.
pub const MAX_EAB_EXPIRES_IN_MINUTES: u32 = 30 * 24 * 60;
/// Unused, unexpired binding keys one owner may hold.
pub const MAX_LIVE_EAB_KEYS: i64 = 100;

/// A new binding key: the only time its HMAC key is seen.
#[derive(Debug)]
pub struct CreatedEabKey {
    pub kid: Uuid,
    pub owner_id: Uuid,
    /// base64url without padding, as ACME clients take it (`--hmac`, `--eab-hmac-key`).
    pub hmac_key: Zeroizing<String>,
    pub expires_at: OffsetDateTime,
}

/// Creates binding keys and recomputes their HMAC keys (module docs).
pub struct EabKeys {
    key: hmac::Key,
    clock: Arc<dyn Clock>,
    writes: Arc<WriteLimiter>,
}

impl std::fmt::Debug for EabKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKeys").finish_non_exhaustive()
    }
}

impl EabKeys {
    pub fn new(secret: &JwtSecret, clock: Arc<dyn Clock>, writes: Arc<WriteLimiter>) -> Self {
        Self {
            key: secret.derive_key(b"keyinfra/acme-eab/v1"),
            clock,
            writes,
        }
    }

    /// The HMAC key of key id `kid`: 32 bytes.
    pub fn mac_key(&self, kid: Uuid) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(hmac::sign(&self.key, kid.as_bytes()).as_ref().to_vec())
    }

    /// A new binding key for `owner_id` (default: the caller; another user's needs ADMIN),
    /// valid for `expires_in_minutes` (default 24 hours). Audited.
    pub async fn create(
        &self,
        db: &Database,
        by: &Principal,
        owner_id: Option<Uuid>,
        expires_in_minutes: Option<u32>,
    ) -> Result<CreatedEabKey, CoreError> {
        // The rate comes first: a refused request costs nothing else.
        self.writes.take(by, self.clock.now())?;
        let owner_id = credential_owner(by, owner_id)?;
        let minutes = expires_in_minutes.unwrap_or(DEFAULT_EAB_EXPIRES_IN_MINUTES);
        if !(1..=MAX_EAB_EXPIRES_IN_MINUTES).contains(&minutes) {
            return Err(CoreError::invalid(
                ErrorCode::InvalidExpiry,
                format!(
                    "expires_in_minutes must be between 1 and {MAX_EAB_EXPIRES_IN_MINUTES} (30 days)"
                ),
            ));
        }
        // In microseconds, as PostgreSQL keeps it: the answer shows what is stored.
        let now = self.clock.now();
        let now = now
            .replace_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        let expires_at = now + Duration::minutes(i64::from(minutes));

        let mut tx = db.begin(&by.actor()).await?;
        check_credential_owner(&mut tx, by, owner_id).await?;
        let live = store::lock_and_count_live_eab_keys(&mut tx, owner_id, now).await?;
        if live >= MAX_LIVE_EAB_KEYS {
            return Err(CoreError::invalid(
                ErrorCode::TooManyEabKeys,
                format!(
                    "the owner already has {live} unused, unexpired ACME binding keys and the limit is {MAX_LIVE_EAB_KEYS}; let some expire"
                ),
            ));
        }
        let kid = store::insert_eab_key(&mut tx, owner_id, by.user_id(), now, expires_at)
            .await
            .map_err(|e| match e {
                // The owner was deleted since the check.
                DbError::ForeignKeyViolation { .. } => CoreError::invalid(
                    ErrorCode::UnknownOwner,
                    format!("no user has id {owner_id}"),
                ),
                other => other.into(),
            })?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::AcmeEabKeyCreated,
                target_type: Some("acme_eab_key"),
                target_id: Some(kid),
                details: json!({ "owner_id": owner_id, "expires_at": expires_at.unix_timestamp() }),
            },
        )
        .await?;
        tx.commit().await?;
        let hmac_key = Zeroizing::new(URL_SAFE_NO_PAD.encode(self.mac_key(kid).as_slice()));
        Ok(CreatedEabKey {
            kid,
            owner_id,
            hmac_key,
            expires_at,
        })
    }

    /// The binding keys the caller may see, newest first (a USER's own; an ADMIN's
    /// `owner_id` filter, or everyone's), after the keyset `after`.
    pub async fn list(
        &self,
        db: &Database,
        by: &Principal,
        owner_id: Option<Uuid>,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: i64,
    ) -> Result<Vec<EabKeyRecord>, CoreError> {
        let owner = listed_owner(by, owner_id)?;
        let mut tx = db.begin(&by.actor()).await?;
        let rows = store::list_eab_keys(&mut tx, owner, after, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
