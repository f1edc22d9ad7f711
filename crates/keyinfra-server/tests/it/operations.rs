//! Scheduled jobs and expiry alerts, with real receivers: a webhook server on loopback and
//! Python's aiosmtpd as the SMTP server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use axum::http::{HeaderMap, StatusCode};
use keyinfra_core::acme::{AcmeNonces, NONCE_LIFETIME};
use keyinfra_core::alerts::{AlertService, AlertSettings, EmailSettings, WebhookSettings};
use keyinfra_core::auth::token::JwtSecret;
use keyinfra_core::jobs::{Job, JobSettings, Jobs};
use keyinfra_core::{CoreError, ErrorCode, OsRandom};
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::support::{PASSWORD, TestApp};

const WEBHOOK_SECRET: &[u8] = b"webhook-secret-for-tests-0123456789";

/// A webhook receiver: records every request; answers 503 to the first `fail_first`.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Self, String) {
        let receiver = Receiver {
            fail_first: Arc::new(Mutex::new(fail_first)),
            ..Receiver::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push((headers, body));
                    let mut fail = state.fail_first.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, format!("http://{addr}/hook"))
    }

    fn requests(&self) -> Vec<(HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// aiosmtpd on a loopback port, storing every message in a Maildir.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Debian's interpreter, where python3-aiosmtpd installs (not a pyenv one on PATH).
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .spawn()
            .expect("python3 with aiosmtpd (Debian: python3-aiosmtpd) runs the SMTP server");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return SmtpServer {
                    child,
                    port,
                    maildir,
                    _dir: dir,
                };
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start listening on port {port}");
    }

    /// Every delivered message, as text.
    fn messages(&self) -> Vec<String> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jobs(app: &TestApp, db: keyinfra_db::Database, replica: &str, alerts: AlertSettings) -> Jobs {
    let settings = JobSettings {
        every: vec![],
        ..JobSettings::default()
    };
    Jobs::new(
        db,
        app.state.authority.clone(),
        Arc::new(AlertService::new(alerts).unwrap()),
        app.clock.clone(),
        settings,
        replica.to_owned(),
    )
}

fn alert_settings(webhook: Option<&str>, smtp_port: Option<u16>) -> AlertSettings {
    AlertSettings {
        webhook: webhook.map(|url| WebhookSettings {
            url: url.parse().unwrap(),
            secret: Zeroizing::new(WEBHOOK_SECRET.to_vec()),
            timeout: StdDuration::from_secs(5),
        }),
        email: smtp_port.map(|port| EmailSettings {
            smtp_url: Zeroizing::new(format!("smtp://127.0.0.1:{port}")),
            from: "KeyInfra <keyinfra@example.net>".parse().unwrap(),
        }),
        ..AlertSettings::default()
    }
}

fn parse_time(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
}

async fn set_email(app: &TestApp, admin: &str, user: uuid::Uuid, email: &str) {
    let (status, body) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{user}"),
            admin,
            json!({ "email": email }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], email);
}

