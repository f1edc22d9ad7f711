//! KeyInfra's HTTP server (axum).
//!
//! Conventions every endpoint follows (set by the identity issue):
//! - JSON in and out, RFC 3339 UTC timestamps, UUID ids;
//! - lists are `{"items": [...], "next_cursor": ...}` with keyset pagination;
//! - every error is RFC 9457 problem+json with a stable `code` ([`Problem`]), produced by the
//!   single mappings from `DbError` and `CoreError`; internal causes are logged, never sent;
//! - every request's database work is one transaction whose identity is the caller's token,
//!   re-checked by the database as it begins;
//! - routes are registered together with their OpenAPI description, served at
//!   `/api/v1/openapi.json`.
//!
//! [`App`] (src/app.rs) is where the server is put together, for `serve` and the tests alike.

pub mod accept;
mod api;
mod app;
pub mod edge;
mod extract;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod health;
pub mod observability;
mod pagination;
mod problem;
mod protocols;
pub mod tls;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use keyinfra_core::ErrorCode;
use keyinfra_core::authority::Authority;
use keyinfra_core::users::UserService;
use keyinfra_db::Database;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use accept::{Limits, Listeners};
pub use app::{App, AppConfig, BuildError, DEFAULT_CRL_TICK, SchedulerSettings, UserSettings};
pub use problem::Problem;
pub use ui::OverTls;

/// Largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    /// The schema version this build needs; `/readyz` compares the database with it.
    pub expected_schema_version: i64,
    pub users: Arc<UserService>,
    pub authority: Arc<Authority>,
    /// Requests slower than this are logged at WARN.
    pub slow_request: std::time::Duration,
    /// What applies at the edge: trusted proxies, the body deadline, the metrics token.
    pub edge: Arc<edge::EdgeSettings>,
    /// SCEP PKIOperations per client address (`EdgeSettings::scep_per_minute`).
    pub scep_limit: Arc<keyinfra_core::rate::AddressLimiter>,
    /// EST requests per client address (`EdgeSettings::est_per_minute`).
    pub est_limit: Arc<keyinfra_core::rate::AddressLimiter>,
    /// ACME requests per client address (`EdgeSettings::acme_per_minute`).
    pub acme_limit: Arc<keyinfra_core::rate::AddressLimiter>,
    /// The composition root's clock (the services hold the same one): pages read "now"
    /// from here to show ages and expiries, never from a service's internals.
    pub clock: Arc<dyn keyinfra_core::Clock>,
    /// ACME (`/acme/`, and its binding keys at `/api/v1/acme/eab`).
    pub acme: Arc<keyinfra_core::acme::AcmeService>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "KeyInfra API", description = "Certificate authority for network devices"),
    components(schemas(api::users::Role)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// What anyone may fetch without logging in, over plain HTTP: CA certificates (`/ca/...`),
/// CRLs (`/crl/...`) and OCSP (`/ocsp`). Clients fetch them from the URLs inside
/// certificates, and a revocation check cannot depend on TLS. The one list of the public
/// listener's paths (the next protocol, `/scep`, joins it here); [`routes`] includes it.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(api::cas::public_router())
        .merge(protocols::ocsp::public_router())
        .merge(protocols::scep::public_router())
}

/// The routes and their OpenAPI document, built together so that they cannot drift.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public_routes())
        .merge(health::router())
        .merge(api::auth::router())
        .merge(api::users::router())
        .merge(api::audit::router())
        .merge(api::certificates::router())
        .merge(api::cas::router())
        .merge(api::jobs::router())
        .merge(api::policies::router())
        .merge(api::enrollment::router())
        .merge(api::acme::router())
        // EST: HTTPS only, so never on the public listener.
        .merge(protocols::est::router())
        .split_for_parts()
}

/// The whole HTTP surface (what [`App::router`] serves).
pub fn router(state: AppState) -> Router {
    // Install the recorder now: what is recorded before it exists is lost, and the first
    // scrape may come long after the first issuance.
    observability::prometheus();
    let (routes, openapi) = routes();
    let openapi = Arc::new(openapi);
    let routes = routes
        .merge(ui::router(state.clone()))
        // ACME: HTTPS only, as EST; RFC 8555 is its document, not OpenAPI.
        .merge(protocols::acme::router())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let openapi = Arc::clone(&openapi);
                async move { axum::Json((*openapi).clone()) }
            }),
        )
        .route(
            "/metrics",
            axum::routing::get(observability::metrics_endpoint),
        )
        .route_layer(axum::middleware::from_fn(observability::route_label))
        .fallback(problem::not_found);
    with_edge(routes, state)
}

/// Only [`public_routes`] (what [`App::public_router`] serves); any other path is a 404
/// problem that says where the rest is.
pub fn public_router(state: AppState) -> Router {
    let (routes, _) = public_routes().split_for_parts();
    let routes = routes
        .route_layer(axum::middleware::from_fn(observability::route_label))
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "this plain-HTTP listener serves only CA certificates (/ca/...), CRLs (/crl/...), OCSP (/ocsp) and SCEP (/scep, /cgi-bin/pkiclient.exe); use HTTPS",
            )
            .into_response()
        });
    with_edge(routes, state)
}

/// What every listener's router gets around its routes (and their fallback, set before):
/// problem+json for a wrong method, the body limit and deadline, request ids, metrics and
/// the slow-request log.
fn with_edge(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::read_body_in_time,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observability::track,
        ))
        .with_state(state)
}
