//! The ACME benchmark (`scripts/bench-acme`): complete orders per second, each from
//! newOrder to the certificate download (newOrder, the authorization, the http-01
//! challenge, polls of the authorization until the validator has fetched the key
//! authorization from a local responder, finalize with a P-256 CSR made beforehand, the
//! certificate), at each concurrency, against KeyInfra's own REST issuance from the same
//! kind of CSRs in the same run.
//!
//! Each client is an ES256 account (registered with a binding key of the bench user's)
//! with one keep-alive TLS connection (the handshake and the registration are outside the
//! timing) and takes each next nonce from the answer
//! before, as ACME clients do. The authorization is polled every 5 ms: a real client waits
//! seconds between polls, which would measure its patience, not the server.
//!
//! Only a downloaded certificate counts; anything else is reported as failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use keyinfra_core::acme::{AcmeSettings, CreatedEabKey, ValidationSettings};
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_server::App;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

use crate::crl::percentile;

pub struct AcmeConfig {
    pub server_url: String,
    /// A peer ACME server timed with the same client (pebble): its directory URL and the
    /// PEM of the certificate its TLS listener presents.
    pub peer: Option<(String, String)>,
    /// The http-01 responder's port (0: any); a peer's configuration must name it.
    pub responder_port: u16,
    pub orders: usize,
    pub concurrency: Vec<usize>,
}

/// Orders one account makes: under the server's 300 an hour per account.
const ORDERS_PER_ACCOUNT: usize = 250;

/// The http-01 responder's address, the identifier of every order.
const RESPONDER_ADDRESS: &str = "127.0.0.2";

/// Polls of an authorization before an order is counted as failed (10 s).
const MAX_POLLS: u32 = 2000;

/// How often a client asks whether its authorization is valid yet.
const POLL: Duration = Duration::from_millis(5);

/// Key authorizations the responder serves, by token.
type Answers = Arc<Mutex<HashMap<String, String>>>;

