use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use keyinfra_db::audit::{ActionFilter, AuditFilter};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::timestamp;
use crate::extract::Authenticated;
use crate::pagination::{Page, PageQuery, encode_cursor};
use crate::{AppState, Problem};
use keyinfra_core::ErrorCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only events by this user id.
    pub actor: Option<Uuid>,
    /// Only this action, e.g. `user.login_failed`.
    pub action: Option<String>,
    /// Only events about this object (a user or certificate id).
    pub target: Option<Uuid>,
    /// Only events at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only events before this RFC 3339 time.
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: String,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, Problem> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidTime,
                    format!("{name} must be an RFC 3339 timestamp"),
                )
            })
        })
        .transpose()
}

/// The audit log, newest first, with filters (ADMIN).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>), (status = 403)))]
async fn list_audit(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Page<AuditEvent>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let filter = AuditFilter {
        actor_id: q.actor,
        action: q
            .action
            .as_deref()
            .map_or(ActionFilter::Any, ActionFilter::parse),
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        target_id: q.target,
        before: page.keyset()?,
    };
    let (rows, more) = keyinfra_core::users::audit_log(&state.db, &caller, &filter, limit).await?;
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(r.occurred_at, r.id))
    } else {
        None
    };
    Ok(Json(Page {
        items: rows
            .into_iter()
            .map(|r| AuditEvent {
                id: r.id,
                occurred_at: timestamp(r.occurred_at),
                actor_id: r.actor_id,
                actor_name: r.actor_name,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                details: r.details,
            })
            .collect(),
        next_cursor,
    }))
}
