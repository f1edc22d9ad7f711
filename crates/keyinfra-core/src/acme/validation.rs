//! The ACME challenge validator (RFC 8555 8.3 http-01, 8.4 dns-01, RFC 8737 tls-alpn-01).
//!
//! A client's POST to a challenge marks it processing and due (the service wakes this
//! replica's validator). Every replica runs [`AcmeValidator::run`]: it takes due challenges
//! from the database with a lease (`FOR UPDATE SKIP LOCKED`, then `next_attempt_at` moved
//! past the attempt), so each attempt runs on one replica, and a replica that dies
//! mid-attempt leaves the challenge to be taken again when the lease ends. An attempt that
//! fails is retried after a delay, up to [`ValidationSettings::max_attempts`]; then the
//! challenge, its authorization and its order are invalid, with the last problem.
//!
//! What the validator connects to is the network's, not ours, so every connection is to an
//! address it checked first: names are resolved here (the system resolver), addresses in
//! `KEYINFRA_ACME_VALIDATION_DENY` are dropped, and the socket goes to what remains. An
//! http-01 redirect is followed only to http or https on port 80 or 443 (RFC 8555 10.2),
//! and each hop is resolved and checked again. Bodies are read up to a bound, each attempt
//! has a deadline, and TLS certificates are not verified (RFC 8555 8.3 and RFC 8737 3 do
//! not ask it; the proof is the content).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use ipnet::IpNet;
use keyinfra_db::acme::{self as store, DueChallenge};
use keyinfra_db::{Actor, Database};
use keyinfra_pki::acme::jws::Jwk;
use keyinfra_pki::acme::keyauth::{
    ACME_TLS_ALPN_PROTOCOL, MAX_HTTP01_BODY_BYTES, check_tls_alpn01_certificate,
    dns01_record_matches, dns01_record_name, http01_body_matches, http01_path, key_authorization,
    tls_alpn01_server_name,
};
use keyinfra_pki::acme::wire::{Identifier, ProblemType};
use reqwest::Url;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::Clock;
use crate::error::CoreError;

/// Redirects an http-01 fetch follows before it gives up.
pub const MAX_REDIRECTS: usize = 10;
/// Challenges one pass of the validator takes (and checks at once).
const BATCH: i64 = 16;
/// How long a taken challenge is left to the replica that took it.
const LEASE: time::Duration = time::Duration::seconds(60);
/// How often the validator looks for work that another replica's clients started, or that
/// a retry made due.
const POLL: Duration = Duration::from_secs(1);

/// What an operator decides about validation.
#[derive(Debug, Clone)]
pub struct ValidationSettings {
    /// The port http-01 fetches from (80; KEYINFRA_ACME_HTTP01_PORT).
    pub http01_port: u16,
    /// The port tls-alpn-01 connects to (443; KEYINFRA_ACME_TLSALPN01_PORT).
    pub tls_alpn01_port: u16,
    /// Addresses never connected to (KEYINFRA_ACME_VALIDATION_DENY); empty by default.
    pub deny: Vec<IpNet>,
    /// The DNS server dns-01 asks (KEYINFRA_ACME_DNS_RESOLVER, `IP:port`); the system's
    /// resolvers (/etc/resolv.conf) when None.
    pub dns_resolver: Option<SocketAddr>,
    /// The deadline of one attempt, connections and redirects included.
    pub attempt_timeout: Duration,
    /// Attempts before a challenge is invalid.
    pub max_attempts: i32,
    /// The wait before a second attempt; each later one waits twice as long as the last.
    pub retry_delay: Duration,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            http01_port: 80,
            tls_alpn01_port: 443,
            deny: Vec::new(),
            dns_resolver: None,
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 3,
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// Why an attempt failed: an ACME problem for the challenge's `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationFailure {
    pub problem: ProblemType,
    pub detail: String,
    /// No later attempt can do better (an excluded address, an expired authorization).
    pub final_: bool,
}

