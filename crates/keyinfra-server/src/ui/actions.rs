//! A certificate's actions: revoke with a reason, export as PKCS#12, renew (admins). Each is
//! a form with the session's CSRF token, checked before anything else; the rules are the
//! use cases'. A refused export or renewal shows its error next to its form on the detail
//! page.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::renewal::RenewRequest;
use keyinfra_core::revocation::parse_reason;
use keyinfra_core::{CoreError, OsRandom, Principal};
use keyinfra_pki::pkcs12::{LEGACY_PIN_MIN_CHARS, PIN_MAX_CHARS, Pin, Pkcs12Compat};
use serde::Deserialize;
use zeroize::Zeroize;

use super::pages::{DetailForms, detail_page};
use super::session::{CsrfForm, UiError, UiId, UiSession, render};
use super::view;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<Response, UiError> {
    let reason = parse_reason(&form.reason)?;
    state
        .authority
        .revocations
        .revoke(
            &state.db,
            &Principal::User(session.caller),
            id,
            reason,
            None,
        )
        .await?;
    Ok(Redirect::to(&format!("/ui/certificates/{id}")).into_response())
}

#[derive(Deserialize)]
pub struct Pkcs12Form {
    #[serde(default)]
    pin: String,
    #[serde(default)]
    pin_again: String,
    #[serde(default)]
    compat: String,
}

impl std::fmt::Debug for Pkcs12Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs12Form")
            .field("compat", &self.compat)
            .finish_non_exhaustive()
    }
}

/// The detail page again, with the refusal next to the form that caused it.
async fn refused(
    state: &AppState,
    session: &UiSession,
    id: uuid::Uuid,
    status: StatusCode,
    forms: DetailForms,
) -> Result<Response, UiError> {
    let page = detail_page(state, session, id, forms).await?;
    Ok((status, render(&page)).into_response())
}

pub async fn pkcs12(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<Pkcs12Form>,
) -> Result<Response, UiError> {
    let Pkcs12Form {
        mut pin,
        mut pin_again,
        compat,
        ..
    } = form;
    let same = pin == pin_again;
    pin_again.zeroize();
    let pkcs12_error = |message: String| DetailForms {
        pkcs12_error: Some(message),
        ..DetailForms::default()
    };
    if !same {
        pin.zeroize();
        let forms = pkcs12_error("The two PINs differ. Type the same PIN twice.".into());
        return refused(
            &state,
            &session,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            forms,
        )
        .await;
    }
    // No choice sent is the form's default, modern.
    let parsed = if compat.is_empty() {
        Ok(Pkcs12Compat::default())
    } else {
        compat.parse::<Pkcs12Compat>()
    };
    let compat = match parsed {
        Ok(compat) => compat,
        Err(e) => {
            pin.zeroize();
            let forms = pkcs12_error(e.to_string());
            return refused(
                &state,
                &session,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                forms,
            )
            .await;
        }
    };
    // Pin::new takes the PIN and wipes it when refused.
    let Ok(pin) = Pin::new(pin, compat) else {
        let forms = pkcs12_error(format!(
            "The PIN must have {} to {PIN_MAX_CHARS} characters ({LEGACY_PIN_MIN_CHARS} for the legacy format), no control characters and no emoji.",
            compat.min_pin_chars()
        ));
        return refused(
            &state,
            &session,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            forms,
        )
        .await;
    };
    let result = state
        .authority
        .exports
        .export_pkcs12(&state.db, &Principal::User(session.caller), id, pin, compat)
        .await;
    let bytes = match result {
        Ok(bytes) => bytes,
        Err(CoreError::Conflict { detail, .. }) => {
            return refused(
                &state,
                &session,
                id,
                StatusCode::CONFLICT,
                pkcs12_error(view::sentence(&detail)),
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{id}.p12\""))
        .map_err(|_| crate::problem::internal_error())?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pkcs12"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct RenewForm {
    #[serde(default)]
    validity_days: String,
    /// A checkbox: present ("on") when ticked.
    #[serde(default)]
    rekey: Option<String>,
    #[serde(default)]
    revoke_previous: Option<String>,
}

/// Renews (the use case allows it to admins only): a new certificate with the same names,
/// then its page.
pub async fn renew(
    State(state): State<AppState>,
    session: UiSession,
    UiId(id): UiId,
    CsrfForm(form): CsrfForm<RenewForm>,
) -> Result<Response, UiError> {
    let mut forms = DetailForms {
        renew_validity_days: form.validity_days.trim().to_owned(),
        renew_rekey: form.rekey.is_some(),
        renew_revoke_previous: form.revoke_previous.is_some(),
        ..DetailForms::default()
    };
    let validity_days = match form.validity_days.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                forms.renew_error = Some("Give the validity as a whole number of days.".into());
                return refused(
                    &state,
                    &session,
                    id,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    forms,
                )
                .await;
            }
        },
    };
    let request = RenewRequest {
        validity_days,
        rekey: forms.renew_rekey,
        revoke_previous: forms.renew_revoke_previous,
    };
    let result = state
        .authority
        .renewals
        .renew(
            &state.db,
            &Principal::User(session.caller),
            id,
            request,
            &mut OsRandom,
        )
        .await;
    match result {
        Ok(renewed) => {
            Ok(Redirect::to(&format!("/ui/certificates/{}", renewed.id)).into_response())
        }
        Err(CoreError::Invalid { detail, .. }) => {
            forms.renew_error = Some(view::sentence(&detail));
            refused(
                &state,
                &session,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                forms,
            )
            .await
        }
        Err(CoreError::Conflict { detail, .. }) => {
            forms.renew_error = Some(view::sentence(&detail));
            refused(&state, &session, id, StatusCode::CONFLICT, forms).await
        }
        Err(other) => Err(other.into()),
    }
}
