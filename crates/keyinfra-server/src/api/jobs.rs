//! Scheduled jobs (GET /api/v1/jobs) and the expiry-alert record (GET /api/v1/alerts), for
//! administrators.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use keyinfra_core::ErrorCode;
use keyinfra_core::Principal;
use keyinfra_core::jobs::{Job, job_runs, job_status};
use keyinfra_db::alerts::AlertFilter;
use keyinfra_db::{AlertChannel, AlertStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::timestamp;
use crate::extract::Authenticated;
use crate::pagination::{Page, PageQuery, encode_cursor};
use crate::{AppState, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(list_job_runs))
        .routes(routes!(list_alerts))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatus {
    /// e.g. `partition-maintenance`.
    pub name: String,
    pub next_run_at: String,
    /// The replica running it now, if any.
    pub running_on: Option<String>,
    pub last_started_at: Option<String>,
    pub last_finished_at: Option<String>,
    /// `succeeded` or `failed`.
    pub last_outcome: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub last_success_at: Option<String>,
    /// The last run's summary, or its error.
    pub last_message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobsList {
    pub items: Vec<JobStatus>,
}

/// Every scheduled job with its last run, outcome and duration (ADMIN).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "operations",
    responses((status = 200, body = JobsList), (status = 403)))]
async fn list_jobs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<JobsList>, Problem> {
    let rows = job_status(&state.db, &Principal::User(caller)).await?;
    Ok(Json(JobsList {
        items: rows
            .into_iter()
            .map(|r| JobStatus {
                name: r.name,
                next_run_at: timestamp(r.next_run_at),
                running_on: r.running_on,
                last_started_at: r.last_started_at.map(timestamp),
                last_finished_at: r.last_finished_at.map(timestamp),
                last_outcome: r.last_outcome,
                last_duration_ms: r.last_duration_ms,
                last_success_at: r.last_success_at.map(timestamp),
                last_message: r.last_message,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRun {
    pub id: i64,
    pub replica: String,
    /// `schedule` or `manual` (`keyinfra jobs run`).
    pub trigger: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `succeeded`, `failed`, or null while running.
    pub outcome: Option<String>,
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRunList {
    pub items: Vec<JobRun>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RunsQuery {
    /// Runs to return, newest first, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// A job's recent runs, newest first (ADMIN).
#[utoipa::path(get, path = "/api/v1/jobs/{name}/runs", tag = "operations",
    params(("name" = String, Path), RunsQuery),
    responses((status = 200, body = JobRunList), (status = 403), (status = 404)))]
async fn list_job_runs(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(name): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<JobRunList>, Problem> {
    let limit = PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .limit()?;
    let requester = Principal::User(caller);
    requester.require_admin()?;
    let job = Job::from_name(&name).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownJob,
            format!(
                "no job is called {name:?}; the jobs are {}",
                Job::ALL.map(Job::name).join(", ")
            ),
        )
    })?;
    let rows = job_runs(&state.db, &requester, job, limit).await?;
    Ok(Json(JobRunList {
        items: rows
            .into_iter()
            .map(|r| JobRun {
                id: r.id,
                replica: r.replica,
                trigger: r.trigger,
                started_at: timestamp(r.started_at),
                finished_at: r.finished_at.map(timestamp),
                outcome: r.outcome,
                duration_ms: r.duration_ms,
                message: r.message,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AlertQuery {
    /// `pending`, `sent`, `failed` or `skipped`.
    pub status: Option<String>,
    /// `log`, `webhook` or `email`.
    pub channel: Option<String>,
    pub certificate_id: Option<Uuid>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    pub id: Uuid,
    pub certificate_id: Uuid,
    pub ca_id: Uuid,
    /// The expiry announced.
    pub not_after: String,
    pub owner_id: Option<Uuid>,
    pub channel: String,
    /// The webhook URL or e-mail address; empty for the log.
    pub recipient: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// What expiry alerts were sent, are pending or failed, newest first (ADMIN).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "operations", params(AlertQuery),
    responses((status = 200, body = Page<Alert>), (status = 403), (status = 422)))]
async fn list_alerts(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<AlertQuery>,
) -> Result<Json<Page<Alert>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor.clone(),
    };
    let limit = page.limit()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            AlertStatus::from_label(s).ok_or_else(|| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidStatus,
                    "status must be pending, sent, failed or skipped",
                )
            })
        })
        .transpose()?;
    let channel = q
        .channel
        .as_deref()
        .map(|c| {
            AlertChannel::from_label(c).ok_or_else(|| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::InvalidChannel,
                    "channel must be log, webhook or email",
                )
            })
        })
        .transpose()?;
    let filter = AlertFilter {
        status,
        channel,
        certificate_id: q.certificate_id,
    };
    let (rows, next) = keyinfra_core::alerts::list_alerts(
        &state.db,
        &Principal::User(caller),
        &filter,
        page.keyset()?,
        limit,
    )
    .await?;
    Ok(Json(Page {
        items: rows
            .into_iter()
            .map(|a| Alert {
                id: a.id,
                certificate_id: a.certificate_id,
                ca_id: a.ca_id,
                not_after: timestamp(a.not_after),
                owner_id: a.owner_id,
                channel: a.channel.as_str().to_owned(),
                recipient: a.recipient,
                status: a.status.as_str().to_owned(),
                attempts: a.attempts,
                next_attempt_at: timestamp(a.next_attempt_at),
                created_at: timestamp(a.created_at),
                sent_at: a.sent_at.map(timestamp),
                last_error: a.last_error,
            })
            .collect(),
        next_cursor: next.map(|(at, id)| encode_cursor(at, id)),
    }))
}