#[tokio::test]
async fn expiry_alerts_reach_the_webhook_and_smtp_once_and_skip_renewed_certificates() {
    let app = TestApp::spawn().await;
    let admin_id = app.user("root", UserRole::Admin).await;
    let alice_id = app.user("alice", UserRole::User).await;
    let admin = app.token("root").await;
    set_email(&app, &admin, admin_id, "ops@example.net").await;
    set_email(&app, &admin, alice_id, "alice@example.net").await;

    let issue = |cn: &str, days: u32| {
        json!({ "subject": format!("CN={cn}"), "san": [format!("{cn}.example.net")],
                "validity_days": days, "owner_id": alice_id })
    };
    let expiring = app.issue(&admin, issue("expiring", 3)).await;
    let _later = app.issue(&admin, issue("later", 30)).await;
    let renewed = app.issue(&admin, issue("renewed", 2)).await;
    let revoked = app.issue(&admin, issue("revoked", 2)).await;
    let (status, body) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/renew",
                renewed["id"].as_str().unwrap()
            ),
            &admin,
            json!({ "validity_days": 365 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                revoked["id"].as_str().unwrap()
            ),
            &admin,
            json!({ "reason": "superseded" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The webhook fails once: the delivery is retried (with backoff) and succeeds.
    let (receiver, url) = Receiver::start(1).await;
    let smtp = SmtpServer::start().await;
    let settings = || alert_settings(Some(&url), Some(smtp.port));
    let first = jobs(&app, app.db.clone(), "replica-a", settings());
    let report = first.run_now(Job::Alerts).await.unwrap();
    assert!(report.succeeded, "{report:?}");
    assert!(
        report.message.starts_with("4 recorded, 4 sent"),
        "{}",
        report.message
    );
    // Again, on this replica and on another one: nothing new is announced.
    let second = jobs(&app, app.tdb.database().await, "replica-b", settings());
    for runner in [&first, &second] {
        let report = runner.run_now(Job::Alerts).await.unwrap();
        assert!(
            report.message.starts_with("0 recorded, 0 sent"),
            "{}",
            report.message
        );
    }

    // The webhook: one failed attempt, then exactly one delivery, signed.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one 503, one success");
    let (headers, body) = &requests[1];
    assert_eq!(requests[0].1, *body, "the retry sends the same body");
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["event"], "certificate.expiring");
    assert_eq!(payload["certificate"]["id"], expiring["id"]);
    assert_eq!(
        payload["certificate"]["serial_number"],
        expiring["serial_number"]
    );
    assert_eq!(payload["certificate"]["owner"], "alice");
    let timestamp = headers["x-keyinfra-timestamp"].to_str().unwrap();
    let signature = headers["x-keyinfra-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        format!(
            "sha256={}",
            keyinfra_core::alerts::sign_webhook(WEBHOOK_SECRET, timestamp, body)
        )
    );
    assert_ne!(
        signature,
        format!(
            "sha256={}",
            keyinfra_core::alerts::sign_webhook(b"another-secret-another-secret", timestamp, body)
        )
    );

    // E-mail: the owner and the admin, once each, about the expiring certificate only.
    let mut messages = smtp.messages();
    messages.sort();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let to: Vec<bool> = ["alice@example.net", "ops@example.net"]
        .iter()
        .map(|addr| messages.iter().any(|m| m.contains(&format!("To: {addr}"))))
        .collect();
    assert_eq!(to, [true, true], "{messages:#?}");
    for m in &messages {
        assert!(m.contains("CN=expiring"), "{m}");
        assert!(
            m.contains(expiring["serial_number"].as_str().unwrap()),
            "{m}"
        );
        assert!(!m.contains("CN=renewed") && !m.contains("CN=revoked") && !m.contains("CN=later"));
    }

    // The record, through the API: four sent alerts, all for the expiring certificate.
    let (status, list) = app.get("/api/v1/alerts", &admin).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{list}");
    assert!(items.iter().all(|a| a["certificate_id"] == expiring["id"]
        && a["status"] == "sent"
        && a["sent_at"].is_string()));
    let mut channels: Vec<&str> = items
        .iter()
        .map(|a| a["channel"].as_str().unwrap())
        .collect();
    channels.sort_unstable();
    assert_eq!(channels, ["email", "email", "log", "webhook"]);
    let (_, webhooks) = app.get("/api/v1/alerts?channel=webhook", &admin).await;
    assert_eq!(webhooks["items"].as_array().unwrap().len(), 1);
    assert_eq!(webhooks["items"][0]["recipient"], url);
    let (status, bad) = app.get("/api/v1/alerts?status=lost", &admin).await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (422, Some("invalid_status"))
    );

    // Users see neither the alerts nor the jobs.
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
    let alice = app.token("alice").await;
    assert_eq!(app.get("/api/v1/alerts", &alice).await.0, 403);
    assert_eq!(app.get("/api/v1/jobs", &alice).await.0, 403);
}

