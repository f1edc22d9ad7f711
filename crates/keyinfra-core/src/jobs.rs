//! Scheduled jobs: what they do, and the scheduler that runs each on one replica at a time.
//!
//! Every `serve` replica runs [`Jobs::run_scheduler`]. For each job it tries to claim the
//! job's schedule row (`keyinfra_db::jobs::claim_scheduled`): one conditional UPDATE, so of
//! all replicas exactly one wins each scheduled run, and the winner holds a lease it renews
//! while the job runs. `keyinfra jobs run NAME` runs a job once through the same code
//! ([`Jobs::run_now`]), refusing while another replica holds the lease. Every job is
//! idempotent: running it twice in a row does nothing the second time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use keyinfra_db::{Actor, Database, acme, certificates, jobs as job_rows, partitions, stats};
use time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::ErrorCode;
use crate::alerts::AlertService;
use crate::authority::Authority;
use crate::clock::Clock;
use crate::error::CoreError;

/// The jobs there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Create the monthly `certificates` partitions ahead; drop those past retention, with
    /// their registry rows, revocations, alerts and the keys only they used.
    Partitions,
    /// Refresh the `certificate_stats` materialized view (the dashboard's numbers).
    Stats,
    /// Re-issue every CRL that is due before its nextUpdate.
    Crls,
    /// Mark certificates whose notAfter has passed EXPIRED.
    Expire,
    /// Announce certificates that expire within the alert window.
    Alerts,
    /// Give each CA a new OCSP responder certificate before the current one expires.
    OcspResponders,
    /// Renews the default issuing CA's SCEP RA certificate a month before it expires.
    ScepRas,
    /// Forget spent ACME nonces that are too old to be presented anyway.
    AcmeNonces,
}

impl Job {
    pub const ALL: [Job; 8] = [
        Job::Partitions,
        Job::Stats,
        Job::Crls,
        Job::Expire,
        Job::Alerts,
        Job::OcspResponders,
        Job::ScepRas,
        Job::AcmeNonces,
    ];

    /// The name in the database, the CLI, the API and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Job::Partitions => "partition-maintenance",
            Job::Stats => "stats-refresh",
            Job::Crls => "crl-refresh",
            Job::Expire => "expire-certificates",
            Job::Alerts => "expiry-alerts",
            Job::OcspResponders => "ocsp-responders",
            Job::ScepRas => "scep-ras",
            Job::AcmeNonces => "acme-nonces",
        }
    }

    pub fn from_name(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    /// How often it runs unless configured otherwise.
    pub fn default_every(self) -> Duration {
        match self {
            Job::Partitions => Duration::days(1),
            Job::Stats => Duration::minutes(5),
            Job::Crls => Duration::minutes(15),
            Job::Expire => Duration::hours(1),
            Job::Alerts => Duration::hours(1),
            Job::OcspResponders => Duration::hours(6),
            Job::ScepRas => Duration::hours(6),
            // The spent table holds what clients spend between two runs plus one nonce
            // lifetime (10 minutes).
            Job::AcmeNonces => Duration::minutes(5),
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the jobs are scheduled and what they keep.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Per job, how often; a job missing here is not scheduled (it can still be run by hand).
    pub every: Vec<(Job, Duration)>,
    /// Monthly partitions kept ready ahead of the current month.
    pub partitions_ahead: i32,
    /// How long after expiry certificates are kept (the design: 2 years).
    pub retention: Duration,
    /// How long a replica may hold a job without renewing its lease before another takes over.
    pub lease: Duration,
    /// Runs kept in the history per job.
    pub history: i64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            every: Job::ALL.iter().map(|j| (*j, j.default_every())).collect(),
            partitions_ahead: 24,
            retention: Duration::days(730),
            lease: Duration::minutes(2),
            history: 1000,
        }
    }
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub job: Job,
    pub succeeded: bool,
    pub message: String,
    pub duration: Duration,
}

/// Partition maintenance is batch work: one statement may take this long (the pool's
/// default, meant for requests, is 30 s).
const MAINTENANCE_STATEMENT_TIMEOUT: StdDuration = StdDuration::from_secs(30 * 60);

/// Rows per transaction when marking certificates expired.
const EXPIRE_BATCH: i64 = 5_000;

/// Spent ACME nonces deleted per transaction.
const NONCE_PURGE_BATCH: i64 = 10_000;

/// The job runner of one process.
#[derive(Debug)]
pub struct Jobs {
    db: Database,
    authority: Arc<Authority>,
    alerts: Arc<AlertService>,
    clock: Arc<dyn Clock>,
    settings: JobSettings,
    /// Who this replica is, in `job_runs.replica` and `running_on` (host and process id).
    replica: String,
}

impl Jobs {
    pub fn new(
        db: Database,
        authority: Arc<Authority>,
        alerts: Arc<AlertService>,
        clock: Arc<dyn Clock>,
        settings: JobSettings,
        replica: String,
    ) -> Self {
        Self {
            db,
            authority,
            alerts,
            clock,
            settings,
            replica,
        }
    }

