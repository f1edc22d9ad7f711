//! Issuance policies for administrators: the list with a "New policy" form, and one
//! policy's page, where every field of the API's contract is shown and edited, and the
//! policy deleted. Every page answers anyone but an ADMIN with the UI's 404 before calling
//! anything; the use cases (`Policies`) check the role again, validate every field, refuse
//! to delete a policy users hold, and audit each change with its old and new value.
//!
//! A policy form has repeated fields (one checkbox per profile, key algorithm, subject
//! attribute and CA), which axum's `Form` cannot read into a struct, so it is read as its
//! list of pairs ([`FormPairs`]) and turned into a [`Draft`]: the form as typed, which a
//! refused save shows again unchanged (`form`).

mod form;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::policy::{DEFAULT_POLICY_ID, Policy, PolicyChanges};
use keyinfra_core::{CoreError, Principal};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::names::DnAttribute;
use serde::Deserialize;
use uuid::Uuid;

use self::form::{Draft, FieldErrors, FormPairs};
use super::session::{CsrfForm, UiError, UiId, UiSession, admin_only, chrome, render};
use super::view::{self, Chrome};
use crate::AppState;

/// The RSA sizes a policy may require at least (the use case accepts these three).
const RSA_SIZES: [u32; 3] = [2048, 3072, 4096];

/// One policy as a row of the list.
#[derive(Debug)]
struct PolicyRow {
    id: Uuid,
    name: String,
    description: String,
    /// "server default" or the number.
    quota: String,
    max_validity_days: u32,
    /// How many users hold it.
    holders: i64,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Set after a deletion (a flag, never a name, so a crafted link says nothing else).
    deleted: Option<u8>,
}

#[derive(Template)]
#[template(path = "ui/policies.html")]
struct PoliciesPage {
    chrome: Chrome,
    policies: Vec<PolicyRow>,
    /// The "New policy" form as typed.
    new_name: String,
    new_description: String,
    name_error: Option<String>,
    deleted: bool,
}

async fn list_page(
    state: &AppState,
    session: &UiSession,
    new: NewPolicyForm,
    name_error: Option<String>,
    deleted: bool,
) -> Result<PoliciesPage, UiError> {
    let chrome = chrome(state, session, "policies").await?;
    let policies = state
        .authority
        .policies
        .list(&state.db, &by(session))
        .await?;
    let holders = state
        .authority
        .policies
        .holder_counts(&state.db, &by(session))
        .await?;
    Ok(PoliciesPage {
        chrome,
        policies: policies
            .into_iter()
            .map(|p| PolicyRow {
                id: p.id,
                name: p.name,
                description: p.description,
                quota: p
                    .quota
                    .map_or_else(|| "server default".to_owned(), |q| q.to_string()),
                max_validity_days: p.max_validity_days,
                holders: holders.get(&p.id).copied().unwrap_or(0),
            })
            .collect(),
        new_name: new.name,
        new_description: new.description,
        name_error,
        deleted,
    })
}

fn by(session: &UiSession) -> Principal {
    Principal::User(session.caller)
}

pub async fn list(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<ListQuery>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let page = list_page(
        &state,
        &session,
        NewPolicyForm::default(),
        None,
        query.deleted.is_some(),
    )
    .await?;
    Ok(render(&page))
}

/// The "New policy" form: a name and a description; every other field starts as the
/// `default` policy's, and the policy's own page edits them.
#[derive(Debug, Default, Deserialize)]
pub struct NewPolicyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create(
    State(state): State<AppState>,
    session: UiSession,
    CsrfForm(form): CsrfForm<NewPolicyForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let changes = PolicyChanges {
        name: Some(form.name.trim().to_owned()),
        description: Some(form.description.trim().to_owned()),
        ..PolicyChanges::default()
    };
    match state
        .authority
        .policies
        .create(&state.db, &by(&session), changes)
        .await
    {
        Ok(policy) => {
            Ok(Redirect::to(&format!("/ui/policies/{}?created=1", policy.id)).into_response())
        }
        Err(error) => {
            let (status, detail) = refusal(error)?;
            let page =
                list_page(&state, &session, form, Some(view::sentence(&detail)), false).await?;
            Ok((status, render(&page)).into_response())
        }
    }
}

/// A use case's refusal as the status and message a form shows; anything else (not
/// found, an internal error) is an error page.
fn refusal(error: CoreError) -> Result<(StatusCode, String), UiError> {
    match error {
        CoreError::Invalid { detail, .. } => Ok((StatusCode::UNPROCESSABLE_ENTITY, detail)),
        CoreError::Conflict { detail, .. } => Ok((StatusCode::CONFLICT, detail)),
        other => Err(other.into()),
    }
}

/// One checkbox of a group.
#[derive(Debug)]
struct Choice {
    value: String,
    label: String,
    hint: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "ui/policy.html")]
struct PolicyPage {
    chrome: Chrome,
    id: Uuid,
    /// The name as stored (the heading), whatever the form holds.
    stored_name: String,
    is_default: bool,
    draft: Draft,
    attributes: Vec<Choice>,
    profiles: Vec<Choice>,
    algorithms: Vec<Choice>,
    rsa_sizes: Vec<(String, bool)>,
    cas: Vec<Choice>,
    errors: FieldErrors,
    /// The notice after a create or a save.
    notice: Option<&'static str>,
}