#[tokio::test]
async fn an_unreachable_webhook_is_recorded_as_failed_after_the_last_attempt() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let cert = app
        .issue(
            &admin,
            json!({ "subject": "CN=soon", "san": ["soon.example.net"], "validity_days": 1 }),
        )
        .await;
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = alert_settings(Some(&format!("http://127.0.0.1:{port}/hook")), None);
    settings.max_attempts = 2;
    let runner = jobs(&app, app.db.clone(), "replica-a", settings);
    let report = runner.run_now(Job::Alerts).await.unwrap();
    assert!(report.message.contains("1 to retry"), "{}", report.message);
    let (_, list) = app.get("/api/v1/alerts?channel=webhook", &admin).await;
    let alert = &list["items"][0];
    assert_eq!(alert["certificate_id"], cert["id"]);
    assert_eq!(alert["status"], "pending");
    assert_eq!(alert["attempts"], 1);
    assert!(
        alert["last_error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{alert}"
    );
    // The retry waits (backoff): a run now does not touch it.
    let report = runner.run_now(Job::Alerts).await.unwrap();
    assert!(
        report.message.starts_with("0 recorded, 0 sent, 0 to retry"),
        "{}",
        report.message
    );
    let next_attempt = parse_time(&alert["next_attempt_at"]);
    assert!(next_attempt > parse_time(&alert["created_at"]) + time::Duration::seconds(30));

    // Once due, the second (last) attempt fails for good.
    app.tdb
        .owner_execute("UPDATE expiry_alerts SET next_attempt_at = now() - interval '1 second'")
        .await;
    let report = runner.run_now(Job::Alerts).await.unwrap();
    assert!(report.message.contains("1 failed"), "{}", report.message);
    let (_, list) = app.get("/api/v1/alerts?status=failed", &admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["attempts"], 2);
}

#[tokio::test]
async fn the_expire_job_marks_certificates_past_their_expiry() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let short = app
        .issue(
            &admin,
            json!({ "subject": "CN=short", "san": ["short.example.net"], "validity_days": 1 }),
        )
        .await;
    let long = app
        .issue(
            &admin,
            json!({ "subject": "CN=long", "san": ["long.example.net"], "validity_days": 10 }),
        )
        .await;
    let runner = jobs(&app, app.db.clone(), "replica-a", AlertSettings::default());
    let report = runner.run_now(Job::Expire).await.unwrap();
    assert_eq!(report.message, "0 certificates marked EXPIRED");
    app.clock.advance(time::Duration::days(2));
    let admin = app.token("root").await;
    let report = runner.run_now(Job::Expire).await.unwrap();
    assert_eq!(report.message, "1 certificates marked EXPIRED");
    let status = |c: &Value| format!("/api/v1/certificates/{}", c["id"].as_str().unwrap());
    assert_eq!(
        app.get(&status(&short), &admin).await.1["status"],
        "EXPIRED"
    );
    assert_eq!(app.get(&status(&long), &admin).await.1["status"], "ACTIVE");
    // Idempotent.
    let report = runner.run_now(Job::Expire).await.unwrap();
    assert_eq!(report.message, "0 certificates marked EXPIRED");
}

/// The acme-nonces job forgets spent ACME nonces once they are too old to be presented,
/// and only those; a forgotten nonce is still refused, for its age.
#[tokio::test]
async fn the_acme_nonces_job_forgets_only_nonces_past_their_lifetime() {
    let app = TestApp::spawn().await;
    let secret = JwtSecret::new(vec![7; 32]).unwrap();
    let nonces = AcmeNonces::new(&secret, app.clock.clone());
    let spent = nonces.issue(&mut OsRandom).unwrap();
    nonces.spend(&app.db, &spent).await.unwrap();
    let runner = jobs(&app, app.db.clone(), "replica-a", AlertSettings::default());
    let report = runner.run_now(Job::AcmeNonces).await.unwrap();
    assert_eq!(report.message, "0 expired ACME nonces forgotten");

    app.clock.advance(NONCE_LIFETIME / 2);
    let younger = nonces.issue(&mut OsRandom).unwrap();
    nonces.spend(&app.db, &younger).await.unwrap();
    app.clock
        .advance(NONCE_LIFETIME / 2 + time::Duration::seconds(1));
    let report = runner.run_now(Job::AcmeNonces).await.unwrap();
    assert_eq!(report.message, "1 expired ACME nonces forgotten");
    let report = runner.run_now(Job::AcmeNonces).await.unwrap();
    assert_eq!(report.message, "0 expired ACME nonces forgotten");
    for nonce in [&spent, &younger] {
        match nonces.spend(&app.db, nonce).await {
            Err(CoreError::Invalid { code, .. }) => assert_eq!(code, ErrorCode::BadNonce),
            other => panic!("a spent nonce was accepted again: {other:?}"),
        }
    }
}

