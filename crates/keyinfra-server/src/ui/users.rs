//! User management for administrators: list, create, change role, disable/enable, move to
//! another issuance policy, delete (after a confirmation that names the certificates it
//! revokes). Every page answers anyone
//! but an ADMIN with the UI's 404; the use cases (`UserService`) check the role again and
//! hold every rule (name and password policy, no self-lockout, revocation on delete).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::auth::Password;
use keyinfra_core::policy::DEFAULT_POLICY_ID;
use keyinfra_core::{CoreError, ErrorCode, OsRandom, Principal};
use keyinfra_db::certificates::CertificateFilter;
use keyinfra_db::users::UserRecord;
use keyinfra_db::{CertificateStatus, UserRole};
use serde::Deserialize;
use uuid::Uuid;
use zeroize::Zeroize;

use super::session::{CsrfForm, UiError, UiId, UiSession, admin_only, chrome, render};
use super::view::{self, CertRow, Chrome};
use crate::AppState;
use crate::pagination::{decode_cursor, encode_cursor};

/// Users per page of the list.
const PAGE_SIZE: i64 = 50;

/// One user as a row or a page header.
#[derive(Debug, Clone)]
struct UserView {
    id: Uuid,
    username: String,
    is_admin: bool,
    disabled: bool,
    email: String,
    created: String,
    password_changed: String,
    is_me: bool,
    policy_id: Uuid,
    /// The policy's name, when the page looked the policies up.
    policy: String,
}

impl UserView {
    fn new(u: &UserRecord, me: Uuid) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            is_admin: u.role == UserRole::Admin,
            disabled: u.disabled,
            email: u.email.clone().unwrap_or_default(),
            created: view::date(u.created_at),
            password_changed: view::date_time(u.password_changed_at),
            is_me: u.id == me,
            policy_id: u.policy_id.unwrap_or(DEFAULT_POLICY_ID),
            policy: String::new(),
        }
    }

    /// Fills in the policy's name from a page's lookup.
    fn named(mut self, policies: &HashMap<Uuid, String>) -> Self {
        self.policy = policies
            .get(&self.policy_id)
            .cloned()
            .unwrap_or_else(|| view::short_id(self.policy_id));
        self
    }
}

/// Every policy's name by id (the use case lists them for an ADMIN only).
async fn policy_names(
    state: &AppState,
    session: &UiSession,
) -> Result<Vec<(Uuid, String)>, UiError> {
    let policies = state
        .authority
        .policies
        .list(&state.db, &Principal::User(session.caller))
        .await?;
    Ok(policies.into_iter().map(|p| (p.id, p.name)).collect())
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    cursor: Option<String>,
    /// Set after a deletion: how many certificates it revoked (a number, never a name, so
    /// a crafted link cannot make the page say anything else).
    deleted: Option<u64>,
}

#[derive(Template)]
#[template(path = "ui/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserView>,
    next: Option<String>,
    first_page: bool,
    deleted: Option<u64>,
}

pub async fn list(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<UsersQuery>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let chrome = chrome(&state, &session, "users").await?;
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c)?),
    };
    let page = state
        .users
        .list(&state.db, &session.caller, after, PAGE_SIZE)
        .await?;
    let me = session.caller.id;
    let policies: HashMap<Uuid, String> =
        policy_names(&state, &session).await?.into_iter().collect();
    Ok(render(&UsersPage {
        chrome,
        users: page
            .items
            .iter()
            .map(|u| UserView::new(u, me).named(&policies))
            .collect(),
        next: page.next.map(|(at, id)| encode_cursor(at, id)),
        first_page: after.is_none(),
        deleted: query.deleted,
    }))
}

/// The new-user form as typed; the passwords are never sent back.
#[derive(Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    email: String,
}

impl std::fmt::Debug for NewUserForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserForm")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Drop for NewUserForm {
    fn drop(&mut self) {
        self.password.zeroize();
        self.password_again.zeroize();
    }
}

