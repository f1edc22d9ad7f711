//! SCEP and EST enrollment (issues 19, 20): `GET/POST /ui/enrollment` and
//! `POST /ui/enrollment/{id}/withdraw`. A user creates a one-time challenge password for a
//! device (an ADMIN for anyone), sees its secret on the answer to that POST and nowhere else
//! (the list never has it, and the page is `no-store`), lists their challenges (an ADMIN
//! everyone's) and withdraws open ones. The rules are the use case's
//! (`authority.challenges`); this page only maps its error codes to the fields they
//! concern, and nothing is created on bad input. An ADMIN also sees the enrollments that
//! wait for approval, and decides them ([`requests`]).

mod requests;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::enrollment::challenges::{DEFAULT_EXPIRES_IN_MINUTES, DEFAULT_PROFILE};
use keyinfra_core::enrollment::{ChallengeView, CreateChallenge, RequestState};
use keyinfra_core::{CoreError, ErrorCode, OsRandom, Principal};
use keyinfra_db::enrollment_challenges::{ChallengeFilter, ChallengeState};
use keyinfra_db::enrollment_requests::RequestFilter;
use serde::Deserialize;
use uuid::Uuid;

pub use self::requests::{approve, reject};
use super::pages::OwnerChoice;
use super::session::{CsrfForm, UiError, UiId, UiSession, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;
use crate::pagination::{decode_cursor, next_cursor};

/// Challenges per page of the list.
const PAGE_SIZE: i64 = 50;
/// Pending requests an ADMIN's page shows (the oldest beyond it wait for the next ones).
const PENDING_SHOWN: i64 = 100;

/// What the create form holds, sent back as typed when it is refused.
#[derive(Debug, Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    profile: String,
    #[serde(default)]
    validity_days: String,
    #[serde(default)]
    expires_in_minutes: String,
    #[serde(default)]
    subject: String,
    /// One name per line.
    #[serde(default)]
    names: String,
    /// The checkbox: present ("on") when ticked.
    #[serde(default)]
    approval: String,
    /// ADMIN only: whose device enrolls (empty: the caller).
    #[serde(default)]
    owner_id: String,
}

impl ChallengeForm {
    fn new() -> Self {
        Self {
            profile: DEFAULT_PROFILE.to_owned(),
            validity_days: String::new(),
            expires_in_minutes: DEFAULT_EXPIRES_IN_MINUTES.to_string(),
            subject: String::new(),
            names: String::new(),
            approval: String::new(),
            owner_id: String::new(),
        }
    }

    fn approval(&self) -> bool {
        !self.approval.is_empty()
    }
}

/// A field's error message, if any.
#[derive(Debug, Default)]
struct FieldErrors {
    profile: Option<String>,
    validity: Option<String>,
    expires: Option<String>,
    subject: Option<String>,
    names: Option<String>,
    owner: Option<String>,
    general: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.profile.is_some()
            || self.validity.is_some()
            || self.expires.is_some()
            || self.subject.is_some()
            || self.names.is_some()
            || self.owner.is_some()
            || self.general.is_some()
    }
}

/// A profile as the form offers it, with its limit from the server's settings.
#[derive(Debug)]
struct ProfileChoice {
    name: String,
    label: String,
}

/// One challenge as a row of the table: never its secret (the use case has none to give).
#[derive(Debug)]
struct ChallengeRow {
    id: Uuid,
    short_id: String,
    owner: String,
    profile: String,
    validity: String,
    subject: String,
    names: Vec<String>,
    approval: bool,
    /// "open", "used", "expired", "withdrawn": the badge's class and text.
    state: &'static str,
    open: bool,
    created: String,
    expires: String,
    /// "in 59 minutes" while open.
    remaining: String,
    certificate_id: Option<Uuid>,
}

/// How the page names a challenge's state: "open" is what the API calls `active` (a device
/// may still use it).
fn state_label(state: ChallengeState) -> &'static str {
    match state {
        ChallengeState::Active => "open",
        ChallengeState::Used => "used",
        ChallengeState::Expired => "expired",
        ChallengeState::Withdrawn => "withdrawn",
    }
}

