//! User management and login: the rules, in one place for the API and the CLI.
//!
//! Authorisation is checked here (first wall) and again by row-level security in the
//! database (second wall).
//!
//! (About 640 lines: the account's whole life, login to deletion, in one service, so that
//! every rule that touches a user's row reads in one place; login throttling and hashing
//! are already apart in `auth/`.)

use std::net::IpAddr;
use std::sync::Arc;

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::users::{self, NewUser, UserRecord};
use keyinfra_db::{Actor, Database, DbError, UserRole, revocations};
use keyinfra_pki::{RandomSource, RevocationReason};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{
    AccessToken, LoginThrottle, Password, PasswordError, PasswordHasher, TokenService, Verification,
};
use crate::error::CoreError;
use crate::{Clock, ErrorCode, OsRandom, WorkGate};

/// The authenticated caller of a request, from a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub id: Uuid,
    pub role: UserRole,
    /// The session epoch the token was issued under (see [`Actor::Token`]).
    pub session_epoch: OffsetDateTime,
}

impl Caller {
    /// The database identity: the token's claims, re-checked as the transaction begins.
    pub fn actor(&self) -> Actor {
        Actor::Token {
            id: self.id,
            role: self.role,
            session_epoch: self.session_epoch,
        }
    }

    pub fn require_admin(&self) -> Result<(), CoreError> {
        match self.role {
            UserRole::Admin => Ok(()),
            UserRole::User => Err(CoreError::Forbidden),
        }
    }
}

/// Usernames: 1 to 128 characters, no leading or trailing blanks, no control characters.
/// Anything else is data (including quotes and SQL keywords) and is stored as typed.
pub fn validate_username(name: &str) -> Result<(), CoreError> {
    let count = name.chars().count();
    if count == 0 || count > 128 {
        return Err(CoreError::invalid(
            ErrorCode::InvalidUsername,
            "the username must have 1 to 128 characters",
        ));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            ErrorCode::InvalidUsername,
            "the username must not start or end with blanks or contain control characters",
        ));
    }
    Ok(())
}

/// An e-mail address for alerts: `local@domain`, as lettre parses it, at most 254 bytes.
pub fn validate_email(email: &str) -> Result<(), CoreError> {
    if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
        return Err(CoreError::invalid(
            ErrorCode::InvalidEmail,
            "the e-mail address must look like name@example.net (at most 254 characters)",
        ));
    }
    Ok(())
}

fn password_error(e: PasswordError) -> CoreError {
    match e {
        PasswordError::Random | PasswordError::Hashing => CoreError::Internal(e.to_string()),
        other => CoreError::invalid(ErrorCode::WeakPassword, other.to_string()),
    }
}

fn map_db(e: DbError) -> CoreError {
    match e {
        DbError::Unauthenticated => {
            CoreError::Unauthenticated("the access token is no longer valid")
        }
        other => CoreError::Db(other),
    }
}

/// Authentication and user management.
#[derive(Debug)]
pub struct UserService {
    /// Shared so that the slow Argon2id work can run on a blocking thread.
    pub hasher: Arc<PasswordHasher>,
    pub tokens: TokenService,
    pub throttle: LoginThrottle,
    /// Bounds concurrent Argon2id work (see [`WorkGate`]).
    pub hashing: WorkGate,
    pub clock: Arc<dyn Clock>,
}

/// A page of users and the keyset to continue after.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub items: Vec<UserRecord>,
    pub next: Option<(OffsetDateTime, Uuid)>,
}

