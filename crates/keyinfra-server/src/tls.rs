//! The TLS side of the main listener: the rustls configuration, the certificate the server
//! presents, the optional client certificates EST re-enrollment authenticates with, and
//! what a handler learns about the connection it is served on ([`TlsSession`]).
//!
//! **Client certificates** are asked for on every handshake but never required, so that
//! browsers and API clients without one are not affected. The trust store holds *our* CAs
//! only: every CA whose private key KeyInfra holds (roots, issuing CAs, imported
//! intermediates with their key, a prepared rollover), each as a trust anchor of its own,
//! because devices send their leaf without the chain. Nothing else is trusted: not the
//! system's roots, not `--tls-cert`'s chain, not an imported CA whose key we lack. The
//! handshake's check is a first filter (a chain to one of our CAs, in its validity, with any
//! EKU: a `server` certificate may re-enroll); the authority is the handler, which finds the
//! exact certificate in the inventory and checks its status there (revocation lives in the
//! database, not in CRLs). A certificate failing the handshake's check ends the connection
//! with a TLS alert (curl: "alert certificate expired"), not an HTTP answer.
//!
//! The trust store follows the CA list: [`TlsServer::trust_client_cas`] rebuilds the rustls
//! configuration when the set of CAs changes (the app polls the database every minute, so a
//! CA made by the CLI or another replica is picked up), keeping the certificate resolver,
//! session cache and ticketer so that resumption survives. Each new connection takes the
//! configuration current at its accept.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration as StdDuration;

use anyhow::Context;
use keyinfra_core::authority::Authority;
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::Database;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConnection};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, ProtocolVersion, ServerConfig, SignatureScheme};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The certificate and key handed to each new handshake; swapped on renewal.
#[derive(Debug)]
pub struct ServerCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCertificate {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(key),
        }
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The main listener's TLS: the configuration new connections get, rebuilt when the CAs
/// trusted for client certificates change (module docs).
pub struct TlsServer {
    provider: Arc<CryptoProvider>,
    certificate: Arc<ServerCertificate>,
    /// The configuration of new handshakes.
    current: RwLock<Arc<ServerConfig>>,
    /// SHA-256 of each trusted CA certificate, sorted: whether a rebuild is needed.
    trusted: std::sync::Mutex<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("client_cas", &self.trusted.lock().map(|t| t.len()).ok())
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// TLS 1.2 and 1.3 with rustls' safe defaults on aws-lc-rs, HTTP/1.1 only, presenting
    /// `certificate`. No client certificate is trusted until [`Self::trust_client_cas`].
    pub fn new(certificate: Arc<ServerCertificate>) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = config(&provider, &certificate, &[], None)?;
        Ok(Self {
            provider,
            certificate,
            current: RwLock::new(config),
            trusted: std::sync::Mutex::default(),
        })
    }

    /// The acceptor for one new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }

    /// Trusts client certificates issued by these CAs (DER), and no others, from the next
    /// handshake on. True if the set changed. A certificate that cannot be an anchor is
    /// left out with a warning (it cannot sign anything a device holds).
    pub fn trust_client_cas(&self, cas: &[Vec<u8>]) -> anyhow::Result<bool> {
        let mut fingerprints: Vec<[u8; 32]> = cas
            .iter()
            .map(|der| keyinfra_pki::sha256_fingerprint(der))
            .collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let mut trusted = self.trusted.lock().unwrap_or_else(PoisonError::into_inner);
        if *trusted == fingerprints {
            return Ok(false);
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = config(&self.provider, &self.certificate, cas, Some(&current))?;
        *trusted = fingerprints;
        Ok(true)
    }
}

/// A configuration trusting `client_cas` for client certificates. Built afresh (rustls
/// does not let a verifier be swapped), keeping `previous`'s session cache and ticketer so
/// that resumption survives.
fn config(
    provider: &Arc<CryptoProvider>,
    certificate: &Arc<ServerCertificate>,
    client_cas: &[Vec<u8>],
    previous: Option<&ServerConfig>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let verifier = Arc::new(ClientCertificates::new(provider, client_cas));
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::clone(certificate) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(previous) = previous {
        config.session_storage = Arc::clone(&previous.session_storage);
        config.ticketer = Arc::clone(&previous.ticketer);
    }
    Ok(Arc::new(config))
}