#[derive(Debug, Default)]
struct NewUserErrors {
    username: Option<String>,
    password: Option<String>,
    password_again: Option<String>,
    role: Option<String>,
    email: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/user_new.html")]
struct NewUserPage {
    chrome: Chrome,
    username: String,
    role: String,
    email: String,
    errors: NewUserErrors,
}

pub async fn new_form(
    State(state): State<AppState>,
    session: UiSession,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let chrome = chrome(&state, &session, "users").await?;
    Ok(render(&NewUserPage {
        chrome,
        username: String::new(),
        role: "USER".into(),
        email: String::new(),
        errors: NewUserErrors::default(),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    session: UiSession,
    CsrfForm(mut form): CsrfForm<NewUserForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let mut errors = NewUserErrors::default();
    let role = match form.role.as_str() {
        "ADMIN" => Some(UserRole::Admin),
        "USER" => Some(UserRole::User),
        _ => {
            errors.role = Some("Choose a role.".into());
            None
        }
    };
    // The use case's own checks, run here first only so that every field's error shows at
    // once (the use case stops at the first); it runs them all again.
    let detail = |e: CoreError| match e {
        CoreError::Invalid { detail, .. } => view::sentence(&detail),
        other => view::sentence(&other.to_string()),
    };
    if let Err(e) = keyinfra_core::users::validate_username(&form.username) {
        errors.username = Some(detail(e));
    }
    let email = form.email.trim().to_owned();
    if !email.is_empty()
        && let Err(e) = keyinfra_core::users::validate_email(&email)
    {
        errors.email = Some(detail(e));
    }
    if let Err(e) = Password::new(form.password.clone(), &form.username) {
        errors.password = Some(view::sentence(&e.to_string()));
    } else if form.password != form.password_again {
        errors.password_again = Some("The two passwords differ. Type the same one twice.".into());
    }
    let checked = errors.username.is_none()
        && errors.email.is_none()
        && errors.password.is_none()
        && errors.password_again.is_none();
    let result = match role {
        Some(role) if checked => Some(
            state
                .users
                .create(
                    &state.db,
                    Some(&session.caller),
                    &form.username,
                    std::mem::take(&mut form.password),
                    role,
                    (!email.is_empty()).then_some(email.as_str()),
                    &mut OsRandom,
                )
                .await,
        ),
        _ => None,
    };
    match result {
        Some(Ok(user)) => {
            return Ok(Redirect::to(&format!("/ui/users/{}", user.id)).into_response());
        }
        Some(Err(CoreError::Invalid { code, detail } | CoreError::Conflict { code, detail })) => {
            let slot = match code {
                ErrorCode::InvalidUsername | ErrorCode::UsernameTaken => &mut errors.username,
                ErrorCode::WeakPassword => &mut errors.password,
                ErrorCode::InvalidEmail => &mut errors.email,
                _ => &mut errors.username,
            };
            *slot = Some(view::sentence(&detail));
        }
        Some(Err(other)) => return Err(other.into()),
        None => {}
    }
    let chrome = chrome(&state, &session, "users").await?;
    let page = NewUserPage {
        chrome,
        username: form.username.clone(),
        role: form.role.clone(),
        email,
        errors,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}

#[derive(Template)]
#[template(path = "ui/user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserView,
    /// Every policy, for the select that moves the user.
    policies: Vec<(Uuid, String)>,
    certificates: Vec<CertRow>,
    more_certificates: bool,
    error: Option<String>,
}

/// Certificates shown on a user's page (the list page has them all).
const USER_CERTIFICATES: i64 = 20;

async fn user_page(
    state: &AppState,
    session: &UiSession,
    id: Uuid,
    error: Option<String>,
) -> Result<UserPage, UiError> {
    let chrome = chrome(state, session, "users").await?;
    let user = state.users.get(&state.db, &session.caller, id).await?;
    let now = state.clock.now();
    let filter = CertificateFilter {
        owner_id: Some(id),
        status: None,
        expires_before: None,
        as_of: Some(now),
        search: None,
        after: None,
    };
    let certificates = state
        .authority
        .queries
        .list(
            &state.db,
            &Principal::User(session.caller),
            filter,
            USER_CERTIFICATES + 1,
        )
        .await?;
    let policies = policy_names(state, session).await?;
    let names: HashMap<Uuid, String> = policies.iter().cloned().collect();
    Ok(UserPage {
        chrome,
        user: UserView::new(&user, session.caller.id).named(&names),
        policies,
        more_certificates: certificates.len() as i64 > USER_CERTIFICATES,
        certificates: certificates
            .iter()
            .take(USER_CERTIFICATES as usize)
            .map(|c| CertRow::new(c, now))
            .collect(),
        error,
    })
}

pub async fn show(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    Ok(render(&user_page(&state, &session, id, None).await?))
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    policy_id: String,
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    /// "true" disables, "false" enables.
    #[serde(default)]
    disabled: String,
}

/// A change the use case refused: the user's page with the reason at the top.
async fn refused(
    state: &AppState,
    session: &UiSession,
    id: Uuid,
    error: CoreError,
) -> Result<Response, UiError> {
    match error {
        CoreError::Invalid { detail, .. } | CoreError::Conflict { detail, .. } => {
            let page = user_page(state, session, id, Some(view::sentence(&detail))).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        other => Err(other.into()),
    }
}

pub async fn set_role(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let role = match form.role.as_str() {
        "ADMIN" => UserRole::Admin,
        "USER" => UserRole::User,
        _ => {
            return refused(
                &state,
                &session,
                id,
                CoreError::invalid(ErrorCode::InvalidRole, "Choose Administrator or User."),
            )
            .await;
        }
    };
    match state
        .users
        .update(&state.db, &session.caller, id, Some(role), None, None)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/ui/users/{id}")).into_response()),
        Err(e) => refused(&state, &session, id, e).await,
    }
}

pub async fn set_status(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<StatusForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let disabled = match form.disabled.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return refused(
                &state,
                &session,
                id,
                CoreError::invalid(
                    ErrorCode::InvalidStatus,
                    "Choose to disable or enable the account.",
                ),
            )
            .await;
        }
    };
    match state
        .users
        .update(&state.db, &session.caller, id, None, Some(disabled), None)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/ui/users/{id}")).into_response()),
        Err(e) => refused(&state, &session, id, e).await,
    }
}

/// Moves the user to another issuance policy (the use case audits the change).
pub async fn set_policy(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<PolicyForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let Ok(policy_id) = form.policy_id.trim().parse::<Uuid>() else {
        return refused(
            &state,
            &session,
            id,
            CoreError::invalid(ErrorCode::UnknownPolicy, "Choose a policy from the list."),
        )
        .await;
    };
    match state
        .authority
        .policies
        .assign(&state.db, &Principal::User(session.caller), id, policy_id)
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/ui/users/{id}")).into_response()),
        Err(e) => refused(&state, &session, id, e).await,
    }
}

