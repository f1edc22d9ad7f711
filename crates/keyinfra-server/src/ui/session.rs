//! Sessions: the login form, the session cookie, logout, CSRF, and the error pages.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keyinfra_core::CoreError;
use keyinfra_core::ErrorCode;
use keyinfra_core::users::Caller;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::view::Chrome;
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

/// A state-changing form of type `T`, accepted only with the session's CSRF token in its
/// `csrf` field. Handlers that change anything take this instead of axum's `Form`, so a
/// handler without the check cannot be written by accident: the extractor reads the body,
/// checks the token and refuses with the UI's 403 page before the handler runs (and so
/// before any write). `T` itself has no `csrf` field; the body is parsed twice, once for
/// the token and once as `T`, which costs nothing next to the page.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    // The one place besides the login form that may parse a form body with axum's `Form`.
    #[allow(clippy::disallowed_types)]
    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = UiSession::from_request_parts(&mut parts, state).await?;
        // The body once, within the router's body limit; then each parse gets a copy of
        // the request with it, so that `Form` checks the content type as it always does.
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let again = |parts: Parts| Request::from_parts(parts, Body::from(bytes.clone()));
        let axum::extract::Form(CsrfField { csrf }) =
            axum::extract::Form::<CsrfField>::from_request(again(parts.clone()), state)
                .await
                .map_err(IntoResponse::into_response)?;
        check_csrf(&session, state, &csrf).map_err(IntoResponse::into_response)?;
        let axum::extract::Form(form) = axum::extract::Form::<T>::from_request(again(parts), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(form))
    }
}

/// Refuses a state-changing form without this session's CSRF token (403, nothing written).
/// Private: [`CsrfForm`] is the only way a handler gets a form that changes anything.
fn check_csrf(session: &UiSession, state: &AppState, presented: &str) -> Result<(), UiError> {
    if state.users.csrf_matches(&session.token, presented) {
        Ok(())
    } else {
        Err(UiError(Problem::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CsrfFailed,
            "the form was not sent from this session's page; reload the page and try again",
        )))
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

pub(super) fn clear_cookie() -> HeaderValue {
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
    chrome: Chrome,
    status: u16,
    title: &'a str,
    detail: &'a str,
}

/// What an error page said, kept on the response so that [`error_layout`] can show it
/// again inside the signed-in layout.
#[derive(Debug, Clone)]
struct ErrorShown {
    status: u16,
    title: String,
    detail: String,
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
        // Rendered without navigation here (no session at hand); the layer re-renders it
        // with the signed-in layout when the request had a valid session.
        let page = ErrorPage {
            chrome: Chrome::anonymous(),
            status: problem.status,
            title,
            detail: &problem.detail,
        };
        let mut response = (status, render(&page)).into_response();
        response.extensions_mut().insert(ErrorShown {
            status: problem.status,
            title: title.to_owned(),
            detail: problem.detail.clone(),
        });
        response
    }
}

/// Shows error pages inside the same layout as every other page (navigation, account) when
/// the request carried a valid session. Errors are rare, so the extra lookup of the
/// username costs nothing that matters; if it fails, the plain error page stays.
pub async fn error_layout(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = session_cookie(request.headers()).map(str::to_owned);
    let mut response = next.run(request).await;
    let Some(shown) = response.extensions_mut().remove::<ErrorShown>() else {
        return response;
    };
    let Some(token) = token else {
        return response;
    };
    let Ok((caller, csrf)) = state.users.authenticate_session(&token) else {
        return response;
    };
    let session = UiSession {
        caller,
        token,
        csrf,
    };
    let Ok(chrome) = chrome(&state, &session, "").await else {
        return response;
    };
    let page = ErrorPage {
        chrome,
        status: shown.status,
        title: &shown.title,
        detail: &shown.detail,
    };
    (response.status(), render(&page)).into_response()
}

/// The top bar of a signed-in page: the session's username, its role's navigation and
/// the CSRF token for the logout form.
pub(super) async fn chrome(
    state: &AppState,
    session: &UiSession,
    current: &'static str,
) -> Result<Chrome, UiError> {
    let me = state
        .users
        .get(&state.db, &session.caller, session.caller.id)
        .await?;
    Ok(Chrome {
        signed_in: true,
        username: me.username,
        is_admin: session.caller.require_admin().is_ok(),
        csrf: session.csrf.clone(),
        current,
    })
}

