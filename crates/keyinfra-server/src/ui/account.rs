//! The caller's own account: changing the password (current, new, new again).
//!
//! The change-password use case ends every token issued before it, this session's too. So
//! after a change the page logs the user in again with the new password (the same login
//! use case as the login form: throttle, audit) and sets a fresh session cookie; should that
//! fail, it sends them to the login page with a message instead of a broken session.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyinfra_core::{CoreError, ErrorCode, OsRandom};
use serde::Deserialize;
use zeroize::Zeroize;

use super::session::{
    CsrfForm, OverTls, UiError, UiSession, chrome, clear_cookie, render, set_session_cookie,
};
use super::view::{self, Chrome};
use crate::AppState;
use crate::extract::ClientAddress;

#[derive(Debug, Default)]
struct PasswordErrors {
    current: Option<String>,
    new: Option<String>,
    new_again: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/password.html")]
struct PasswordPage {
    chrome: Chrome,
    errors: PasswordErrors,
    changed: bool,
}

#[derive(Debug, Deserialize)]
pub struct PasswordQuery {
    #[serde(default)]
    changed: Option<String>,
}

pub async fn form(
    State(state): State<AppState>,
    session: UiSession,
    Query(query): Query<PasswordQuery>,
) -> Result<Response, UiError> {
    let chrome = chrome(&state, &session, "account").await?;
    Ok(render(&PasswordPage {
        chrome,
        errors: PasswordErrors::default(),
        changed: query.changed.is_some(),
    }))
}

/// The three passwords as sent; wiped when dropped, never logged, never sent back.
#[derive(Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_again: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

impl Drop for PasswordForm {
    fn drop(&mut self) {
        self.current_password.zeroize();
        self.new_password.zeroize();
        self.new_password_again.zeroize();
    }
}

pub async fn change(
    State(state): State<AppState>,
    session: UiSession,
    ClientAddress(address): ClientAddress,
    tls: Option<axum::Extension<OverTls>>,
    CsrfForm(mut form): CsrfForm<PasswordForm>,
) -> Result<Response, UiError> {
    // Read before the change: the change ends this session's token.
    let chrome = chrome(&state, &session, "account").await?;
    let mut errors = PasswordErrors::default();
    if form.current_password.is_empty() {
        errors.current = Some("Type your current password.".into());
    }
    if form.new_password.is_empty() {
        errors.new = Some("Type a new password.".into());
    } else if form.new_password != form.new_password_again {
        errors.new_again = Some("The two new passwords differ. Type the same one twice.".into());
    }
    if errors.current.is_some() || errors.new.is_some() || errors.new_again.is_some() {
        return refused(chrome, errors);
    }
    let result = state
        .users
        .change_password(
            &state.db,
            &session.caller,
            std::mem::take(&mut form.current_password),
            form.new_password.clone(),
            address,
            &mut OsRandom,
        )
        .await;
    match result {
        Ok(()) => {}
        Err(CoreError::Invalid { code, detail }) => {
            match code {
                ErrorCode::WrongCurrentPassword => errors.current = Some(view::sentence(&detail)),
                _ => errors.new = Some(view::sentence(&detail)),
            }
            return refused(chrome, errors);
        }
        Err(CoreError::InvalidCredentials) => {
            errors.current = Some("The current password is wrong.".into());
            return refused(chrome, errors);
        }
        Err(CoreError::Throttled(_)) => {
            errors.current =
                Some("Too many wrong passwords. Wait a few minutes before trying again.".into());
            return Ok((StatusCode::TOO_MANY_REQUESTS, refused(chrome, errors)?).into_response());
        }
        Err(other) => return Err(other.into()),
    }
    let login = state
        .users
        .login(
            &state.db,
            &chrome.username,
            std::mem::take(&mut form.new_password),
            address,
        )
        .await;
    match login
        .map_err(UiError::from)
        .and_then(|token| set_session_cookie(&token, tls.is_some()))
    {
        Ok(cookie) => Ok((
            [(header::SET_COOKIE, cookie)],
            Redirect::to("/ui/account/password?changed=1"),
        )
            .into_response()),
        Err(_) => Ok((
            [(header::SET_COOKIE, clear_cookie())],
            Redirect::to("/ui/login?password_changed=1"),
        )
            .into_response()),
    }
}

fn refused(chrome: Chrome, errors: PasswordErrors) -> Result<Response, UiError> {
    let page = PasswordPage {
        chrome,
        errors,
        changed: false,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}
