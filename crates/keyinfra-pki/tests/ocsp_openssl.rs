//! OCSP against the real `openssl ocsp` (OpenSSL 3): the requests it writes parse and name
//! our certificates, and the responses we sign verify in it, with their status, reason and
//! nonce, for every responder key type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use keyinfra_pki::ca::{CaSigner, CaSpec, LeafKey, LeafSpec};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::ocsp::{
    BasicResponse, CertId, CertStatus, HashAlgorithm, IssuerHashes, OcspRequest, OcspResponder,
    OcspResponseStatus, RequestLimits, ResponderCertSpec, SingleResponse, error_response,
    parse_request,
};
use keyinfra_pki::profile::builtin_profiles;
use keyinfra_pki::{
    KeyAlgorithm, PkiError, PrivateKey, RandomSource, RevocationReason, SerialNumber,
    certificate_pem,
};
use time::{Duration, OffsetDateTime};

/// openssl checks thisUpdate and nextUpdate against its own clock.
#[allow(clippy::disallowed_methods)]
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

struct OsRandom;
impl RandomSource for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| PkiError::RandomSourceFailed)
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    ca: CaSigner,
    issuer: IssuerHashes,
    leaf_serial: SerialNumber,
    leaf2_serial: SerialNumber,
}

impl Fixture {
    /// A P-256 root and two leaves under it, as ca.pem, leaf.pem and leaf2.pem.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let subject = DistinguishedName::parse("CN=Test Root,O=KeyInfra").unwrap();
        let ca = CaSigner::create_root(
            PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
            &CaSpec {
                subject: &subject,
                serial: &SerialNumber::from_hex("01").unwrap(),
                not_before: now() - Duration::hours(1),
                not_after: now() + Duration::days(30),
                path_len: None,
                name_constraints: None,
            },
        )
        .unwrap();
        let fixture = Self {
            issuer: IssuerHashes::from_certificate(ca.certificate_der()).unwrap(),
            ca,
            // The top bit set checks that no sign octet leaks into the serial.
            leaf_serial: SerialNumber::from_hex("8F00AA").unwrap(),
            leaf2_serial: SerialNumber::random(&mut OsRandom).unwrap(),
            dir,
        };
        fixture.write(
            "ca.pem",
            certificate_pem(fixture.ca.certificate_der()).as_bytes(),
        );
        for (name, serial) in [
            ("leaf.pem", &fixture.leaf_serial),
            ("leaf2.pem", &fixture.leaf2_serial),
        ] {
            let der = fixture.leaf(serial);
            fixture.write(name, certificate_pem(&der).as_bytes());
        }
        fixture
    }

    fn leaf(&self, serial: &SerialNumber) -> Vec<u8> {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = DistinguishedName::parse("CN=device-1").unwrap();
        self.ca
            .sign_leaf(&LeafSpec {
                subject: &subject,
                sans: &[],
                profile: &builtin_profiles(None)[2],
                key_algorithm: KeyAlgorithm::EcdsaP256,
                public_key: LeafKey::Generated(&key),
                serial,
                not_before: now() - Duration::hours(1),
                not_after: now() + Duration::days(10),
                crl_url: "http://ca.example/crl",
                ca_issuers_url: "http://ca.example/ca.der",
                ocsp_url: Some("http://ca.example/ocsp"),
                delta_crl_url: None,
            })
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    /// A delegated responder with a fresh key of this kind; its certificate is written too.
    fn responder(&self, algorithm: KeyAlgorithm, pem_name: &str) -> OcspResponder {
        let key = PrivateKey::generate(algorithm).unwrap();
        let cert = self
            .ca
            .issue_ocsp_responder(
                &ResponderCertSpec {
                    public_key: LeafKey::Generated(&key),
                    not_before: now() - Duration::hours(1),
                    not_after: now() + Duration::days(7),
                },
                &mut OsRandom,
            )
            .unwrap();
        self.write(pem_name, certificate_pem(&cert.der).as_bytes());
        OcspResponder::new(cert.der, key).unwrap()
    }

    /// `openssl ocsp ARGS -reqout NAME`, parsed.
    fn openssl_request(&self, name: &str, args: &[&str]) -> (Vec<u8>, OcspRequest) {
        let mut all = args.to_vec();
        all.extend(["-reqout", name]);
        let (ok, out) = openssl(self.dir.path(), &all);
        assert!(ok, "{out}");
        let der = std::fs::read(self.path(name)).unwrap();
        let request = parse_request(&der, &RequestLimits::default()).unwrap();
        (der, request)
    }
}

