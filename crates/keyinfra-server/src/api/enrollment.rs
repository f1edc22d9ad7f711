//! `/api/v1/enrollment/challenges`: SCEP challenge passwords, and
//! `/api/v1/enrollment/requests`: enrollments waiting for an ADMIN's approval (issue 19).
//! The rules live in the core's `enrollment`; this module only translates JSON.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use keyinfra_core::enrollment::{
    ChallengeView, CreateChallenge, CreatedChallenge, EnrollmentRequestView, RequestState,
};
use keyinfra_core::{ErrorCode, OsRandom, Principal};
use keyinfra_db::enrollment_challenges::{ChallengeFilter, ChallengeState};
use keyinfra_db::enrollment_requests::RequestFilter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{NoStore, timestamp};
use crate::extract::{Authenticated, IdPath, OptionalApiJson};
use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, next_cursor};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_challenge, list_challenges))
        .routes(routes!(withdraw_challenge))
        .routes(routes!(list_requests))
        .routes(routes!(get_request))
        .routes(routes!(approve_request))
        .routes(routes!(reject_request))
}

/// Every field is optional, and so is the body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChallengeBody {
    /// ADMIN only (403 for a USER naming someone else): whose device enrolls. Default: the
    /// caller.
    pub owner_id: Option<Uuid>,
    /// device (default), server or client.
    pub profile: Option<String>,
    /// The certificate's validity in days (at most the profile's maximum). Default: the
    /// profile's default, within the owner's policy.
    pub validity_days: Option<u32>,
    /// How long the challenge may be used: 1 to 10080 (7 days). Default 60.
    pub expires_in_minutes: Option<u32>,
    /// RFC 4514: the subject the certificate gets, e.g. `CN=edge-router-1,O=Example`.
    pub subject: Option<String>,
    /// The subject alternative names the certificate gets, as `san` of an issue takes
    /// them: DNS names, IP addresses, `EMAIL:` and `URI:` names (1 to 100).
    pub names: Option<Vec<String>>,
    /// The enrollment waits for an ADMIN's approval (the device polls). Default false.
    pub approval: Option<bool>,
}

/// A challenge as listed: never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct Challenge {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub created_by: Option<Uuid>,
    pub profile: String,
    pub validity_days: Option<u32>,
    pub subject: Option<String>,
    /// Typed: `DNS:router.example.net`, `IP:192.0.2.1`.
    pub names: Option<Vec<String>>,
    pub approval: bool,
    /// active, used, expired or withdrawn.
    pub state: String,
    pub created_at: String,
    pub expires_at: String,
    pub used_at: Option<String>,
    pub withdrawn_at: Option<String>,
    /// The certificate the enrollment produced.
    pub certificate_id: Option<Uuid>,
}

impl From<ChallengeView> for Challenge {
    fn from(c: ChallengeView) -> Self {
        Self {
            id: c.id,
            owner_id: c.owner_id,
            created_by: c.created_by,
            profile: c.profile,
            validity_days: c.validity_days,
            subject: c.subject,
            names: c.names,
            approval: c.approval,
            state: c.state.as_str().to_owned(),
            created_at: timestamp(c.created_at),
            expires_at: timestamp(c.expires_at),
            used_at: c.used_at.map(timestamp),
            withdrawn_at: c.withdrawn_at.map(timestamp),
            certificate_id: c.certificate_id,
        }
    }
}

/// A new challenge: `challenge` is the secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewChallenge {
    /// 32 characters of `23456789abcdefghijkmnpqrstuvwxyz` (160 random bits): the
    /// device's SCEP challenge password. Only its SHA-256 is kept.
    pub challenge: String,
    #[serde(flatten)]
    pub details: Challenge,
}

impl From<CreatedChallenge> for NewChallenge {
    fn from(c: CreatedChallenge) -> Self {
        Self {
            challenge: c.challenge.expose().to_owned(),
            details: c.view.into(),
        }
    }
}

/// Create a one-time SCEP challenge password for a device. The body may be left out
/// (every default). The answer holds the secret; it is never shown again. An owner has at
/// most 100 unused, unexpired challenges (422 `too_many_challenges`).
#[utoipa::path(post, path = "/api/v1/enrollment/challenges", tag = "enrollment",
    request_body(content = Option<CreateChallengeBody>, description = "optional"),
    responses((status = 201, body = NewChallenge),
        (status = 403, description = "a USER named another owner_id"),
        (status = 422, description = "unknown_profile, invalid_validity, validity_too_long, invalid_expiry, invalid_subject, invalid_san, unknown_owner, owner_disabled, too_many_challenges, invalid_body")))]