impl UserService {
    /// Logs in: same answer and about the same time for an unknown user and a wrong
    /// password. The attempt is reserved with the throttle before the password is checked,
    /// and the check waits for the hashing gate (503 when it is saturated).
    pub async fn login(
        &self,
        db: &Database,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<AccessToken, CoreError> {
        let now = self.clock.now();
        let (account, needs_rehash) = self.check_password(db, username, password, address).await?;
        let actor = Actor::User {
            id: account.id,
            role: account.role,
        };
        let mut tx = db.begin(&actor).await?;
        if let Some(fresh) = &needs_rehash {
            users::set_password_hash(&mut tx, account.id, fresh, false).await?;
        }
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: Some(account.id),
                actor_name: Some(&account.username),
                action: AuditAction::UserLogin,
                target_type: Some("user"),
                target_id: Some(account.id),
                details: json!({ "address": address.map(|a| a.to_string()), "rehashed": needs_rehash.is_some() }),
            },
        )
        .await?;
        // Read in the transaction that records the login, after any write to the row.
        let epoch = users::session_epoch(&mut tx, account.id)
            .await?
            .ok_or(CoreError::InvalidCredentials)?;
        tx.commit().await?;
        self.tokens
            .issue(account.id, account.role, epoch, now, &mut OsRandom)
            .map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// Checks a username and password sent with a request itself (EST's HTTP Basic) with
    /// the login's throttle, timing and audit of failures, and answers whose they are. No
    /// token is made and no login is recorded: what the request then does is audited.
    pub async fn verify_credentials(
        &self,
        db: &Database,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<Uuid, CoreError> {
        let (account, fresh) = self.check_password(db, username, password, address).await?;
        if let Some(fresh) = &fresh {
            let mut tx = db
                .begin(&Actor::User {
                    id: account.id,
                    role: account.role,
                })
                .await?;
            users::set_password_hash(&mut tx, account.id, fresh, false).await?;
            tx.commit().await?;
        }
        Ok(account.id)
    }

    /// The password check that login and [`Self::verify_credentials`] share: throttle,
    /// lookup, Argon2id off the workers, the failed attempt audited. Answers the account
    /// and, when its hash uses older parameters, a fresh hash to store.
    async fn check_password(
        &self,
        db: &Database,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<(users::LoginRecord, Option<String>), CoreError> {
        let now = self.clock.now();
        let attempt = self
            .throttle
            .reserve(username, address, now)
            .map_err(CoreError::Throttled)?;
        let password = Password::for_login(password).map_err(|_| CoreError::InvalidCredentials)?;
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let account = users::login_lookup(&mut tx, username).await?;
        // No connection is held while the password is checked.
        tx.commit().await?;
        let stored = account.as_ref().map(|a| a.password_hash.clone());
        let (password, verdict) = self.verify_off_workers(password, stored).await?;
        let (account, needs_rehash) = match (account, verdict) {
            (Some(a), Verification::Match { needs_rehash }) if !a.disabled => (a, needs_rehash),
            (found, _) => {
                let reason = match found {
                    None => "unknown_user",
                    Some(a) if a.disabled => "disabled",
                    Some(_) => "wrong_password",
                };
                self.audit_failed_login(db, username, reason, address)
                    .await?;
                return Err(CoreError::InvalidCredentials);
            }
        };
        // The password is proved: only this (username, address) pair is cleared.
        attempt.succeeded();
        let fresh = if needs_rehash {
            Some(self.hash_off_workers(password, &mut OsRandom).await?)
        } else {
            None
        };
        Ok((account, fresh))
    }

    /// Logs out: ends every session of the caller (every token and cookie issued to them
    /// before), since a stateless token cannot be ended alone. Audited.
    pub async fn logout(&self, db: &Database, by: &Caller) -> Result<(), CoreError> {
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        if !users::end_sessions(&mut tx, by.id).await? {
            return Err(CoreError::NotFound("user"));
        }
        self.audit(&mut tx, Some(by), AuditAction::UserLogout, by.id, json!({}))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Argon2id verification on the blocking pool behind the hashing gate: tens of
    /// milliseconds of CPU and 19 MiB each, so never on the async workers and never more at
    /// once than there are cores. An unknown user costs the same as a wrong password.
    async fn verify_off_workers(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<(Password, Verification), CoreError> {
        let hasher = Arc::clone(&self.hasher);
        self.hashing
            .run(move || {
                let verdict = match stored {
                    Some(hash) => hasher.verify(&password, &hash),
                    None => {
                        hasher.verify_dummy(&password);
                        Verification::Mismatch
                    }
                };
                (password, verdict)
            })
            .await
    }

    /// Argon2id hashing, like [`Self::verify_off_workers`]; the salt is drawn here.
    async fn hash_off_workers(
        &self,
        password: Password,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<String, CoreError> {
        let mut salt = [0u8; crate::auth::password::SALT_BYTES];
        rng.fill(&mut salt)
            .map_err(|_| password_error(PasswordError::Random))?;
        let hasher = Arc::clone(&self.hasher);
        self.hashing
            .run(move || hasher.hash_with_salt(&password, &salt))
            .await?
            .map_err(password_error)
    }

    async fn audit_failed_login(
        &self,
        db: &Database,
        username: &str,
        reason: &str,
        address: Option<IpAddr>,
    ) -> Result<(), CoreError> {
        let name: String = username.chars().take(256).collect();
        let mut tx = db.begin(&Actor::Anonymous).await?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: None,
                actor_name: Some(&name),
                action: AuditAction::UserLoginFailed,
                target_type: None,
                target_id: None,
                details: json!({ "reason": reason, "address": address.map(|a| a.to_string()) }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Verifies a bearer token (signature, algorithm, expiry); the database re-checks the
    /// account when the request's transaction begins.
    pub fn authenticate(&self, token: &str) -> Result<Caller, CoreError> {
        let claims = self
            .tokens
            .verify(token, self.clock.now())
            .map_err(|e| match e {
                crate::auth::TokenError::Expired => {
                    CoreError::Unauthenticated("the access token has expired")
                }
                _ => CoreError::Unauthenticated("the access token is invalid"),
            })?;
        let (Some(role), Some(session_epoch)) = (claims.role(), claims.session_epoch()) else {
            return Err(CoreError::Unauthenticated("the access token is invalid"));
        };
        Ok(Caller {
            id: claims.sub,
            role,
            session_epoch,
        })
    }

    /// The web UI's session: the same checks as [`Self::authenticate`], plus the session's
    /// CSRF token (see [`TokenService::csrf_token`](crate::auth::TokenService::csrf_token)).
    pub fn authenticate_session(&self, token: &str) -> Result<(Caller, String), CoreError> {
        let caller = self.authenticate(token)?;
        let claims = self
            .tokens
            .verify(token, self.clock.now())
            .map_err(|_| CoreError::Unauthenticated("the access token is invalid"))?;
        Ok((caller, self.tokens.csrf_token(&claims)))
    }

    /// Whether `presented` is the CSRF token of the session `token` (constant time).
    pub fn csrf_matches(&self, token: &str, presented: &str) -> bool {
        self.tokens
            .verify(token, self.clock.now())
            .is_ok_and(|claims| self.tokens.verify_csrf(&claims, presented))
    }

    /// Creates a user. `by` is None for operator commands (the CLI, the bootstrap).
    #[allow(clippy::too_many_arguments)] // Each is a field of the new user or the request.
    pub async fn create(
        &self,
        db: &Database,
        by: Option<&Caller>,
        username: &str,
        password: String,
        role: UserRole,
        email: Option<&str>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<UserRecord, CoreError> {
        if let Some(caller) = by {
            caller.require_admin()?;
        }
        validate_username(username)?;
        if let Some(email) = email {
            validate_email(email)?;
        }
        let password = Password::new(password, username).map_err(password_error)?;
        let hash = self.hash_off_workers(password, rng).await?;
        let actor = by.map_or(Actor::System, Caller::actor);
        let mut tx = db.begin(&actor).await.map_err(map_db)?;
        let id = users::insert(
            &mut tx,
            &NewUser {
                username,
                password_hash: &hash,
                role,
                email,
            },
        )
        .await
        .map_err(|e| match e {
            DbError::UniqueViolation { .. } => CoreError::Conflict {
                code: ErrorCode::UsernameTaken,
                detail:
                    "a user with this name already exists (names are compared case-insensitively)"
                        .into(),
            },
            other => map_db(other),
        })?;
        self.audit(
            &mut tx,
            by,
            AuditAction::UserCreated,
            id,
            json!({ "username": username, "role": role.as_str() }),
        )
        .await?;
        let user = users::find(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn list(
        &self,
        db: &Database,
        by: &Caller,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: i64,
    ) -> Result<UserPage, CoreError> {
        by.require_admin()?;
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        let mut items = users::list(&mut tx, after, limit + 1).await?;
        tx.commit().await?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|u| (u.created_at, u.id))
        } else {
            None
        };
        Ok(UserPage { items, next })
    }

    /// A user by id: admins see anyone, users only themselves (others are "not found").
    pub async fn get(&self, db: &Database, by: &Caller, id: Uuid) -> Result<UserRecord, CoreError> {
        if by.role != UserRole::Admin && by.id != id {
            return Err(CoreError::NotFound("user"));
        }
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        let user = users::find(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes role and/or disabled flag (a direct column update, as designed).
    pub async fn update(
        &self,
        db: &Database,
        by: &Caller,
        id: Uuid,
        role: Option<UserRole>,
        disabled: Option<bool>,
        email: Option<Option<String>>,
    ) -> Result<UserRecord, CoreError> {
        // Users may set their own address; everything else is for admins.
        if by.id != id || role.is_some() || disabled.is_some() {
            by.require_admin()?;
        }
        if let Some(Some(email)) = &email {
            validate_email(email)?;
        }
        if id == by.id && (role == Some(UserRole::User) || disabled == Some(true)) {
            return Err(CoreError::invalid(
                ErrorCode::SelfLockout,
                "you cannot demote or disable yourself; ask another administrator",
            ));
        }
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        let before = users::find(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        let mut after = users::update_status(&mut tx, id, role, disabled)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        if let Some(email) = email
            && email != before.email
        {
            after = users::set_email(&mut tx, id, email.as_deref())
                .await?
                .ok_or(CoreError::NotFound("user"))?;
            self.audit(
                &mut tx,
                Some(by),
                AuditAction::UserEmailChanged,
                id,
                json!({}),
            )
            .await?;
        }
        if before.role != after.role {
            let details = json!({ "from": before.role.as_str(), "to": after.role.as_str() });
            self.audit(&mut tx, Some(by), AuditAction::UserRoleChanged, id, details)
                .await?;
        }
        if before.disabled != after.disabled {
            let action = if after.disabled {
                AuditAction::UserDisabled
            } else {
                AuditAction::UserEnabled
            };
            self.audit(&mut tx, Some(by), action, id, json!({})).await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a user after revoking their certificates (cessationOfOperation), in one
    /// transaction, so that the certificates stay on the CRL until they expire.
    pub async fn delete(&self, db: &Database, by: &Caller, id: Uuid) -> Result<u64, CoreError> {
        by.require_admin()?;
        if id == by.id {
            return Err(CoreError::invalid(
                ErrorCode::SelfLockout,
                "you cannot delete yourself",
            ));
        }
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        let user = users::find(&mut tx, id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        let revoked = revocations::revoke_all_of_owner(
            &mut tx,
            id,
            now,
            RevocationReason::CessationOfOperation,
            Some(by.id),
        )
        .await?;
        if !users::delete(&mut tx, id).await? {
            return Err(CoreError::NotFound("user"));
        }
        self.audit(
            &mut tx,
            Some(by),
            AuditAction::UserDeleted,
            id,
            json!({ "username": user.username, "certificates_revoked": revoked }),
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Changes the caller's own password; every token issued before ends with it. The
    /// current password goes through the same throttle as a login (a stolen session must not
    /// become a password oracle), and is verified, and the new one hashed, on the blocking
    /// pool behind the hashing gate before any transaction is open.
    pub async fn change_password(
        &self,
        db: &Database,
        by: &Caller,
        current: String,
        new: String,
        address: Option<IpAddr>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<(), CoreError> {
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        let me = users::find(&mut tx, by.id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        let stored = users::password_hash(&mut tx, by.id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        // No connection is held while Argon2id runs.
        tx.commit().await?;
        let attempt = self
            .throttle
            .reserve(&me.username, address, self.clock.now())
            .map_err(CoreError::Throttled)?;
        let current = Password::for_login(current).map_err(|_| CoreError::InvalidCredentials)?;
        let (_, verdict) = self.verify_off_workers(current, Some(stored)).await?;
        if verdict == Verification::Mismatch {
            return Err(CoreError::invalid(
                ErrorCode::WrongCurrentPassword,
                "the current password is wrong",
            ));
        }
        attempt.succeeded();
        let new = Password::new(new, &me.username).map_err(password_error)?;
        let hash = self.hash_off_workers(new, rng).await?;
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        users::set_password_hash(&mut tx, by.id, &hash, true).await?;
        self.audit(
            &mut tx,
            Some(by),
            AuditAction::UserPasswordChanged,
            by.id,
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// On first start: creates the first administrator when there is no user. Returns the
    /// user, and the generated password when none was given (to be shown once).
    pub async fn bootstrap_admin(
        &self,
        db: &Database,
        username: &str,
        password: Option<String>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Option<(UserRecord, Option<String>)>, CoreError> {
        let mut tx = db.begin(&Actor::System).await?;
        let empty = users::none_exist(&mut tx).await?;
        tx.commit().await?;
        if !empty {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p, None),
            None => {
                let mut bytes = [0u8; 18];
                rng.fill(&mut bytes)?;
                let text = base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    bytes,
                );
                (text.clone(), Some(text))
            }
        };
        let user = self
            .create(db, None, username, password, UserRole::Admin, None, rng)
            .await?;
        Ok(Some((user, generated)))
    }

    async fn audit(
        &self,
        tx: &mut keyinfra_db::Tx,
        by: Option<&Caller>,
        action: AuditAction,
        target: Uuid,
        details: serde_json::Value,
    ) -> Result<(), CoreError> {
        audit::append(
            tx,
            &NewAuditEvent {
                actor_id: by.map(|c| c.id),
                actor_name: by.is_none().then_some("operator"),
                action,
                target_type: Some("user"),
                target_id: Some(target),
                details,
            },
        )
        .await?;
        Ok(())
    }
}

/// The audit log for administrators, newest first; returns one page and whether more follow.
pub async fn audit_log(
    db: &Database,
    by: &Caller,
    filter: &keyinfra_db::audit::AuditFilter,
    limit: i64,
) -> Result<(Vec<keyinfra_db::audit::AuditRecord>, bool), CoreError> {
    by.require_admin()?;
    let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
    let mut rows = keyinfra_db::audit::list(&mut tx, filter, limit + 1).await?;
    tx.commit().await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

impl UserService {
    /// The usernames of `ids` that the caller may see (an ADMIN: everyone; a USER: only
    /// themselves), for pages that show owners by name. Unknown or hidden ids are absent.
    pub async fn usernames(
        &self,
        db: &Database,
        by: &Caller,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, String>, CoreError> {
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let mut tx = db.begin(&by.actor()).await.map_err(map_db)?;
        let names = users::usernames(&mut tx, &wanted).await?;
        tx.commit().await?;
        Ok(names.into_iter().collect())
    }
}