/// The policy's page with `draft` in its form (the stored policy, or what was typed).
async fn policy_page(
    state: &AppState,
    session: &UiSession,
    stored: &Policy,
    draft: Draft,
    errors: FieldErrors,
) -> Result<PolicyPage, UiError> {
    let chrome = chrome(state, session, "policies").await?;
    let ticked = |list: &[String], value: &str| list.iter().any(|v| v == value);
    // A value the form holds that the server no longer offers (a profile removed from
    // the settings, a CA deleted) stays a choice, so that saving does not drop it unseen.
    let mut attributes: Vec<Choice> = DnAttribute::ALL
        .iter()
        .map(|a| Choice {
            value: a.short_name().to_owned(),
            label: view::attribute_label(a.short_name()),
            hint: String::new(),
            checked: ticked(&draft.subject_attributes, a.short_name()),
        })
        .collect();
    extra_choices(&mut attributes, &draft.subject_attributes);
    let mut profiles: Vec<Choice> = state
        .authority
        .settings
        .profiles
        .iter()
        .map(|p| Choice {
            value: p.name.clone(),
            label: p.name.clone(),
            hint: p.description.clone(),
            checked: ticked(&draft.profiles, &p.name),
        })
        .collect();
    extra_choices(&mut profiles, &draft.profiles);
    let mut algorithms: Vec<Choice> = KeyAlgorithm::ALL
        .iter()
        .map(|a| Choice {
            value: a.label().to_owned(),
            label: a.label().to_owned(),
            hint: String::new(),
            checked: ticked(&draft.key_algorithms, a.label()),
        })
        .collect();
    extra_choices(&mut algorithms, &draft.key_algorithms);
    let mut cas: Vec<Choice> = state
        .authority
        .cas
        .list_cas(&state.db)
        .await?
        .into_iter()
        // Only a CA whose key KeyInfra holds can sign.
        .filter(|ca| ca.private_key_id.is_some())
        .map(|ca| Choice {
            value: ca.id.to_string(),
            checked: ticked(&draft.ca_ids, &ca.id.to_string()),
            hint: ca.subject_dn,
            label: ca.name,
        })
        .collect();
    extra_choices(&mut cas, &draft.ca_ids);
    let mut rsa_sizes: Vec<(String, bool)> = RSA_SIZES
        .iter()
        .map(|bits| {
            (
                bits.to_string(),
                bits.to_string() == draft.min_rsa_bits.trim(),
            )
        })
        .collect();
    if !rsa_sizes.iter().any(|(_, selected)| *selected) {
        rsa_sizes.push((draft.min_rsa_bits.clone(), true));
    }
    Ok(PolicyPage {
        chrome,
        id: stored.id,
        stored_name: stored.name.clone(),
        is_default: stored.id == DEFAULT_POLICY_ID,
        draft,
        attributes,
        profiles,
        algorithms,
        rsa_sizes,
        cas,
        errors,
        notice: None,
    })
}

/// Adds the ticked values that are not among the choices, ticked, labelled as they are.
fn extra_choices(choices: &mut Vec<Choice>, ticked: &[String]) {
    for value in ticked {
        if !choices.iter().any(|c| &c.value == value) {
            choices.push(Choice {
                value: value.clone(),
                label: value.clone(),
                hint: "not offered by this server".into(),
                checked: true,
            });
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    created: Option<u8>,
    saved: Option<u8>,
}

pub async fn show(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    Query(query): Query<ShowQuery>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let policy = state
        .authority
        .policies
        .get(&state.db, &by(&session), id)
        .await?;
    let mut page = policy_page(
        &state,
        &session,
        &policy,
        Draft::of(&policy),
        FieldErrors::default(),
    )
    .await?;
    page.notice = if query.created.is_some() {
        Some("Policy created with the default policy's rules. Narrow them below and save.")
    } else if query.saved.is_some() {
        Some(
            "Policy saved. It applies to the next issue, renewal and reassignment of everyone who holds it.",
        )
    } else {
        None
    };
    Ok(render(&page))
}

pub async fn update(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<FormPairs>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let by = by(&session);
    let stored = state.authority.policies.get(&state.db, &by, id).await?;
    let draft = Draft::from_form(&form);
    let (status, errors) = match draft.changes() {
        Err((field, message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            FieldErrors::at(field, message),
        ),
        Ok(changes) => match state
            .authority
            .policies
            .update(&state.db, &by, id, changes)
            .await
        {
            Ok(_) => {
                return Ok(Redirect::to(&format!("/ui/policies/{id}?saved=1")).into_response());
            }
            Err(error) => {
                let (status, detail) = refusal(error)?;
                (status, FieldErrors::of_detail(&detail))
            }
        },
    };
    let page = policy_page(&state, &session, &stored, draft, errors).await?;
    Ok((status, render(&page)).into_response())
}

/// The delete button's form: nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {}

pub async fn delete(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(DeleteForm {}): CsrfForm<DeleteForm>,
) -> Result<Response, UiError> {
    admin_only(&session)?;
    let by = by(&session);
    match state.authority.policies.delete(&state.db, &by, id).await {
        Ok(()) => Ok(Redirect::to("/ui/policies?deleted=1").into_response()),
        Err(error) => {
            let (status, detail) = refusal(error)?;
            let stored = state.authority.policies.get(&state.db, &by, id).await?;
            let errors = FieldErrors {
                general: Some(format!(
                    "The policy was not deleted: {}",
                    view::sentence(&detail)
                )),
                ..FieldErrors::default()
            };
            let page = policy_page(&state, &session, &stored, Draft::of(&stored), errors).await?;
            Ok((status, render(&page)).into_response())
        }
    }
}
