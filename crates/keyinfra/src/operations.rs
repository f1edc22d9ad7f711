//! Scheduled jobs and expiry alerts: their settings, `keyinfra jobs ...`, and the settings
//! of the scheduler that `serve`'s `App` starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use keyinfra_core::alerts::{AlertService, AlertSettings, EmailSettings, WebhookSettings};
use keyinfra_core::authority::Authority;
use keyinfra_core::jobs::{Job, JobSettings, Jobs};
use keyinfra_core::{Clock, CoreError};
use keyinfra_db::Database;
use keyinfra_server::SchedulerSettings;
use zeroize::Zeroizing;

/// How the jobs run and what the alerts say; shared by `serve` and `jobs run`.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// Monthly certificate partitions to keep created ahead of the current month.
    #[arg(long, env = "KEYINFRA_PARTITIONS_AHEAD", default_value_t = 24,
          value_parser = clap::value_parser!(i32).range(0..=240))]
    pub partitions_ahead: i32,

    /// How long certificates (with their revocations and keys) are kept after they expire.
    #[arg(long, env = "KEYINFRA_RETENTION", default_value = "730days",
          value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// Job schedules that differ from the defaults, as NAME=INTERVAL pairs separated by
    /// commas, e.g. `stats-refresh=1m,expiry-alerts=15m`; `off` stops scheduling a job.
    /// Defaults: partition-maintenance=1day, stats-refresh=5m, crl-refresh=15m,
    /// expire-certificates=1h, expiry-alerts=1h, ocsp-responders=6h, scep-ras=6h,
    /// acme-nonces=5m.
    #[arg(long, env = "KEYINFRA_JOB_SCHEDULES", value_delimiter = ',')]
    pub job_schedules: Vec<String>,

    /// Certificates expiring within this window are announced (once each).
    #[arg(long, env = "KEYINFRA_ALERT_WINDOW", default_value = "7days",
          value_parser = humantime::parse_duration)]
    pub alert_window: Duration,

    /// Expiry alerts are POSTed here as JSON, signed with HMAC-SHA256.
    #[arg(long, env = "KEYINFRA_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,

    /// File holding the webhook signing secret (>= 16 bytes; KEYINFRA_ALERT_WEBHOOK_SECRET
    /// may hold it instead). Required with a webhook URL.
    #[arg(long, env = "KEYINFRA_ALERT_WEBHOOK_SECRET_FILE")]
    pub alert_webhook_secret_file: Option<PathBuf>,

    /// SMTP server for e-mail alerts: `smtp://[user:password@]host[:port][?tls=required]` or
    /// `smtps://...`. KEYINFRA_SMTP_URL_FILE may name a file holding it instead.
    #[arg(long, env = "KEYINFRA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// File holding the SMTP URL (it may contain a password).
    #[arg(long, env = "KEYINFRA_SMTP_URL_FILE")]
    pub smtp_url_file: Option<PathBuf>,

    /// The From address of e-mail alerts.
    #[arg(
        long,
        env = "KEYINFRA_ALERT_EMAIL_FROM",
        default_value = "KeyInfra <keyinfra@localhost>"
    )]
    pub alert_email_from: String,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Run one job now, once (for operators who prefer cron); refused while another replica
    /// runs it.
    Run {
        /// partition-maintenance, stats-refresh, crl-refresh, expire-certificates,
        /// expiry-alerts, ocsp-responders, scep-ras or acme-nonces.
        name: String,
        #[command(flatten)]
        settings: Box<JobArgs>,
    },
    /// Show every job's schedule and last run.
    List,
}

fn to_time(d: Duration, setting: &str) -> anyhow::Result<time::Duration> {
    time::Duration::try_from(d).with_context(|| format!("{setting} is too large"))
}