#[allow(clippy::print_stdout)]
pub async fn run(config: &AcmeConfig) -> anyhow::Result<()> {
    let crate::boot::Fresh {
        db,
        config: mut app_config,
        ..
    } = crate::boot::fresh_app(&config.server_url, "keyinfra_bench_acme", |settings| {
        // Measured: the issuance paths, not the per-user limits that guard them.
        settings.quota = None;
        settings.write_rate = None;
    })
    .await?;
    // The http-01 responder every challenge is answered by.
    let answers: Answers = Arc::default();
    // On 127.0.0.2: the default policy reserves 127.0.0.1, KeyInfra's own address.
    let responder =
        tokio::net::TcpListener::bind((RESPONDER_ADDRESS, config.responder_port)).await?;
    let responder_port = responder.local_addr()?.port();
    let served = Arc::clone(&answers);
    let router = axum::Router::new().route(
        "/.well-known/acme-challenge/{token}",
        axum::routing::get(
            move |axum::extract::Path(token): axum::extract::Path<String>| {
                let answer = served.lock().ok().and_then(|a| a.get(&token).cloned());
                async move { answer.ok_or(axum::http::StatusCode::NOT_FOUND) }
            },
        ),
    );
    // No Nagle delay on the responder's answers: a device's web server is not what is timed.
    let responder = axum::serve::ListenerExt::tap_io(responder, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(responder, router).await });

    // Nor the per-address rate: every request comes from loopback.
    app_config.edge.acme_per_minute = None;
    app_config.acme = AcmeSettings {
        validation: ValidationSettings {
            http01_port: responder_port,
            ..ValidationSettings::default()
        },
        ..AcmeSettings::default()
    };
    let app = App::build(app_config, &mut OsRandom).await?;
    let state = app.state().clone();
    // The accounts' owner (each registers with a binding key of theirs), and the REST user.
    let mut owner = None;
    for name in ["bench-acme", "bench-rest"] {
        let user = state
            .users
            .create(
                &db,
                None,
                name,
                format!("{name}-password"),
                UserRole::User,
                None,
                &mut OsRandom,
            )
            .await?;
        owner.get_or_insert(user.id);
    }
    let owner = owner.ok_or_else(|| anyhow::anyhow!("no owner"))?;
    let token = state
        .users
        .login(&db, "bench-rest", "bench-rest-password".into(), None)
        .await?;

    // The TLS listener as `serve --tls auto` sets it up.
    let (address, tls_client) = crate::boot::serve_tls(&app, &db).await?;

    let peer_tls = match &config.peer {
        Some((_, ca_file)) => {
            let mut roots = rustls::RootCertStore::empty();
            let pem_text = std::fs::read(ca_file)?;
            for block in pem::parse_many(&pem_text)? {
                roots.add(CertificateDer::from(block.contents().to_vec()))?;
            }
            Some(Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth(),
            ))
        }
        None => None,
    };

    println!(
        "| path | concurrency | issued | failed | seconds | certificates/s | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &concurrency in &config.concurrency {
        eprintln!(
            "concurrency {concurrency}: registering accounts, making {} CSRs ...",
            config.orders
        );
        let accounts = config
            .orders
            .div_ceil(concurrency)
            .div_ceil(ORDERS_PER_ACCOUNT);
        let directory = format!("https://{address}/acme/directory");
        let mut clients = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let mut client = Client::connect(&tls_client, &directory, Arc::clone(&answers)).await?;
            for _ in 0..accounts {
                let binding = state
                    .acme
                    .eab
                    .create(&db, &Principal::Operator, Some(owner), None)
                    .await?;
                client.add_account(Some(&binding)).await?;
            }
            clients.push(client);
        }
        eprintln!("concurrency {concurrency}: timing ACME orders ...");
        let ours = time_orders(clients, config.orders, concurrency).await?;
        println!("| ACME order (newOrder to download) | {}", ours.row);
        anyhow::ensure!(
            ours.failed == 0,
            "{} ACME orders did not issue",
            ours.failed
        );

        // REST issuance from the same kind of CSRs, on the same listener.
        let rest = (0..config.orders)
            .map(|n| {
                crate::est::rest_request(
                    &token.token,
                    &format!("rest-{concurrency}-{n}.bench.example"),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        eprintln!("concurrency {concurrency}: timing REST CSR ...");
        let (row, failed) = crate::est::measure(&tls_client, address, rest, concurrency).await?;
        println!("| REST CSR | {row}");
        if let Some((peer_directory, _)) = &config.peer
            && let Some(peer_tls) = &peer_tls
        {
            let mut clients = Vec::with_capacity(concurrency);
            for _ in 0..concurrency {
                let mut client =
                    Client::connect(peer_tls, peer_directory, Arc::clone(&answers)).await?;
                for _ in 0..accounts {
                    client.add_account(None).await?;
                }
                clients.push(client);
            }
            eprintln!("concurrency {concurrency}: timing the peer's ACME orders ...");
            let theirs = time_orders(clients, config.orders, concurrency).await?;
            println!("| peer ACME order (pebble) | {}", theirs.row);
            eprintln!(
                "concurrency {concurrency}: KeyInfra / peer orders per second: {:.2}",
                ours.per_second / theirs.per_second.max(f64::EPSILON)
            );
            anyhow::ensure!(
                theirs.failed == 0,
                "{} peer orders did not issue",
                theirs.failed
            );
        }
        if failed > 0 {
            anyhow::bail!("{failed} REST requests did not issue");
        }
    }
    Ok(())
}

/// One timed row: `orders` orders spread over `clients`.
struct Timed {
    row: String,
    per_second: f64,
    failed: usize,
}

async fn time_orders(
    clients: Vec<Client>,
    orders: usize,
    concurrency: usize,
) -> anyhow::Result<Timed> {
    let csrs: Vec<Vec<u8>> = (0..orders)
        .map(|_| loopback_csr())
        .collect::<anyhow::Result<_>>()?;
    let csrs = Arc::new(Mutex::new(csrs));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for mut client in clients {
        let csrs = Arc::clone(&csrs);
        let next = Arc::clone(&next);
        let total = orders;
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let Some(csr) = csrs.lock().ok().and_then(|mut c| c.pop()) else {
                    break;
                };
                let sent = Instant::now();
                let outcome = client.order_certificate(&csr).await;
                if let Err(e) = &outcome {
                    eprintln!("an order failed: {e:#}");
                }
                done.push((sent.elapsed(), outcome.is_ok()));
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
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    Ok(Timed {
        row: format!(
            "{concurrency} | {} | {failed} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            latencies.len(),
            elapsed.as_secs_f64(),
            per_second,
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or_default(),
        ),
        per_second,
        failed,
    })
}

/// One ACME client: its account key and URL, its connection, and the nonce to use next.
struct Client {
    sender: SendRequest<Full<Bytes>>,
    /// `https://host:port`, the origin every URL of the directory is under.
    base: String,
    new_account: String,
    new_order: String,
    nonce: String,
    answers: Answers,
    /// Its accounts: each makes at most ORDERS_PER_ACCOUNT orders, under the server's
    /// per-account rate.
    accounts: Vec<Account>,
    current: usize,
    orders: usize,
}

struct Account {
    key: EcdsaKeyPair,
    thumbprint: String,
    /// None until newAccount answered.
    kid: Option<String>,
}

/// What one request got back.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

impl Client {
    /// Connects to the server of `directory`, reads the directory and takes a first nonce.
    async fn connect(
        tls: &Arc<rustls::ClientConfig>,
        directory: &str,
        answers: Answers,
    ) -> anyhow::Result<Self> {
        let url: reqwest::Url = directory.parse()?;
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{directory} has no host"))?
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(ServerName::try_from(host.clone())?, tcp)
            .await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let authority = format!("{host}:{port}");
        let base = format!("https://{authority}");
        let get = |method: hyper::Method, url: &str| {
            hyper::Request::builder()
                .method(method)
                .uri(url.strip_prefix(&base).unwrap_or(url).to_owned())
                .header("host", &authority)
                .body(Full::new(Bytes::new()))
        };
        let response = sender
            .send_request(get(hyper::Method::GET, directory)?)
            .await?;
        let listed: Value =
            serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
        let url_of = |name: &str| {
            listed[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("the directory has no {name}"))
        };
        sender.ready().await?;
        let response = sender
            .send_request(get(hyper::Method::HEAD, &url_of("newNonce")?)?)
            .await?;
        let nonce = replay_nonce(response.headers())?;
        response.into_body().collect().await?;
        Ok(Self {
            sender,
            new_account: url_of("newAccount")?,
            new_order: url_of("newOrder")?,
            base,
            nonce,
            answers,
            accounts: Vec::new(),
            current: 0,
            orders: 0,
        })
    }

    /// Registers one more account, with `binding` if given; it signs what follows.
    async fn add_account(&mut self, binding: Option<&CreatedEabKey>) -> anyhow::Result<()> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| anyhow::anyhow!("an ES256 key"))?;
        let jwk = jwk_of(&key);
        let thumbprint = keyinfra_pki::acme::jws::Jwk::from_json_bytes(jwk.to_string().as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .thumbprint();
        self.accounts.push(Account {
            key,
            thumbprint,
            kid: None,
        });
        self.current = self.accounts.len() - 1;
        let url = self.new_account.clone();
        let mut payload = json!({ "termsOfServiceAgreed": true });
        if let Some(binding) = binding {
            payload["externalAccountBinding"] = external_account_binding(binding, &url, &jwk)?;
        }
        let answer = self.post(&url, Some(&payload)).await?;
        anyhow::ensure!(
            answer.status == 201,
            "newAccount answered {}",
            answer.status
        );
        self.accounts[self.current].kid = answer.location;
        Ok(())
    }

    /// One certificate, newOrder to download.
    async fn order_certificate(&mut self, csr: &[u8]) -> anyhow::Result<()> {
        if self.orders > 0 && self.orders.is_multiple_of(ORDERS_PER_ACCOUNT) {
            self.current = (self.current + 1) % self.accounts.len();
        }
        self.orders += 1;
        let began = Instant::now();
        let new_order = self.new_order.clone();
        let identifiers = json!({ "identifiers": [{ "type": "ip", "value": RESPONDER_ADDRESS }] });
        let order = self.post(&new_order, Some(&identifiers)).await?;
        anyhow::ensure!(
            order.status == 201,
            "newOrder answered {}: {}",
            order.status,
            String::from_utf8_lossy(&order.body)
        );
        let order_url = order.location.clone().unwrap_or_default();
        let order = order.json()?;
        let finalize_url = order["finalize"].as_str().unwrap_or_default().to_owned();
        let authz_url = order["authorizations"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let authz = self.post(&authz_url, None).await?.json()?;
        let challenge = authz["challenges"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "http-01"))
            .ok_or_else(|| anyhow::anyhow!("no http-01 challenge"))?
            .clone();
        let token = challenge["token"].as_str().unwrap_or_default().to_owned();
        if let Ok(mut answers) = self.answers.lock() {
            let thumbprint = &self.accounts[self.current].thumbprint;
            answers.insert(token.clone(), format!("{token}.{thumbprint}"));
        }
        let started = self
            .post(
                challenge["url"].as_str().unwrap_or_default(),
                Some(&json!({})),
            )
            .await?;
        // A refusal here is judged by the authorization: pebble at times validates an
        // authorization before its challenge is answered (and refuses the answer).
        let refused =
            (started.status != 200).then(|| String::from_utf8_lossy(&started.body).into_owned());
        let challenge_answered = began.elapsed();
        for polls in 0.. {
            let authz = self.post(&authz_url, None).await?.json()?;
            match authz["status"].as_str() {
                Some("valid") => break,
                Some("pending") if polls < MAX_POLLS => tokio::time::sleep(POLL).await,
                other => anyhow::bail!(
                    "the authorization is {other:?}: {authz} (the challenge's answer: {refused:?})"
                ),
            }
        }
        if let Ok(mut answers) = self.answers.lock() {
            answers.remove(&token);
        }
        let validated = began.elapsed();
        let finalized = self
            .post(
                &finalize_url,
                Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(csr) })),
            )
            .await?;
        anyhow::ensure!(
            finalized.status == 200,
            "finalize answered {}: {}",
            finalized.status,
            String::from_utf8_lossy(&finalized.body)
        );
        // A server may finish the issue after answering (pebble does): poll the order.
        let mut order = finalized.json()?;
        while order["status"] == "processing" {
            tokio::time::sleep(POLL).await;
            order = self.post(&order_url, None).await?.json()?;
        }
        let certificate_url = order["certificate"].as_str().unwrap_or_default().to_owned();
        let issued = began.elapsed();
        let certificate = self.post(&certificate_url, None).await?;
        if std::env::var_os("BENCH_ACME_STEPS").is_some() {
            // Where one order's time goes: to the challenge's answer, to a valid
            // authorization, to the issued certificate, to the download.
            eprintln!(
                "steps ms: challenge answered {:.1}, validated {:.1}, issued {:.1}, downloaded {:.1}",
                ms(challenge_answered),
                ms(validated),
                ms(issued),
                ms(began.elapsed())
            );
        }
        anyhow::ensure!(
            certificate.status == 200 && certificate.body.starts_with(b"-----BEGIN CERTIFICATE"),
            "the download answered {}",
            certificate.status
        );
        Ok(())
    }

    /// A signed POST (`None`: POST-as-GET) with the nonce of the answer before.
    async fn post(&mut self, url: &str, payload: Option<&Value>) -> anyhow::Result<Answer> {
        let mut protected = json!({ "alg": "ES256", "nonce": self.nonce, "url": url });
        let account = self
            .accounts
            .get(self.current)
            .ok_or_else(|| anyhow::anyhow!("no account"))?;
        match &account.kid {
            Some(kid) => protected["kid"] = json!(kid),
            None => protected["jwk"] = jwk_of(&account.key),
        }
        let protected = URL_SAFE_NO_PAD.encode(protected.to_string());
        let payload = payload.map_or(String::new(), |p| URL_SAFE_NO_PAD.encode(p.to_string()));
        let signature = account
            .key
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .map_err(|_| anyhow::anyhow!("signing"))?;
        let body = json!({
            "protected": protected,
            "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
        })
        .to_string();
        let path = url.strip_prefix(&self.base).unwrap_or(url).to_owned();
        let host = self.base.trim_start_matches("https://").to_owned();
        // HTTP/1.1: one request at a time; the connection must have finished the last one.
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(
                hyper::Request::post(path.clone())
                    .header("host", host)
                    .header("content-type", "application/jose+json")
                    .body(Full::new(Bytes::from(body)))?,
            )
            .await
            .map_err(|e| anyhow::anyhow!("POST {path}: {e:?}"))?;
        let status = response.status().as_u16();
        self.nonce = replay_nonce(response.headers())?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            location,
            body,
        })
    }
}

