//! KeyInfra's HTTP server (axum).
//!
//! So far it serves the health endpoints; the REST API, the web UI and the CRL endpoints
//! build on the same pieces: [`AppState`], the [`Problem`] error type (RFC 9457
//! problem+json with a stable `code`, the only way an error leaves this crate), and
//! [`serve`], which shuts down gracefully.

mod health;
mod problem;

use std::future::Future;

use axum::Router;
use keyinfra_db::Database;
use tokio::net::TcpListener;

pub use problem::Problem;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    /// The schema version this build needs; `/readyz` compares the database with it.
    pub expected_schema_version: i64,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