impl ValidationFailure {
    fn new(problem: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            problem,
            detail: detail.into(),
            final_: false,
        }
    }

    fn final_(problem: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            final_: true,
            ..Self::new(problem, detail)
        }
    }

    /// The RFC 7807 problem document stored with the challenge (and its order).
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "type": self.problem.urn(), "detail": self.detail, "status": 400 })
    }
}

/// The validator (module docs).
pub struct AcmeValidator {
    settings: ValidationSettings,
    clock: Arc<dyn Clock>,
    wake: Notify,
}

impl std::fmt::Debug for AcmeValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeValidator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AcmeValidator {
    pub fn new(settings: ValidationSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            settings,
            clock,
            wake: Notify::new(),
        }
    }

    /// A challenge was started on this replica: look now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Validates due challenges until `stop` completes.
    pub async fn run(self: Arc<Self>, db: Database, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let taken = match self.validate_due(&db).await {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(error = %e, "ACME validation pass failed");
                    0
                }
            };
            // A full batch: more may be waiting.
            if taken == BATCH as usize {
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass: takes the due challenges, checks them at once, records each outcome.
    /// Returns how many it took.
    pub async fn validate_due(self: &Arc<Self>, db: &Database) -> Result<usize, CoreError> {
        let now = self.clock.now();
        let mut tx = db.begin(&Actor::System).await?;
        let due = store::claim_due_challenges(&mut tx, now, now + LEASE, BATCH).await?;
        tx.commit().await?;
        let taken = due.len();
        let mut attempts = tokio::task::JoinSet::new();
        for challenge in due {
            let validator = Arc::clone(self);
            let db = db.clone();
            attempts.spawn(async move {
                let id = challenge.id;
                if let Err(e) = validator.attempt(&db, challenge).await {
                    // The lease runs out and another pass takes it again.
                    tracing::warn!(challenge_id = %id, error = %e, "ACME validation not recorded");
                }
            });
        }
        while attempts.join_next().await.is_some() {}
        Ok(taken)
    }

    /// One attempt at one challenge, and its outcome recorded.
    async fn attempt(&self, db: &Database, challenge: DueChallenge) -> Result<(), CoreError> {
        let deadline = self.settings.attempt_timeout;
        let checked = match tokio::time::timeout(deadline, self.check(&challenge)).await {
            Ok(checked) => checked,
            Err(_) => Err(ValidationFailure::new(
                ProblemType::Connection,
                format!(
                    "no answer within {} seconds",
                    deadline.as_secs_f64().round()
                ),
            )),
        };
        let now = self.clock.now();
        let mut tx = db.begin(&Actor::System).await?;
        store::lock_order(&mut tx, challenge.order_id).await?;
        let outcome = match &checked {
            Ok(()) => {
                store::record_challenge_valid(&mut tx, &challenge, now).await?;
                "valid"
            }
            Err(failure) if failure.final_ || challenge.attempts >= self.settings.max_attempts => {
                store::record_challenge_invalid(&mut tx, &challenge, now, &failure.to_json())
                    .await?;
                "invalid"
            }
            Err(failure) => {
                let wait = self.retry_wait(challenge.attempts);
                store::record_challenge_retry(
                    &mut tx,
                    challenge.id,
                    now + wait,
                    &failure.to_json(),
                )
                .await?;
                "retry"
            }
        };
        tx.commit().await?;
        metrics::counter!(
            "keyinfra_acme_validations_total",
            "type" => challenge_type_label(&challenge.kind),
            "outcome" => outcome
        )
        .increment(1);
        match &checked {
            Ok(()) => tracing::info!(
                challenge_id = %challenge.id, kind = %challenge.kind,
                identifier = %challenge.identifier_value, "ACME challenge valid"
            ),
            Err(failure) => tracing::info!(
                challenge_id = %challenge.id, kind = %challenge.kind,
                identifier = %challenge.identifier_value, attempt = challenge.attempts,
                outcome, problem = failure.problem.name(), detail = %failure.detail,
                "ACME challenge failed an attempt"
            ),
        }
        Ok(())
    }

    /// The wait after failed attempt `attempts` (1-based): the delay, doubled each time.
    fn retry_wait(&self, attempts: i32) -> time::Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(8);
        let wait = self.settings.retry_delay.saturating_mul(1 << doublings);
        time::Duration::try_from(wait).unwrap_or(time::Duration::MINUTE)
    }

    /// Checks one challenge against the network.
    pub async fn check(&self, challenge: &DueChallenge) -> Result<(), ValidationFailure> {
        if challenge.authorization_expires_at <= self.clock.now() {
            return Err(ValidationFailure::final_(
                ProblemType::Unauthorized,
                "the authorization expired before it was validated",
            ));
        }
        let identifier = Identifier::parse(&challenge.identifier_type, &challenge.identifier_value)
            .map_err(|e| ValidationFailure::final_(ProblemType::Malformed, e.to_string()))?;
        let jwk = Jwk::from_json_bytes(challenge.jwk.to_string().as_bytes()).map_err(|_| {
            ValidationFailure::final_(ProblemType::ServerInternal, "the account key is unusable")
        })?;
        let key_authorization = key_authorization(&challenge.token, &jwk);
        match challenge.kind.as_str() {
            "http-01" => {
                self.http01(&identifier, &challenge.token, &key_authorization)
                    .await
            }
            "tls-alpn-01" => self.tls_alpn01(&identifier, &key_authorization).await,
            "dns-01" => self.dns01(&identifier, &key_authorization).await,
            other => Err(ValidationFailure::final_(
                ProblemType::Malformed,
                format!("{other} challenges are not validated by this server"),
            )),
        }
    }

    /// http-01 (RFC 8555 8.3): `GET http://{identifier}:{port}/.well-known/acme-challenge/
    /// {token}` answers 200 with the key authorization, following redirects to http or
    /// https on 80 or 443.
    async fn http01(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), ValidationFailure> {
        let host = match identifier {
            Identifier::Dns(name) => name.clone(),
            Identifier::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Identifier::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        let start = format!(
            "http://{host}:{}{}",
            self.settings.http01_port,
            http01_path(token)
        );
        let mut url = Url::parse(&start).map_err(|_| {
            ValidationFailure::final_(ProblemType::Malformed, "the identifier makes no URL")
        })?;
        for _ in 0..=MAX_REDIRECTS {
            match self.get(&url).await? {
                Fetched::Body { status: 200, body } => {
                    return if http01_body_matches(&body, key_authorization) {
                        Ok(())
                    } else {
                        Err(ValidationFailure::new(
                            ProblemType::IncorrectResponse,
                            format!("{url} did not answer with the key authorization"),
                        ))
                    };
                }
                Fetched::Body { status, .. } => {
                    return Err(ValidationFailure::new(
                        ProblemType::Unauthorized,
                        format!("{url} answered HTTP {status}"),
                    ));
                }
                Fetched::Redirect(location) => url = redirect_target(&url, &location)?,
            }
        }
        Err(ValidationFailure::new(
            ProblemType::Connection,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// One GET of `url`, to a checked address, without following a redirect.
    async fn get(&self, url: &Url) -> Result<Fetched, ValidationFailure> {
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url.host().ok_or_else(|| {
            ValidationFailure::final_(ProblemType::Malformed, format!("{url} has no host"))
        })?;
        let stream = self.connect(&host.to_owned(), port).await?;
        let host_header = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        if url.scheme() == "https" {
            let name = server_name(&host.to_owned())?;
            let tls = tokio_rustls::TlsConnector::from(client_config(b"http/1.1")?)
                .connect(name, stream)
                .await
                .map_err(|e| {
                    ValidationFailure::new(ProblemType::Tls, format!("TLS with {url}: {e}"))
                })?;
            fetch(tls, &host_header, &path, url).await
        } else {
            fetch(stream, &host_header, &path, url).await
        }
    }

    /// tls-alpn-01 (RFC 8737): a TLS handshake on the port with ALPN `acme-tls/1` and the
    /// identifier's SNI presents a certificate for it with the key authorization's digest.
    async fn tls_alpn01(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
    ) -> Result<(), ValidationFailure> {
        let host = match identifier {
            Identifier::Dns(name) => url::Host::Domain(name.clone()),
            Identifier::Ip(IpAddr::V4(ip)) => url::Host::Ipv4(*ip),
            Identifier::Ip(IpAddr::V6(ip)) => url::Host::Ipv6(*ip),
        };
        let port = self.settings.tls_alpn01_port;
        let stream = self.connect(&host, port).await?;
        let sni = ServerName::try_from(tls_alpn01_server_name(identifier)).map_err(|_| {
            ValidationFailure::final_(ProblemType::Malformed, "the identifier makes no SNI")
        })?;
        let tls = tokio_rustls::TlsConnector::from(client_config(ACME_TLS_ALPN_PROTOCOL)?)
            .connect(sni, stream)
            .await
            .map_err(|e| {
                ValidationFailure::new(
                    ProblemType::Tls,
                    format!("TLS with {host} port {port} (ALPN acme-tls/1): {e}"),
                )
            })?;
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ACME_TLS_ALPN_PROTOCOL) {
            return Err(ValidationFailure::new(
                ProblemType::Tls,
                format!("{host} port {port} did not agree to ALPN acme-tls/1"),
            ));
        }
        let certificate = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                ValidationFailure::new(ProblemType::Tls, "the responder sent no certificate")
            })?;
        check_tls_alpn01_certificate(certificate, identifier, key_authorization)
            .map_err(|e| ValidationFailure::new(e.problem_type(), e.to_string()))
    }

    /// dns-01 (RFC 8555 8.4): a TXT record at `_acme-challenge.{name}` holds the base64url
    /// SHA-256 of the key authorization. Asked afresh each attempt (no cache between them,
    /// so a record published after a failed attempt is seen by the next).
    async fn dns01(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
    ) -> Result<(), ValidationFailure> {
        use hickory_resolver::proto::rr::RData;
        let record = dns01_record_name(identifier).ok_or_else(|| {
            ValidationFailure::final_(
                ProblemType::Malformed,
                "dns-01 proves names, not addresses (RFC 8738)",
            )
        })?;
        let resolver = self.resolver()?;
        let lookup = resolver
            .txt_lookup(format!("{record}."))
            .await
            .map_err(|e| {
                if e.is_no_records_found() || e.is_nx_domain() {
                    ValidationFailure::new(
                        ProblemType::Unauthorized,
                        format!("no TXT record at {record}"),
                    )
                } else {
                    ValidationFailure::new(
                        ProblemType::Dns,
                        format!("TXT look-up of {record}: {e}"),
                    )
                }
            })?;
        let matched = lookup.answers().iter().any(|answer| match &answer.data {
            RData::TXT(txt) => {
                let joined: Vec<u8> = txt
                    .txt_data
                    .iter()
                    .flat_map(|s| s.iter())
                    .copied()
                    .collect();
                dns01_record_matches(&joined, key_authorization)
            }
            _ => false,
        });
        if matched {
            Ok(())
        } else {
            Err(ValidationFailure::new(
                ProblemType::Unauthorized,
                format!(
                    "no TXT record at {record} holds this challenge's key authorization digest"
                ),
            ))
        }
    }

    /// A resolver for one attempt: the configured server, else the system's.
    fn resolver(&self) -> Result<hickory_resolver::TokioResolver, ValidationFailure> {
        use hickory_resolver::config::{NameServerConfig, ResolverConfig};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        let unusable = |e: &dyn std::fmt::Display| {
            ValidationFailure::new(ProblemType::Dns, format!("no DNS resolver: {e}"))
        };
        let mut builder = match self.settings.dns_resolver {
            Some(address) => {
                let mut server = NameServerConfig::udp_and_tcp(address.ip());
                for connection in &mut server.connections {
                    connection.port = address.port();
                }
                hickory_resolver::TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => hickory_resolver::TokioResolver::builder_tokio().map_err(|e| unusable(&e))?,
        };
        let options = builder.options_mut();
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        builder.build().map_err(|e| unusable(&e))
    }

    /// A TCP connection to `host` on `port`: a name is resolved by the system resolver,
    /// excluded addresses are dropped, and the first remaining address that answers is used.
    async fn connect(
        &self,
        host: &url::Host<String>,
        port: u16,
    ) -> Result<TcpStream, ValidationFailure> {
        let candidates: Vec<IpAddr> = match host {
            url::Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
            url::Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
            url::Host::Domain(name) => tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|_| {
                    ValidationFailure::new(ProblemType::Dns, format!("{name} does not resolve"))
                })?
                .map(|address| address.ip())
                .collect(),
        };
        let allowed: Vec<IpAddr> = candidates
            .iter()
            .copied()
            .filter(|ip| !self.denied(*ip))
            .collect();
        if allowed.is_empty() {
            return Err(ValidationFailure::final_(
                ProblemType::RejectedIdentifier,
                format!(
                    "{host} resolves to no address this server may validate \
                     (KEYINFRA_ACME_VALIDATION_DENY)"
                ),
            ));
        }
        let mut refusal = String::new();
        for ip in allowed {
            match TcpStream::connect(SocketAddr::new(ip, port)).await {
                Ok(stream) => {
                    // One short request and its answer: Nagle's delay would only add to it.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => {
                    refusal = format!("cannot connect to {host} ({ip}) port {port}: {}", e.kind());
                }
            }
        }
        Err(ValidationFailure::new(ProblemType::Connection, refusal))
    }

    /// True for an address the operator excluded (IPv4-mapped IPv6 counts as IPv4).
    pub fn denied(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.settings.deny.iter().any(|net| net.contains(&ip))
    }
}