    /// The job's work, without any claiming; returns a one-line summary.
    pub async fn perform(&self, job: Job) -> Result<String, CoreError> {
        let now = self.clock.now();
        match job {
            Job::Partitions => {
                // The maintenance functions run as the DATABASE_URL's login role, never as
                // keyinfra_app (migration 0014).
                let mut conn = self.db.maintenance().await?;
                let created =
                    partitions::ensure(&mut conn, self.settings.partitions_ahead, now).await?;
                conn.close().await;
                let report = partitions::apply_retention(
                    &self.db,
                    self.settings.retention,
                    now,
                    MAINTENANCE_STATEMENT_TIMEOUT,
                )
                .await?;
                for p in &report.dropped {
                    tracing::info!(partition = %p.name, certificates = p.rows,
                        "dropped a certificate partition past retention");
                }
                Ok(format!(
                    "{} partitions created, {} dropped ({} certificates), {} orphaned keys deleted",
                    created.len(),
                    report.dropped.len(),
                    report.dropped.iter().map(|p| p.rows).sum::<i64>(),
                    report.keys_deleted,
                ))
            }
            Job::Stats => {
                let mut conn = self.db.maintenance().await?;
                stats::refresh(&mut conn).await?;
                conn.close().await;
                Ok("certificate statistics refreshed".to_owned())
            }
            Job::Crls => {
                let published = self.authority.crls.refresh_stale_crls(&self.db).await?;
                Ok(format!("{published} CRLs re-issued"))
            }
            Job::Expire => {
                let mut total = 0;
                loop {
                    let mut tx = self.db.begin(&Actor::System).await?;
                    let changed = certificates::mark_expired(&mut tx, now, EXPIRE_BATCH).await?;
                    tx.commit().await?;
                    total += changed;
                    if changed < EXPIRE_BATCH as u64 {
                        break;
                    }
                }
                Ok(format!("{total} certificates marked EXPIRED"))
            }
            Job::Alerts => {
                let summary = self.alerts.run(&self.db, now).await?;
                Ok(summary.to_string())
            }
            Job::OcspResponders => {
                let made = self
                    .authority
                    .ocsp
                    .renew_responders(&self.db, &mut crate::OsRandom)
                    .await?;
                Ok(format!("{made} OCSP responder certificates issued"))
            }
            Job::ScepRas => {
                let made = self
                    .authority
                    .scep
                    .renew_ra(&self.db, &mut crate::OsRandom)
                    .await?;
                Ok(format!("{} SCEP RA certificates issued", usize::from(made)))
            }
            Job::AcmeNonces => {
                let mut total = 0;
                loop {
                    let mut tx = self.db.begin(&Actor::System).await?;
                    let deleted = acme::purge_spent_nonces(&mut tx, now, NONCE_PURGE_BATCH).await?;
                    tx.commit().await?;
                    total += deleted;
                    if deleted < NONCE_PURGE_BATCH as u64 {
                        break;
                    }
                }
                Ok(format!("{total} expired ACME nonces forgotten"))
            }
        }
    }