impl ChallengeRow {
    fn new(c: &ChallengeView, names: &HashMap<Uuid, String>, now: time::OffsetDateTime) -> Self {
        Self {
            id: c.id,
            short_id: view::short_id(c.id),
            owner: view::owner_name(Some(c.owner_id), names),
            profile: c.profile.clone(),
            validity: c
                .validity_days
                .map_or_else(|| "profile default".to_owned(), |d| format!("{d} days")),
            subject: c.subject.clone().unwrap_or_default(),
            names: c
                .names
                .iter()
                .flatten()
                .map(|n| view::san_text(n))
                .collect(),
            approval: c.approval,
            state: state_label(c.state),
            open: c.state == ChallengeState::Active,
            created: view::date_time(c.created_at),
            expires: view::date_time(c.expires_at),
            remaining: view::remaining(c.expires_at, now),
            certificate_id: c.certificate_id,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EnrollmentQuery {
    cursor: Option<String>,
    /// Set after a withdrawal or a decision: which notice to show (one of a fixed few, so
    /// a crafted link cannot make the page say anything else).
    done: Option<String>,
}

/// The notice after a form that went through.
fn notice(done: &str) -> Option<&'static str> {
    match done {
        "withdrawn" => Some("The challenge was withdrawn: no device can use it now."),
        "approved" => Some(
            "The enrollment was approved and its certificate issued; the device collects it at its next poll.",
        ),
        "rejected" => Some("The enrollment was rejected; the device's next poll is refused."),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "ui/enrollment.html")]
struct EnrollmentPage {
    chrome: Chrome,
    form: ChallengeForm,
    errors: FieldErrors,
    profiles: Vec<ProfileChoice>,
    /// ADMIN only: enabled users, for the owner menu.
    owners: Vec<OwnerChoice>,
    max_expires_in_minutes: u32,
    rows: Vec<ChallengeRow>,
    next: Option<String>,
    first_page: bool,
    /// ADMIN only: the enrollments waiting for a decision, oldest first.
    pending: Vec<requests::PendingRow>,
    /// A notice above the lists (a withdrawal, a decision), or an error of a withdrawal or
    /// of a decision.
    notice: Option<&'static str>,
    list_error: Option<String>,
    requests_error: Option<String>,
}

/// The answer to a create: the secret, this once.
#[derive(Template)]
#[template(path = "ui/enrollment_created.html")]
struct CreatedPage {
    chrome: Chrome,
    secret: String,
    row: ChallengeRow,
    public_url: String,
    scep_url: String,
}

async fn page(
    state: &AppState,
    session: &UiSession,
    form: ChallengeForm,
    errors: FieldErrors,
    after: Option<(time::OffsetDateTime, Uuid)>,
) -> Result<EnrollmentPage, UiError> {
    let chrome = chrome(state, session, "enrollment").await?;
    let by = Principal::User(session.caller);
    let now = state.clock.now();
    let items = state
        .authority
        .challenges
        .list(
            &state.db,
            &by,
            ChallengeFilter {
                owner_id: None,
                state: None,
                as_of: Some(now),
                after,
            },
            PAGE_SIZE,
        )
        .await?;
    let next = next_cursor(&items, PAGE_SIZE, |c| (c.created_at, c.id));
    let pending = if chrome.is_admin {
        let mut pending = state
            .authority
            .enrollment_requests
            .list(
                &state.db,
                &by,
                RequestFilter::default(),
                Some(RequestState::Pending),
                PENDING_SHOWN,
            )
            .await?;
        // The list is newest first; the oldest has waited longest.
        pending.reverse();
        pending
    } else {
        Vec::new()
    };
    // Row-level security shows a USER only their own name, which is all their list holds.
    let ids: Vec<Uuid> = items
        .iter()
        .map(|c| c.owner_id)
        .chain(pending.iter().map(|r| r.owner_id))
        .collect();
    let names = state
        .users
        .usernames(&state.db, &session.caller, &ids)
        .await?;
    let owners = super::pages::credential_owner_choices(state, session).await?;
    Ok(EnrollmentPage {
        chrome,
        form,
        errors,
        profiles: state
            .authority
            .settings
            .profiles
            .iter()
            .map(|p| ProfileChoice {
                name: p.name.clone(),
                label: format!("{}: up to {} days", p.name, p.max_validity_days),
            })
            .collect(),
        owners,
        max_expires_in_minutes: keyinfra_core::enrollment::challenges::MAX_EXPIRES_IN_MINUTES,
        rows: items
            .iter()
            .map(|c| ChallengeRow::new(c, &names, now))
            .collect(),
        next,
        first_page: after.is_none(),
        pending: pending
            .iter()
            .map(|r| requests::PendingRow::new(r, &names, now))
            .collect(),
        notice: None,
        list_error: None,
        requests_error: None,
    })
}

/// The page as a GET shows it (the first page of the list, an empty form), for a form
/// that did not go through to show its error on.
async fn list_page(state: &AppState, session: &UiSession) -> Result<EnrollmentPage, UiError> {
    page(
        state,
        session,
        ChallengeForm::new(),
        FieldErrors::default(),
        None,
    )
    .await
}

pub async fn show(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<EnrollmentQuery>,
) -> Result<Response, UiError> {
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c)?),
    };
    let mut page = page(
        &state,
        &session,
        ChallengeForm::new(),
        FieldErrors::default(),
        after,
    )
    .await?;
    page.notice = query.done.as_deref().and_then(notice);
    Ok(render(&page))
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A whole number from a form field, or the field's error.
fn number(text: &str, error: &str, slot: &mut Option<String>) -> Option<u32> {
    match text.trim() {
        "" => None,
        text => text.parse::<u32>().map_or_else(
            |_| {
                *slot = Some(error.to_owned());
                None
            },
            Some,
        ),
    }
}

