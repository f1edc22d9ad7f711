//! The SCEP benchmark (`scripts/bench-scep`): enrollments per second through a real
//! `/scep` endpoint on loopback, from a pool of pre-made PKCSReq messages (RSA-2048 device
//! keys, AES-128 and SHA-256, each with its own one-time challenge), at each concurrency.
//! What is timed is the POST and its CertRep: the server verifies the message, opens the
//! envelope with the RA key, claims the challenge, issues and records the certificate
//! (the issuer, the policy, the audit event), then seals and signs the reply. Every reply
//! is read back afterwards (outside the timing): only a SUCCESS with a certificate counts
//! as enrolled, the rest are reported as failed (KeyInfra's run must have none).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyinfra_core::enrollment::CreateChallenge;
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_pki::scep::client::{self, Request};
use keyinfra_pki::scep::{ContentCipher, DigestAlgorithm, MessageType, RaKey};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use keyinfra_server::{App, Limits, Listeners};

use crate::crl::percentile;

pub struct ScepConfig {
    pub server_url: String,
    pub enrollments: usize,
    pub concurrency: Vec<usize>,
    pub device_keys: usize,
    /// Another SCEP server to measure beside KeyInfra in the same run (micromdm's
    /// scepserver), with the one challenge it enforces.
    pub peer: Option<(String, String)>,
}

/// Challenges per owner in one round: under the 100 live challenges an owner may hold.
const CHALLENGES_PER_OWNER: usize = 50;

