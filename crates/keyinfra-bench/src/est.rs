//! The EST benchmark (`scripts/bench-est`): simpleenroll per second over TLS with
//! keep-alive, P-256 CSRs made beforehand, at each concurrency, against KeyInfra's own REST
//! issuance from the same kind of CSRs (`POST /api/v1/certificates` with a bearer token) on
//! the same TLS listener in the same run. Each client holds one TLS connection for the
//! whole run (the handshake is outside the timing, as a device re-using its connection).
//!
//! EST authenticates each request with a one-time challenge (`{id}:{secret}`: a SHA-256
//! lookup and an atomic claim). A user's password is the other EST credential, and costs an
//! Argon2id check per request (tens of milliseconds of CPU): the login benchmark measures
//! that, not this one.
//!
//! Both paths are used by the same owners in the same order: an owner holds at most 100
//! live challenges, so the EST requests are spread over owners, 50 each, and the REST
//! request in the same position carries that owner's bearer token. Group commit shares a
//! transaction only among requests of one owner (row-level security applies per owner), so
//! a REST run by one user against EST by many measured owners, not paths: with every
//! challenge of one owner (an experiment, docs/benchmarks.md) EST/REST at concurrency 16
//! was 0.88-0.94 where this spread gave 0.78-0.80.
//!
//! The first tenth of each path's requests warms it up untimed; the table counts the rest.
//! Only a 200 (EST) or 201 (REST) counts as issued; anything else is reported as failed
//! (KeyInfra's run must have none).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use keyinfra_core::enrollment::CreateChallenge;
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use keyinfra_server::App;
use rustls::pki_types::ServerName;

use crate::crl::percentile;

pub struct EstConfig {
    pub server_url: String,
    pub enrollments: usize,
    pub concurrency: Vec<usize>,
}

/// Challenges per owner in one round: under the 100 live challenges an owner may hold.
const CHALLENGES_PER_OWNER: usize = 50;

/// One prepared request: the path, its headers and body.
pub(crate) struct Prepared {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    expect: u16,
}

#[allow(clippy::print_stdout)]
pub async fn run(config: &EstConfig) -> anyhow::Result<()> {
    let crate::boot::Fresh {
        db,
        config: mut app_config,
        ..
    } = crate::boot::fresh_app(&config.server_url, "keyinfra_bench_est", |settings| {
        // Measured: the issuance paths, not the per-user limits that guard them.
        settings.quota = None;
        settings.write_rate = None;
    })
    .await?;
    // Nor the per-address rate: every request comes from loopback.
    app_config.edge.est_per_minute = None;
    let app = App::build(app_config, &mut OsRandom).await?;
    let state = app.state().clone();
    let owners_needed = config.enrollments.div_ceil(CHALLENGES_PER_OWNER);
    // Each owner's id (for its challenges) and bearer token (for its REST issues).
    let mut owners = Vec::new();
    for n in 0..owners_needed {
        let name = format!("bench-owner-{n}");
        let user = state
            .users
            .create(
                &db,
                None,
                &name,
                "bench-owner-password".into(),
                UserRole::User,
                None,
                &mut OsRandom,
            )
            .await?;
        let login = state
            .users
            .login(&db, &name, "bench-owner-password".into(), None)
            .await?;
        owners.push((user.id, login.token));
    }

    // The TLS listener as `serve --tls auto` sets it up.
    let (address, client) = crate::boot::serve_tls(&app, &db).await?;

    println!(
        "| path | concurrency | issued | failed | seconds | certificates/s | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &concurrency in &config.concurrency {
        eprintln!(
            "concurrency {concurrency}: making {} P-256 keys, CSRs and challenges ...",
            config.enrollments * 2
        );
        let mut est = Vec::with_capacity(config.enrollments);
        let mut rest = Vec::with_capacity(config.enrollments);
        for n in 0..config.enrollments {
            let created = state
                .authority
                .challenges
                .create(
                    &db,
                    &Principal::Operator,
                    CreateChallenge {
                        owner_id: Some(owners[n / CHALLENGES_PER_OWNER].0),
                        ..CreateChallenge::default()
                    },
                    &mut OsRandom,
                )
                .await?;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                created.view.id,
                created.challenge.expose()
            ));
            let csr = csr(&format!("est-{concurrency}-{n}.bench.example"))?;
            est.push(Prepared {
                path: "/.well-known/est/simpleenroll",
                headers: vec![
                    ("authorization", format!("Basic {basic}")),
                    ("content-type", "application/pkcs10".into()),
                ],
                body: Bytes::from(base64::engine::general_purpose::STANDARD.encode(csr)),
                expect: 200,
            });
            rest.push(rest_request(
                &owners[n / CHALLENGES_PER_OWNER].1,
                &format!("rest-{concurrency}-{n}.bench.example"),
            )?);
        }
        for (label, mut requests) in [("EST simpleenroll", est), ("REST CSR", rest)] {
            // A tenth of each path's requests first, untimed: the server's connections to
            // PostgreSQL and their plans are made for this concurrency before the clock
            // starts. Without it the path measured first paid that in a phase of a second
            // or two (EST/REST at 16 was 0.83-0.89 over 4,000, 0.98-1.08 over 16,000).
            let warmup = requests.split_off(requests.len() - requests.len() / 10);
            eprintln!(
                "concurrency {concurrency}: warming up {label} with {} ...",
                warmup.len()
            );
            let (_, failed) = measure(&client, address, warmup, concurrency).await?;
            if failed > 0 {
                anyhow::bail!("{failed} {label} warm-up requests did not issue");
            }
            eprintln!("concurrency {concurrency}: timing {label} ...");
            let (row, failed) = measure(&client, address, requests, concurrency).await?;
            println!("| {label} | {row}");
            if failed > 0 {
                anyhow::bail!("{failed} {label} requests did not issue");
            }
        }
    }
    Ok(())
}