pub async fn create(
    State(state): State<AppState>,
    session: UiSession,
    CsrfForm(form): CsrfForm<ChallengeForm>,
) -> Result<Response, UiError> {
    let mut errors = FieldErrors::default();
    let validity_days = number(
        &form.validity_days,
        "Give the validity as a whole number of days, or leave it empty.",
        &mut errors.validity,
    );
    let expires_in_minutes = number(
        &form.expires_in_minutes,
        "Give the time as a whole number of minutes.",
        &mut errors.expires,
    );
    let owner_id = match form.owner_id.trim() {
        "" => None,
        text => text.parse::<Uuid>().map_or_else(
            |_| {
                errors.owner = Some("Choose an owner from the list.".into());
                None
            },
            Some,
        ),
    };
    if errors.any() {
        return refused(
            &state,
            &session,
            form,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let names: Vec<String> = form
        .names
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let request = CreateChallenge {
        owner_id,
        profile: optional(&form.profile),
        validity_days,
        expires_in_minutes,
        subject: optional(&form.subject),
        names: (!names.is_empty()).then_some(names),
        approval: Some(form.approval()),
    };
    let by = Principal::User(session.caller);
    let created = match state
        .authority
        .challenges
        .create(&state.db, &by, request, &mut OsRandom)
        .await
    {
        Ok(created) => created,
        Err(error) => {
            let problem = crate::Problem::from(error);
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            if !place_refusal(&mut errors, &problem) {
                return Err(UiError(problem));
            }
            return refused(&state, &session, form, errors, status).await;
        }
    };
    let chrome = chrome(&state, &session, "enrollment").await?;
    let names = state
        .users
        .usernames(&state.db, &session.caller, &[created.view.owner_id])
        .await?;
    let page = CreatedPage {
        chrome,
        secret: created.challenge.expose().to_owned(),
        row: ChallengeRow::new(&created.view, &names, state.clock.now()),
        public_url: state.authority.settings.public_url.clone(),
        scep_url: format!("{}/scep", state.authority.settings.public_url),
    };
    // Not a redirect: the secret exists only in this answer (which is `no-store`, as every
    // UI page); the list it links to never has it.
    Ok((StatusCode::CREATED, render(&page)).into_response())
}

/// Puts a refusal of the create next to the field it concerns, or at the top of the form.
/// False for what is no refusal of the request (a missing session, an internal error),
/// which is an error page.
fn place_refusal(errors: &mut FieldErrors, problem: &crate::Problem) -> bool {
    if problem.status == 403 {
        errors.owner = Some("Only administrators may create challenges for another user.".into());
        return true;
    }
    if !matches!(problem.status, 409 | 422 | 429) {
        return false;
    }
    let slot = match problem.code {
        ErrorCode::UnknownProfile | ErrorCode::ProfileNotAllowed => &mut errors.profile,
        ErrorCode::InvalidValidity | ErrorCode::ValidityTooLong => &mut errors.validity,
        ErrorCode::InvalidExpiry => &mut errors.expires,
        ErrorCode::InvalidSubject => &mut errors.subject,
        ErrorCode::InvalidSan => &mut errors.names,
        ErrorCode::UnknownOwner | ErrorCode::OwnerDisabled | ErrorCode::InvalidOwner => {
            &mut errors.owner
        }
        _ => &mut errors.general,
    };
    *slot = Some(view::sentence(&problem.detail));
    true
}

async fn refused(
    state: &AppState,
    session: &UiSession,
    form: ChallengeForm,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<Response, UiError> {
    let page = page(state, session, form, errors, None).await?;
    Ok((status, render(&page)).into_response())
}

/// The withdraw button's form: nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct WithdrawForm {}

pub async fn withdraw(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(WithdrawForm {}): CsrfForm<WithdrawForm>,
) -> Result<Response, UiError> {
    match state
        .authority
        .challenges
        .withdraw(&state.db, &Principal::User(session.caller), id)
        .await
    {
        Ok(()) => Ok(Redirect::to("/ui/enrollment?done=withdrawn").into_response()),
        // A device used it meanwhile: the list again, with why (and the row now "used").
        Err(CoreError::Conflict { detail, .. }) => {
            let mut page = list_page(&state, &session).await?;
            page.list_error = Some(view::sentence(&detail));
            Ok((StatusCode::CONFLICT, render(&page)).into_response())
        }
        Err(other) => Err(other.into()),
    }
}