/// Two replicas with one-second schedules for a few seconds: each scheduled run happens
/// on exactly one of them, never overlapping, never sooner than the interval.
#[tokio::test]
async fn two_replicas_run_each_job_once_per_schedule() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let every = time::Duration::seconds(1);
    let scheduled = [Job::Stats, Job::Expire, Job::Crls, Job::Partitions];
    let make = |db, replica: &str| {
        let settings = JobSettings {
            every: scheduled.iter().map(|j| (*j, every)).collect(),
            ..JobSettings::default()
        };
        Arc::new(Jobs::new(
            db,
            app.state.authority.clone(),
            Arc::new(AlertService::new(AlertSettings::default()).unwrap()),
            app.clock.clone(),
            settings,
            replica.to_owned(),
        ))
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(make(app.db.clone(), "replica-a").run_scheduler(stopped.clone()));
    let b = tokio::spawn(make(app.tdb.database().await, "replica-b").run_scheduler(stopped));
    let started = std::time::Instant::now();
    tokio::time::sleep(StdDuration::from_millis(4500)).await;
    stop.send(true).unwrap();
    a.await.unwrap();
    b.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();

    let (status, jobs) = app.get("/api/v1/jobs", &admin).await;
    assert_eq!(status, 200, "{jobs}");
    let mut replicas = std::collections::BTreeSet::new();
    for job in scheduled {
        let row = jobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == job.name())
            .unwrap_or_else(|| panic!("{job} missing from {jobs}"));
        assert_eq!(row["last_outcome"], "succeeded", "{row}");
        assert!(row["last_duration_ms"].is_i64() && row["last_success_at"].is_string());

        let (status, runs) = app
            .get(&format!("/api/v1/jobs/{}/runs", job.name()), &admin)
            .await;
        assert_eq!(status, 200, "{runs}");
        let mut runs = runs["items"].as_array().unwrap().clone();
        runs.reverse();
        assert!(
            runs.len() >= 3,
            "{job}: only {} runs in {elapsed:.1}s",
            runs.len()
        );
        assert!(
            runs.len() as f64 <= elapsed.ceil() + 1.0,
            "{job}: {} runs in {elapsed:.1}s: some schedule ran twice",
            runs.len()
        );
        for pair in runs.windows(2) {
            let (earlier, later) = (&pair[0], &pair[1]);
            assert!(
                parse_time(&later["started_at"]) - parse_time(&earlier["started_at"]) >= every,
                "{job}: runs {earlier} and {later} are closer than the interval"
            );
            assert!(
                parse_time(&earlier["finished_at"]) <= parse_time(&later["started_at"]),
                "{job}: runs {earlier} and {later} overlap"
            );
        }
        for run in &runs {
            assert_eq!(run["outcome"], "succeeded", "{run}");
            assert_eq!(run["trigger"], "schedule");
            replicas.insert(run["replica"].as_str().unwrap().to_owned());
        }
    }
    // Every run was made by one of the two replicas (which one is whichever looked first).
    assert!(
        replicas
            .iter()
            .all(|r| r == "replica-a" || r == "replica-b"),
        "{replicas:?}"
    );

    let (status, body) = app.get("/api/v1/jobs/nope/runs", &admin).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("unknown_job")));
}

