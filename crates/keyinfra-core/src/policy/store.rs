//! Managing policies (ADMIN and the operator), assigning them to users, and finding the
//! policy a request is checked against, cached briefly because issuance is the hot path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::policies::{self, DEFAULT_POLICY_ID};
use keyinfra_db::{Actor, Database, DbError, Tx, users};
use keyinfra_pki::profile::Profile;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::model::{CompiledPolicy, DEFAULT_POLICY_NAME, Policy, PolicyChanges};
use crate::Clock;
use crate::ErrorCode;
use crate::error::CoreError;
use crate::principal::Principal;

/// How long a replica answers from its cache. A change made on this replica applies at
/// once (the cache is cleared); one made on another replica within this long.
const CACHE_FOR: Duration = Duration::seconds(5);
/// Owners cached at most; past it the cache starts over.
const CACHE_ENTRIES: usize = 10_000;

type Cached = (Arc<CompiledPolicy>, OffsetDateTime);

#[derive(Debug)]
pub struct Policies {
    profiles: Vec<Profile>,
    clock: Arc<dyn Clock>,
    /// Owner (None: a certificate without one) -> the policy that owner holds.
    by_owner: Mutex<HashMap<Option<Uuid>, Cached>>,
}

impl Policies {
    pub(crate) fn new(profiles: Vec<Profile>, clock: Arc<dyn Clock>) -> Self {
        Self {
            profiles,
            clock,
            by_owner: Mutex::new(HashMap::new()),
        }
    }

    /// The `default` policy before anyone changed it.
    pub fn builtin_default(&self) -> Policy {
        Policy::builtin_default(&self.profiles)
    }

