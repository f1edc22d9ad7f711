use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::NoStore;
use crate::extract::{ApiJson, Authenticated, ClientAddress};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Exchange a username and password for an access token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "wrong username or password"),
              (status = 429, description = "too many failed attempts; see Retry-After")))]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<(NoStore, Json<LoginResponse>), Problem> {
    let token = state
        .users
        .login(&state.db, &body.username, body.password, address)
        .await?;
    // RFC 6749 5.1: an answer holding a token is never stored by a cache or the browser.
    Ok((
        NoStore,
        Json(LoginResponse {
            access_token: token.token,
            token_type: "Bearer",
            expires_in: token.expires_in.whole_seconds(),
        }),
    ))
}

/// End every session of the caller: this token, and every other token or web UI session
/// issued to the same user before, stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "every session of the caller has ended"),
              (status = 401, description = "the token is missing or no longer valid")))]
async fn logout(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<axum::http::StatusCode, Problem> {
    state.users.logout(&state.db, &caller).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
