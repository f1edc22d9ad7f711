//! The CRL benchmark: CRL build time and peak memory at 100k and 1M revoked certificates,
//! and the latency of a revocation request (over HTTP, with the background publisher
//! rebuilding the long CRL meanwhile) before and after the CRL is long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyinfra_core::authority::Authority;
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::{Database, UserRole};
use keyinfra_server::{App, Limits, Listeners};

pub struct CrlConfig {
    pub server_url: String,
    pub sizes: Vec<i64>,
    pub revocations: usize,
}

/// Resets the kernel's peak-RSS counter for this process (Linux: `echo 5 > clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `p`th percentile of ascending samples (nearest rank); 0 for none.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[allow(clippy::print_stdout)]
pub async fn run(config: &CrlConfig) -> anyhow::Result<()> {
    let crate::boot::Fresh {
        url,
        db,
        clock,
        config: mut app_config,
    } = crate::boot::fresh_app(&config.server_url, "keyinfra_bench_crl", |settings| {
        settings.quota = None;
    })
    .await?;
    // A server on loopback, with its background CRL publisher, as in production.
    app_config.crl_tick = Duration::from_secs(3600);
    let app = App::build(app_config, &mut OsRandom).await?;
    let authority = Arc::clone(&app.state().authority);
    let ca_id = authority.cas.list_cas(&db).await?[0].id;
    app.state()
        .users
        .create(
            &db,
            None,
            "bench-admin",
            "bench-admin-password".into(),
            UserRole::Admin,
            None,
            &mut OsRandom,
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(app.serve(
        Listeners::plain(listener),
        Limits::default(),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("http://{address}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "bench-admin", "password": "bench-admin-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let mut revocation_rows = Vec::new();
    let mut crl_rows = Vec::new();
    let mut loaded = 0;
    revocation_rows.push(
        revocation_latency(
            &authority,
            &db,
            &http,
            address,
            &token,
            config.revocations,
            loaded,
        )
        .await?,
    );
    for &size in &config.sizes {
        eprintln!("loading {} revocations ...", size - loaded);
        keyinfra_db::bench::load_revocations(&url, ca_id, size - loaded, clock.now()).await?;
        loaded = size;
        let mut times = Vec::new();
        let mut peak = 0.0f64;
        let mut bytes = 0;
        for _ in 0..3 {
            reset_peak_rss();
            let before = peak_rss_mib();
            let started = Instant::now();
            let crl = authority.crls.publish_crl(&db, ca_id).await?;
            times.push(started.elapsed().as_secs_f64());
            peak = peak.max(peak_rss_mib() - before);
            bytes = crl.full_bytes.unwrap_or_default();
        }
        times.sort_by(f64::total_cmp);
        crl_rows.push(format!(
            "| {size} | {:.2} | {:.2} | {:.0} | {:.1} |",
            times[0],
            times[1],
            peak,
            bytes as f64 / 1_048_576.0
        ));
        if (100_000..=200_000).contains(&size) {
            revocation_rows.push(
                revocation_latency(
                    &authority,
                    &db,
                    &http,
                    address,
                    &token,
                    config.revocations,
                    size,
                )
                .await?,
            );
        }
    }

    println!("## CRL benchmark");
    println!();
    println!(
        "- machine: {} cores; PostgreSQL on the same machine; CA key ECDSA P-384",
        crate::cores()
    );
    println!();
    println!(
        "| revoked, unexpired | build+sign+store s (best) | median s | peak extra RSS MiB | CRL MiB |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for row in crl_rows {
        println!("{row}");
    }
    println!();
    println!(
        "Revocation requests (POST /api/v1/certificates/{{id}}/revoke over HTTP, one at a time; the background publisher rebuilds the CRL after each burst):"
    );
    println!();
    println!("| revoked already | requests | p50 ms | p99 ms | max ms |");
    println!("|---:|---:|---:|---:|---:|");
    for row in revocation_rows {
        println!("{row}");
    }
    db.close().await;
    Ok(())
}

async fn revocation_latency(
    authority: &Authority,
    db: &Database,
    http: &reqwest::Client,
    address: std::net::SocketAddr,
    token: &str,
    count: usize,
    already: i64,
) -> anyhow::Result<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let cert = authority
            .issuer
            .issue(
                db,
                &Principal::Operator,
                keyinfra_core::issuer::IssueRequest {
                    key: keyinfra_core::issuer::KeySource::Generate(
                        keyinfra_pki::KeyAlgorithm::EcdsaP256,
                    ),
                    subject: Some(format!("CN=revoke-me-{already}-{n}")),
                    san: None,
                    profile: "device".into(),
                    validity_days: Some(90),
                    owner_id: None,
                    ca_id: None,
                    policy_id: None,
                },
                &mut OsRandom,
            )
            .await?;
        ids.push(cert.id);
    }
    let mut latencies = Vec::with_capacity(count);
    for id in ids {
        let started = Instant::now();
        let response = http
            .post(format!("http://{address}/api/v1/certificates/{id}/revoke"))
            .bearer_auth(token)
            .json(&serde_json::json!({"reason": "keyCompromise"}))
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status.is_success(), "revocation answered {status}");
        // Spread them out a little so that several CRL rebuilds overlap the requests.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(format!(
        "| {already} | {count} | {:.2} | {:.2} | {:.2} |",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default()
    ))
}
