//! Request ids, the per-request log span, slow-request logging, HTTP metrics, and
//! `GET /metrics` (Prometheus text format).
//!
//! Counters and histograms are recorded where the work happens (`metrics::counter!` in the
//! core and here) into one process-wide Prometheus recorder. Numbers that describe the
//! database rather than this process — certificates by status, what expires soon, each
//! job's last success — are read at scrape time, so every replica reports the same truth.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use uuid::Uuid;

use crate::AppState;

/// The header that carries a request's id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Latency buckets in seconds, from sub-millisecond reads to multi-second RSA key generation.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; ours then stays empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        start_upkeep(handle.clone());
        handle
    })
}

/// How often the recorder folds recorded histogram samples into its buckets.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The thread that runs the recorder's upkeep (its name, so a test can find it).
const METRICS_UPKEEP_THREAD: &str = "metrics-upkeep";

/// The recorder keeps every histogram sample until it folds them into buckets, which it
/// does only on a scrape or in `run_upkeep`: a server nobody scrapes would grow by 8 bytes
/// per request per histogram, for ever. `build_recorder` starts no upkeep of its own
/// (`install` would, but needs a runtime and owns the listener), so one thread does it for
/// the process, as the recorder lives for the process.
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name(METRICS_UPKEEP_THREAD.to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(METRICS_UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread; histogram samples are folded only on a scrape");
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "keyinfra_http_requests_total",
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        "keyinfra_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route, method and status"
    );
    describe_counter!(
        "keyinfra_certificates_issued_total",
        "Certificates issued, by key algorithm and key source"
    );
    describe_histogram!(
        "keyinfra_issuance_duration_seconds",
        Unit::Seconds,
        "Issuance latency (checks, key generation, signing, storing) by key algorithm"
    );
    describe_histogram!(
        "keyinfra_challenge_claim_batch_size",
        "Enrollment challenges (SCEP, EST) claimed per statement"
    );
    describe_counter!("keyinfra_revocations_total", "Revocations by reason");
    describe_histogram!(
        "keyinfra_crl_build_duration_seconds",
        Unit::Seconds,
        "CRL build time: reading the revoked list, signing, storing"
    );
    describe_gauge!(
        "keyinfra_crl_size_bytes",
        Unit::Bytes,
        "Size of the newest CRL this process published, per CA"
    );
    describe_gauge!(
        "keyinfra_crl_entries",
        "Entries in the newest CRL this process published, per CA"
    );
    describe_counter!(
        "keyinfra_crls_published_total",
        "CRLs published by this process"
    );
    describe_gauge!(
        "keyinfra_certificates",
        "Certificates by status (from the certificate_stats view, refreshed by the stats-refresh job)"
    );
    describe_gauge!(
        "keyinfra_certificates_expiring",
        "Active certificates expiring within 7 or 30 days (certificate_stats view)"
    );
    describe_gauge!(
        "keyinfra_certificate_stats_age_seconds",
        Unit::Seconds,
        "Age of the certificate_stats view"
    );
    describe_gauge!(
        "keyinfra_db_pool_connections",
        "Database pool connections: open, idle, max"
    );
    describe_histogram!(
        "keyinfra_db_acquire_seconds",
        Unit::Seconds,
        "Time to get a pooled connection and begin a transaction"
    );
    describe_counter!(
        "keyinfra_db_conflict_retries_total",
        "Transactions retried after a serialization failure or deadlock"
    );
    describe_gauge!(
        "keyinfra_job_last_success_timestamp_seconds",
        Unit::Seconds,
        "When each job last succeeded (any replica), Unix time"
    );
    describe_gauge!(
        "keyinfra_job_last_duration_seconds",
        Unit::Seconds,
        "How long each job's last run took (any replica)"
    );
    describe_gauge!(
        "keyinfra_job_last_run_succeeded",
        "1 if each job's last run (any replica) succeeded, else 0"
    );
    describe_counter!(
        "keyinfra_job_runs_total",
        "Job runs on this replica by outcome"
    );
    describe_histogram!(
        "keyinfra_job_duration_seconds",
        Unit::Seconds,
        "Job run time on this replica"
    );
    describe_counter!(
        "keyinfra_alerts_total",
        "Expiry alert deliveries by channel and outcome"
    );
}

