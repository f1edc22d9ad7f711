//! ACME (issue 21): `GET /ui/acme`, `POST /ui/acme/eab` and
//! `POST /ui/acme/accounts/{id}/deactivate`. A user creates an external account binding
//! key (an ADMIN for anyone), sees its HMAC key on the answer to that POST and nowhere else
//! (the page is `no-store`, as every UI page), lists their ACME accounts and binding keys
//! (an ADMIN everyone's) and deactivates an account, which then signs nothing. The rules
//! are the use cases' (`acme.eab`, `acme.deactivate_account`); this page shows them.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::acme::eab::{DEFAULT_EAB_EXPIRES_IN_MINUTES, MAX_EAB_EXPIRES_IN_MINUTES};
use keyinfra_core::{ErrorCode, Principal};
use keyinfra_db::acme::{AccountRecord, AccountStatus, EabKeyRecord};
use serde::Deserialize;
use uuid::Uuid;

use super::pages::OwnerChoice;
use super::session::{CsrfForm, UiError, UiId, UiSession, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;

/// Accounts and binding keys the page lists (the newest; the API pages through all).
const SHOWN: i64 = 100;

#[derive(Debug, Deserialize)]
pub struct EabForm {
    #[serde(default)]
    expires_in_minutes: String,
    /// ADMIN only: whose accounts the key binds (empty: the caller).
    #[serde(default)]
    owner_id: String,
}

#[derive(Debug)]
struct AccountRow {
    id: Uuid,
    short_id: String,
    owner: String,
    valid: bool,
    status: &'static str,
    contact: String,
    /// The key's RFC 7638 thumbprint, shortened.
    key: String,
    created: String,
    deactivated: String,
}

impl AccountRow {
    fn new(a: &AccountRecord, names: &HashMap<Uuid, String>) -> Self {
        use base64::Engine;
        let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&a.jwk_thumbprint);
        Self {
            id: a.id,
            short_id: view::short_id(a.id),
            owner: view::owner_name(Some(a.owner_id), names),
            valid: a.status == AccountStatus::Valid,
            status: a.status.as_str(),
            contact: a
                .contact
                .iter()
                .map(|c| c.trim_start_matches("mailto:"))
                .collect::<Vec<_>>()
                .join(", "),
            key: thumbprint.chars().take(12).collect(),
            created: view::date_time(a.created_at),
            deactivated: a.deactivated_at.map(view::date_time).unwrap_or_default(),
        }
    }
}

#[derive(Debug)]
struct KeyRow {
    id: Uuid,
    owner: String,
    /// "unused", "used", "expired".
    state: &'static str,
    created: String,
    expires: String,
}

