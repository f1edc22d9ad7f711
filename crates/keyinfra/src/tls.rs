//! `serve`'s TLS: the rustls configuration, the certificate it presents (from files, or
//! issued by our own CA with `--tls auto`), and keeping that certificate renewed.
//!
//! With `--tls auto` the server makes an ECDSA P-256 key in memory, sends a CSR for it
//! through the same use case as the API (`Authority::issue` as the operator, profile
//! `server`), so the certificate is recorded and audited like any other, and the key is
//! never stored. Each start issues a new one (the key died with the previous process); the
//! old ones stay in the inventory until they expire. Once two thirds of its lifetime have
//! passed a new one is issued and swapped in without a restart: new handshakes get it.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration as StdDuration;

use anyhow::Context;
use keyinfra_core::authority::Authority;
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::Database;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use tokio::sync::watch;

/// The validity of the server's own certificate (capped by the `server` profile's maximum).
/// Short, because every start issues a new one and the old ones stay valid until they end.
pub const OWN_VALIDITY_DAYS: u32 = 90;
/// How long to wait before trying again when a re-issue fails.
const RETRY_AFTER: StdDuration = StdDuration::from_secs(300);
/// The longest the renewal task sleeps before looking at the clock again.
const CHECK_EVERY: StdDuration = StdDuration::from_secs(3600);

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

/// TLS 1.2 and 1.3 with rustls' safe defaults on aws-lc-rs; HTTP/1.1 only.
pub fn server_config(certificate: Arc<ServerCertificate>) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `--tls-cert` and `--tls-key`, read and checked to belong together. Errors name the file
/// and the flag, never the contents.
pub fn load_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = std::fs::read(cert).with_context(|| {
        format!(
            "cannot read the TLS certificate chain {} (--tls-cert / KEYINFRA_TLS_CERT)",
            cert.display()
        )
    })?;
    let key_pem = zeroize::Zeroizing::new(std::fs::read(key).with_context(|| {
        format!(
            "cannot read the TLS private key {} (--tls-key / KEYINFRA_TLS_KEY)",
            key.display()
        )
    })?);
    keyinfra_pki::tls::certified_key_from_pem(&chain, &key_pem).map_err(|(in_chain, e)| {
        if in_chain {
            anyhow::anyhow!(
                "the TLS certificate chain {} (--tls-cert / KEYINFRA_TLS_CERT) is unusable: {e}",
                cert.display()
            )
        } else {
            anyhow::anyhow!(
                "the TLS private key {} (--tls-key / KEYINFRA_TLS_KEY) is unusable: {e}",
                key.display()
            )
        }
    })
}

/// A certificate this server issued itself.
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
/// default issuing CA: a fresh key in memory, a CSR, and the API's issuance use case.
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

/// The names of the server's own certificate: `--tls-names` first (the first is the CN),
/// then the listen address (unless it is a wildcard), localhost and 127.0.0.1.
/// The names a USER may not get in a certificate: the server's own (`--tls-names`, the
/// listen address; localhost and the loopback addresses are always added), whether or not
/// this server serves TLS now, so that a certificate for them cannot be obtained to
/// impersonate it later.
pub fn reserved_names(
    listen: IpAddr,
    extra: &[String],
) -> anyhow::Result<keyinfra_core::policy::names::ReservedNames> {
    let names = own_names(listen, extra)?;
    let dns = names.iter().filter_map(|n| match n {
        SubjectAltName::Dns(name) => Some(name.clone()),
        _ => None,
    });
    let ips = names.iter().filter_map(|n| match n {
        SubjectAltName::Ip(ip) => Some(*ip),
        _ => None,
    });
    Ok(keyinfra_core::policy::names::ReservedNames::new(
        dns.collect::<Vec<_>>(),
        ips.collect::<Vec<_>>(),
    ))
}

pub fn own_names(listen: IpAddr, extra: &[String]) -> anyhow::Result<Vec<SubjectAltName>> {
    let mut names = Vec::new();
    for name in extra.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let san = SubjectAltName::parse(name).map_err(|e| {
            anyhow::anyhow!("KEYINFRA_TLS_NAMES (--tls-names) has an invalid name {name:?}: {e}")
        })?;
        // A TLS server is reached by host name or address; e-mail and URI SANs have no place.
        if matches!(san, SubjectAltName::Email(_) | SubjectAltName::Uri(_)) {
            anyhow::bail!(
                "KEYINFRA_TLS_NAMES (--tls-names) takes DNS names and IP addresses, not {name:?}"
            );
        }
        names.push(san);
    }
    if !listen.is_unspecified() {
        names.push(SubjectAltName::Ip(listen));
    }
    names.push(SubjectAltName::Dns("localhost".to_owned()));
    names.push(SubjectAltName::Ip(IpAddr::from([127, 0, 0, 1])));
    let mut unique = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    if unique.len() > keyinfra_pki::names::MAX_SANS {
        anyhow::bail!("KEYINFRA_TLS_NAMES (--tls-names) names too many hosts");
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_the_given_ones_and_have_no_duplicates() {
        let names = own_names(
            "192.0.2.7".parse().unwrap(),
            &["ca.example.net".into(), "127.0.0.1".into()],
        )
        .unwrap();
        let tagged: Vec<_> = names.iter().map(SubjectAltName::to_tagged).collect();
        assert_eq!(
            tagged,
            [
                "DNS:ca.example.net",
                "IP:127.0.0.1",
                "IP:192.0.2.7",
                "DNS:localhost"
            ]
        );
        let wildcard = own_names("0.0.0.0".parse().unwrap(), &[]).unwrap();
        assert_eq!(wildcard.len(), 2);
        assert!(own_names("127.0.0.1".parse().unwrap(), &["bad name".into()]).is_err());
        for not_a_host in ["EMAIL:noc@example.net", "URI:https://ca.example.net/"] {
            let err = own_names("127.0.0.1".parse().unwrap(), &[not_a_host.into()]).unwrap_err();
            assert!(
                err.to_string().contains("DNS names and IP addresses"),
                "{err}"
            );
        }
    }

    #[test]
    fn renewal_is_due_two_thirds_into_the_lifetime() {
        let start = time::macros::datetime!(2030-01-01 0:00 UTC);
        assert_eq!(
            renew_at(start, start + time::Duration::days(90)),
            start + time::Duration::days(60)
        );
    }
}