fn job_settings(args: &JobArgs) -> anyhow::Result<JobSettings> {
    let mut settings = JobSettings {
        partitions_ahead: args.partitions_ahead,
        retention: to_time(args.retention, "KEYINFRA_RETENTION")?,
        ..JobSettings::default()
    };
    for pair in args.job_schedules.iter().filter(|p| !p.trim().is_empty()) {
        let Some((name, every)) = pair.split_once('=') else {
            bail!("KEYINFRA_JOB_SCHEDULES: {pair:?} is not NAME=INTERVAL");
        };
        let job = Job::from_name(name.trim()).with_context(|| {
            format!(
                "KEYINFRA_JOB_SCHEDULES: no job is called {:?}; the jobs are {}",
                name.trim(),
                Job::ALL.map(Job::name).join(", ")
            )
        })?;
        let every = match every.trim() {
            "off" | "0" => time::Duration::ZERO,
            text => {
                let d = humantime::parse_duration(text).with_context(|| {
                    format!(
                        "KEYINFRA_JOB_SCHEDULES: {text:?} is not an interval such as 5m or 1day"
                    )
                })?;
                if d < Duration::from_secs(1) {
                    bail!("KEYINFRA_JOB_SCHEDULES: {name} must run at most once a second");
                }
                to_time(d, "KEYINFRA_JOB_SCHEDULES")?
            }
        };
        settings.every.retain(|(j, _)| *j != job);
        settings.every.push((job, every));
    }
    Ok(settings)
}

fn alert_settings(args: &JobArgs) -> anyhow::Result<AlertSettings> {
    let mut settings = AlertSettings {
        window: to_time(args.alert_window, "KEYINFRA_ALERT_WINDOW")?,
        ..AlertSettings::default()
    };
    if let Some(url) = &args.alert_webhook_url {
        let url: reqwest::Url = url
            .parse()
            .context("KEYINFRA_ALERT_WEBHOOK_URL is not a URL")?;
        let secret = match crate::secrets::from_environment("KEYINFRA_ALERT_WEBHOOK_SECRET") {
            Some(value) => Zeroizing::new(value.as_bytes().to_vec()),
            None => {
                let path = args.alert_webhook_secret_file.as_ref().context(
                    "a webhook needs a signing secret: set KEYINFRA_ALERT_WEBHOOK_SECRET_FILE \
                     (--alert-webhook-secret-file) or KEYINFRA_ALERT_WEBHOOK_SECRET",
                )?;
                let bytes = std::fs::read(path).with_context(|| {
                    format!(
                        "cannot read the webhook secret file {} (KEYINFRA_ALERT_WEBHOOK_SECRET_FILE)",
                        path.display()
                    )
                })?;
                let trimmed = bytes.trim_ascii().to_vec();
                Zeroizing::new(trimmed)
            }
        };
        if secret.len() < 16 {
            bail!("the webhook signing secret must be at least 16 bytes long");
        }
        settings.webhook = Some(WebhookSettings {
            url,
            secret,
            timeout: Duration::from_secs(10),
        });
    }
    let smtp_url = match (&args.smtp_url, &args.smtp_url_file) {
        (Some(url), _) => Some(Zeroizing::new(url.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the SMTP URL file {} (KEYINFRA_SMTP_URL_FILE)",
                    path.display()
                )
            })?;
            Some(Zeroizing::new(text.trim().to_owned()))
        }
        (None, None) => None,
    };
    if let Some(smtp_url) = smtp_url {
        let from = args.alert_email_from.parse().context(
            "KEYINFRA_ALERT_EMAIL_FROM is not an address such as \"KeyInfra <pki@example.net>\"",
        )?;
        settings.email = Some(EmailSettings { smtp_url, from });
    }
    Ok(settings)
}

/// This replica's name in the job records: host name and process id.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keyinfra".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The jobs' schedules, the alert channels and this replica's name, checked: what `serve`
/// hands to `App::build` for its scheduler.
pub fn scheduler_settings(args: &JobArgs) -> anyhow::Result<SchedulerSettings> {
    let jobs = job_settings(args)?;
    let alerts = AlertService::new(alert_settings(args)?).map_err(|e| match e {
        CoreError::Invalid { detail, .. } => anyhow::anyhow!(detail),
        other => anyhow::Error::new(other),
    })?;
    Ok(SchedulerSettings {
        jobs,
        alerts,
        replica: replica_name(),
    })
}

