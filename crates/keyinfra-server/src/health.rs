//! `/healthz` (the process is up) and `/readyz` (the database answers and its schema is the
//! one this build expects). Load balancers route on `/readyz`; orchestrators restart on
//! `/healthz`, which therefore never touches the database.

use axum::Json;
use axum::extract::State;
use keyinfra_db::DbError;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Problem};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, ToSchema)]
struct Health {
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
struct Ready {
    status: &'static str,
    schema_version: i64,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(), responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "health", security(), responses((status = 200, body = Ready), (status = 503)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, Problem> {
    let found = state.db.schema_version().await?;
    if found != state.expected_schema_version {
        tracing::warn!(
            found,
            expected = state.expected_schema_version,
            "schema not current"
        );
        return Err(DbError::SchemaNotCurrent {
            found,
            expected: state.expected_schema_version,
        }
        .into());
    }
    Ok(Json(Ready {
        status: "ready",
        schema_version: found,
    }))
}