impl KeyRow {
    fn new(k: &EabKeyRecord, names: &HashMap<Uuid, String>, now: time::OffsetDateTime) -> Self {
        Self {
            id: k.id,
            owner: view::owner_name(Some(k.owner_id), names),
            state: if k.used_at.is_some() {
                "used"
            } else if k.expires_at <= now {
                "expired"
            } else {
                "unused"
            },
            created: view::date_time(k.created_at),
            expires: view::date_time(k.expires_at),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/acme.html")]
struct AcmePage {
    chrome: Chrome,
    directory_url: String,
    eab_required: bool,
    expires_in_minutes: String,
    owner_id: String,
    owners: Vec<OwnerChoice>,
    max_expires_in_minutes: u32,
    error: Option<String>,
    notice: Option<&'static str>,
    accounts: Vec<AccountRow>,
    keys: Vec<KeyRow>,
}

/// The answer to a create: the HMAC key, this once, with the clients' command lines.
#[derive(Template)]
#[template(path = "ui/acme_eab_created.html")]
struct CreatedPage {
    chrome: Chrome,
    kid: Uuid,
    hmac_key: String,
    expires: String,
    owner: String,
    directory_url: String,
}

#[derive(Debug, Deserialize)]
pub struct AcmeQuery {
    /// Which notice to show after a form (one of a fixed few).
    done: Option<String>,
}

/// The directory URL as this request reached KeyInfra (ACME is served on the TLS listener,
/// under the name clients use).
fn directory_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("HOST:PORT");
    format!("https://{host}/acme/directory")
}

async fn page(
    state: &AppState,
    session: &UiSession,
    headers: &HeaderMap,
    form: EabForm,
    error: Option<String>,
) -> Result<AcmePage, UiError> {
    let chrome = chrome(state, session, "acme").await?;
    let by = Principal::User(session.caller);
    let accounts = state
        .acme
        .list_accounts(&state.db, &by, None, None, SHOWN)
        .await?;
    let keys = state
        .acme
        .eab
        .list(&state.db, &by, None, None, SHOWN)
        .await?;
    let ids: Vec<Uuid> = accounts
        .iter()
        .map(|a| a.owner_id)
        .chain(keys.iter().map(|k| k.owner_id))
        .collect();
    let names = state
        .users
        .usernames(&state.db, &session.caller, &ids)
        .await?;
    let owners = super::pages::credential_owner_choices(state, session).await?;
    let now = state.clock.now();
    Ok(AcmePage {
        chrome,
        directory_url: directory_url(headers),
        eab_required: state.acme.settings.eab_required,
        expires_in_minutes: form.expires_in_minutes,
        owner_id: form.owner_id,
        owners,
        max_expires_in_minutes: MAX_EAB_EXPIRES_IN_MINUTES,
        error,
        notice: None,
        accounts: accounts
            .iter()
            .map(|a| AccountRow::new(a, &names))
            .collect(),
        keys: keys.iter().map(|k| KeyRow::new(k, &names, now)).collect(),
    })
}

fn blank_form() -> EabForm {
    EabForm {
        expires_in_minutes: DEFAULT_EAB_EXPIRES_IN_MINUTES.to_string(),
        owner_id: String::new(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    Query(query): Query<AcmeQuery>,
) -> Result<Response, UiError> {
    let mut page = page(&state, &session, &headers, blank_form(), None).await?;
    page.notice = match query.done.as_deref() {
        Some("deactivated") => Some("The account was deactivated: it signs nothing from now on."),
        _ => None,
    };
    Ok(render(&page))
}

pub async fn create_eab(
    State(state): State<AppState>,
    session: UiSession,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EabForm>,
) -> Result<Response, UiError> {
    let minutes = match form.expires_in_minutes.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(m) => Some(m),
            Err(_) => {
                let error = Some("Give the time as a whole number of minutes.".to_owned());
                let page = page(&state, &session, &headers, form, error).await?;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
            }
        },
    };
    let owner_id = match form.owner_id.trim() {
        "" => None,
        text => match text.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                let error = Some("Choose an owner from the list.".to_owned());
                let page = page(&state, &session, &headers, form, error).await?;
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response());
            }
        },
    };
    let by = Principal::User(session.caller);
    let created = match state
        .acme
        .eab
        .create(&state.db, &by, owner_id, minutes)
        .await
    {
        Ok(created) => created,
        Err(error) => {
            let problem = crate::Problem::from(error);
            let refusal = matches!(problem.status, 403 | 409 | 422 | 429)
                || problem.code == ErrorCode::TooManyEabKeys;
            if !refusal {
                return Err(UiError(problem));
            }
            let status =
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let error = Some(view::sentence(&problem.detail));
            let page = page(&state, &session, &headers, form, error).await?;
            return Ok((status, render(&page)).into_response());
        }
    };
    let names = state
        .users
        .usernames(&state.db, &session.caller, &[created.owner_id])
        .await?;
    let page = CreatedPage {
        chrome: chrome(&state, &session, "acme").await?,
        kid: created.kid,
        hmac_key: created.hmac_key.to_string(),
        expires: view::date_time(created.expires_at),
        owner: view::owner_name(Some(created.owner_id), &names),
        directory_url: directory_url(&headers),
    };
    // Not a redirect: the HMAC key exists only in this answer.
    Ok((StatusCode::CREATED, render(&page)).into_response())
}

/// The deactivate button's form: nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct DeactivateForm {}

pub async fn deactivate(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(DeactivateForm {}): CsrfForm<DeactivateForm>,
) -> Result<Response, UiError> {
    state
        .acme
        .deactivate_account(&state.db, &Principal::User(session.caller), id)
        .await?;
    Ok(Redirect::to("/ui/acme?done=deactivated").into_response())
}
