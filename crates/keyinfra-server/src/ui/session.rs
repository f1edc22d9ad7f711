//! Sessions: the login form, the session cookie, logout, CSRF, and the error pages.

use askama::Template;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keyinfra_core::CoreError;
use keyinfra_core::users::Caller;
use serde::Deserialize;

use crate::extract::ClientAddress;
use crate::{AppState, Problem};

/// The session cookie's name.
pub const COOKIE: &str = "keyinfra_session";

/// Marks a request that arrived over TLS (the accept loop inserts it), so that the session
/// cookie gets `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// The caller of a UI request, from the `keyinfra_session` cookie.
#[derive(Debug, Clone)]
pub struct UiSession {
    pub caller: Caller,
    token: String,
    /// This session's CSRF token, for the forms of the page.
    pub csrf: String,
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

impl FromRequestParts<AppState> for UiSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_cookie(&parts.headers).ok_or_else(to_login)?;
        // The bearer extractor's checks (signature, algorithm, expiry, claims); the database
        // re-checks the account when the page's transaction begins.
        let (caller, csrf) = state
            .users
            .authenticate_session(token)
            .map_err(|_| to_login())?;
        Ok(Self {
            caller,
            token: token.to_owned(),
            csrf,
        })
    }
}

impl UiSession {
    /// Refuses a state-changing form without this session's CSRF token (403, nothing written).
    pub fn check_csrf(&self, state: &AppState, presented: &str) -> Result<(), UiError> {
        if state.users.csrf_matches(&self.token, presented) {
            Ok(())
        } else {
            Err(UiError(Problem::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "the form was not sent from this session's page; reload the page and try again",
            )))
        }
    }
}

/// To the login page, forgetting the (missing, expired or revoked) session.
fn to_login() -> Response {
    (
        [(header::SET_COOKIE, clear_cookie())],
        Redirect::to("/ui/login"),
    )
        .into_response()
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "keyinfra_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
    )
}

/// A page that failed: the problem's status and detail as HTML; 401 goes to the login page.
#[derive(Debug)]
pub struct UiError(pub Problem);

impl From<Problem> for UiError {
    fn from(p: Problem) -> Self {
        Self(p)
    }
}

impl From<CoreError> for UiError {
    fn from(e: CoreError) -> Self {
        Self(e.into())
    }
}

impl From<keyinfra_db::DbError> for UiError {
    fn from(e: keyinfra_db::DbError) -> Self {
        Self(e.into())
    }
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    detail: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let problem = self.0;
        if problem.status == 401 {
            return to_login();
        }
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let title = match problem.status {
            404 => "Not found",
            403 => "Not allowed",
            _ => problem.title.as_str(),
        };
        let page = ErrorPage {
            status: problem.status,
            title,
            detail: &problem.detail,
        };
        (status, render(&page)).into_response()
    }
}

/// Renders a template; a template that fails (it cannot, short of a bug) is a logged 500.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage<'a> {
    username: &'a str,
    error: Option<&'a str>,
}

pub async fn login_page() -> Response {
    render(&LoginPage {
        username: "",
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The login form: the API's login use case; its token becomes the session cookie.
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    tls: Option<axum::Extension<OverTls>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let result = state
        .users
        .login(&state.db, &form.username, form.password, address)
        .await;
    let refused = |status: StatusCode, message: &str| {
        let page = LoginPage {
            username: &form.username,
            error: Some(message),
        };
        (status, render(&page)).into_response()
    };
    match result {
        Ok(token) => {
            let secure = if tls.is_some() { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
                token.token,
                token.expires_in.whole_seconds()
            );
            match HeaderValue::from_str(&cookie) {
                Ok(value) => ([(header::SET_COOKIE, value)], Redirect::to("/ui")).into_response(),
                Err(_) => UiError(crate::problem::internal_error()).into_response(),
            }
        }
        Err(CoreError::InvalidCredentials) => refused(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.",
        ),
        Err(CoreError::Throttled(_)) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins. Wait a few minutes before trying again.",
        ),
        Err(other) => UiError::from(other).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Logout (a form with the CSRF token): clears the cookie. The token itself stays valid
/// until it expires, as for the API.
pub async fn logout(
    State(state): State<AppState>,
    session: UiSession,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    session.check_csrf(&state, &form.csrf)?;
    Ok(to_login())
}
