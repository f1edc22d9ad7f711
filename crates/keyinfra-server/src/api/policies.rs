//! Issuance policies (ADMIN), and the caller's own policy (any user). The JSON is the
//! core's [`Policy`] as is (issue 17's contract); a create or update takes any subset of
//! its fields ([`PolicyChanges`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyinfra_core::Principal;
use keyinfra_core::policy::{Policy, PolicyChanges};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::{ApiJson, Authenticated, IdPath};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(my_policy))
}

#[derive(Debug, Serialize)]
struct PolicyList {
    items: Vec<Policy>,
}

/// Every issuance policy, by name (ADMIN).
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    responses((status = 200, body = Object, description = "{\"items\": [policy, ...]}"), (status = 403)))]
async fn list_policies(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PolicyList>, Problem> {
    let items = state
        .authority
        .policies
        .list(&state.db, &Principal::User(caller))
        .await?;
    Ok(Json(PolicyList { items }))
}

/// Create a policy (ADMIN). Fields left out take the `default` policy's values; `name`
/// is required.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = Object,
    responses((status = 201, body = Object), (status = 403), (status = 409, description = "name taken"),
        (status = 422, description = "invalid_policy")))]
async fn create_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<PolicyChanges>,
) -> Result<(StatusCode, Json<Policy>), Problem> {
    let policy = state
        .authority
        .policies
        .create(&state.db, &Principal::User(caller), body)
        .await?;
    Ok((StatusCode::CREATED, Json(policy)))
}

#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = Uuid, Path)),
    responses((status = 200, body = Object), (status = 403), (status = 404)))]
async fn get_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<Policy>, Problem> {
    let policy = state
        .authority
        .policies
        .get(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(Json(policy))
}

/// Change a policy (ADMIN): fields left out keep their values. It applies to the next
/// issue, renewal and reassignment of every holder, on every replica within seconds.
#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = Uuid, Path)),
    request_body = Object,
    responses((status = 200, body = Object), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn update_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<PolicyChanges>,
) -> Result<Json<Policy>, Problem> {
    let policy = state
        .authority
        .policies
        .update(&state.db, &Principal::User(caller), id, body)
        .await?;
    Ok(Json(policy))
}

/// Delete a policy no user holds (ADMIN); 409 `policy_in_use` otherwise.
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409, description = "policy_in_use")))]
async fn delete_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<StatusCode, Problem> {
    state
        .authority
        .policies
        .delete(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own policy: what it may ask for.
#[utoipa::path(get, path = "/api/v1/users/me/policy", tag = "users",
    responses((status = 200, body = Object), (status = 401)))]
async fn my_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Policy>, Problem> {
    let policy = state
        .authority
        .policies
        .of_user(&state.db, &Principal::User(caller), caller.id)
        .await?;
    Ok(Json(policy))
}