    /// Runs a claimed job, renewing its lease meanwhile, and records the outcome.
    async fn run_claimed(&self, job: Job, claim: job_rows::Claim) -> Result<JobReport, CoreError> {
        let started = std::time::Instant::now();
        let work = self.perform(job);
        tokio::pin!(work);
        let heartbeat_every = StdDuration::try_from(self.settings.lease / 3)
            .unwrap_or(StdDuration::from_secs(30))
            .max(StdDuration::from_millis(100));
        let mut heartbeat = tokio::time::interval(heartbeat_every);
        heartbeat.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                _ = heartbeat.tick() => {
                    if let Err(e) = self.renew(job).await {
                        tracing::warn!(job = %job, error = %e, "cannot renew the job's lease");
                    }
                }
            }
        };
        let duration = Duration::try_from(started.elapsed()).unwrap_or(Duration::ZERO);
        let (succeeded, message) = match &result {
            Ok(summary) => (true, summary.clone()),
            Err(e) => (false, e.to_string()),
        };
        let outcome = if succeeded { "succeeded" } else { "failed" };
        metrics::counter!("keyinfra_job_runs_total", "job" => job.name(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("keyinfra_job_duration_seconds", "job" => job.name())
            .record(duration.as_seconds_f64());
        if succeeded {
            tracing::info!(job = %job, duration_ms = duration.whole_milliseconds() as u64, %message, "job finished");
        } else {
            tracing::error!(job = %job, duration_ms = duration.whole_milliseconds() as u64, error = %message, "job failed");
        }
        let mut tx = self.db.begin(&Actor::System).await?;
        job_rows::finish(
            &mut tx,
            job.name(),
            &self.replica,
            claim,
            succeeded,
            duration,
            &message,
            self.settings.history,
        )
        .await?;
        tx.commit().await?;
        Ok(JobReport {
            job,
            succeeded,
            message,
            duration,
        })
    }

    async fn renew(&self, job: Job) -> Result<(), CoreError> {
        let mut tx = self.db.begin(&Actor::System).await?;
        job_rows::renew_lease(&mut tx, job.name(), &self.replica, self.settings.lease).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn register(&self) -> Result<(), CoreError> {
        let names: Vec<&str> = Job::ALL.iter().map(|j| j.name()).collect();
        let mut tx = self.db.begin(&Actor::System).await?;
        job_rows::register(&mut tx, &names).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs `job` once now, whatever its schedule (`keyinfra jobs run NAME`). Refused with a
    /// conflict while another replica runs it.
    pub async fn run_now(&self, job: Job) -> Result<JobReport, CoreError> {
        self.register().await?;
        let mut tx = self.db.begin(&Actor::System).await?;
        let claim =
            job_rows::claim_manual(&mut tx, job.name(), &self.replica, self.settings.lease).await?;
        tx.commit().await?;
        match claim {
            Ok(claim) => self.run_claimed(job, claim).await,
            Err(holder) => Err(CoreError::Conflict {
                code: ErrorCode::JobRunning,
                detail: format!(
                    "{job} is running on {} now; try again when it has finished",
                    holder.as_deref().unwrap_or("another replica")
                ),
            }),
        }
    }

    /// Runs the scheduled jobs until `stop` turns true, then waits for running ones.
    pub async fn run_scheduler(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let scheduled: Vec<(Job, Duration)> = self
            .settings
            .every
            .iter()
            .copied()
            .filter(|(_, every)| every.is_positive())
            .collect();
        let names: Vec<&str> = scheduled.iter().map(|(j, _)| j.name()).collect();
        let mut running: JoinSet<Job> = JoinSet::new();
        let mut busy: Vec<Job> = Vec::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let mut wait = StdDuration::from_secs(30);
            match self.register().await {
                Ok(()) => {
                    for (job, every) in &scheduled {
                        if busy.contains(job) {
                            continue;
                        }
                        match self.try_claim(*job, *every).await {
                            Ok(Some(claim)) => {
                                busy.push(*job);
                                let me = Arc::clone(&self);
                                let job = *job;
                                running.spawn(async move {
                                    if let Err(e) = me.run_claimed(job, claim).await {
                                        tracing::error!(job = %job, error = %e, "cannot record the job's run");
                                    }
                                    job
                                });
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(job = %job, error = %e, "cannot claim the job; retrying");
                                wait = StdDuration::from_secs(5);
                            }
                        }
                    }
                    if let Ok(Some(next)) = self.next_due(&names).await {
                        wait = wait.min(StdDuration::try_from(next).unwrap_or_default());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the job scheduler cannot reach the database; retrying");
                    wait = StdDuration::from_secs(5);
                }
            }
            // Not faster than every 100 ms: "due now" from another replica's clock race.
            let wait = wait.max(StdDuration::from_millis(100));
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(job) = done {
                        busy.retain(|j| *j != job);
                    }
                }
            }
            while let Some(done) = running.try_join_next() {
                if let Ok(job) = done {
                    busy.retain(|j| *j != job);
                }
            }
        }
        if !running.is_empty() {
            tracing::info!(jobs = running.len(), "waiting for running jobs to finish");
        }
        while running.join_next().await.is_some() {}
    }

    async fn try_claim(
        &self,
        job: Job,
        every: Duration,
    ) -> Result<Option<job_rows::Claim>, CoreError> {
        let mut tx = self.db.begin(&Actor::System).await?;
        let claim = job_rows::claim_scheduled(
            &mut tx,
            job.name(),
            &self.replica,
            every,
            self.settings.lease,
        )
        .await?;
        tx.commit().await?;
        Ok(claim)
    }

    async fn next_due(&self, names: &[&str]) -> Result<Option<Duration>, CoreError> {
        let mut tx = self.db.begin(&Actor::System).await?;
        let next = job_rows::next_due(&mut tx, names).await?;
        tx.commit().await?;
        Ok(next)
    }
}

/// The schedules and recent outcomes, for administrators (GET /api/v1/jobs).
pub async fn job_status(
    db: &Database,
    by: &crate::Principal,
) -> Result<Vec<job_rows::JobSchedule>, CoreError> {
    by.require_admin()?;
    let mut tx = db.begin(&by.actor()).await?;
    let rows = job_rows::schedules(&mut tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A job's recent runs, newest first, for administrators.
pub async fn job_runs(
    db: &Database,
    by: &crate::Principal,
    job: Job,
    limit: i64,
) -> Result<Vec<job_rows::JobRun>, CoreError> {
    by.require_admin()?;
    let mut tx = db.begin(&by.actor()).await?;
    let rows = job_rows::runs(&mut tx, job.name(), limit).await?;
    tx.commit().await?;
    Ok(rows)
}
