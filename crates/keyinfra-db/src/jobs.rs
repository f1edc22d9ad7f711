//! `job_schedules` and `job_runs`: which replica runs a scheduled job, and what happened.
//!
//! Claiming is one conditional UPDATE (see migration 0010): the replica whose UPDATE
//! matched runs the job; every other replica's UPDATE matches nothing. Times come from the
//! database (`now()`), so the replicas' clocks need not agree.

use sqlx::postgres::types::PgInterval;
use time::{Duration, OffsetDateTime};

use crate::error::DbError;
use crate::session::Tx;

/// A job's schedule row, as GET /api/v1/jobs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSchedule {
    pub name: String,
    pub next_run_at: OffsetDateTime,
    pub lease_until: Option<OffsetDateTime>,
    pub running_on: Option<String>,
    pub last_started_at: Option<OffsetDateTime>,
    pub last_finished_at: Option<OffsetDateTime>,
    pub last_outcome: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_message: Option<String>,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub replica: String,
    pub trigger: String,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub outcome: Option<String>,
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
}

/// A claimed run: the id of its `job_runs` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub run_id: i64,
}

fn interval(d: Duration) -> Result<PgInterval, DbError> {
    PgInterval::try_from(d).map_err(|e| DbError::Internal(format!("interval out of range: {e}")))
}

/// Makes sure every named job has a schedule row; a new one is due at once.
pub async fn register(tx: &mut Tx, names: &[&str]) -> Result<(), DbError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    sqlx::query!(
        "INSERT INTO job_schedules (name, next_run_at)
         SELECT name, now() FROM unnest($1::text[]) AS name
         ON CONFLICT (name) DO NOTHING",
        &names
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The earliest next run among `names` (None if none is registered).
pub async fn next_due(tx: &mut Tx, names: &[&str]) -> Result<Option<Duration>, DbError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let seconds = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM min(greatest(next_run_at, coalesce(lease_until, next_run_at))) - now())::float8
           FROM job_schedules WHERE name = ANY($1)"#,
        &names
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(seconds.map(|s| Duration::seconds_f64(s.max(0.0))))
}

/// Claims a scheduled run: succeeds only if the job is due and nobody holds its lease. The
/// next run moves `every` from now, and a `job_runs` row is started, in the same statement.
pub async fn claim_scheduled(
    tx: &mut Tx,
    name: &str,
    replica: &str,
    every: Duration,
    lease: Duration,
) -> Result<Option<Claim>, DbError> {
    let run_id = sqlx::query_scalar!(
        r#"WITH claimed AS (
               UPDATE job_schedules
               SET next_run_at = now() + $3, lease_until = now() + $4, running_on = $2,
                   last_started_at = now()
               WHERE name = $1 AND next_run_at <= now()
                 AND (lease_until IS NULL OR lease_until < now())
               RETURNING name
           )
           INSERT INTO job_runs (job, replica, trigger, started_at)
           SELECT name, $2, 'schedule', now() FROM claimed
           RETURNING id"#,
        name,
        replica,
        interval(every)?,
        interval(lease)?,
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(run_id.map(|run_id| Claim { run_id }))
}

/// Claims a run requested by an operator: the schedule is not moved, but a run already in
/// progress elsewhere (an unexpired lease) refuses it. Returns who holds the lease then.
pub async fn claim_manual(
    tx: &mut Tx,
    name: &str,
    replica: &str,
    lease: Duration,
) -> Result<Result<Claim, Option<String>>, DbError> {
    let run_id = sqlx::query_scalar!(
        r#"WITH claimed AS (
               UPDATE job_schedules
               SET lease_until = now() + $3, running_on = $2, last_started_at = now()
               WHERE name = $1 AND (lease_until IS NULL OR lease_until < now())
               RETURNING name
           )
           INSERT INTO job_runs (job, replica, trigger, started_at)
           SELECT name, $2, 'manual', now() FROM claimed
           RETURNING id"#,
        name,
        replica,
        interval(lease)?,
    )
    .fetch_optional(tx.conn())
    .await?;
    match run_id {
        Some(run_id) => Ok(Ok(Claim { run_id })),
        None => {
            let holder =
                sqlx::query_scalar!("SELECT running_on FROM job_schedules WHERE name = $1", name)
                    .fetch_optional(tx.conn())
                    .await?;
            Ok(Err(holder.flatten()))
        }
    }
}

/// Extends the lease of a running job (a heartbeat), if this replica still holds it.
pub async fn renew_lease(
    tx: &mut Tx,
    name: &str,
    replica: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "UPDATE job_schedules SET lease_until = now() + $3 WHERE name = $1 AND running_on = $2",
        name,
        replica,
        interval(lease)?,
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records how a claimed run ended, releases the lease, and keeps the newest `keep` runs.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    tx: &mut Tx,
    name: &str,
    replica: &str,
    claim: Claim,
    succeeded: bool,
    duration: Duration,
    message: &str,
    keep: i64,
) -> Result<(), DbError> {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    let duration_ms = i64::try_from(duration.whole_milliseconds()).unwrap_or(i64::MAX);
    sqlx::query!(
        r#"WITH run AS (
               UPDATE job_runs SET finished_at = greatest(now(), started_at), outcome = $3,
                                   duration_ms = $4, message = $5
               WHERE id = $6
               RETURNING job
           )
           UPDATE job_schedules
           SET lease_until = CASE WHEN running_on = $2 THEN NULL ELSE lease_until END,
               running_on = CASE WHEN running_on = $2 THEN NULL ELSE running_on END,
               last_finished_at = now(), last_outcome = $3, last_duration_ms = $4,
               last_message = $5,
               last_success_at = CASE WHEN $3 = 'succeeded' THEN now() ELSE last_success_at END
           WHERE name = $1"#,
        name,
        replica,
        outcome,
        duration_ms,
        message,
        claim.run_id,
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        "DELETE FROM job_runs WHERE job = $1 AND id <= (
             SELECT id FROM job_runs WHERE job = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
        name,
        keep
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Every schedule row, by name.
pub async fn schedules(tx: &mut Tx) -> Result<Vec<JobSchedule>, DbError> {
    let rows = sqlx::query_as!(
        JobSchedule,
        "SELECT name, next_run_at, lease_until, running_on, last_started_at, last_finished_at,
                last_outcome, last_duration_ms, last_success_at, last_message
         FROM job_schedules ORDER BY name"
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// A job's runs, newest first.
pub async fn runs(tx: &mut Tx, name: &str, limit: i64) -> Result<Vec<JobRun>, DbError> {
    let rows = sqlx::query_as!(
        JobRun,
        "SELECT id, job, replica, trigger, started_at, finished_at, outcome, duration_ms, message
         FROM job_runs WHERE job = $1 ORDER BY id DESC LIMIT $2",
        name,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}