async fn create_challenge(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    OptionalApiJson(body): OptionalApiJson<CreateChallengeBody>,
) -> Result<(StatusCode, NoStore, Json<NewChallenge>), Problem> {
    let created = state
        .authority
        .challenges
        .create(
            &state.db,
            &Principal::User(caller),
            CreateChallenge {
                owner_id: body.owner_id,
                profile: body.profile,
                validity_days: body.validity_days,
                expires_in_minutes: body.expires_in_minutes,
                subject: body.subject,
                names: body.names,
                approval: body.approval,
            },
            &mut OsRandom,
        )
        .await?;
    // The secret is in this answer only: no cache or browser keeps it.
    Ok((StatusCode::CREATED, NoStore, Json(created.into())))
}

/// List query; every parameter is optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ChallengeQuery {
    /// active, used, expired or withdrawn.
    pub state: Option<String>,
    /// ADMIN: one user's challenges.
    pub owner_id: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub(super) fn invalid_query(code: ErrorCode, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

pub(super) fn parse_limit(text: Option<&str>) -> Result<i64, Problem> {
    match text {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid_query(
                    ErrorCode::InvalidLimit,
                    format!("limit must be between 1 and {MAX_LIMIT}"),
                )
            }),
    }
}

pub(super) fn parse_owner(text: Option<&str>) -> Result<Option<Uuid>, Problem> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<Uuid>()
            .map(Some)
            .map_err(|_| invalid_query(ErrorCode::InvalidOwnerId, "owner_id must be a UUID")),
    }
}

pub(super) fn parse_cursor(
    text: Option<&str>,
) -> Result<Option<(time::OffsetDateTime, Uuid)>, Problem> {
    match text {
        None | Some("") => Ok(None),
        Some(c) => Ok(Some(decode_cursor(c)?)),
    }
}

/// The caller's challenges (every user's for an ADMIN), newest first, without secrets.
#[utoipa::path(get, path = "/api/v1/enrollment/challenges", tag = "enrollment",
    params(ChallengeQuery),
    responses((status = 200, body = Page<Challenge>), (status = 422)))]
async fn list_challenges(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ChallengeQuery>,
) -> Result<Json<Page<Challenge>>, Problem> {
    let limit = parse_limit(query.limit.as_deref())?;
    let state_filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(label) => Some(ChallengeState::from_label(label).ok_or_else(|| {
            invalid_query(
                ErrorCode::InvalidStatus,
                "state must be active, used, expired or withdrawn",
            )
        })?),
    };
    let owner_id = parse_owner(query.owner_id.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let items = state
        .authority
        .challenges
        .list(
            &state.db,
            &Principal::User(caller),
            ChallengeFilter {
                owner_id,
                state: state_filter,
                as_of: None,
                after,
            },
            limit,
        )
        .await?;
    let next_cursor = next_cursor(&items, limit, |c| (c.created_at, c.id));
    Ok(Json(Page {
        items: items.into_iter().map(Challenge::from).collect(),
        next_cursor,
    }))
}