/// The client-certificate check of the handshake (module docs): optional, our CAs as
/// anchors, any EKU, no CRLs.
#[derive(Debug)]
struct ClientCertificates {
    anchors: Vec<TrustAnchor<'static>>,
    hints: Vec<rustls::DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertificates {
    fn new(provider: &CryptoProvider, cas: &[Vec<u8>]) -> Self {
        let mut anchors = Vec::with_capacity(cas.len());
        for der in cas {
            let der = CertificateDer::from(der.as_slice());
            match webpki::anchor_from_trusted_cert(&der) {
                Ok(anchor) => anchors.push(anchor.to_owned()),
                Err(error) => tracing::warn!(
                    %error,
                    "a CA certificate cannot be a trust anchor for client certificates; left out"
                ),
            }
        }
        let hints = anchors
            .iter()
            .map(|a| rustls::DistinguishedName::in_sequence(a.subject.as_ref()))
            .collect();
        Self {
            anchors,
            hints,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

/// Any extended key usage, or none: which certificate may re-enroll is the handler's
/// question (a device's `server` certificate has only serverAuth).
struct AnyKeyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyKeyUsage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // A malformed EKU extension still fails.
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

impl ClientCertVerifier for ClientCertificates {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let certificate = webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        })?;
        certificate
            .verify_for_usage(
                self.algorithms.all,
                &self.anchors,
                intermediates,
                now,
                AnyKeyUsage,
                None,
                None,
            )
            .map_err(certificate_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The TLS alert a failed client-certificate check ends in (what curl then shows).
fn certificate_error(error: webpki::Error) -> rustls::Error {
    use rustls::CertificateError;
    let reason = match error {
        webpki::Error::CertExpired { .. } => CertificateError::Expired,
        webpki::Error::CertNotValidYet { .. } => CertificateError::NotValidYet,
        webpki::Error::UnknownIssuer => CertificateError::UnknownIssuer,
        webpki::Error::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(reason)
}

/// What a handler knows of the TLS connection its request came on; in the request's
/// extensions on the TLS listener only (its absence means plain HTTP).
#[derive(Clone)]
pub struct TlsSession {
    /// The client's certificate chain, leaf first, if it sent one (and it passed the
    /// handshake's check). On a resumed session it is the one of the original handshake.
    pub peer_certificates: Option<Arc<[CertificateDer<'static>]>>,
    pub version: Option<ProtocolVersion>,
    /// The tls-exporter channel binding (RFC 9266), on TLS 1.3 only: on 1.2 it is only
    /// safe with extended master secret, which rustls does not report.
    exporter: Option<[u8; 32]>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field(
                "peer_certificates",
                &self.peer_certificates.as_ref().map(|c| c.len()),
            )
            .field("version", &self.version)
            .field("exporter", &self.exporter.map(|_| "<32 bytes>"))
            .finish()
    }
}

/// RFC 9266's label for the tls-exporter channel binding.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

impl TlsSession {
    /// Read once per connection, after the handshake.
    pub(crate) fn of(connection: &ServerConnection) -> Self {
        let version = connection.protocol_version();
        let exporter = (version == Some(ProtocolVersion::TLSv1_3))
            .then(|| {
                connection
                    .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
                    .ok()
            })
            .flatten();
        Self {
            peer_certificates: connection
                .peer_certificates()
                .filter(|chain| !chain.is_empty())
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect()),
            version,
            exporter,
        }
    }

    /// The client's own certificate (DER), if it presented one.
    pub fn client_certificate(&self) -> Option<&[u8]> {
        self.peer_certificates
            .as_deref()
            .and_then(<[CertificateDer<'static>]>::first)
            .map(|c| c.as_ref())
    }

    /// The tls-exporter value of this connection; `None` before TLS 1.3.
    pub fn exporter(&self) -> Option<&[u8; 32]> {
        self.exporter.as_ref()
    }
}

/// The validity of the server's own certificate (capped by the `server` profile's maximum).
/// Short, because every start issues a new one and the old ones stay valid until they end.
pub const OWN_VALIDITY_DAYS: u32 = 90;
/// How long to wait before trying again when a re-issue fails.
const RETRY_AFTER: StdDuration = StdDuration::from_secs(300);
/// The longest the renewal task sleeps before looking at the clock again.
const CHECK_EVERY: StdDuration = StdDuration::from_secs(3600);

/// A certificate this server issued itself (`--tls auto`).
#[derive(Debug, Clone)]
pub struct OwnCertificate {
    pub key: Arc<CertifiedKey>,
    pub id: uuid::Uuid,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl OwnCertificate {
    /// When it is re-issued: two thirds into its lifetime.
    pub fn renew_at(&self) -> OffsetDateTime {
        renew_at(self.not_before, self.not_after)
    }
}

fn renew_at(not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    not_before + (not_after - not_before) * 2 / 3
}

/// Issues the server's own certificate for `sans` (the first also becomes the CN) from the
/// default issuing CA: a fresh key in memory, a CSR, and the API's issuance use case, as
/// the operator with profile `server`, so it is recorded and audited like any other. The
/// key is never stored.
pub async fn issue_own(
    authority: &Authority,
    db: &Database,
    sans: &[SubjectAltName],
) -> anyhow::Result<OwnCertificate> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
        .context("cannot generate the server's TLS key")?;
    let common_name = sans
        .first()
        .map_or_else(|| "localhost".to_owned(), SubjectAltName::to_string);
    let subject = DistinguishedName::parse(&format!("CN={common_name},O=KeyInfra"))
        .map_err(|e| anyhow::anyhow!("the server certificate's subject: {e}"))?;
    let csr = keyinfra_pki::tls::csr_der(&key, &subject, sans)
        .context("cannot make the server's certificate request")?;
    let profile = authority
        .settings
        .profile("server")
        .context("the server profile is missing")?;
    let request = IssueRequest {
        key: KeySource::Csr(csr),
        subject: None,
        san: None,
        profile: profile.name.clone(),
        validity_days: Some(OWN_VALIDITY_DAYS.min(profile.max_validity_days)),
        owner_id: None,
        ca_id: None,
        policy_id: None,
    };
    let record = authority
        .issuer
        .issue(db, &Principal::Server, request, &mut OsRandom)
        .await
        .context("cannot issue the server's own TLS certificate (--tls auto)")?;
    let ca = authority
        .cas
        .signer(db, record.ca_id)
        .await
        .context("cannot load the CA chain for the server's TLS certificate")?;
    let mut chain = vec![record.certificate_der.clone()];
    chain.extend(ca.chain.iter().cloned());
    let certified = keyinfra_pki::tls::certified_key(&chain, &key)
        .context("the issued TLS certificate does not match its key")?;
    tracing::info!(
        certificate_id = %record.id,
        serial = %record.serial_number,
        ca_id = %record.ca_id,
        not_after = %record.not_after,
        names = %sans.iter().map(SubjectAltName::to_tagged).collect::<Vec<_>>().join(","),
        "issued the server's own TLS certificate"
    );
    Ok(OwnCertificate {
        key: certified,
        id: record.id,
        not_before: record.not_before,
        not_after: record.not_after,
    })
}

/// Re-issues the server's certificate when two thirds of its lifetime have passed, and
/// swaps it in for new handshakes, until `stop` turns true. A failure is logged and tried
/// again five minutes later (the current certificate is still valid for a third of its life).
pub async fn keep_renewed(
    serving: Arc<ServerCertificate>,
    authority: Arc<Authority>,
    clock: Arc<dyn keyinfra_core::Clock>,
    db: Database,
    sans: Vec<SubjectAltName>,
    mut current: OwnCertificate,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = false;
    loop {
        let wait = if retry {
            RETRY_AFTER
        } else {
            let left = current.renew_at() - clock.now();
            StdDuration::try_from(left)
                .unwrap_or(StdDuration::ZERO)
                .min(CHECK_EVERY)
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
        if clock.now() < current.renew_at() {
            continue;
        }
        match issue_own(&authority, &db, &sans).await {
            Ok(next) => {
                serving.replace(Arc::clone(&next.key));
                tracing::info!(previous = %current.id, certificate_id = %next.id, "the server's TLS certificate was renewed");
                current = next;
                retry = false;
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), not_after = %current.not_after,
                    "cannot renew the server's TLS certificate; trying again in 5 minutes");
                retry = true;
            }
        }
    }
}

/// How often the trust store for client certificates is compared with the CA list.
pub const CLIENT_TRUST_REFRESH: StdDuration = StdDuration::from_secs(60);

/// The DER of every CA whose key this KeyInfra holds: the anchors for client certificates.
pub async fn client_cas(authority: &Authority, db: &Database) -> anyhow::Result<Vec<Vec<u8>>> {
    let cas = authority
        .cas
        .list_cas(db)
        .await
        .context("cannot list the CAs")?;
    Ok(cas
        .into_iter()
        .filter(|ca| ca.private_key_id.is_some())
        .map(|ca| ca.certificate_der)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_two_thirds_into_the_lifetime() {
        let start = time::macros::datetime!(2030-01-01 0:00 UTC);
        assert_eq!(
            renew_at(start, start + time::Duration::days(90)),
            start + time::Duration::days(60)
        );
    }
}
