//! Enrollments waiting for an ADMIN (issue 19): a device presented a challenge created with
//! "approval required", and its request is held until an ADMIN approves it (the certificate
//! is issued then, for the challenge's owner under the owner's policy) or rejects it. The
//! page lists the pending ones for ADMINs only; `POST /ui/enrollment/requests/{id}/approve`
//! and `.../reject` answer anyone else with the UI's 404, and the use case
//! (`authority.enrollment_requests`) checks the role again. A decision that does not go
//! through (already decided, expired, refused by the owner's policy) is shown on the page.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::enrollment::EnrollmentRequestView;
use keyinfra_core::{OsRandom, Principal};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::super::session::{CsrfForm, UiError, UiId, UiSession, admin_only, render};
use super::super::view;
use super::list_page;
use crate::AppState;

/// One pending request as a row of the ADMIN's table.
#[derive(Debug)]
pub(super) struct PendingRow {
    pub id: Uuid,
    pub owner: String,
    pub channel: String,
    pub transaction_id: String,
    /// The subject in the device's CSR.
    pub requested_subject: String,
    /// The challenge's terms, which an approval issues under.
    pub profile: String,
    pub validity: String,
    pub subject: String,
    pub names: Vec<String>,
    pub challenge: String,
    pub created: String,
    /// "in 7 days": until it can no longer be approved.
    pub remaining: String,
}

impl PendingRow {
    pub(super) fn new(
        r: &EnrollmentRequestView,
        names: &HashMap<Uuid, String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: r.id,
            owner: view::owner_name(Some(r.owner_id), names),
            channel: r.channel.to_uppercase(),
            transaction_id: r.transaction_id.clone(),
            requested_subject: r.requested_subject.clone().unwrap_or_default(),
            profile: r.profile.clone(),
            validity: r
                .validity_days
                .map_or_else(|| "profile default".to_owned(), |d| format!("{d} days")),
            subject: r.subject.clone().unwrap_or_default(),
            names: r
                .names
                .iter()
                .flatten()
                .map(|n| view::san_text(n))
                .collect(),
            challenge: view::short_id(r.challenge_id),
            created: view::date_time(r.created_at),
            remaining: view::remaining(r.expires_at, now),
        }
    }
}

/// The approve button's form: nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct ApproveForm {}

/// The reject form: an optional reason, kept with the request and audited.
#[derive(Debug, Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
}

pub async fn approve(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(ApproveForm {}): CsrfForm<ApproveForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let result = state
        .authority
        .enrollment_requests
        .approve(
            &state.db,
            &Principal::User(session.caller),
            id,
            &mut OsRandom,
        )
        .await;
    decided(&state, &session, result.map(|_| "approved")).await
}

pub async fn reject(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<RejectForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let reason = form.reason.trim();
    let result = state
        .authority
        .enrollment_requests
        .reject(
            &state.db,
            &Principal::User(session.caller),
            id,
            (!reason.is_empty()).then(|| reason.to_owned()),
        )
        .await;
    decided(&state, &session, result.map(|_| "rejected")).await
}

/// After a decision: the page with its notice, or with why it did not go through (409
/// decided or expired, a 4xx of the owner's policy or the write rate) above the pending
/// requests. Anything else (404, a lost session, an internal error) is an error page.
async fn decided(
    state: &AppState,
    session: &UiSession,
    result: Result<&'static str, keyinfra_core::CoreError>,
) -> Result<Response, UiError> {
    let problem = match result {
        Ok(done) => return Ok(Redirect::to(&format!("/ui/enrollment?done={done}")).into_response()),
        Err(error) => crate::Problem::from(error),
    };
    if !matches!(problem.status, 409 | 422 | 429) {
        return Err(UiError(problem));
    }
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::CONFLICT);
    let mut page = list_page(state, session).await?;
    page.requests_error = Some(view::sentence(&problem.detail));
    Ok((status, render(&page)).into_response())
}
