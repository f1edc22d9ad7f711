//! The web UI: server-rendered pages (askama templates, one CSS file, no script) for admins
//! and users. Every page calls the same use cases as the API (`keyinfra_core`), as the
//! session's caller; nothing here decides who may see or do what.
//!
//! - Sessions: the login form gets the API's access token and keeps it in the
//!   `keyinfra_session` cookie (HttpOnly, SameSite=Strict, Path=/, Secure over TLS).
//!   [`session::UiSession`] authenticates it exactly like the bearer extractor; the database
//!   re-checks it as every transaction begins. Without a valid session a page redirects to
//!   `/ui/login`.
//! - CSRF: every state-changing form carries the session's CSRF token (HMAC of the token's
//!   `sub` and `jti` under a key derived from the server secret); a POST without it is
//!   refused with 403 before anything is written.
//! - Errors, and any unknown path under `/ui`, are HTML pages in the same layout (never the
//!   API's problem+json); admin-only pages answer everyone else with the same 404.
//! - Every response carries a strict Content-Security-Policy (no script at all, no framing),
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
//!
//! Layers: each module uses only those above it in this list, never one below it, so
//! there is no import loop.
//! 1. `view`: how values read on a page (dates, names, [`view::Chrome`], the revocation
//!    reasons); no state, no other UI module.
//! 2. `session`: the session cookie and [`session::UiSession`], the CSRF-checked form
//!    extractor, the page chrome of a session, errors and their pages, `render`.
//! 3. `pages`: dashboard, certificate list and detail (with the detail page that the
//!    actions show again with their errors), the owner menu.
//! 4. The handlers built on them: `actions` and `audit` (which use `pages`), and `issue`,
//!    `enrollment`, `users`, `policies`, `cas`, `account` (which need only `session` and
//!    `view`).

mod account;
mod acme;
mod actions;
mod audit;
mod cas;
mod enrollment;
mod issue;
mod pages;
mod policies;
mod session;
mod users;
mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

pub use session::OverTls;

use crate::AppState;

/// The stylesheet, compiled in: the UI needs nothing from outside the binary.
const STYLE: &str = include_str!("style.css");

const CSP: &str = "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui", get(pages::dashboard))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/certificates", get(pages::certificates))
        .route(
            "/ui/certificates/new",
            get(issue::new_form).post(issue::issue),
        )
        .route("/ui/certificates/{id}", get(pages::certificate))
        .route("/ui/certificates/{id}/pem", get(pages::pem))
        .route("/ui/certificates/{id}/revoke", post(actions::revoke))
        .route("/ui/certificates/{id}/pkcs12", post(actions::pkcs12))
        .route("/ui/certificates/{id}/renew", post(actions::renew))
        .route(
            "/ui/enrollment",
            get(enrollment::show).post(enrollment::create),
        )
        .route("/ui/enrollment/{id}/withdraw", post(enrollment::withdraw))
        .route(
            "/ui/enrollment/requests/{id}/approve",
            post(enrollment::approve),
        )
        .route(
            "/ui/enrollment/requests/{id}/reject",
            post(enrollment::reject),
        )
        .route("/ui/acme", get(acme::show))
        .route("/ui/acme/eab", post(acme::create_eab))
        .route("/ui/acme/accounts/{id}/deactivate", post(acme::deactivate))
        .route("/ui/cas", get(cas::page))
        .route("/ui/users", get(users::list))
        .route("/ui/users/new", get(users::new_form).post(users::create))
        .route("/ui/users/{id}", get(users::show))
        .route("/ui/users/{id}/role", post(users::set_role))
        .route("/ui/users/{id}/status", post(users::set_status))
        .route(
            "/ui/users/{id}/delete",
            get(users::confirm_delete).post(users::delete),
        )
        .route("/ui/users/{id}/policy", post(users::set_policy))
        .route("/ui/policies", get(policies::list).post(policies::create))
        .route(
            "/ui/policies/{id}",
            get(policies::show).post(policies::update),
        )
        .route("/ui/policies/{id}/delete", post(policies::delete))
        .route("/ui/audit", get(audit::page))
        .route(
            "/ui/account/password",
            get(account::form).post(account::change),
        )
        .route("/ui/static/style.css", get(style))
        .route("/ui/{*rest}", any(session::unknown_page))
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::error_layout,
        ))
        .layer(axum::middleware::map_response(security_headers))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