/// The job runner for `jobs run`, from the settings.
fn jobs(
    db: &Database,
    authority: Arc<Authority>,
    clock: Arc<dyn Clock>,
    args: &JobArgs,
) -> anyhow::Result<Jobs> {
    let settings = scheduler_settings(args)?;
    Ok(Jobs::new(
        db.clone(),
        authority,
        Arc::new(settings.alerts),
        clock,
        settings.jobs,
        settings.replica,
    ))
}

#[allow(clippy::print_stdout)] // A command's output is its result.
pub async fn command(
    db: &Database,
    authority: Arc<Authority>,
    clock: Arc<dyn Clock>,
    command: JobsCommand,
) -> anyhow::Result<()> {
    match command {
        JobsCommand::Run { name, settings } => {
            let job = Job::from_name(&name).with_context(|| {
                format!(
                    "no job is called {name:?}; the jobs are {}",
                    Job::ALL.map(Job::name).join(", ")
                )
            })?;
            let runner = jobs(db, authority, clock, &settings)?;
            let report = runner.run_now(job).await.map_err(|e| match e {
                CoreError::Conflict { detail, .. } => anyhow::anyhow!(detail),
                other => anyhow::Error::new(other),
            })?;
            if report.succeeded {
                println!(
                    "{job}: {} ({} ms)",
                    report.message,
                    report.duration.whole_milliseconds()
                );
                Ok(())
            } else {
                bail!("{job} failed: {}", report.message)
            }
        }
        JobsCommand::List => {
            let rows =
                keyinfra_core::jobs::job_status(db, &keyinfra_core::Principal::Operator).await?;
            println!(
                "{:<22} {:<8} {:>9} {:<20} {:<20} MESSAGE",
                "JOB", "LAST", "MS", "LAST SUCCESS", "NEXT RUN"
            );
            let short = |t: time::OffsetDateTime| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .unwrap_or_default()
            };
            for r in rows {
                println!(
                    "{:<22} {:<8} {:>9} {:<20} {:<20} {}",
                    r.name,
                    r.last_outcome.as_deref().unwrap_or("-"),
                    r.last_duration_ms.map_or("-".to_owned(), |d| d.to_string()),
                    r.last_success_at.map_or("-".to_owned(), short),
                    short(r.next_run_at),
                    r.last_message.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: JobArgs,
    }

    fn parse(extra: &[&str]) -> JobArgs {
        let mut argv = vec!["test"];
        argv.extend_from_slice(extra);
        Wrapper::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn schedules_override_defaults_and_can_be_turned_off() {
        let settings = job_settings(&parse(&[
            "--job-schedules",
            "stats-refresh=1m,expiry-alerts=off",
        ]))
        .unwrap();
        let every = |job| settings.every.iter().find(|(j, _)| *j == job).unwrap().1;
        assert_eq!(every(Job::Stats), time::Duration::minutes(1));
        assert_eq!(every(Job::Alerts), time::Duration::ZERO);
        assert_eq!(every(Job::Partitions), time::Duration::days(1));
    }

    #[test]
    fn bad_schedules_name_the_problem() {
        for (input, expect) in [
            ("nope=1m", "no job is called"),
            ("stats-refresh", "not NAME=INTERVAL"),
            ("stats-refresh=soon", "not an interval"),
            ("stats-refresh=10ms", "at most once a second"),
        ] {
            let error = job_settings(&parse(&["--job-schedules", input]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expect), "{input}: {error}");
        }
    }

    #[test]
    fn a_webhook_needs_a_long_enough_secret() {
        let error = alert_settings(&parse(&["--alert-webhook-url", "http://127.0.0.1:9/x"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("signing secret"), "{error}");
    }
}
