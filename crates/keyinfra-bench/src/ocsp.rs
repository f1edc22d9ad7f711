//! The OCSP benchmark's data (scripts/bench-ocsp): certificates issued by a running
//! KeyInfra's CA, some of them revoked, and what OpenSSL's own responder needs to answer
//! for the same certificates: an `openssl ca` index, the CA certificate and a delegated
//! responder certificate. Also DER OCSP requests (SHA-1 CertIDs, as RFC 5019 clients send
//! them) with and without a nonce, and a manifest saying what each should be answered.
//!
//! The certificates go through the one issuer and the revocations through the core's
//! `Revocations`, as the API's would, only without HTTP in between: several issuing tasks
//! share the group commit, so 10,000 take seconds rather than minutes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::{Clock, OsRandom, Principal, SystemClock};
use keyinfra_db::{Database, PoolSettings};
use keyinfra_pki::ocsp::{CertId, HashAlgorithm, IssuerHashes};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_pki::{KeyAlgorithm, RandomSource, RevocationReason, SerialNumber};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

pub struct OcspConfig {
    pub database_url: String,
    /// KeyInfra's master keys file (`VERSION:HEX` lines), the one `serve` was given.
    pub master_keys_file: PathBuf,
    /// The P-256 public key (PEM) OpenSSL's responder signs with; the CA certifies it.
    pub responder_public_key: PathBuf,
    pub out: PathBuf,
    pub certificates: usize,
    /// Every `revoke_every`-th certificate is revoked.
    pub revoke_every: usize,
    /// Certificates (from the first issued on) to write request files for.
    pub requests: usize,
    /// Issuing tasks at once.
    pub concurrency: usize,
}

/// Reasons that both KeyInfra and `openssl ca`'s index know by the same name.
const REASONS: [RevocationReason; 5] = [
    RevocationReason::KeyCompromise,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
    RevocationReason::AffiliationChanged,
    RevocationReason::Unspecified,
];

/// id-pkix-ocsp-nonce (RFC 8954).
const NONCE_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];

struct Issued {
    id: Uuid,
    serial: SerialNumber,
    subject: String,
    not_after: OffsetDateTime,
    revoked: Option<(OffsetDateTime, RevocationReason)>,
}