#[allow(clippy::print_stdout)]
pub async fn run(config: &ScepConfig) -> anyhow::Result<()> {
    let crate::boot::Fresh {
        db,
        config: mut app_config,
        ..
    } = crate::boot::fresh_app(&config.server_url, "keyinfra_bench_scep", |settings| {
        // Measured: the enrollment path, not the per-user limits that guard it.
        settings.quota = None;
        settings.write_rate = None;
    })
    .await?;
    // Nor the per-address rate: every request comes from loopback.
    app_config.edge.scep_per_minute = None;
    let app = App::build(app_config, &mut OsRandom).await?;
    let authority = Arc::clone(&app.state().authority);
    let owners_needed = config.enrollments.div_ceil(CHALLENGES_PER_OWNER);
    let mut owners = Vec::new();
    for n in 0..owners_needed {
        let user = app
            .state()
            .users
            .create(
                &db,
                None,
                &format!("bench-owner-{n}"),
                "bench-owner-password".into(),
                UserRole::User,
                None,
                &mut OsRandom,
            )
            .await?;
        owners.push(user.id);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(app.serve(
        Listeners::plain(listener),
        Limits::default(),
        std::future::pending(),
    ));
    let scep_url = format!("http://{address}/scep");
    let http = reqwest::Client::new();
    let ca_certificates = http
        .get(format!("{scep_url}?operation=GetCACert"))
        .send()
        .await?
        .bytes()
        .await?;
    let (certificates, _) =
        client::read_degenerate(&ca_certificates).map_err(anyhow::Error::msg)?;
    let ca_id = authority.cas.default_issuing_ca(&db).await?;
    let chain = authority.cas.signer(&db, ca_id).await?.chain.clone();
    let ra = certificates
        .into_iter()
        .find(|c| !chain.contains(c))
        .ok_or_else(|| anyhow::anyhow!("GetCACert has no RA"))?;

    eprintln!("making {} RSA-2048 device keys ...", config.device_keys);
    let mut devices = Vec::new();
    for n in 0..config.device_keys {
        let key = PrivateKey::generate(KeyAlgorithm::Rsa2048)?;
        let certificate = client::self_signed(&key, &format!("bench-device-{n}"))?;
        devices.push((RaKey::new(certificate, &key)?, key));
    }

    println!(
        "| server | concurrency | enrolled | failed | seconds | enrollments/s | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &concurrency in &config.concurrency {
        eprintln!(
            "concurrency {concurrency}: making {} challenges and PKCSReqs ...",
            config.enrollments
        );
        let mut messages = Vec::with_capacity(config.enrollments);
        for n in 0..config.enrollments {
            let created = authority
                .challenges
                .create(
                    &db,
                    &Principal::Operator,
                    CreateChallenge {
                        owner_id: Some(owners[n / CHALLENGES_PER_OWNER]),
                        ..CreateChallenge::default()
                    },
                    &mut OsRandom,
                )
                .await?;
            let device = n % devices.len();
            let (signer, key) = &devices[device];
            let csr = client::csr(
                key,
                &format!("bench-{concurrency}-{n}"),
                Some(created.challenge.expose()),
            )?;
            let message = pkcs_req(&csr, signer, &ra, &format!("bench-{concurrency}-{n}"))?;
            messages.push((device, message));
        }
        let (row, failed) = measure(&http, &scep_url, messages, &devices, concurrency).await?;
        println!("| KeyInfra | {row}");
        if failed > 0 {
            anyhow::bail!("{failed} KeyInfra enrollments did not succeed");
        }
        if let Some((peer_url, peer_challenge)) = &config.peer {
            let peer_ra = peer_recipient(&http, peer_url).await?;
            let mut messages = Vec::with_capacity(config.enrollments);
            for n in 0..config.enrollments {
                let device = n % devices.len();
                let (signer, key) = &devices[device];
                let csr = client::csr(
                    key,
                    &format!("peer-{concurrency}-{n}"),
                    Some(peer_challenge),
                )?;
                messages.push((
                    device,
                    pkcs_req(&csr, signer, &peer_ra, &format!("peer-{concurrency}-{n}"))?,
                ));
            }
            let (row, _) = measure(&http, peer_url, messages, &devices, concurrency).await?;
            println!("| scepserver | {row}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// A PKCSReq for `csr`, signed by `signer`, encrypted to `recipient`.
fn pkcs_req(
    csr: &[u8],
    signer: &RaKey,
    recipient: &[u8],
    transaction_id: &str,
) -> anyhow::Result<Vec<u8>> {
    Ok(client::pki_message(
        &Request {
            message_type: MessageType::PkcsReq,
            content: csr,
            signer,
            recipient,
            cipher: ContentCipher::Aes128Cbc,
            digest: DigestAlgorithm::Sha256,
            transaction_id,
            sender_nonce: &[7u8; 16],
        },
        &mut OsRandom,
    )?)
}

/// The certificate a peer's GetCACert names: one DER certificate (a CA without an RA), or
/// the first of a certs-only answer.
async fn peer_recipient(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let response = http
        .get(format!("{url}?operation=GetCACert"))
        .send()
        .await?;
    let single = response
        .headers()
        .get("content-type")
        .is_some_and(|t| t.as_bytes() == b"application/x-x509-ca-cert");
    let body = response.bytes().await?.to_vec();
    if single {
        return Ok(body);
    }
    let (certificates, _) = client::read_degenerate(&body).map_err(anyhow::Error::msg)?;
    certificates
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the peer's GetCACert has no certificate"))
}

/// Sends every message at `concurrency`, then checks every reply; the table row's cells
/// after the server's name.
async fn measure(
    http: &reqwest::Client,
    scep_url: &str,
    messages: Vec<(usize, Vec<u8>)>,
    devices: &[(RaKey, PrivateKey)],
    concurrency: usize,
) -> anyhow::Result<(String, usize)> {
    let queue = Arc::new(Mutex::new(messages));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let queue = Arc::clone(&queue);
        let http = http.clone();
        let url = format!("{scep_url}?operation=PKIOperation");
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some((device, message)) = next else {
                    break;
                };
                let sent = Instant::now();
                let reply = http.post(&url).body(message).send().await;
                let body = match reply {
                    Ok(r) if r.status().is_success() => r.bytes().await.ok(),
                    _ => None,
                };
                done.push((sent.elapsed(), device, body));
            }
            done
        }));
    }
    let mut results = Vec::new();
    for worker in workers {
        results.extend(worker.await?);
    }
    let elapsed = started.elapsed();
    // Every reply is read back after the clock stopped: a SUCCESS with a certificate counts,
    // anything else is a failure (a 5xx, or a CertRep FAILURE or PENDING).
    let mut latencies = Vec::with_capacity(results.len());
    let mut failed = 0usize;
    for (latency, device, body) in &results {
        let Some(body) = body.as_ref() else {
            failed += 1;
            continue;
        };
        let reply = client::read_reply(body, &devices[*device].0).map_err(|e| {
            if let Ok(dir) = std::env::var("SCEP_BENCH_DUMP") {
                let _ = std::fs::write(format!("{dir}/unreadable-reply.der"), body);
            }
            anyhow::Error::msg(e)
        })?;
        let status = reply
            .message
            .cert_rep
            .as_ref()
            .map(|s| s.pki_status.clone());
        if status.as_deref() != Some("0") || reply.certificates.len() != 1 {
            failed += 1;
            continue;
        }
        latencies.push(latency.as_secs_f64() * 1000.0);
    }
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
