//! `/api/v1/acme/eab`: ACME external account binding keys, and `/api/v1/acme/accounts`:
//! the ACME accounts they bound (issue 21). The rules live in the core's `acme`; this
//! module only translates JSON.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use keyinfra_core::Principal;
use keyinfra_db::acme::{AccountRecord, EabKeyRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::enrollment::{parse_cursor, parse_limit, parse_owner};
use super::{NoStore, timestamp};
use crate::extract::{Authenticated, IdPath, OptionalApiJson};
use crate::pagination::{Page, next_cursor};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_eab_key, list_eab_keys))
        .routes(routes!(list_accounts))
        .routes(routes!(deactivate_account))
}

/// Every field is optional, and so is the body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEabKeyBody {
    /// ADMIN only (403 for a USER naming someone else): whose ACME account the key binds.
    /// Default: the caller.
    pub owner_id: Option<Uuid>,
    /// How long the key may bind an account: 1 to 43200 (30 days). Default 1440 (a day).
    pub expires_in_minutes: Option<u32>,
}

/// A new binding key: `hmac_key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewEabKey {
    /// The key id: the ACME client's `--kid` / `--eab-kid`.
    pub kid: Uuid,
    /// The HMAC key, base64url without padding: the client's `--hmac` / `--eab-hmac-key`.
    pub hmac_key: String,
    pub owner_id: Uuid,
    pub expires_at: String,
}

/// A binding key as listed: never the HMAC key.
#[derive(Debug, Serialize, ToSchema)]
pub struct EabKey {
    pub kid: Uuid,
    pub owner_id: Uuid,
    pub created_by: Option<Uuid>,
    pub created_at: String,
    pub expires_at: String,
    /// When it bound an account, and which.
    pub used_at: Option<String>,
    pub account_id: Option<Uuid>,
}

impl From<EabKeyRecord> for EabKey {
    fn from(r: EabKeyRecord) -> Self {
        Self {
            kid: r.id,
            owner_id: r.owner_id,
            created_by: r.created_by,
            created_at: timestamp(r.created_at),
            expires_at: timestamp(r.expires_at),
            used_at: r.used_at.map(timestamp),
            account_id: r.account_id,
        }
    }
}

/// Create an ACME external account binding key: a key id and an HMAC key for one ACME
/// client's newAccount (RFC 8555 7.3.4). The account it creates belongs to the key's
/// owner and orders under the owner's issuance policy. The HMAC key is in this answer
/// only. An owner has at most 100 unused, unexpired keys (422 `too_many_eab_keys`).
#[utoipa::path(post, path = "/api/v1/acme/eab", tag = "acme",
    request_body(content = Option<CreateEabKeyBody>, description = "optional"),
    responses((status = 201, body = NewEabKey),
        (status = 403, description = "a USER named another owner_id"),
        (status = 422, description = "invalid_expiry, unknown_owner, owner_disabled, too_many_eab_keys, invalid_body")))]
async fn create_eab_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    OptionalApiJson(body): OptionalApiJson<CreateEabKeyBody>,
) -> Result<(StatusCode, NoStore, Json<NewEabKey>), Problem> {
    let created = state
        .acme
        .eab
        .create(
            &state.db,
            &Principal::User(caller),
            body.owner_id,
            body.expires_in_minutes,
        )
        .await?;
    // The HMAC key is in this answer only: no cache or browser keeps it.
    Ok((
        StatusCode::CREATED,
        NoStore,
        Json(NewEabKey {
            kid: created.kid,
            hmac_key: created.hmac_key.as_str().to_owned(),
            owner_id: created.owner_id,
            expires_at: timestamp(created.expires_at),
        }),
    ))
}

/// List query; every parameter is optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EabKeyQuery {
    /// ADMIN only: one owner's keys (a USER always sees their own).
    pub owner_id: Option<String>,
    /// 1 to 500; default 50.
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List ACME binding keys, newest first: a USER's own, or (ADMIN) everyone's. Never the
/// HMAC keys.
#[utoipa::path(get, path = "/api/v1/acme/eab", tag = "acme", params(EabKeyQuery),
    responses((status = 200, body = Page<EabKey>),
        (status = 400, description = "invalid_cursor"),
        (status = 422, description = "invalid_limit, invalid_owner_id")))]
async fn list_eab_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<EabKeyQuery>,
) -> Result<Json<Page<EabKey>>, Problem> {
    let limit = parse_limit(query.limit.as_deref())?;
    let owner_id = parse_owner(query.owner_id.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let items = state
        .acme
        .eab
        .list(&state.db, &Principal::User(caller), owner_id, after, limit)
        .await?;
    let next_cursor = next_cursor(&items, limit, |k| (k.created_at, k.id));
    Ok(Json(Page {
        items: items.into_iter().map(EabKey::from).collect(),
        next_cursor,
    }))
}

/// An ACME account as the API shows it (its owner's, or any for an ADMIN).
#[derive(Debug, Serialize, ToSchema)]
pub struct AcmeAccount {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// valid, deactivated or revoked.
    pub status: String,
    /// `mailto:` URLs the client registered.
    pub contact: Vec<String>,
    /// The RFC 7638 thumbprint of the account key, base64url.
    pub key_thumbprint: String,
    /// The binding key that made it the owner's (none when binding was not required).
    pub eab_kid: Option<Uuid>,
    pub created_at: String,
    pub deactivated_at: Option<String>,
}

impl From<AccountRecord> for AcmeAccount {
    fn from(r: AccountRecord) -> Self {
        use base64::Engine;
        Self {
            id: r.id,
            owner_id: r.owner_id,
            status: r.status.as_str().to_owned(),
            contact: r.contact,
            key_thumbprint: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&r.jwk_thumbprint),
            eab_kid: r.eab_key_id,
            created_at: timestamp(r.created_at),
            deactivated_at: r.deactivated_at.map(timestamp),
        }
    }
}

/// List ACME accounts, newest first: a USER's own, or (ADMIN) everyone's.
#[utoipa::path(get, path = "/api/v1/acme/accounts", tag = "acme", params(EabKeyQuery),
    responses((status = 200, body = Page<AcmeAccount>),
        (status = 400, description = "invalid_cursor"),
        (status = 422, description = "invalid_limit, invalid_owner_id")))]
async fn list_accounts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<EabKeyQuery>,
) -> Result<Json<Page<AcmeAccount>>, Problem> {
    let limit = parse_limit(query.limit.as_deref())?;
    let owner_id = parse_owner(query.owner_id.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let items = state
        .acme
        .list_accounts(&state.db, &Principal::User(caller), owner_id, after, limit)
        .await?;
    let next_cursor = next_cursor(&items, limit, |a| (a.created_at, a.id));
    Ok(Json(Page {
        items: items.into_iter().map(AcmeAccount::from).collect(),
        next_cursor,
    }))
}

/// Deactivate an ACME account (its owner, or an ADMIN): its key signs nothing afterwards,
/// and its client must register again with a new binding key. 404 for another user's;
/// deactivating twice changes nothing.
#[utoipa::path(post, path = "/api/v1/acme/accounts/{id}/deactivate", tag = "acme",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AcmeAccount), (status = 404)))]
async fn deactivate_account(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<AcmeAccount>, Problem> {
    let account = state
        .acme
        .deactivate_account(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(Json(account.into()))
}
