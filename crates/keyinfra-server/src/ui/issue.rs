//! The issue form: `GET/POST /ui/certificates/new`. The rules (names, profiles, validity,
//! CSR, owner, quota) are the issuance use case's; this page only maps its error codes to
//! the fields they concern. Nothing is created on bad input: every check runs before the
//! first write.

use askama::Template;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::lifecycle::{IssueRequest, KeySource};
use keyinfra_core::{CoreError, OsRandom, Requester};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use serde::Deserialize;
use uuid::Uuid;

use super::session::{UiError, UiSession, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;

const PROFILES: [(&str, &str); 3] = [
    (
        "device",
        "Device: server and client authentication, up to 825 days",
    ),
    ("server", "Server: server authentication, up to 398 days"),
    ("client", "Client: client authentication, up to 825 days"),
];

/// What the form holds, sent back as typed when it is refused.
#[derive(Debug, Default, Deserialize)]
pub struct IssueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    san: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    validity_days: String,
    #[serde(default)]
    key_source: String,
    #[serde(default)]
    key_algorithm: String,
    #[serde(default)]
    csr: String,
    #[serde(default)]
    owner_id: String,
    /// "preview": show how the names are read, issue nothing.
    #[serde(default)]
    action: String,
}

/// How the subject and SANs are read, before anything is issued.
#[derive(Debug)]
struct Preview {
    attributes: Vec<(String, String)>,
    sans: Vec<String>,
}

fn attribute_label(short: &str) -> String {
    let long = match short {
        "CN" => "Common name",
        "O" => "Organization",
        "OU" => "Organizational unit",
        "C" => "Country",
        "ST" => "State or province",
        "L" => "Locality",
        "DC" => "Domain component",
        _ => "Serial number",
    };
    format!("{long} ({short})")
}

/// A field's error message, if any.
#[derive(Debug, Default)]
struct FieldErrors {
    subject: Option<String>,
    san: Option<String>,
    profile: Option<String>,
    validity: Option<String>,
    key: Option<String>,
    owner: Option<String>,
    general: Option<String>,
}

#[derive(Debug)]
struct OwnerChoice {
    id: String,
    username: String,
}

#[derive(Template)]
#[template(path = "ui/issue.html")]
struct IssuePage {
    chrome: Chrome,
    form: IssueForm,
    errors: FieldErrors,
    algorithms: [&'static str; KeyAlgorithm::ALL.len()],
    profiles: [(&'static str, &'static str); 3],
    owners: Vec<OwnerChoice>,
    preview: Option<Preview>,
}

async fn page(
    state: &AppState,
    session: &UiSession,
    form: IssueForm,
    errors: FieldErrors,
) -> Result<IssuePage, UiError> {
    let chrome = chrome(state, session, "certificates").await?;
    let owners = if chrome.is_admin {
        state
            .users
            .list(&state.db, &session.caller, None, 500)
            .await?
            .items
            .into_iter()
            .filter(|u| !u.disabled)
            .map(|u| OwnerChoice {
                id: u.id.to_string(),
                username: u.username,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(IssuePage {
        chrome,
        form,
        errors,
        algorithms: KeyAlgorithm::ALL.map(KeyAlgorithm::label),
        profiles: PROFILES,
        owners,
        preview: None,
    })
}

pub async fn new_form(
    State(state): State<AppState>,
    session: UiSession,
) -> Result<Response, UiError> {
    let form = IssueForm {
        profile: "device".into(),
        key_source: "generate".into(),
        key_algorithm: KeyAlgorithm::EcdsaP256.label().into(),
        ..IssueForm::default()
    };
    Ok(render(
        &page(&state, &session, form, FieldErrors::default()).await?,
    ))
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

pub async fn issue(
    State(state): State<AppState>,
    session: UiSession,
    Form(form): Form<IssueForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&state, &form.csrf)?;
    let mut errors = FieldErrors::default();
    let validity_days = match form.validity_days.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                errors.validity = Some("Give the validity as a whole number of days.".into());
                None
            }
        },
    };
    let owner_id = match form.owner_id.trim() {
        "" => None,
        text => match text.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.owner = Some("Choose an owner from the list.".into());
                None
            }
        },
    };
    let key = if form.key_source == "csr" {
        match optional(&form.csr) {
            Some(csr) => Some(KeySource::Csr(csr.into_bytes())),
            None => {
                errors.key =
                    Some("Paste the device's CSR (PEM), or let the server make a key.".into());
                None
            }
        }
    } else {
        match KeyAlgorithm::from_label(&form.key_algorithm) {
            Some(alg) => Some(KeySource::Generate(alg)),
            None => {
                errors.key = Some("Choose a key algorithm from the list.".into());
                None
            }
        }
    };
    let san: Vec<String> = form
        .san
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if form.action == "preview" {
        // The parsers issuance uses; nothing is issued.
        let mut preview = Preview {
            attributes: Vec::new(),
            sans: Vec::new(),
        };
        match optional(&form.subject).map(|s| DistinguishedName::parse(&s)) {
            Some(Ok(dn)) => {
                preview.attributes = dn
                    .attributes()
                    .iter()
                    .map(|(a, v)| (attribute_label(a.short_name()), v.clone()))
                    .collect();
            }
            Some(Err(e)) => errors.subject = Some(view::sentence(&e.to_string())),
            None => {}
        }
        match SubjectAltName::parse_list(&san) {
            Ok(list) => preview.sans = list.iter().map(ToString::to_string).collect(),
            Err(e) => errors.san = Some(view::sentence(&e.to_string())),
        }
        let mut page = page(&state, &session, form, errors).await?;
        page.preview = Some(preview);
        return Ok(render(&page));
    }
    let Some(key) = key else {
        return refused(&state, &session, form, errors).await;
    };
    if errors.validity.is_some() || errors.owner.is_some() {
        return refused(&state, &session, form, errors).await;
    }
    let request = IssueRequest {
        key,
        subject: optional(&form.subject),
        san: (!san.is_empty()).then_some(san),
        profile: optional(&form.profile).unwrap_or_else(|| "device".into()),
        validity_days,
        owner_id,
        ca_id: None,
        policy_id: None,
    };
    let result = state
        .authority
        .issue(
            &state.db,
            &Requester::User(session.caller),
            request,
            &mut OsRandom,
        )
        .await;
    match result {
        Ok(cert) => Ok(Redirect::to(&format!("/ui/certificates/{}", cert.id)).into_response()),
        Err(CoreError::Invalid { code, detail } | CoreError::Conflict { code, detail }) => {
            let slot = match code {
                "invalid_subject" => &mut errors.subject,
                "invalid_san" => &mut errors.san,
                "unknown_profile" => &mut errors.profile,
                "invalid_validity" | "validity_too_long" | "beyond_ca_validity" => {
                    &mut errors.validity
                }
                "invalid_csr" | "csr_signature_invalid" | "unsupported_key" => &mut errors.key,
                "unknown_owner" | "owner_disabled" => &mut errors.owner,
                _ => &mut errors.general,
            };
            *slot = Some(view::sentence(&detail));
            refused(&state, &session, form, errors).await
        }
        Err(CoreError::Forbidden) => {
            errors.owner = Some("Only administrators may issue for another user.".into());
            refused(&state, &session, form, errors).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn refused(
    state: &AppState,
    session: &UiSession,
    form: IssueForm,
    errors: FieldErrors,
) -> Result<Response, UiError> {
    let page = page(state, session, form, errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}