/// A client's `X-Request-Id` if it is short and plain, else a new UUID.
fn request_id(request: &Request) -> HeaderValue {
    let plain = |v: &&HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 64
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match request.headers().get(REQUEST_ID).filter(plain) {
        Some(value) => value.clone(),
        None => {
            let mut text = Uuid::encode_buffer();
            let text = Uuid::new_v4().hyphenated().encode_lower(&mut text);
            // A hyphenated UUID is always a valid header value.
            HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("invalid"))
        }
    }
}

/// The two HTTP series of one method, route and status.
struct HttpSeries {
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// Every HTTP series recorded so far, by route (a bounded set: route templates, methods
/// and statuses). Looking a series up in the recorder by its labels allocates and hashes
/// them, twice a request; the handles found once are kept here instead.
type SeriesByRoute = std::sync::RwLock<HashMap<String, Vec<HttpSeries>>>;

fn record_http(method: &'static str, route: &str, status: u16, elapsed: Duration) {
    static SERIES: OnceLock<SeriesByRoute> = OnceLock::new();
    let series = SERIES.get_or_init(Default::default);
    let seconds = elapsed.as_secs_f64();
    let record = |known: &[HttpSeries]| {
        known
            .iter()
            .find(|s| s.method == method && s.status == status)
            .map(|s| {
                s.requests.increment(1);
                s.duration.record(seconds);
            })
            .is_some()
    };
    if let Ok(routes) = series.read()
        && routes.get(route).is_some_and(|known| record(known))
    {
        return;
    }
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    let new = HttpSeries {
        method,
        status,
        requests: metrics::counter!("keyinfra_http_requests_total", &labels),
        duration: metrics::histogram!("keyinfra_http_request_duration_seconds", &labels),
    };
    new.requests.increment(1);
    new.duration.record(seconds);
    if let Ok(mut routes) = series.write() {
        let known = routes.entry(route.to_owned()).or_default();
        // Another request may have added it meanwhile: the handles are the same series.
        if !known
            .iter()
            .any(|s| s.method == method && s.status == status)
        {
            known.push(new);
        }
    }
}

/// The outermost layer: gives every request an id (echoed in `X-Request-Id`), runs it in a
/// span that carries the id (so every log line of the request has it), records the HTTP
/// metrics, and logs slow requests.
pub async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let id = request_id(&request);
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let method = method_label(request.method());
    // The fields are only formatted when the span is enabled (INFO, the default).
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or_default(),
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    {
        // The route template (not the path, whose ids would explode the label set).
        let route = response
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |m| m.as_str());
        let status = response.status().as_u16();
        record_http(method, route, status, elapsed);
        let _entered = span.enter();
        let duration_ms = elapsed.as_millis() as u64;
        if elapsed >= state.slow_request {
            tracing::warn!(%route, %status, duration_ms, "slow request");
        } else {
            tracing::debug!(%route, %status, duration_ms, "request finished");
        }
    }
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The method as a metrics label: the standard ones by name, anything else `OTHER`. A
/// client chooses the method's text, and every distinct label value is a new series kept
/// for the life of the process.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Inside the router (a route layer): copies the matched route onto the response, where
/// [`track`] reads it.
pub async fn route_label(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// GET /metrics on the API's listeners: only with `Authorization: Bearer` and either the
/// dedicated `KEYINFRA_METRICS_TOKEN` or an ADMIN's access token (401 without credentials,
/// 403 for a USER). The series tell an attacker how many certificates exist and whether the
/// jobs run; Prometheus is given the dedicated token (docs/operations.md).
pub async fn metrics_endpoint(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    match authorize_scrape(&state, &headers).await {
        Ok(()) => render_metrics(&state).await,
        Err(problem) => problem.into_response(),
    }
}

async fn authorize_scrape(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<(), crate::Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            crate::problem::unauthorized(
                "/metrics needs Authorization: Bearer with KEYINFRA_METRICS_TOKEN or an ADMIN's access token",
            )
        })?;
    if state.edge.is_metrics_token(token) {
        return Ok(());
    }
    let caller = state.users.authenticate(token)?;
    caller.require_admin()?;
    // The database re-checks the token (disabled, demoted, logged out) as for any request.
    state.users.get(&state.db, &caller, caller.id).await?;
    Ok(())
}

