//! A certificate's actions: revoke with a reason, export as PKCS#12. Both are forms with the
//! session's CSRF token, checked before anything else; the rules are the use cases'.

use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::lifecycle::parse_reason;
use keyinfra_core::{CoreError, Requester};
use keyinfra_pki::pkcs12::{PIN_MAX_CHARS, PIN_MIN_CHARS, Pin, Pkcs12Compat};
use serde::Deserialize;
use zeroize::Zeroize;

use super::session::{UiError, UiSession};
use crate::extract::IdPath;
use crate::{AppState, Problem};

/// The reasons a user may pick (RFC 5280 names, as the API takes them).
pub const REASONS: [(&str, &str); 7] = [
    ("unspecified", "Unspecified"),
    ("keyCompromise", "Key compromise"),
    ("affiliationChanged", "Affiliation changed"),
    ("superseded", "Superseded"),
    (
        "cessationOfOperation",
        "Cessation of operation (device retired)",
    ),
    ("privilegeWithdrawn", "Privilege withdrawn"),
    ("cACompromise", "CA compromise"),
];

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    session: UiSession,
    IdPath(id): IdPath,
    Form(form): Form<RevokeForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&state, &form.csrf)?;
    let reason = parse_reason(&form.reason)?;
    state
        .authority
        .revoke(
            &state.db,
            &Requester::User(session.caller),
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
    csrf: String,
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

fn invalid(code: &'static str, detail: String) -> UiError {
    UiError(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail))
}

pub async fn pkcs12(
    State(state): State<AppState>,
    session: UiSession,
    IdPath(id): IdPath,
    Form(form): Form<Pkcs12Form>,
) -> Result<Response, UiError> {
    session.check_csrf(&state, &form.csrf)?;
    let Pkcs12Form {
        mut pin,
        mut pin_again,
        compat,
        ..
    } = form;
    let same = pin == pin_again;
    pin_again.zeroize();
    if !same {
        pin.zeroize();
        return Err(invalid(
            "pin_mismatch",
            "the two PINs differ; go back and type the same PIN twice".into(),
        ));
    }
    let compat = match compat.as_str() {
        "" | "modern" => Pkcs12Compat::Modern,
        "legacy" => Pkcs12Compat::Legacy,
        _ => {
            return Err(invalid("invalid_compat", "choose modern or legacy".into()));
        }
    };
    let pin = Pin::new(pin).map_err(|_| {
        invalid(
            "invalid_pin",
            format!(
                "the PIN must have {PIN_MIN_CHARS} to {PIN_MAX_CHARS} characters and no control characters"
            ),
        )
    })?;
    let bytes = state
        .authority
        .export_pkcs12(&state.db, &Requester::User(session.caller), id, pin, compat)
        .await
        .map_err(|e| match e {
            CoreError::Conflict { code, detail } => {
                UiError(Problem::new(StatusCode::CONFLICT, code, detail))
            }
            other => other.into(),
        })?;
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