/// What one GET got.
#[derive(Debug)]
enum Fetched {
    Body { status: u16, body: Vec<u8> },
    Redirect(String),
}

/// An HTTP/1.1 GET over `stream`; the body is read up to [`MAX_HTTP01_BODY_BYTES`].
async fn fetch<S>(
    stream: S,
    host: &str,
    path: &str,
    url: &Url,
) -> Result<Fetched, ValidationFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection_failed =
        |e: hyper::Error| ValidationFailure::new(ProblemType::Connection, format!("{url}: {e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(connection_failed)?;
    // The connection is driven beside the request; it ends when the sender is dropped.
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "KeyInfra-ACME-validator")
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| {
            ValidationFailure::final_(ProblemType::Malformed, format!("no request to {url}"))
        })?;
    let response = sender
        .send_request(request)
        .await
        .map_err(connection_failed)?;
    let status = response.status();
    let fetched = if status.is_redirection() {
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ValidationFailure::new(
                    ProblemType::Connection,
                    format!("{url} answered HTTP {} without a Location", status.as_u16()),
                )
            })?;
        Fetched::Redirect(location.to_owned())
    } else {
        let limited = http_body_util::Limited::new(response.into_body(), MAX_HTTP01_BODY_BYTES + 1);
        let body = limited.collect().await.map_err(|_| {
            ValidationFailure::new(
                ProblemType::IncorrectResponse,
                format!("{url} answered with a body larger than {MAX_HTTP01_BODY_BYTES} bytes"),
            )
        })?;
        Fetched::Body {
            status: status.as_u16(),
            body: body.to_bytes().to_vec(),
        }
    };
    drop(sender);
    driver.abort();
    Ok(fetched)
}