/// A router that serves only `GET /metrics`, without credentials: for
/// `KEYINFRA_METRICS_LISTEN`, an address that only the monitoring network reaches.
pub fn metrics_only(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move {
                render_metrics(&state).await
            }),
        )
        .fallback(crate::problem::not_found)
        .with_state(state)
}

/// The Prometheus text. Database-derived gauges are skipped (and the rest still served)
/// when the database cannot be reached.
async fn render_metrics(state: &AppState) -> Response {
    let usage = state.db.usage();
    for (kind, value) in [
        ("open", usage.open),
        ("idle", usage.idle),
        ("max", usage.max),
    ] {
        metrics::gauge!("keyinfra_db_pool_connections", "state" => kind).set(f64::from(value));
    }
    if let Err(e) = database_gauges(state).await {
        tracing::debug!(error = %e, "metrics: database gauges unavailable");
    }
    let body = prometheus().render();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        Body::from(body),
    )
        .into_response()
}

async fn database_gauges(state: &AppState) -> Result<(), keyinfra_core::CoreError> {
    let (rows, schedules) = keyinfra_core::dashboard::operations_snapshot(&state.db).await?;

    let mut by_status = std::collections::BTreeMap::new();
    for status in keyinfra_db::CertificateStatus::ALL {
        by_status.insert(status.as_str(), 0i64);
    }
    let (mut in_7, mut in_30) = (0i64, 0i64);
    let mut refreshed = None;
    for row in &rows {
        *by_status.entry(row.status.as_str()).or_default() += row.certificates;
        in_7 += row.expiring_7d;
        in_30 += row.expiring_30d;
        refreshed = refreshed.max(Some(row.refreshed_at));
    }
    for (status, count) in by_status {
        metrics::gauge!("keyinfra_certificates", "status" => status).set(count as f64);
    }
    metrics::gauge!("keyinfra_certificates_expiring", "within" => "7d").set(in_7 as f64);
    metrics::gauge!("keyinfra_certificates_expiring", "within" => "30d").set(in_30 as f64);
    if let Some(at) = refreshed {
        let age = state.clock.now() - at;
        metrics::gauge!("keyinfra_certificate_stats_age_seconds").set(age.as_seconds_f64());
    }
    for job in schedules {
        if let Some(at) = job.last_success_at {
            metrics::gauge!("keyinfra_job_last_success_timestamp_seconds", "job" => job.name.clone())
                .set(at.unix_timestamp() as f64);
        }
        if let Some(ms) = job.last_duration_ms {
            metrics::gauge!("keyinfra_job_last_duration_seconds", "job" => job.name.clone())
                .set(ms as f64 / 1000.0);
        }
        if let Some(outcome) = &job.last_outcome {
            metrics::gauge!("keyinfra_job_last_run_succeeded", "job" => job.name.clone())
                .set(if outcome == "succeeded" { 1.0 } else { 0.0 });
        }
    }
    Ok(())
}

/// How slow a request must be to be logged at WARN, unless configured.
pub const DEFAULT_SLOW_REQUEST: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    /// Without its upkeep the recorder holds every histogram sample until a scrape.
    #[test]
    fn the_recorder_comes_with_its_upkeep_thread() {
        super::prometheus();
        let thread_names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect()
        };
        // A new thread names itself once it runs (until then it has its parent's name).
        let mut threads = thread_names();
        for _ in 0..100 {
            if threads
                .iter()
                .any(|name| name == super::METRICS_UPKEEP_THREAD)
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            threads = thread_names();
        }
        panic!(
            "no {} thread among {threads:?}",
            super::METRICS_UPKEEP_THREAD
        );
    }
}
