//! pkilint (DigiCert's linter, from PyPI) as an outside judge of every kind of object
//! KeyInfra produces (issue 18): certificates of each leaf profile and key algorithm, made
//! here and from CSRs, the CAs and their OCSP responders; complete and delta CRLs, empty
//! and with entries; OCSP responses that say good, revoked and unknown.
//!
//! Any finding at WARNING or above fails the test unless [`ACCEPTED`] names it with the
//! reason it does not apply. Each object's findings are printed, so a failure (or
//! `--nocapture`) shows what pkilint said about what.
//!
//! pkilint lives in the virtualenv `scripts/pkilint-venv` makes (`.pkilint/venv` in the
//! workspace), or in the directory `KEYINFRA_PKILINT_BIN` names. Without it the test
//! fails: an outside judge that is silently skipped judges nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keyinfra_core::issuing_ca::IssuingCaOptions;
use keyinfra_core::{Clock, OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_pki::KeyAlgorithm;
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::openssl::{Scratch, openssl_ok};
use crate::support::TestApp;

/// Findings at WARNING or above that do not apply to KeyInfra, with the reason.
const ACCEPTED: &[Accepted] = &[];

struct Accepted {
    kind: Kind,
    code: &'static str,
    reason: &'static str,
}

/// The pkilint tools this test runs.
const TOOLS: [&str; 3] = ["lint_pkix_cert", "lint_crl", "lint_ocsp_response"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Certificate,
    Crl,
    OcspResponse,
}

impl Kind {
    /// The pkilint command line before the file. pkilint 0.13 has no type for delta CRLs
    /// (`-t` is CRL or ARL); a delta CRL is a CRL to it, checked against RFC 5280.
    fn command(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Kind::Certificate => ("lint_pkix_cert", &["lint"]),
            Kind::Crl => ("lint_crl", &["lint", "-t", "CRL", "-p", "PKIX"]),
            Kind::OcspResponse => ("lint_ocsp_response", &["lint"]),
        }
    }
}

/// One thing KeyInfra produced, as served (PEM or DER; pkilint detects which).
struct Object {
    name: String,
    kind: Kind,
    bytes: Vec<u8>,
}

/// One finding, as pkilint's JSON report gives it.
struct Finding {
    severity: String,
    code: String,
    message: Option<String>,
    validator: String,
    node_path: String,
}

impl Finding {
    fn fails(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "ERROR" | "WARNING")
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({} @ {})",
            self.severity, self.code, self.validator, self.node_path
        )?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

struct Pkilint {
    bin: PathBuf,
}

impl Pkilint {
    fn locate() -> Self {
        let bin = match std::env::var_os("KEYINFRA_PKILINT_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.pkilint/venv/bin"),
        };
        for tool in TOOLS {
            assert!(
                bin.join(tool).is_file(),
                "pkilint is not installed: {} has no {tool}. Run scripts/pkilint-venv from the \
                 workspace root (it needs Debian's python3-venv), or set KEYINFRA_PKILINT_BIN \
                 to a directory holding {}.",
                bin.display(),
                TOOLS.join(", ")
            );
        }
        Self { bin }
    }

    /// Every finding pkilint reports about `object`, INFO and above.
    fn lint(&self, dir: &Scratch, object: &Object) -> Vec<Finding> {
        let file = dir.write(&format!("lint-{}", object.name), &object.bytes);
        let (tool, args) = object.kind.command();
        let out = Command::new(self.bin.join(tool))
            .args(args)
            .args(["-f", "JSON", "-s", "INFO", &file])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        // The exit status counts findings; only a report that does not parse is a failure
        // to lint.
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{tool} gave no JSON report for {} ({}):\n{}{}",
                object.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        report["results"]
            .as_array()
            .expect("a results array")
            .iter()
            .flat_map(|result| {
                result["finding_descriptions"]
                    .as_array()
                    .expect("finding_descriptions")
                    .iter()
                    .map(|d| Finding {
                        severity: text(&d["severity"]),
                        code: text(&d["code"]),
                        message: d["message"].as_str().map(str::to_owned),
                        validator: text(&result["validator"]),
                        node_path: text(&result["node_path"]),
                    })
            })
            .collect()
    }
}