/// Runs openssl in `dir`; success and stdout + stderr.
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_requests_parse_and_name_our_certificates() {
    let fx = Fixture::new();
    for (digest, hash) in [
        (None, HashAlgorithm::Sha1),
        (Some("-sha256"), HashAlgorithm::Sha256),
    ] {
        for nonce in ["-nonce", "-no_nonce"] {
            let mut args = vec!["ocsp"];
            args.extend(digest);
            args.extend([
                "-issuer",
                "ca.pem",
                "-cert",
                "leaf.pem",
                "-cert",
                "leaf2.pem",
                nonce,
            ]);
            let (_, request) = fx.openssl_request("req.der", &args);
            let ids = request.cert_ids();
            assert_eq!(ids.len(), 2);
            for (id, serial) in ids.iter().zip([&fx.leaf_serial, &fx.leaf2_serial]) {
                assert_eq!(id.hash_algorithm(), Some(hash));
                assert!(fx.issuer.matches(id));
                assert_eq!(id.serial().number(), Some(serial));
                // Our own encoding of the same CertID is OpenSSL's, byte for byte: responses
                // signed ahead of time answer what OpenSSL-based clients send.
                assert_eq!(
                    CertId::new(hash, &fx.issuer, serial).unwrap().der(),
                    id.der()
                );
            }
            match nonce {
                "-nonce" => {
                    let nonce = request.nonce().expect("a nonce");
                    assert!(nonce.is_wrapped());
                    assert_eq!(nonce.value().len(), 16);
                }
                _ => assert!(request.nonce().is_none()),
            }
            assert!(!request.is_signed());
        }
    }
    // -serial names certificates that need not exist; other issuers do not match.
    let (_, request) = fx.openssl_request(
        "serials.der",
        &[
            "ocsp", "-issuer", "ca.pem", "-serial", "0x01", "-serial", "1234",
        ],
    );
    let serials: Vec<_> = request
        .cert_ids()
        .iter()
        .map(|id| id.serial().number().unwrap().to_hex())
        .collect();
    assert_eq!(serials, ["01", "04D2"]);
    let other = IssuerHashes::from_certificate(fx.leaf(&fx.leaf_serial).as_slice()).unwrap();
    assert!(!other.matches(&request.cert_ids()[0]));
}

#[test]
fn signed_openssl_requests_parse() {
    let fx = Fixture::new();
    let (ok, out) = openssl(
        fx.dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "signer.key",
            "-subj",
            "/CN=requestor",
            "-days",
            "1",
            "-out",
            "signer.pem",
        ],
    );
    assert!(ok, "{out}");
    let (_, request) = fx.openssl_request(
        "signed.der",
        &[
            "ocsp",
            "-issuer",
            "ca.pem",
            "-cert",
            "leaf.pem",
            "-signer",
            "signer.pem",
            "-signkey",
            "signer.key",
            "-nonce",
        ],
    );
    assert!(request.is_signed());
    assert!(fx.issuer.matches(&request.cert_ids()[0]));
    assert!(request.nonce().is_some());
}

fn single(cert_id: &CertId, status: CertStatus) -> SingleResponse<'_> {
    SingleResponse {
        cert_id,
        status,
        this_update: now() - Duration::minutes(5),
        next_update: Some(now() + Duration::hours(1)),
    }
}

/// What openssl says of a response: with `-reqin` it verifies the response against ca.pem
/// and checks the nonce against the request's (given `-cert`, it would build a request of
/// its own with a fresh nonce instead of reading the file), then with `-cert` it prints the
/// status of leaf.pem (under a CertID hashed with `digest`). Both outputs, concatenated.
fn check_in_openssl(fx: &Fixture, request: &str, digest: &str, response: &[u8]) -> String {
    fx.write("resp.der", response);
    let (ok, mut out) = openssl(
        fx.dir.path(),
        &[
            "ocsp",
            "-reqin",
            request,
            "-respin",
            "resp.der",
            "-CAfile",
            "ca.pem",
            "-resp_text",
        ],
    );
    assert!(ok, "{out}");
    let (ok, status) = openssl(
        fx.dir.path(),
        &[
            "ocsp",
            digest,
            "-respin",
            "resp.der",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-cert",
            "leaf.pem",
            "-no_nonce",
        ],
    );
    assert!(ok, "{status}");
    out.push_str(&status);
    out
}

#[test]
fn responses_verify_in_openssl_for_every_responder_key_type() {
    let fx = Fixture::new();
    let (_, request) = fx.openssl_request(
        "req.der",
        &["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-nonce"],
    );
    let id = &request.cert_ids()[0];
    let revoked_at = now() - Duration::hours(2);
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ] {
        let responder = fx.responder(algorithm, "responder.pem");
        for (status, expected) in [
            (CertStatus::Good, "leaf.pem: good"),
            (
                CertStatus::Revoked {
                    revocation_time: revoked_at,
                    reason: Some(RevocationReason::KeyCompromise),
                },
                "leaf.pem: revoked",
            ),
            (CertStatus::Unknown, "leaf.pem: unknown"),
        ] {
            let der = responder
                .sign(&BasicResponse {
                    produced_at: now(),
                    responses: &[single(id, status)],
                    nonce: request.nonce(),
                })
                .unwrap();
            let out = check_in_openssl(&fx, "req.der", "-sha1", &der);
            let context = format!("{algorithm}, {expected}:\n{out}");
            assert!(out.contains("Response verify OK"), "{context}");
            assert!(out.contains(expected), "{context}");
            assert!(out.contains("OCSP Nonce"), "{context}");
            for bad in ["WARNING", "rror"] {
                assert!(!out.contains(bad), "{context}");
            }
            if let CertStatus::Revoked { .. } = status {
                assert!(out.contains("Reason: keyCompromise"), "{context}");
            }
        }
    }
}