/// Where a redirect from `from` leads, if an http-01 validator may go there: http or https,
/// port 80 or 443 (RFC 8555 10.2: not to arbitrary services of the host).
fn redirect_target(from: &Url, location: &str) -> Result<Url, ValidationFailure> {
    let target = from.join(location).map_err(|_| {
        ValidationFailure::new(
            ProblemType::Connection,
            format!("{from} redirected to an unusable URL"),
        )
    })?;
    let allowed = matches!(
        (target.scheme(), target.port_or_known_default()),
        ("http" | "https", Some(80 | 443))
    ) && target.host().is_some()
        && target.username().is_empty()
        && target.password().is_none();
    if allowed {
        Ok(target)
    } else {
        Err(ValidationFailure::new(
            ProblemType::Connection,
            format!(
                "{from} redirected to {}, which is not http or https on port 80 or 443",
                target.as_str()
            ),
        ))
    }
}

fn server_name(host: &url::Host<String>) -> Result<ServerName<'static>, ValidationFailure> {
    match host {
        url::Host::Domain(name) => ServerName::try_from(name.clone()).map_err(|_| {
            ValidationFailure::final_(ProblemType::Malformed, format!("{name} is no TLS name"))
        }),
        url::Host::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::V4(*ip).into())),
        url::Host::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::V6(*ip).into())),
    }
}