#[allow(clippy::print_stderr)] // Progress for the person running the script.
pub async fn run(config: &OcspConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.revoke_every >= 1,
        "--revoke-every must be at least 1"
    );
    let masters = read_master_keys(&config.master_keys_file)?;
    let db = Database::connect(&config.database_url, &PoolSettings::default()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut settings = AuthoritySettings::new("http://127.0.0.1:1");
    settings.quota = None;
    settings.write_rate = None;
    let authority = Arc::new(Authority::new(settings, masters, clock));
    let ca_id = authority.cas.default_issuing_ca(&db).await?;
    let ca = authority.cas.signer(&db, ca_id).await?;

    let started = Instant::now();
    let mut issued = issue_all(&authority, &db, config).await?;
    eprintln!(
        "keyinfra-bench: issued {} certificates in {:.1} s",
        issued.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut revoked = 0;
    for (n, cert) in issued.iter_mut().enumerate() {
        if n % config.revoke_every != 0 {
            continue;
        }
        let reason = REASONS[(n / config.revoke_every) % REASONS.len()];
        authority
            .revocations
            .revoke(&db, &Principal::Operator, cert.id, reason, None)
            .await?;
        let record = authority
            .revocations
            .revocation(&db, &Principal::Operator, cert.id)
            .await?
            .context("a revoked certificate has no revocation record")?;
        cert.revoked = Some((record.revoked_at, record.reason));
        revoked += 1;
    }
    eprintln!(
        "keyinfra-bench: revoked {revoked} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(config.out.join("requests"))?;
    write_file(&config.out, "index.txt", index(&issued)?.as_bytes())?;
    // An empty attribute file, so that OpenSSL does not warn that it is missing.
    write_file(&config.out, "index.txt.attr", b"unique_subject = no\n")?;
    let ca_der = ca
        .chain
        .first()
        .context("the issuing CA has no certificate")?;
    write_file(
        &config.out,
        "ca.pem",
        keyinfra_pki::certificate_pem(ca_der).as_bytes(),
    )?;
    let chain: String = ca
        .chain
        .iter()
        .map(|der| keyinfra_pki::certificate_pem(der))
        .collect();
    write_file(&config.out, "chain.pem", chain.as_bytes())?;
    let responder = openssl_responder(&ca.signer, &config.responder_public_key)?;
    write_file(
        &config.out,
        "openssl-responder.pem",
        keyinfra_pki::certificate_pem(&responder).as_bytes(),
    )?;

    let hashes = IssuerHashes::from_certificate(ca_der)?;
    let mut manifest = String::from("file\tserial\tstatus\tnonce\n");
    let mut rng = OsRandom;
    for (n, cert) in issued.iter().take(config.requests).enumerate() {
        let cert_id = CertId::new(HashAlgorithm::Sha1, &hashes, &cert.serial)?;
        let status = if cert.revoked.is_some() {
            "revoked"
        } else {
            "good"
        };
        for with_nonce in [false, true] {
            let nonce = if with_nonce {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes)?;
                Some(bytes)
            } else {
                None
            };
            let name = format!(
                "requests/{n:05}-{status}-{}.der",
                if with_nonce { "nonce" } else { "plain" }
            );
            write_file(
                &config.out,
                &name,
                &request_der(cert_id.der(), nonce.as_ref().map(|n| n.as_slice())),
            )?;
            writeln!(
                manifest,
                "{name}\t{}\t{status}\t{}",
                cert.serial.to_hex(),
                if with_nonce { "yes" } else { "no" }
            )?;
        }
    }
    write_file(&config.out, "requests.tsv", manifest.as_bytes())?;
    eprintln!(
        "keyinfra-bench: wrote {} (index of {} certificates, {} revoked; {} requests)",
        config.out.display(),
        issued.len(),
        revoked,
        2 * config.requests.min(issued.len())
    );
    db.close().await;
    Ok(())
}

/// Issues the certificates from `concurrency` tasks at once; returns them in issue order.
async fn issue_all(
    authority: &Arc<Authority>,
    db: &Database,
    config: &OcspConfig,
) -> anyhow::Result<Vec<Issued>> {
    let workers = config.concurrency.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let authority = Arc::clone(authority);
        let db = db.clone();
        let numbers: Vec<usize> = (worker..config.certificates).step_by(workers).collect();
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(numbers.len());
            for n in numbers {
                let subject = format!("CN=ocsp-bench-{n:05},O=Bench");
                let record = authority
                    .issuer
                    .issue(
                        &db,
                        &Principal::Operator,
                        IssueRequest {
                            key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                            subject: Some(subject.clone()),
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
                out.push((
                    n,
                    Issued {
                        id: record.id,
                        serial: SerialNumber::from_hex(&record.serial_number)?,
                        subject,
                        not_after: record.not_after,
                        revoked: None,
                    },
                ));
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    let mut all = Vec::with_capacity(config.certificates);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    all.sort_by_key(|(n, _)| *n);
    Ok(all.into_iter().map(|(_, cert)| cert).collect())
}

/// `VERSION:HEX` lines, as `keyinfra serve` reads KEYINFRA_MASTER_KEYS_FILE.
fn read_master_keys(path: &Path) -> anyhow::Result<MasterKeys> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let mut keys = MasterKeys::new();
    for entry in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
    {
        let (version, key) = entry
            .split_once(':')
            .context("a master key entry is not VERSION:HEX")?;
        let bytes = Zeroizing::new(
            hex::decode(key.trim()).map_err(|_| anyhow::anyhow!("a master key is not hex"))?,
        );
        keys.insert(version.trim().parse()?, &bytes)?;
    }
    Ok(keys)
}

/// A delegated responder certificate for OpenSSL's responder: the same profile as
/// KeyInfra's own (the CA issues both), for a key OpenSSL generated and keeps.
fn openssl_responder(
    ca: &keyinfra_pki::ca::CaSigner,
    public_key_pem: &Path,
) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(public_key_pem)
        .with_context(|| format!("cannot read {}", public_key_pem.display()))?;
    let pem = pem::parse(text)?;
    anyhow::ensure!(
        pem.tag() == "PUBLIC KEY",
        "{} is not a PUBLIC KEY PEM",
        public_key_pem.display()
    );
    let now = SystemClock.now();
    let certificate = ca.issue_ocsp_responder(
        &keyinfra_pki::ocsp::ResponderCertSpec {
            public_key: keyinfra_pki::ca::LeafKey::Spki(pem.contents()),
            not_before: now - time::Duration::minutes(5),
            not_after: (now + time::Duration::days(1)).min(ca.not_after()),
        },
        &mut OsRandom,
    )?;
    Ok(certificate.der)
}

/// The `openssl ca` database: one line per certificate, tab-separated: status (V or R),
/// expiry, revocation time and reason, serial (upper-case hex), file name, subject.
fn index(issued: &[Issued]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(issued.len() * 96);
    for cert in issued {
        let (status, revocation) = match cert.revoked {
            None => ("V", String::new()),
            Some((at, reason)) => ("R", format!("{},{}", utc_time(at)?, reason.name())),
        };
        let subject: String = cert
            .subject
            .split(',')
            .map(|rdn| format!("/{rdn}"))
            .collect();
        writeln!(
            out,
            "{status}\t{}\t{revocation}\t{}\tunknown\t{subject}",
            utc_time(cert.not_after)?,
            cert.serial.to_hex()
        )?;
    }
    Ok(out)
}

/// YYMMDDHHMMSSZ, as the index writes times.
fn utc_time(at: OffsetDateTime) -> anyhow::Result<String> {
    let format = time::macros::format_description!(
        "[year repr:last_two][month][day][hour][minute][second]Z"
    );
    Ok(at.to_offset(time::UtcOffset::UTC).format(&format)?)
}

/// An unsigned OCSPRequest for one CertID, with an RFC 8954 nonce when given (an OCTET
/// STRING inside the extension's OCTET STRING, as OpenSSL writes it).
fn request_der(cert_id_der: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    use yasna::models::ObjectIdentifier;
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_sequence(|w| w.next().write_der(cert_id_der));
                });
                if let Some(nonce) = nonce {
                    w.next().write_tagged(yasna::Tag::context(2), |w| {
                        w.write_sequence(|w| {
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&ObjectIdentifier::from_slice(NONCE_OID));
                                w.next()
                                    .write_bytes(&yasna::construct_der(|w| w.write_bytes(nonce)));
                            });
                        });
                    });
                }
            });
        });
    })
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
