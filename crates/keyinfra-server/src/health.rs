//! `/healthz` (the process is up) and `/readyz` (the database answers and its schema is the
//! one this build expects). Load balancers route on `/readyz`; orchestrators restart on
//! `/healthz`, which therefore never touches the database.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keyinfra_db::DbError;
use serde::Serialize;

use crate::{AppState, Problem};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
}

#[derive(Debug, Serialize)]
struct Ready {
    status: &'static str,
    schema_version: i64,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

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