#[derive(Template)]
#[template(path = "ui/user_delete.html")]
struct DeletePage {
    chrome: Chrome,
    user: UserView,
    /// The certificates that deletion revokes (ACTIVE and SUPERSEDED), up to a page.
    revoking: Vec<CertRow>,
    /// More than `revoking` shows.
    more: bool,
    error: Option<String>,
}

/// Certificates listed on the confirmation page.
const DELETE_LISTED: i64 = 50;

async fn delete_page(
    state: &AppState,
    session: &UiSession,
    id: Uuid,
    error: Option<String>,
) -> Result<DeletePage, UiError> {
    let chrome = chrome(state, session, "users").await?;
    let user = state.users.get(&state.db, &session.caller, id).await?;
    let now = state.clock.now();
    let requester = Principal::User(session.caller);
    // The same two statuses the delete use case revokes.
    let mut revoking = Vec::new();
    for status in [CertificateStatus::Active, CertificateStatus::Superseded] {
        let filter = CertificateFilter {
            owner_id: Some(id),
            status: Some(status),
            expires_before: None,
            as_of: Some(now),
            search: None,
            after: None,
        };
        revoking.extend(
            state
                .authority
                .queries
                .list(&state.db, &requester, filter, DELETE_LISTED + 1)
                .await?,
        );
    }
    let more = revoking.len() as i64 > DELETE_LISTED;
    Ok(DeletePage {
        chrome,
        user: UserView::new(&user, session.caller.id),
        revoking: revoking
            .iter()
            .take(DELETE_LISTED as usize)
            .map(|c| CertRow::new(c, now))
            .collect(),
        more,
        error,
    })
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    Ok(render(&delete_page(&state, &session, id, None).await?))
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// The confirmation checkbox: present when ticked.
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn delete(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    if form.confirm.is_none() {
        let message = "Tick the box to confirm that the user's certificates are revoked.";
        return delete_refused(&state, &session, id, message.into()).await;
    }
    match state.users.delete(&state.db, &session.caller, id).await {
        Ok(revoked) => {
            if revoked > 0 {
                crate::api::users::crls_changed(&state).await?;
            }
            Ok(Redirect::to(&format!("/ui/users?deleted={revoked}")).into_response())
        }
        Err(CoreError::Invalid { detail, .. } | CoreError::Conflict { detail, .. }) => {
            delete_refused(&state, &session, id, view::sentence(&detail)).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn delete_refused(
    state: &AppState,
    session: &UiSession,
    id: Uuid,
    message: String,
) -> Result<Response, UiError> {
    let page = delete_page(state, session, id, Some(message)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}