    /// Creates the `default` policy's row unless it exists (several replicas may race).
    pub async fn ensure_default(&self, db: &Database) -> Result<(), CoreError> {
        let builtin = self.builtin_default();
        let rules = serde_json::to_value(&builtin.subject)
            .map_err(|e| CoreError::Internal(format!("subject rules: {e}")))?;
        let mut tx = db.begin(&Actor::System).await?;
        policies::insert(&mut tx, &builtin.to_row(&rules), true).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list(&self, db: &Database, by: &Principal) -> Result<Vec<Policy>, CoreError> {
        by.require_admin()?;
        self.ensure_default(db).await?;
        let mut tx = db.begin(&by.actor()).await?;
        let rows = policies::list(&mut tx).await?;
        tx.commit().await?;
        rows.into_iter().map(Policy::from_record).collect()
    }

    /// How many users hold each policy (ADMIN only); policies nobody holds are absent.
    pub async fn holder_counts(
        &self,
        db: &Database,
        by: &Principal,
    ) -> Result<HashMap<Uuid, i64>, CoreError> {
        by.require_admin()?;
        let mut tx = db.begin(&by.actor()).await?;
        let counts = users::count_by_policy(&mut tx, DEFAULT_POLICY_ID).await?;
        tx.commit().await?;
        Ok(counts.into_iter().collect())
    }

    pub async fn get(&self, db: &Database, by: &Principal, id: Uuid) -> Result<Policy, CoreError> {
        by.require_admin()?;
        self.ensure_default(db).await?;
        let mut tx = db.begin(&by.actor()).await?;
        let row = policies::get(&mut tx, id).await?;
        tx.commit().await?;
        Policy::from_record(row.ok_or(CoreError::NotFound("policy"))?)
    }

    /// The policy a user holds. A USER may read only its own (so that it knows what it
    /// may ask for); an ADMIN anyone's.
    pub async fn of_user(
        &self,
        db: &Database,
        by: &Principal,
        user_id: Uuid,
    ) -> Result<Policy, CoreError> {
        if by.user_id() != Some(user_id) {
            by.require_admin()?;
        }
        let mut tx = db.begin(&by.actor()).await?;
        if users::find(&mut tx, user_id).await?.is_none() {
            return Err(CoreError::NotFound("user"));
        }
        let row = policies::for_user(&mut tx, user_id).await?;
        tx.commit().await?;
        match row {
            Some(row) => Policy::from_record(row),
            // The default policy has no row yet: it is the built-in one.
            None => Ok(self.builtin_default()),
        }
    }

    /// Creates a policy; omitted fields take the `default` policy's current values.
    pub async fn create(
        &self,
        db: &Database,
        by: &Principal,
        changes: PolicyChanges,
    ) -> Result<Policy, CoreError> {
        by.require_admin()?;
        if changes.name.is_none() {
            return Err(CoreError::invalid(
                ErrorCode::InvalidPolicy,
                "name is required",
            ));
        }
        let base = self.get(db, by, DEFAULT_POLICY_ID).await?;
        let mut policy = base.with(changes);
        policy.id = Uuid::now_v7();
        if policy.name == DEFAULT_POLICY_NAME {
            return Err(name_taken(&policy.name));
        }
        policy.compile(&self.profiles)?;
        let rules = subject_json(&policy)?;
        let mut tx = db.begin(&by.actor()).await?;
        self.check_cas_exist(&mut tx, &policy).await?;
        policies::insert(&mut tx, &policy.to_row(&rules), false)
            .await
            .map_err(|e| map_name_taken(e, &policy.name))?;
        audit_policy(
            &mut tx,
            by,
            AuditAction::PolicyCreated,
            policy.id,
            json!({ "new": policy }),
        )
        .await?;
        tx.commit().await?;
        Ok(policy)
    }

    /// Changes a policy; omitted fields keep their values. Audited with old and new.
    pub async fn update(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        changes: PolicyChanges,
    ) -> Result<Policy, CoreError> {
        let old = self.get(db, by, id).await?;
        let new = old.with(changes);
        if (old.name == DEFAULT_POLICY_NAME) != (new.name == DEFAULT_POLICY_NAME) {
            return Err(CoreError::invalid(
                ErrorCode::InvalidPolicy,
                "the default policy keeps its name, and no other policy may take it",
            ));
        }
        new.compile(&self.profiles)?;
        let rules = subject_json(&new)?;
        let mut tx = db.begin(&by.actor()).await?;
        self.check_cas_exist(&mut tx, &new).await?;
        if !policies::update(&mut tx, &new.to_row(&rules))
            .await
            .map_err(|e| map_name_taken(e, &new.name))?
        {
            return Err(CoreError::NotFound("policy"));
        }
        audit_policy(
            &mut tx,
            by,
            AuditAction::PolicyUpdated,
            id,
            json!({ "old": old, "new": new }),
        )
        .await?;
        tx.commit().await?;
        self.forget();
        Ok(new)
    }

    /// Deletes a policy no user holds. The default policy is never deleted.
    pub async fn delete(&self, db: &Database, by: &Principal, id: Uuid) -> Result<(), CoreError> {
        let old = self.get(db, by, id).await?;
        if id == DEFAULT_POLICY_ID {
            return Err(CoreError::Conflict {
                code: ErrorCode::PolicyInUse,
                detail: "the default policy is held by every user without another policy; it cannot be deleted".into(),
            });
        }
        let mut tx = db.begin(&by.actor()).await?;
        let holders = users::count_with_policy(&mut tx, id).await?;
        if holders > 0 {
            return Err(in_use(&old.name, holders));
        }
        match policies::delete(&mut tx, id).await {
            Ok(true) => {}
            Ok(false) => return Err(CoreError::NotFound("policy")),
            // A user was moved to it meanwhile.
            Err(DbError::ForeignKeyViolation { .. }) => return Err(in_use(&old.name, 1)),
            Err(e) => return Err(e.into()),
        }
        audit_policy(
            &mut tx,
            by,
            AuditAction::PolicyDeleted,
            id,
            json!({ "old": old }),
        )
        .await?;
        tx.commit().await?;
        self.forget();
        Ok(())
    }

    /// Moves a user to a policy (ADMIN). Audited as a change of the user.
    pub async fn assign(
        &self,
        db: &Database,
        by: &Principal,
        user_id: Uuid,
        policy_id: Uuid,
    ) -> Result<(), CoreError> {
        by.require_admin()?;
        self.ensure_default(db).await?;
        let mut tx = db.begin(&by.actor()).await?;
        let user = users::find(&mut tx, user_id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        let policy = policies::get(&mut tx, policy_id).await?.ok_or_else(|| {
            CoreError::invalid(
                ErrorCode::UnknownPolicy,
                format!("no policy has id {policy_id}"),
            )
        })?;
        let from = user.policy_id.unwrap_or(DEFAULT_POLICY_ID);
        // The default policy is stored as NULL, so that it follows the default.
        let stored = (policy_id != DEFAULT_POLICY_ID).then_some(policy_id);
        users::set_policy(&mut tx, user_id, stored).await?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::UserPolicyChanged,
                target_type: Some("user"),
                target_id: Some(user_id),
                details: json!({
                    "username": user.username,
                    "old_policy_id": from,
                    "new_policy_id": policy_id,
                    "new_policy_name": policy.name,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.forget();
        Ok(())
    }

    /// A policy by id or by name (the CLI's way to name one).
    pub async fn find(
        &self,
        db: &Database,
        by: &Principal,
        id_or_name: &str,
    ) -> Result<Policy, CoreError> {
        if let Ok(id) = id_or_name.parse::<Uuid>() {
            return self.get(db, by, id).await;
        }
        self.list(db, by)
            .await?
            .into_iter()
            .find(|p| p.name == id_or_name)
            .ok_or(CoreError::NotFound("policy"))
    }

    /// The id of the user with this name (any letter case), for the CLI.
    pub async fn user_id(
        &self,
        db: &Database,
        by: &Principal,
        username: &str,
    ) -> Result<Uuid, CoreError> {
        by.require_admin()?;
        let mut tx = db.begin(&by.actor()).await?;
        let id = users::id_by_username(&mut tx, username).await?;
        tx.commit().await?;
        id.ok_or(CoreError::NotFound("user"))
    }

    /// The policy an owner's certificates are checked against (`None`: a certificate
    /// without an owner, which the default policy governs).
    pub async fn for_owner(
        &self,
        db: &Database,
        owner: Option<Uuid>,
    ) -> Result<Arc<CompiledPolicy>, CoreError> {
        let now = self.clock.now();
        if let Ok(cache) = self.by_owner.lock()
            && let Some((policy, at)) = cache.get(&owner)
            && now - *at < CACHE_FOR
        {
            return Ok(Arc::clone(policy));
        }
        let mut tx = db.begin(&Actor::System).await?;
        let row = match owner {
            Some(owner) => policies::for_user(&mut tx, owner).await?,
            None => policies::get(&mut tx, DEFAULT_POLICY_ID).await?,
        };
        tx.commit().await?;
        let policy = match row {
            Some(row) => Policy::from_record(row)?,
            None => self.builtin_default(),
        };
        let compiled = Arc::new(policy.compile(&self.profiles)?);
        if let Ok(mut cache) = self.by_owner.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(owner, (Arc::clone(&compiled), now));
        }
        Ok(compiled)
    }

    /// A policy an ADMIN names for one request (422 when it does not exist).
    pub async fn named(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<Arc<CompiledPolicy>, CoreError> {
        by.require_admin()?;
        let mut tx = db.begin(&Actor::System).await?;
        let row = policies::get(&mut tx, id).await?;
        tx.commit().await?;
        let policy = match row {
            Some(row) => Policy::from_record(row)?,
            None if id == DEFAULT_POLICY_ID => self.builtin_default(),
            None => {
                return Err(CoreError::invalid(
                    ErrorCode::UnknownPolicy,
                    format!("no policy has id {id}"),
                ));
            }
        };
        Ok(Arc::new(policy.compile(&self.profiles)?))
    }

    fn forget(&self) {
        if let Ok(mut cache) = self.by_owner.lock() {
            cache.clear();
        }
    }

    async fn check_cas_exist(&self, tx: &mut Tx, policy: &Policy) -> Result<(), CoreError> {
        for id in &policy.ca_ids {
            if keyinfra_db::authorities::get(tx, *id).await?.is_none() {
                return Err(CoreError::invalid(
                    ErrorCode::InvalidPolicy,
                    format!("ca_ids: no certificate authority has id {id}"),
                ));
            }
        }
        Ok(())
    }
}

fn subject_json(policy: &Policy) -> Result<serde_json::Value, CoreError> {
    serde_json::to_value(&policy.subject)
        .map_err(|e| CoreError::Internal(format!("subject rules: {e}")))
}

fn name_taken(name: &str) -> CoreError {
    CoreError::Conflict {
        code: ErrorCode::PolicyNameTaken,
        detail: format!("a policy named {name:?} exists"),
    }
}

fn map_name_taken(e: DbError, name: &str) -> CoreError {
    match e {
        DbError::UniqueViolation { constraint } if constraint == "issuance_policies_name_key" => {
            name_taken(name)
        }
        other => other.into(),
    }
}

fn in_use(name: &str, holders: i64) -> CoreError {
    CoreError::Conflict {
        code: ErrorCode::PolicyInUse,
        detail: format!(
            "{holders} user(s) hold policy {name:?}; move them to another policy first (PATCH /api/v1/users/{{id}} with policy_id)"
        ),
    }
}

async fn audit_policy(
    tx: &mut Tx,
    by: &Principal,
    action: AuditAction,
    id: Uuid,
    details: serde_json::Value,
) -> Result<(), CoreError> {
    audit::append(
        tx,
        &NewAuditEvent {
            actor_id: by.user_id(),
            actor_name: by.audit_name(),
            action,
            target_type: Some("policy"),
            target_id: Some(id),
            details,
        },
    )
    .await?;
    Ok(())
}