/// RFC 8555 7.3.4: the account key, MACed with the binding key.
fn external_account_binding(
    binding: &CreatedEabKey,
    url: &str,
    jwk: &Value,
) -> anyhow::Result<Value> {
    let protected = URL_SAFE_NO_PAD
        .encode(json!({ "alg": "HS256", "kid": binding.kid.to_string(), "url": url }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(jwk.to_string());
    let mac_key = URL_SAFE_NO_PAD.decode(binding.hmac_key.as_bytes())?;
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &mac_key),
        format!("{protected}.{payload}").as_bytes(),
    );
    Ok(
        json!({ "protected": protected, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(tag.as_ref()) }),
    )
}

/// A CSR for the one identifier every order names: the responder's address.
fn loopback_csr() -> anyhow::Result<Vec<u8>> {
    let key = keyinfra_pki::PrivateKey::generate(keyinfra_pki::KeyAlgorithm::EcdsaP256)?;
    let subject = keyinfra_pki::names::DistinguishedName::parse(&format!("CN={RESPONDER_ADDRESS}"))
        .map_err(anyhow::Error::msg)?;
    let sans = [keyinfra_pki::names::SubjectAltName::Ip(
        RESPONDER_ADDRESS.parse()?,
    )];
    Ok(keyinfra_pki::tls::csr_der(&key, &subject, &sans)?)
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

fn replay_nonce(headers: &hyper::HeaderMap) -> anyhow::Result<String> {
    headers
        .get("replay-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("an answer without Replay-Nonce"))
}

fn jwk_of(key: &EcdsaKeyPair) -> Value {
    let point = key.public_key().as_ref();
    json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    })
}