#[tokio::test]
async fn a_manual_run_is_refused_while_another_replica_holds_the_job() {
    let app = TestApp::spawn().await;
    let first = jobs(&app, app.db.clone(), "replica-a", AlertSettings::default());
    first.run_now(Job::Stats).await.unwrap();
    // Replica a's lease, as if it were still running the job.
    app.tdb
        .owner_execute(
            "UPDATE job_schedules SET lease_until = now() + interval '1 minute', \
             running_on = 'replica-a' WHERE name = 'stats-refresh'",
        )
        .await;
    let second = jobs(
        &app,
        app.tdb.database().await,
        "replica-b",
        AlertSettings::default(),
    );
    let refused = second.run_now(Job::Stats).await.unwrap_err().to_string();
    assert!(refused.contains("running on replica-a"), "{refused}");
    // Other jobs are not held.
    assert!(second.run_now(Job::Expire).await.unwrap().succeeded);
}

/// The sum of every sample of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// /metrics as Prometheus would read it, with an ADMIN's token (it needs credentials).
async fn scrape(app: &TestApp, token: &str) -> String {
    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_expose_the_series_and_move_when_work_happens() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let before = scrape(&app, &admin).await;
    let issued = |t: &str| {
        sample(
            t,
            "keyinfra_certificates_issued_total",
            &[("algorithm", "ecdsa-p256"), ("key_source", "server")],
        )
    };
    let revoked = |t: &str| {
        sample(
            t,
            "keyinfra_revocations_total",
            &[("reason", "keyCompromise")],
        )
    };
    let crls = |t: &str| sample(t, "keyinfra_crl_build_duration_seconds_count", &[]);

    let cert = app
        .issue(
            &admin,
            json!({ "subject": "CN=metered", "san": ["metered.example.net"], "validity_days": 5 }),
        )
        .await;
    let (status, body) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                cert["id"].as_str().unwrap()
            ),
            &admin,
            json!({ "reason": "keyCompromise" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let runner = jobs(&app, app.db.clone(), "replica-a", AlertSettings::default());
    runner.run_now(Job::Stats).await.unwrap();

    // The revocation's CRL is built in the background: wait for it.
    let mut after = scrape(&app, &admin).await;
    for _ in 0..50 {
        if crls(&after) > crls(&before) {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        after = scrape(&app, &admin).await;
    }
    assert!(issued(&after) >= issued(&before) + 1.0, "{after}");
    assert!(
        sample(
            &after,
            "keyinfra_issuance_duration_seconds_count",
            &[("algorithm", "ecdsa-p256")]
        ) >= 1.0
    );
    assert!(revoked(&after) >= revoked(&before) + 1.0);
    assert!(crls(&after) > crls(&before), "no CRL build recorded");
    assert!(sample(&after, "keyinfra_crl_size_bytes", &[]) > 0.0);
    assert!(
        sample(
            &after,
            "keyinfra_http_requests_total",
            &[
                ("route", "/api/v1/certificates"),
                ("method", "POST"),
                ("status", "201")
            ]
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            "keyinfra_http_request_duration_seconds_bucket",
            &[
                ("route", "/api/v1/certificates/{id}/revoke"),
                ("le", "+Inf")
            ]
        ) >= 1.0
    );
    // From the database: this app's view and job records.
    assert_eq!(
        sample(&after, "keyinfra_certificates", &[("status", "REVOKED")]),
        1.0
    );
    assert!(after.contains("keyinfra_certificates_expiring{within=\"7d\"}"));
    assert!(after.contains("keyinfra_certificates_expiring{within=\"30d\"}"));
    assert!(
        sample(
            &after,
            "keyinfra_job_last_success_timestamp_seconds",
            &[("job", "stats-refresh")]
        ) > 1.7e9
    );
    assert_eq!(
        sample(
            &after,
            "keyinfra_job_last_run_succeeded",
            &[("job", "stats-refresh")]
        ),
        1.0
    );
    assert!(sample(&after, "keyinfra_db_pool_connections", &[("state", "max")]) >= 1.0);
    assert!(sample(&after, "keyinfra_db_acquire_seconds_count", &[]) >= 1.0);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    // A caller's own id is kept when it is plain, replaced when it is not.
    let r = app
        .http
        .get(app.url("/api/v1/nothing"))
        .header("x-request-id", "lb-7f3a.42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "lb-7f3a.42");
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "has spaces and \"quotes\"")
        .send()
        .await
        .unwrap();
    let replaced = r.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");
}