fn challenge_type_label(kind: &str) -> &'static str {
    match kind {
        "http-01" => "http-01",
        "tls-alpn-01" => "tls-alpn-01",
        "dns-01" => "dns-01",
        _ => "other",
    }
}

/// A TLS client that accepts any certificate (module docs) and offers one ALPN protocol.
/// Made for each connection: a few microseconds beside a handshake.
fn client_config(alpn: &[u8]) -> Result<Arc<ClientConfig>, ValidationFailure> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ValidationFailure::final_(ProblemType::ServerInternal, e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// The SubjectPublicKeyInfo of a presented certificate.
fn spki_of(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    keyinfra_pki::ca::public_key_of_certificate(cert.as_ref())
        .map(SubjectPublicKeyInfoDer::from)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))
}

/// Takes any server certificate; still checks that the handshake is signed by its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // The handshake's signature is checked with the certificate's key, read without
    // webpki's certificate checks: a tls-alpn-01 certificate carries a critical extension
    // (acmeIdentifier) that webpki refuses to parse past.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = spki_of(cert)?;
        let key = webpki::RawPublicKeyEntity::try_from(&spki)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let algorithms = self
            .0
            .signature_verification_algorithms
            .mapping
            .iter()
            .filter(|(scheme, _)| *scheme == dss.scheme)
            .flat_map(|(_, algorithms)| algorithms.iter());
        if algorithms
            .into_iter()
            .any(|alg| key.verify_signature(*alg, message, dss.signature()).is_ok())
        {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki_of(cert)?,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_go_only_to_web_ports() {
        let from = Url::parse("http://device.example:8080/.well-known/acme-challenge/t").unwrap();
        for ok in [
            "http://other.example/x",
            "https://other.example/x",
            "https://other.example:443/x",
        ] {
            assert!(redirect_target(&from, ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://other.example/x",
            "http://other.example:22/x",
            "https://other.example:8443/x",
            "gopher://other.example:70/x",
            "http://user:secret@other.example/x",
            "file:///etc/passwd",
        ] {
            let refused = redirect_target(&from, bad).unwrap_err();
            assert_eq!(refused.problem, ProblemType::Connection, "{bad}");
        }
        // A relative redirect keeps the first URL's port: fine on 80, refused elsewhere.
        let web = Url::parse("http://device.example/.well-known/acme-challenge/t").unwrap();
        assert_eq!(
            redirect_target(&web, "/moved").unwrap().as_str(),
            "http://device.example/moved"
        );
        assert!(redirect_target(&from, "/moved").is_err());
    }

    #[test]
    fn the_deny_list_covers_mapped_addresses() {
        let settings = ValidationSettings {
            deny: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
            ..ValidationSettings::default()
        };
        let validator = AcmeValidator::new(settings, Arc::new(crate::SystemClock));
        assert!(validator.denied("10.1.2.3".parse().unwrap()));
        assert!(validator.denied("::ffff:10.1.2.3".parse().unwrap()));
        assert!(validator.denied("fd12::1".parse().unwrap()));
        assert!(!validator.denied("192.0.2.1".parse().unwrap()));
        assert!(!validator.denied("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn retries_wait_longer_each_time() {
        let validator =
            AcmeValidator::new(ValidationSettings::default(), Arc::new(crate::SystemClock));
        assert_eq!(validator.retry_wait(1), time::Duration::seconds(2));
        assert_eq!(validator.retry_wait(2), time::Duration::seconds(4));
        assert_eq!(validator.retry_wait(3), time::Duration::seconds(8));
    }
}
