//! The issue form: `GET/POST /ui/certificates/new`. The rules (names, profiles, validity,
//! CSR, owner, quota, the issuance policy) are the issuance use case's; this page only maps
//! its error codes to the fields they concern. Nothing is created on bad input: every check
//! runs before the first write. "Preview names" runs the same checks as the API's dry run
//! (`Issuer::preview`) and shows what would be issued, or the refusal, writing nothing.
//! The page also shows the user's own policy, so that it knows what it may ask for.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::issuer::{IssuePlan, IssueRequest, KeySource};
use keyinfra_core::policy::Policy;
use keyinfra_core::{ErrorCode, OsRandom, Principal};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::profile::Profile;
use serde::Deserialize;
use uuid::Uuid;

use super::session::{CsrfForm, UiError, UiSession, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;

/// A profile as the form offers it, from the server's settings: its limits change with
/// KEYINFRA_MAX_VALIDITY_DAYS, so the page never states them itself.
#[derive(Debug)]
struct ProfileChoice {
    name: String,
    /// "device: up to 825 days, 365 if left empty".
    label: String,
    description: String,
}

fn profile_choices(profiles: &[Profile]) -> Vec<ProfileChoice> {
    profiles
        .iter()
        .map(|p| ProfileChoice {
            name: p.name.clone(),
            label: format!(
                "{}: up to {} days, {} if left empty",
                p.name, p.max_validity_days, p.default_validity_days
            ),
            description: p.description.clone(),
        })
        .collect()
}

/// The profile a new form starts with and an empty choice means: the first configured
/// one (the built-in list begins with `device`, the API's default).
fn default_profile(profiles: &[Profile]) -> String {
    profiles.first().map(|p| p.name.clone()).unwrap_or_default()
}

/// What the form holds, sent back as typed when it is refused.
#[derive(Debug, Default, Deserialize)]
pub struct IssueForm {
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
    /// ADMIN only: the policy to check against instead of the owner's (empty: the owner's).
    #[serde(default)]
    policy_id: String,
    /// "preview": show what would be issued (the dry run), issue nothing.
    #[serde(default)]
    action: String,
}

/// What an issue of the form would sign: the dry run's plan as the page shows it.
#[derive(Debug)]
struct Preview {
    /// The subject after the policy's fixed attributes, attribute by attribute.
    attributes: Vec<(String, String)>,
    sans: Vec<String>,
    profile: String,
    key_algorithm: String,
    validity_days: u32,
    not_before: String,
    not_after: String,
    ca_name: String,
    policy_id: String,
    policy_name: String,
}

impl Preview {
    fn of(plan: &IssuePlan) -> Self {
        Self {
            attributes: plan
                .subject
                .attributes()
                .iter()
                .map(|(a, v)| (view::attribute_label(a.short_name()), v.clone()))
                .collect(),
            sans: plan.sans.iter().map(ToString::to_string).collect(),
            profile: plan.profile.name.clone(),
            key_algorithm: plan.key_algorithm.label().to_owned(),
            validity_days: plan.validity_days,
            not_before: view::date_time(plan.not_before),
            not_after: view::date_time(plan.not_after),
            ca_name: plan.ca_name.clone(),
            policy_id: plan.policy_id.to_string(),
            policy_name: plan.policy_name.clone(),
        }
    }
}

/// The dry run's refusal: the problem's code and detail, as the API would answer.
#[derive(Debug)]
struct Refusal {
    code: String,
    detail: String,
}

/// The user's own policy, in short: what it may ask for.
#[derive(Debug)]
struct PolicySummary {
    id: String,
    name: String,
    description: String,
    /// (what, entries): the name lists that allow or deny anything.
    names: Vec<(&'static str, String)>,
    fixed: String,
    profiles: String,
    key_algorithms: String,
    max_validity_days: u32,
    /// "at most 10", or "no limit".
    quota: String,
}

impl PolicySummary {
    fn of(policy: &Policy, server_quota: Option<u32>) -> Self {
        let list = |entries: &[String]| entries.join(", ");
        let names = [
            ("Allowed DNS names", &policy.allowed_dns),
            ("Denied DNS names", &policy.denied_dns),
            ("Allowed IP ranges", &policy.allowed_ips),
            ("Allowed e-mail domains", &policy.allowed_emails),
            ("Allowed URIs", &policy.allowed_uris),
        ]
        .into_iter()
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(what, entries)| (what, list(entries)))
        .collect();
        Self {
            id: policy.id.to_string(),
            name: policy.name.clone(),
            description: policy.description.clone(),
            names,
            fixed: policy
                .subject
                .fixed
                .iter()
                .map(|(attr, value)| format!("{attr}={value}"))
                .collect::<Vec<_>>()
                .join(", "),
            profiles: list(&policy.profiles),
            key_algorithms: list(&policy.key_algorithms),
            max_validity_days: policy.max_validity_days,
            quota: policy
                .quota
                .or(server_quota)
                .map_or_else(|| "no limit".to_owned(), |q| format!("at most {q}")),
        }
    }
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
    policy: Option<String>,
    general: Option<String>,
}

#[derive(Debug)]
struct OwnerChoice {
    id: String,
    username: String,
}

/// A policy an ADMIN may issue under instead of the owner's.
#[derive(Debug)]
struct PolicyChoice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "ui/issue.html")]
struct IssuePage {
    chrome: Chrome,
    form: IssueForm,
    errors: FieldErrors,
    algorithms: [&'static str; KeyAlgorithm::ALL.len()],
    profiles: Vec<ProfileChoice>,
    owners: Vec<OwnerChoice>,
    /// ADMIN only: every policy, for "issue under" (empty for a USER).
    policies: Vec<PolicyChoice>,
    policy: PolicySummary,
    preview: Option<Preview>,
    refusal: Option<Refusal>,
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
    let by = Principal::User(session.caller);
    let policies = if chrome.is_admin {
        state
            .authority
            .policies
            .list(&state.db, &by)
            .await?
            .into_iter()
            .map(|p| PolicyChoice {
                id: p.id.to_string(),
                name: p.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let policy = state
        .authority
        .policies
        .of_user(&state.db, &by, session.caller.id)
        .await?;
    Ok(IssuePage {
        chrome,
        form,
        errors,
        algorithms: KeyAlgorithm::ALL.map(KeyAlgorithm::label),
        profiles: profile_choices(&state.authority.settings.profiles),
        owners,
        policies,
        policy: PolicySummary::of(&policy, state.authority.settings.quota),
        preview: None,
        refusal: None,
    })
}

pub async fn new_form(
    State(state): State<AppState>,
    session: UiSession,
) -> Result<Response, UiError> {
    let form = IssueForm {
        profile: default_profile(&state.authority.settings.profiles),
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
    CsrfForm(form): CsrfForm<IssueForm>,
) -> Result<Response, UiError> {
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
    let policy_id = match form.policy_id.trim() {
        "" => None,
        text => match text.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.policy = Some("Choose a policy from the list.".into());
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
    let Some(key) = key else {
        return refused(&state, &session, form, errors).await;
    };
    if errors.validity.is_some() || errors.owner.is_some() || errors.policy.is_some() {
        return refused(&state, &session, form, errors).await;
    }
    let request = IssueRequest {
        key,
        subject: optional(&form.subject),
        san: (!san.is_empty()).then_some(san),
        profile: optional(&form.profile)
            .unwrap_or_else(|| default_profile(&state.authority.settings.profiles)),
        validity_days,
        owner_id,
        ca_id: None,
        policy_id,
    };
    let by = Principal::User(session.caller);
    if form.action == "preview" {
        // The API's dry run: every check of an issue, no key made, nothing written.
        return match state
            .authority
            .issuer
            .preview(&state.db, &by, request)
            .await
        {
            Ok(plan) => {
                let mut page = page(&state, &session, form, errors).await?;
                page.preview = Some(Preview::of(&plan));
                Ok(render(&page))
            }
            Err(error) => {
                let problem = crate::Problem::from(error);
                let refusal = Refusal {
                    code: problem.code.as_str().to_owned(),
                    detail: view::sentence(&problem.detail),
                };
                if !place_refusal(&mut errors, &problem) {
                    return Err(UiError(problem));
                }
                let mut page = page(&state, &session, form, errors).await?;
                page.refusal = Some(refusal);
                Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
            }
        };
    }
    let result = state
        .authority
        .issuer
        .issue(&state.db, &by, request, &mut OsRandom)
        .await;
    match result {
        Ok(cert) => Ok(Redirect::to(&format!("/ui/certificates/{}", cert.id)).into_response()),
        Err(error) => {
            let problem = crate::Problem::from(error);
            if !place_refusal(&mut errors, &problem) {
                return Err(UiError(problem));
            }
            refused(&state, &session, form, errors).await
        }
    }
}

/// Puts a refusal of the issue (or of its dry run) next to the field it concerns, or at
/// the top of the form. False for what is no refusal of the request (a missing session,
/// an internal error), which is an error page.
fn place_refusal(errors: &mut FieldErrors, problem: &crate::Problem) -> bool {
    if problem.status == 403 {
        errors.owner =
            Some("Only administrators may issue for another user or under another policy.".into());
        return true;
    }
    if problem.status != 409 && problem.status != 422 {
        return false;
    }
    let slot = match problem.code {
        ErrorCode::InvalidSubject | ErrorCode::SubjectNotAllowed => &mut errors.subject,
        ErrorCode::InvalidSan | ErrorCode::NameNotAllowed => &mut errors.san,
        ErrorCode::UnknownProfile | ErrorCode::ProfileNotAllowed => &mut errors.profile,
        ErrorCode::InvalidValidity | ErrorCode::ValidityTooLong | ErrorCode::BeyondCaValidity => {
            &mut errors.validity
        }
        ErrorCode::InvalidCsr
        | ErrorCode::CsrSignatureInvalid
        | ErrorCode::UnsupportedKey
        | ErrorCode::KeyAlgorithmNotAllowed => &mut errors.key,
        ErrorCode::UnknownOwner | ErrorCode::OwnerDisabled => &mut errors.owner,
        ErrorCode::UnknownPolicy => &mut errors.policy,
        _ => &mut errors.general,
    };
    *slot = Some(view::sentence(&problem.detail));
    true
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