#[test]
fn openssl_notices_a_missing_nonce_and_reads_a_revocation_without_reason() {
    let fx = Fixture::new();
    let responder = fx.responder(KeyAlgorithm::EcdsaP256, "responder.pem");
    let (_, request) = fx.openssl_request(
        "req.der",
        &[
            "ocsp", "-sha256", "-issuer", "ca.pem", "-cert", "leaf.pem", "-nonce",
        ],
    );
    let status = CertStatus::Revoked {
        revocation_time: now() - Duration::hours(2),
        reason: None,
    };
    let der = responder
        .sign(&BasicResponse {
            produced_at: now(),
            responses: &[single(&request.cert_ids()[0], status)],
            nonce: None,
        })
        .unwrap();
    let out = check_in_openssl(&fx, "req.der", "-sha256", &der);
    // The control for the nonce checks above: openssl does compare them.
    assert!(out.contains("WARNING: no nonce in response"), "{out}");
    assert!(out.contains("leaf.pem: revoked"), "{out}");
    assert!(!out.contains("Reason:"), "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
}

#[test]
fn the_ca_can_answer_for_itself_and_a_cached_response_answers_without_a_request() {
    let fx = Fixture::new();
    let responder = fx.ca.ocsp_responder().unwrap();
    // Signed ahead of any request, for the SHA-1 CertID every OpenSSL client sends.
    let id = CertId::new(HashAlgorithm::Sha1, &fx.issuer, &fx.leaf_serial).unwrap();
    let der = responder
        .sign(&BasicResponse {
            produced_at: now(),
            responses: &[single(&id, CertStatus::Good)],
            nonce: None,
        })
        .unwrap();
    fx.write("cached.der", &der);
    let (ok, out) = openssl(
        fx.dir.path(),
        &[
            "ocsp",
            "-respin",
            "cached.der",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-cert",
            "leaf.pem",
            "-resp_text",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: good"), "{out}");
}

#[test]
fn error_responses_read_in_openssl() {
    let dir = tempfile::tempdir().unwrap();
    for (status, text) in [
        (OcspResponseStatus::MalformedRequest, "malformedrequest (1)"),
        (OcspResponseStatus::InternalError, "internalerror (2)"),
        (OcspResponseStatus::TryLater, "trylater (3)"),
        (OcspResponseStatus::SigRequired, "sigrequired (5)"),
        (OcspResponseStatus::Unauthorized, "unauthorized (6)"),
    ] {
        std::fs::write(dir.path().join("err.der"), error_response(status)).unwrap();
        let (_, out) = openssl(dir.path(), &["ocsp", "-respin", "err.der", "-resp_text"]);
        assert!(out.contains(&format!("Responder Error: {text}")), "{out}");
    }
}

#[test]
fn the_responder_certificate_has_the_ocsp_signing_profile() {
    let fx = Fixture::new();
    fx.responder(KeyAlgorithm::EcdsaP256, "responder.pem");
    let (ok, text) = openssl(
        fx.dir.path(),
        &["x509", "-in", "responder.pem", "-noout", "-text"],
    );
    assert!(ok, "{text}");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let after = |heading: &str| {
        let i = lines
            .iter()
            .position(|l| l.starts_with(heading))
            .unwrap_or_else(|| panic!("no {heading}:\n{text}"));
        (lines[i], lines[i + 1])
    };
    assert!(
        text.contains("Subject: O = KeyInfra, CN = Test Root OCSP Responder"),
        "{text}"
    );
    assert_eq!(
        after("X509v3 Extended Key Usage"),
        ("X509v3 Extended Key Usage:", "OCSP Signing")
    );
    assert_eq!(
        after("X509v3 Key Usage"),
        ("X509v3 Key Usage: critical", "Digital Signature")
    );
    assert_eq!(after("X509v3 Basic Constraints").1, "CA:FALSE");
    assert!(lines.contains(&"OCSP No Check:"), "{text}");
    assert!(!text.contains("OCSP No Check: critical"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    // OpenSSL's own purpose check for OCSP responder certificates.
    let (ok, out) = openssl(
        fx.dir.path(),
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "ocsphelper",
            "responder.pem",
        ],
    );
    assert!(ok && out.contains("responder.pem: OK"), "{out}");
}
