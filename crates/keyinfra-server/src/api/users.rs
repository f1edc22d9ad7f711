use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_db::users::UserRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::timestamp;
use crate::extract::{ApiJson, Authenticated, ClientAddress};
use crate::pagination::{Page, PageQuery, encode_cursor};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(me))
        .routes(routes!(change_my_password))
        .routes(routes!(get_user, update_user, delete_user))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Admin,
    User,
}

impl From<Role> for UserRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => UserRole::Admin,
            Role::User => UserRole::User,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    /// "ADMIN" or "USER".
    pub role: String,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub password_changed_at: String,
    /// Where the user's expiry alerts go; null when none is set.
    pub email: Option<String>,
    /// The issuance policy the user holds (the `default` policy unless moved).
    pub policy_id: Uuid,
}

impl From<UserRecord> for User {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            username: u.username,
            role: u.role.as_str().to_owned(),
            disabled: u.disabled,
            created_at: timestamp(u.created_at),
            updated_at: timestamp(u.updated_at),
            password_changed_at: timestamp(u.password_changed_at),
            email: u.email,
            policy_id: u
                .policy_id
                .unwrap_or(keyinfra_core::policy::DEFAULT_POLICY_ID),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    /// Optional: where the user's expiry alerts go.
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new address, or null to remove it; absent leaves it. Users may change their own.
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// ADMIN: move the user to this issuance policy.
    pub policy_id: Option<Uuid>,
}

/// Tells an absent field (None) from an explicit null (Some(None)).
fn present_or_null<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// Create a user (ADMIN).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 403), (status = 409, description = "username taken"), (status = 422)))]
async fn create_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), Problem> {
    let user = state
        .users
        .create(
            &state.db,
            Some(&caller),
            &body.username,
            body.password,
            body.role.into(),
            body.email.as_deref(),
            &mut OsRandom,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// List users in creation order (ADMIN).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = Page<User>), (status = 403)))]
async fn list_users(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<User>>, Problem> {
    let limit = page.limit()?;
    let after = page.keyset()?;
    let result = state.users.list(&state.db, &caller, after, limit).await?;
    Ok(Json(Page {
        items: result.items.into_iter().map(User::from).collect(),
        next_cursor: result.next.map(|(at, id)| encode_cursor(at, id)),
    }))
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", responses((status = 200, body = User), (status = 401)))]
async fn me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<User>, Problem> {
    Ok(Json(
        state.users.get(&state.db, &caller, caller.id).await?.into(),
    ))
}

/// Change the caller's own password; tokens issued before stop working.
#[utoipa::path(put, path = "/api/v1/users/me/password", tag = "users", request_body = ChangePassword,
    responses((status = 204), (status = 422),
              (status = 429, description = "too many wrong current passwords; see Retry-After"),
              (status = 503, description = "password hashing is saturated; see Retry-After")))]
async fn change_my_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, Problem> {
    state
        .users
        .change_password(
            &state.db,
            &caller,
            body.current_password,
            body.new_password,
            address,
            &mut OsRandom,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user (ADMIN, or the user themselves).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 404)))]
async fn get_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<Uuid>,
) -> Result<Json<User>, Problem> {
    caller.require_admin().map_err(Problem::from)?;
    Ok(Json(state.users.get(&state.db, &caller, id).await?.into()))
}

/// Change a user's role, disabled flag or issuance policy (ADMIN), or e-mail address
/// (ADMIN, or the user).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 403), (status = 404), (status = 422)))]
async fn update_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<User>, Problem> {
    let by = Principal::User(caller);
    // The policy named must exist before anything changes: the role, status and e-mail
    // change and the move are two transactions.
    if let Some(policy_id) = body.policy_id {
        state
            .authority
            .policies
            .named(&state.db, &by, policy_id)
            .await?;
    }
    let user = state
        .users
        .update(
            &state.db,
            &caller,
            id,
            body.role.map(Into::into),
            body.disabled,
            body.email,
        )
        .await?;
    let user = match body.policy_id {
        Some(policy_id) => {
            state
                .authority
                .policies
                .assign(&state.db, &by, id, policy_id)
                .await?;
            state.users.get(&state.db, &caller, id).await?
        }
        None => user,
    };
    Ok(Json(user.into()))
}

/// Delete a user (ADMIN): their certificates are revoked first (cessationOfOperation).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 422)))]
async fn delete_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Problem> {
    let revoked = state.users.delete(&state.db, &caller, id).await?;
    if revoked > 0 {
        crls_changed(&state).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the CRL publisher to re-issue every CA's CRL after a user's certificates were
/// revoked with the user (the user use case cannot reach the publisher), so that they are
/// listed within seconds, as after any other revocation, rather than at the next refresh.
pub(crate) async fn crls_changed(state: &AppState) -> Result<(), Problem> {
    for ca in state.authority.cas.list_cas(&state.db).await? {
        if ca.private_key_id.is_some() {
            state.authority.crls.crl_changed(ca.id);
        }
    }
    Ok(())
}