fn pem(cert: &Value) -> Vec<u8> {
    cert["certificate_pem"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// The delegated responder's certificate that travels in an OCSP response (PEM, as
/// `openssl ocsp -resp_text` prints it).
fn responder_certificate(dir: &Scratch, response: &[u8]) -> Vec<u8> {
    let file = dir.write("certs-of.der", response);
    let text = openssl_ok(&["ocsp", "-respin", &file, "-resp_text", "-noverify"]);
    let end = "-----END CERTIFICATE-----";
    let certificates: Vec<String> = text
        .split_inclusive(end)
        .filter_map(|part| {
            let start = part.find("-----BEGIN CERTIFICATE-----")?;
            part.ends_with(end).then(|| format!("{}\n", &part[start..]))
        })
        .collect();
    assert_eq!(
        certificates.len(),
        1,
        "one responder certificate in\n{text}"
    );
    certificates[0].clone().into_bytes()
}

/// An OCSP request made by `openssl ocsp -reqout` with `args`, posted to the public
/// listener; the DER response.
async fn ask_ocsp(app: &TestApp, dir: &Scratch, args: &[&str]) -> Vec<u8> {
    let out = dir.path("request.der");
    let mut all = vec!["ocsp", "-reqout", out.as_str()];
    all.extend_from_slice(args);
    openssl_ok(&all);
    let response = app
        .http
        .post(format!("{}/ocsp", app.public_base))
        .header("content-type", "application/ocsp-request")
        .body(dir.read("request.der"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// What `openssl ocsp` says of a response about `cert` (verified against `ca_file`).
fn ocsp_verdict(dir: &Scratch, response: &[u8], issuer: &str, ca_file: &str, cert: &str) -> String {
    let file = dir.write("verdict.der", response);
    openssl_ok(&[
        "ocsp",
        "-respin",
        &file,
        "-issuer",
        issuer,
        "-CAfile",
        ca_file,
        "-cert",
        cert,
        "-no_nonce",
    ])
}

/// The CA's complete CRL, or its delta, once it lists `entries` revocations.
async fn crl_with(app: &TestApp, ca_id: Uuid, delta: bool, entries: usize) -> Vec<u8> {
    let path = if delta {
        format!("/crl/{ca_id}/delta.crl")
    } else {
        format!("/crl/{ca_id}.crl")
    };
    for _ in 0..200 {
        let response = app
            .http
            .get(format!("{}{path}", app.public_base))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            let der = response.bytes().await.unwrap().to_vec();
            if keyinfra_pki::ca::read_crl(&der).unwrap().entries.len() == entries {
                return der;
            }
        }
        // Publishing runs in the background, coalescing revocations.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never listed {entries} revocation(s)");
}

/// A CSR for a new key of `algorithm`, made by openssl.
fn csr(dir: &Scratch, algorithm: KeyAlgorithm, subject: &str) -> String {
    let key_args: &[&str] = match algorithm {
        KeyAlgorithm::EcdsaP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyAlgorithm::EcdsaP384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        KeyAlgorithm::Ed25519 => &["-newkey", "ed25519"],
        KeyAlgorithm::Rsa2048 => &["-newkey", "rsa:2048"],
        KeyAlgorithm::Rsa3072 => &["-newkey", "rsa:3072"],
        KeyAlgorithm::Rsa4096 => &["-newkey", "rsa:4096"],
    };
    let out = dir.path("request.csr");
    let key = dir.path("request.key");
    let mut args = vec![
        "req", "-new", "-nodes", "-keyout", &key, "-out", &out, "-subj", subject,
    ];
    args.extend_from_slice(key_args);
    openssl_ok(&args);
    String::from_utf8(dir.read("request.csr")).unwrap()
}

async fn revoke(app: &TestApp, token: &str, cert: &Value, reason: &str, invalidity: Option<&str>) {
    let mut body = json!({ "reason": reason });
    if let Some(at) = invalidity {
        body["invalidity_date"] = json!(at);
    }
    let (status, answer) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                cert["id"].as_str().unwrap()
            ),
            token,
            body,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// A new issuing CA under `parent`: its id and certificate (PEM).
async fn issuing_ca(
    app: &TestApp,
    parent: Uuid,
    name: &str,
    subject: &str,
    algorithm: Option<KeyAlgorithm>,
) -> (Uuid, String) {
    let record = app
        .state
        .authority
        .ca_setup
        .create_issuing_ca(
            &app.db,
            &Principal::Operator,
            parent,
            &IssuingCaOptions {
                name: name.into(),
                subject: subject.into(),
                algorithm,
                validity: None,
                name_constraints: None,
                starts_at: None,
            },
            &mut OsRandom,
        )
        .await
        .unwrap();
    (
        record.id,
        keyinfra_pki::certificate_pem(&record.certificate_der),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pkilint_finds_nothing_wrong_with_anything_we_produce() {
    let pkilint = Pkilint::locate();
    // One admin issues every object: no quota.
    let app = TestApp::spawn_with(
        crate::support::PEPPER,
        None,
        crate::support::test_edge(),
        |s| s.quota = None,
    )
    .await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let dir = Scratch::new();
    let mut objects = Vec::new();
    let mut add = |name: String, kind: Kind, bytes: Vec<u8>| {
        objects.push(Object { name, kind, bytes });
    };

    // The root (made by App::build), and an issuing CA under it.
    let (root_id, root_pem) = app.ca().await;
    let root_id: Uuid = root_id.parse().unwrap();
    let root_file = dir.write("root.pem", &root_pem);
    let (issuing_id, issuing_pem) = issuing_ca(
        &app,
        root_id,
        "issuing",
        "CN=KeyInfra Issuing CA,O=KeyInfra",
        None,
    )
    .await;
    let issuing_file = dir.write("issuing.pem", &issuing_pem);
    add(
        "root-ca.pem".into(),
        Kind::Certificate,
        root_pem.into_bytes(),
    );
    add(
        "issuing-ca.pem".into(),
        Kind::Certificate,
        issuing_pem.into_bytes(),
    );

    // Issuing CAs of the other CA key families, so that RSA and Ed25519 signatures on
    // certificates, CRLs and OCSP responses are judged too. Made before the first OCSP
    // request: the responder looks for CAs it does not know at most every 30 seconds.
    let mut other_cas = Vec::new();
    for algorithm in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::EcdsaP256,
    ] {
        let label = algorithm.label();
        let (ca_id, ca_pem) = issuing_ca(
            &app,
            root_id,
            &format!("issuing-{label}"),
            &format!("CN=KeyInfra {label} CA,O=KeyInfra"),
            Some(algorithm),
        )
        .await;
        other_cas.push((label, ca_id, ca_pem));
    }

    // Both CAs' CRLs before any revocation: empty.
    for (ca, ca_id) in [("root", root_id), ("issuing", issuing_id)] {
        add(
            format!("{ca}-empty.crl"),
            Kind::Crl,
            crl_with(&app, ca_id, false, 0).await,
        );
        add(
            format!("{ca}-empty-delta.crl"),
            Kind::Crl,
            crl_with(&app, ca_id, true, 0).await,
        );
    }

    // Every leaf profile with every key algorithm, the key made here; and each algorithm
    // from a CSR, the profiles taking turns.
    let profiles: Vec<String> = app
        .state
        .authority
        .settings
        .profiles
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut leaves = Vec::new();
    for profile in &profiles {
        for algorithm in KeyAlgorithm::ALL {
            let name = format!("{profile}-{}", algorithm.label());
            let cert = app
                .issue(
                    &admin,
                    json!({
                        "subject": format!("CN={name},O=KeyInfra Test"),
                        "san": [format!("{name}.example.net"), "192.0.2.7"],
                        "profile": profile,
                        "key_algorithm": algorithm.label(),
                        "ca_id": issuing_id.to_string(),
                    }),
                )
                .await;
            add(format!("leaf-{name}.pem"), Kind::Certificate, pem(&cert));
            leaves.push(cert);
        }
    }
    for (algorithm, profile) in KeyAlgorithm::ALL.into_iter().zip(profiles.iter().cycle()) {
        let name = format!("csr-{profile}-{}", algorithm.label());
        let request = csr(&dir, algorithm, &format!("/CN={name}/O=KeyInfra Test"));
        let cert = app
            .issue(
                &admin,
                json!({
                    "csr": request,
                    "san": [format!("{name}.example.net")],
                    "profile": profile,
                    "ca_id": issuing_id.to_string(),
                }),
            )
            .await;
        add(format!("leaf-{name}.pem"), Kind::Certificate, pem(&cert));
    }

    // OCSP before any revocation: good (with and without a nonce) and unknown.
    let good = &leaves[0];
    let good_file = dir.write("good.pem", pem(good));
    let answer = ask_ocsp(&app, &dir, &["-issuer", &issuing_file, "-cert", &good_file]).await;
    assert!(ocsp_verdict(&dir, &answer, &issuing_file, &root_file, &good_file).contains(": good"));
    add(
        "issuing-ocsp-responder.pem".into(),
        Kind::Certificate,
        responder_certificate(&dir, &answer),
    );
    add(
        "issuing-ocsp-good-nonce.der".into(),
        Kind::OcspResponse,
        answer,
    );
    let answer = ask_ocsp(
        &app,
        &dir,
        &["-issuer", &issuing_file, "-cert", &good_file, "-no_nonce"],
    )
    .await;
    add("issuing-ocsp-good.der".into(), Kind::OcspResponse, answer);
    let answer = ask_ocsp(
        &app,
        &dir,
        &["-issuer", &issuing_file, "-serial", "0x0123456789ABCDEF"],
    )
    .await;
    add(
        "issuing-ocsp-unknown.der".into(),
        Kind::OcspResponse,
        answer,
    );
    // The root answers for the issuing CA's own certificate, through its own responder.
    let answer = ask_ocsp(&app, &dir, &["-issuer", &root_file, "-cert", &issuing_file]).await;
    assert!(ocsp_verdict(&dir, &answer, &root_file, &root_file, &issuing_file).contains(": good"));
    add(
        "root-ocsp-responder.pem".into(),
        Kind::Certificate,
        responder_certificate(&dir, &answer),
    );
    add("root-ocsp-good.der".into(), Kind::OcspResponse, answer);
    let answer = ask_ocsp(&app, &dir, &["-issuer", &root_file, "-serial", "0x42"]).await;
    add("root-ocsp-unknown.der".into(), Kind::OcspResponse, answer);

    // Revocations with every reason a leaf may have; unspecified is written as no reason
    // code (RFC 5280 5.3.1), keyCompromise with an invalidity date.
    let reasons = [
        "unspecified",
        "keyCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
    ];
    let compromised_at = (app.clock.now() - time::Duration::minutes(1))
        .format(&Rfc3339)
        .unwrap();
    for (reason, cert) in reasons.iter().zip(&leaves[1..]) {
        let invalidity = (*reason == "keyCompromise").then_some(compromised_at.as_str());
        revoke(&app, &admin, cert, reason, invalidity).await;
        let file = dir.write("revoked.pem", pem(cert));
        let answer = ask_ocsp(&app, &dir, &["-issuer", &issuing_file, "-cert", &file]).await;
        let verdict = ocsp_verdict(&dir, &answer, &issuing_file, &root_file, &file);
        assert!(verdict.contains(": revoked"), "{verdict}");
        add(
            format!("issuing-ocsp-revoked-{reason}.der"),
            Kind::OcspResponse,
            answer,
        );
    }
    add(
        "issuing.crl".into(),
        Kind::Crl,
        crl_with(&app, issuing_id, false, reasons.len()).await,
    );
    add(
        "issuing-delta.crl".into(),
        Kind::Crl,
        crl_with(&app, issuing_id, true, reasons.len()).await,
    );

    // The other CA key families' CAs: their certificates, CRLs and OCSP responses.
    for (label, ca_id, ca_pem) in other_cas {
        let ca_file = dir.write("other-ca.pem", &ca_pem);
        add(
            format!("{label}-ca.pem"),
            Kind::Certificate,
            ca_pem.into_bytes(),
        );
        let cert = app
            .issue(
                &admin,
                json!({
                    "subject": format!("CN=under-{label}"),
                    "san": [format!("under-{label}.example.net")],
                    "key_algorithm": "ecdsa-p256",
                    "ca_id": ca_id.to_string(),
                }),
            )
            .await;
        add(
            format!("{label}-ca-leaf.pem"),
            Kind::Certificate,
            pem(&cert),
        );
        let leaf_file = dir.write("other-leaf.pem", pem(&cert));
        revoke(&app, &admin, &cert, "keyCompromise", None).await;
        let answer = ask_ocsp(&app, &dir, &["-issuer", &ca_file, "-cert", &leaf_file]).await;
        let verdict = ocsp_verdict(&dir, &answer, &ca_file, &root_file, &leaf_file);
        assert!(verdict.contains(": revoked"), "{verdict}");
        add(
            format!("{label}-ocsp-responder.pem"),
            Kind::Certificate,
            responder_certificate(&dir, &answer),
        );
        add(
            format!("{label}-ocsp-revoked.der"),
            Kind::OcspResponse,
            answer,
        );
        add(
            format!("{label}.crl"),
            Kind::Crl,
            crl_with(&app, ca_id, false, 1).await,
        );
        add(
            format!("{label}-delta.crl"),
            Kind::Crl,
            crl_with(&app, ca_id, true, 1).await,
        );
    }

    // The judge is awake: a CA certificate without keyUsage, made by openssl, is an error
    // this test sees.
    let config = dir.write(
        "no-key-usage.cnf",
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\n[dn]\n\
         [ext]\nbasicConstraints = critical,CA:TRUE\n",
    );
    let (key, cert) = (dir.path("no-key-usage.key"), dir.path("no-key-usage.pem"));
    openssl_ok(&[
        "req",
        "-x509",
        "-config",
        &config,
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-subj",
        "/CN=No Key Usage",
        "-days",
        "1",
    ]);
    let bad = Object {
        name: "openssl-ca-without-key-usage.pem".into(),
        kind: Kind::Certificate,
        bytes: dir.read("no-key-usage.pem"),
    };
    let findings = pkilint.lint(&dir, &bad);
    assert!(
        findings
            .iter()
            .any(|f| f.fails() && f.code == "pkix.ca_certificate_no_ku_extension"),
        "pkilint did not report the missing keyUsage: {:?}",
        findings.iter().map(ToString::to_string).collect::<Vec<_>>()
    );

    // Judge everything; report all of it before failing.
    let mut failures = Vec::new();
    let mut accepted_seen = BTreeSet::new();
    for object in &objects {
        let findings = pkilint.lint(&dir, object);
        println!(
            "{} ({:?}): {} finding(s)",
            object.name,
            object.kind,
            findings.len()
        );
        for finding in &findings {
            println!("    {finding}");
        }
        for finding in findings.iter().filter(|f| f.fails()) {
            match ACCEPTED
                .iter()
                .position(|a| a.kind == object.kind && a.code == finding.code)
            {
                Some(i) => {
                    println!("    (accepted: {})", ACCEPTED[i].reason);
                    accepted_seen.insert(i);
                }
                None => failures.push(format!("{}: {finding}", object.name)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "pkilint findings at WARNING or above (fix them, or name them in ACCEPTED with the \
         reason they do not apply):\n{}",
        failures.join("\n")
    );
    // An accepted finding that no longer appears is stale: keep the list true.
    let stale: Vec<&str> = ACCEPTED
        .iter()
        .enumerate()
        .filter(|(i, _)| !accepted_seen.contains(i))
        .map(|(_, a)| a.code)
        .collect();
    assert!(
        stale.is_empty(),
        "ACCEPTED names findings pkilint no longer reports: {stale:?}"
    );
}