/// Withdraw an unused challenge: no device can use it afterwards (404 for another user's,
/// 409 `challenge_used` once a device used it; withdrawing twice is harmless).
#[utoipa::path(delete, path = "/api/v1/enrollment/challenges/{id}", tag = "enrollment",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "challenge_used")))]
async fn withdraw_challenge(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<StatusCode, Problem> {
    state
        .authority
        .challenges
        .withdraw(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An enrollment waiting for (or decided by) an ADMIN.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentRequest {
    pub id: Uuid,
    /// The challenge the device presented.
    pub challenge_id: Uuid,
    /// Whose device: the challenge's owner, who gets the certificate.
    pub owner_id: Uuid,
    /// scep.
    pub channel: String,
    /// The device's SCEP transaction id.
    pub transaction_id: String,
    /// The subject in the device's CSR.
    pub requested_subject: Option<String>,
    /// The challenge's terms, which an approval issues under.
    pub profile: String,
    pub validity_days: Option<u32>,
    pub subject: Option<String>,
    pub names: Option<Vec<String>>,
    /// pending, approved, rejected or expired (pending for longer than 7 days).
    pub state: String,
    pub created_at: String,
    /// When a pending request expires.
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<Uuid>,
    /// A rejection's reason.
    pub reason: Option<String>,
    /// The certificate an approval issued; the device collects it by polling.
    pub certificate_id: Option<Uuid>,
}

impl From<EnrollmentRequestView> for EnrollmentRequest {
    fn from(r: EnrollmentRequestView) -> Self {
        Self {
            id: r.id,
            challenge_id: r.challenge_id,
            owner_id: r.owner_id,
            channel: r.channel,
            transaction_id: r.transaction_id,
            requested_subject: r.requested_subject,
            profile: r.profile,
            validity_days: r.validity_days,
            subject: r.subject,
            names: r.names,
            state: r.state.as_str().to_owned(),
            created_at: timestamp(r.created_at),
            expires_at: timestamp(r.expires_at),
            decided_at: r.decided_at.map(timestamp),
            decided_by: r.decided_by,
            reason: r.reason,
            certificate_id: r.certificate_id,
        }
    }
}

/// List query; every parameter is optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RequestQuery {
    /// pending, approved, rejected or expired.
    pub state: Option<String>,
    /// ADMIN: one user's requests.
    pub owner_id: Option<String>,
    /// 1 to 500 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Enrollments held for approval: the caller's devices' (every user's for an ADMIN),
/// newest first. `?state=pending` is what waits for a decision.
#[utoipa::path(get, path = "/api/v1/enrollment/requests", tag = "enrollment",
    params(RequestQuery),
    responses((status = 200, body = Page<EnrollmentRequest>), (status = 422)))]
async fn list_requests(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<RequestQuery>,
) -> Result<Json<Page<EnrollmentRequest>>, Problem> {
    let limit = parse_limit(query.limit.as_deref())?;
    let state_filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(label) => Some(RequestState::from_label(label).ok_or_else(|| {
            invalid_query(
                ErrorCode::InvalidStatus,
                "state must be pending, approved, rejected or expired",
            )
        })?),
    };
    let owner_id = parse_owner(query.owner_id.as_deref())?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let items = state
        .authority
        .enrollment_requests
        .list(
            &state.db,
            &Principal::User(caller),
            RequestFilter {
                owner_id,
                after,
                ..RequestFilter::default()
            },
            state_filter,
            limit,
        )
        .await?;
    let next_cursor = next_cursor(&items, limit, |c| (c.created_at, c.id));
    Ok(Json(Page {
        items: items.into_iter().map(EnrollmentRequest::from).collect(),
        next_cursor,
    }))
}

/// One held enrollment (404 for another user's device, unless ADMIN).
#[utoipa::path(get, path = "/api/v1/enrollment/requests/{id}", tag = "enrollment",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EnrollmentRequest), (status = 404)))]
async fn get_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<EnrollmentRequest>, Problem> {
    let request = state
        .authority
        .enrollment_requests
        .get(&state.db, &Principal::User(caller), id)
        .await?;
    Ok(Json(request.into()))
}

/// ADMIN: approve a held enrollment. The certificate is issued now, for the challenge's
/// owner under the owner's policy; the device collects it with its next poll. A policy
/// refusal answers its 4xx and leaves the request pending.
#[utoipa::path(post, path = "/api/v1/enrollment/requests/{id}/approve", tag = "enrollment",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EnrollmentRequest),
        (status = 403, description = "not an ADMIN"),
        (status = 404),
        (status = 409, description = "enrollment_request_decided, enrollment_request_expired"),
        (status = 422, description = "the owner's policy refuses the request (e.g. name_not_allowed, quota_exceeded)")))]
async fn approve_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<EnrollmentRequest>, Problem> {
    let request = state
        .authority
        .enrollment_requests
        .approve(&state.db, &Principal::User(caller), id, &mut OsRandom)
        .await?;
    Ok(Json(request.into()))
}

/// The optional body of a rejection.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (at most 1024 characters); kept with the request and audited.
    pub reason: Option<String>,
}

/// ADMIN: reject a held enrollment; the device's next poll is refused.
#[utoipa::path(post, path = "/api/v1/enrollment/requests/{id}/reject", tag = "enrollment",
    params(("id" = Uuid, Path)),
    request_body(content = Option<RejectBody>, description = "optional"),
    responses((status = 200, body = EnrollmentRequest),
        (status = 403, description = "not an ADMIN"),
        (status = 404),
        (status = 409, description = "enrollment_request_decided, enrollment_request_expired"),
        (status = 422, description = "invalid_body")))]
async fn reject_request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    IdPath(id): IdPath,
    OptionalApiJson(body): OptionalApiJson<RejectBody>,
) -> Result<Json<EnrollmentRequest>, Problem> {
    let request = state
        .authority
        .enrollment_requests
        .reject(&state.db, &Principal::User(caller), id, body.reason)
        .await?;
    Ok(Json(request.into()))
}