/// A `{id}` path segment that must be a UUID; anything else is the UI's 404 page.
#[derive(Debug, Clone, Copy)]
pub struct UiId(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for UiId {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| no_such_page())?;
        raw.parse().map(Self).map_err(|_| no_such_page())
    }
}

pub fn no_such_page() -> UiError {
    UiError(Problem::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "There is no page at this address.",
    ))
}

/// Any other path under /ui: the UI's own 404 page, not the API's problem+json.
pub async fn unknown_page() -> UiError {
    no_such_page()
}

/// Pages for administrators only: anyone else gets the same 404 as for an unknown page,
/// so the page's existence is not advertised (the use cases refuse them again).
pub fn admin_only(session: &UiSession) -> Result<(), UiError> {
    session.caller.require_admin().map_err(|_| no_such_page())
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
    notice: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Set by the password page when it could not start the new session itself.
    #[serde(default)]
    password_changed: Option<String>,
}

pub async fn login_page(axum::extract::Query(query): axum::extract::Query<LoginQuery>) -> Response {
    render(&LoginPage {
        username: "",
        error: None,
        notice: query
            .password_changed
            .is_some()
            .then_some("Your password was changed. Log in with the new password."),
    })
}

/// The `Set-Cookie` value that makes an access token the session.
pub fn set_session_cookie(
    token: &keyinfra_core::auth::AccessToken,
    over_tls: bool,
) -> Result<HeaderValue, UiError> {
    let secure = if over_tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        token.token,
        token.expires_in.whole_seconds()
    );
    HeaderValue::from_str(&cookie).map_err(|_| UiError(crate::problem::internal_error()))
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

/// Whether a form post comes from a page of this server, by what browsers say of every
/// POST: `Sec-Fetch-Site` (all current browsers), else `Origin` against `Host`. A request
/// with neither is not from a browser's cross-site form (curl, scripts) and passes; there
/// is no session to ride on before login, so the session's CSRF token cannot guard it.
pub fn same_site_post(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// The login form: the API's login use case; its token becomes the session cookie. A
/// cross-site post is refused before the password is looked at (login CSRF would log the
/// victim's browser into the attacker's account). There is no session yet whose CSRF
/// token could guard it, so it alone takes axum's `Form`.
#[allow(clippy::disallowed_types)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    tls: Option<axum::Extension<OverTls>>,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    if !same_site_post(&headers) {
        let page = LoginPage {
            username: "",
            error: Some(
                "This login form was sent from another site. Open the login page of this server and log in there.",
            ),
            notice: None,
        };
        return (StatusCode::FORBIDDEN, render(&page)).into_response();
    }
    let result = state
        .users
        .login(&state.db, &form.username, form.password, address)
        .await;
    let refused = |status: StatusCode, message: &str| {
        let page = LoginPage {
            username: &form.username,
            error: Some(message),
            notice: None,
        };
        (status, render(&page)).into_response()
    };
    match result {
        Ok(token) => match set_session_cookie(&token, tls.is_some()) {
            Ok(value) => ([(header::SET_COOKIE, value)], Redirect::to("/ui")).into_response(),
            Err(error) => error.into_response(),
        },
        Err(CoreError::InvalidCredentials) => refused(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.",
        ),
        Err(CoreError::Throttled(_)) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins. Wait a few minutes before trying again.",
        ),
        Err(CoreError::Busy { .. }) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy. Try again in a moment.",
        ),
        Err(other) => UiError::from(other).into_response(),
    }
}

/// The logout form: nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {}

/// Logout (a form with the CSRF token): ends the user's sessions in the database (the
/// cookie's token stops working everywhere, also as a Bearer token) and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    session: UiSession,
    CsrfForm(LogoutForm {}): CsrfForm<LogoutForm>,
) -> Result<Response, UiError> {
    state.users.logout(&state.db, &session.caller).await?;
    Ok(to_login())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_login_posts_pass() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(same_site_post(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!same_site_post(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(!same_site_post(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(same_site_post(&headers(&[
            ("origin", "http://ca.example:8080"),
            ("host", "ca.example:8080")
        ])));
        assert!(!same_site_post(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "ca.example:8080")
        ])));
        assert!(!same_site_post(&headers(&[
            ("origin", "null"),
            ("host", "ca.example:8080")
        ])));
        assert!(same_site_post(&headers(&[])));
    }
}