/// A REST issuance from a P-256 CSR for `cn`, with the bearer `token`.
pub(crate) fn rest_request(token: &str, cn: &str) -> anyhow::Result<Prepared> {
    Ok(Prepared {
        path: "/api/v1/certificates",
        headers: vec![
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".into()),
        ],
        body: Bytes::from(serde_json::to_vec(
            &serde_json::json!({ "csr": csr_pem(cn)? }),
        )?),
        expect: 201,
    })
}

fn key_and_names(cn: &str) -> anyhow::Result<(PrivateKey, DistinguishedName, Vec<SubjectAltName>)> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let subject = DistinguishedName::parse(&format!("CN={cn}")).map_err(anyhow::Error::msg)?;
    Ok((key, subject, vec![SubjectAltName::Dns(cn.to_owned())]))
}

fn csr(cn: &str) -> anyhow::Result<Vec<u8>> {
    let (key, subject, sans) = key_and_names(cn)?;
    Ok(keyinfra_pki::tls::csr_der(&key, &subject, &sans)?)
}

fn csr_pem(cn: &str) -> anyhow::Result<String> {
    Ok(pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr(cn)?)))
}

/// Runs `requests` over `concurrency` keep-alive TLS connections; the table row and the
/// number that did not get their expected status.
pub(crate) async fn measure(
    client: &Arc<rustls::ClientConfig>,
    address: std::net::SocketAddr,
    requests: Vec<Prepared>,
    concurrency: usize,
) -> anyhow::Result<(String, usize)> {
    let queue = Arc::new(Mutex::new(requests));
    let mut connections = Vec::new();
    for _ in 0..concurrency {
        let tcp = tokio::net::TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(client))
            .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
            .await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        connections.push(sender);
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for mut sender in connections {
        let queue = Arc::clone(&queue);
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(request) = next else {
                    break;
                };
                let mut builder = hyper::Request::post(request.path).header("host", "127.0.0.1");
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                let Ok(http) = builder.body(Full::new(request.body)) else {
                    done.push((Instant::now() - Instant::now(), false));
                    continue;
                };
                let sent = Instant::now();
                let ok = match sender.send_request(http).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        response.into_body().collect().await.is_ok() && status == request.expect
                    }
                    Err(_) => false,
                };
                done.push((sent.elapsed(), ok));
            }
            done
        }));
    }
    let mut results = Vec::new();
    for worker in workers {
        results.extend(worker.await?);
    }
    let elapsed = started.elapsed();
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    let mut latencies: Vec<f64> = results
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(latency, _)| latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok((
        format!(
            "{concurrency} | {} | {failed} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            latencies.len(),
            elapsed.as_secs_f64(),
            latencies.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or_default(),
        ),
        failed,
    ))
}
