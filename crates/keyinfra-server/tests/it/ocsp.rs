//! OCSP (issue 18), checked with the real `openssl ocsp` client and curl: good, revoked
//! with its reason, unknown; the response verified and its nonce checked; GET with RFC 5019
//! caching headers; a delegated responder under an issuing CA, and the root answering for
//! the issuing CA's own certificate; malformed requests answered with an OCSP status; and
//! a revocation seen by another replica.
//!
//! The clients run as blocking child processes while the server answers them on the same
//! runtime: these tests take a multi-threaded one, so that a waiting client never holds
//! the only worker.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use keyinfra_core::issuing_ca::IssuingCaOptions;
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_db::authorities::AuthorityRecord;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl, openssl_ok};
use crate::support::TestApp;

/// `openssl ocsp` against `url` for the certificate in `cert_file`; its whole output.
fn ask(issuer: &str, ca_file: &str, cert_file: &str, url: &str) -> String {
    openssl_ok(&[
        "ocsp",
        "-issuer",
        issuer,
        "-CAfile",
        ca_file,
        "-cert",
        cert_file,
        "-url",
        url,
        "-resp_text",
    ])
}

/// A DER request made by `openssl ocsp -reqout`.
fn request_der(dir: &Scratch, name: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.path(name);
    let mut all = vec!["ocsp", "-reqout", out.as_str()];
    all.extend_from_slice(args);
    openssl_ok(&all);
    dir.read(name)
}

/// A POST of `body` as an OCSP request, not yet sent.
fn ocsp_request(http: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/ocsp-request")
        .body(body)
}

async fn post_ocsp(http: &reqwest::Client, url: &str, der: Vec<u8>) -> reqwest::Response {
    ocsp_request(http, url, der).send().await.unwrap()
}

/// openssl's verdict on a response read from a file (`-no_nonce`: given `-cert`, openssl
/// compares the response with a request of its own, whose nonce it would have made up).
fn read_response(
    dir: &Scratch,
    der: &[u8],
    issuer: &str,
    ca_file: &str,
    cert_file: &str,
) -> String {
    let resp = dir.write("resp.der", der);
    openssl_ok(&[
        "ocsp",
        "-respin",
        &resp,
        "-issuer",
        issuer,
        "-CAfile",
        ca_file,
        "-cert",
        cert_file,
        "-no_nonce",
        "-resp_text",
    ])
}

async fn revoke(app: &TestApp, token: &str, id: &str, reason: &str) {
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            token,
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn pem_of(cert: &Value) -> &str {
    cert["certificate_pem"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openssl_ocsp_gets_good_revoked_and_unknown_verified_with_its_nonce() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca = dir.write("ca.pem", &ca_pem);
    let good = app
        .issue(&admin, json!({"subject": "CN=good-router"}))
        .await;
    let bad = app
        .issue(&admin, json!({"subject": "CN=stolen-router"}))
        .await;
    let good_file = dir.write("good.pem", pem_of(&good));
    let bad_file = dir.write("bad.pem", pem_of(&bad));

    // New certificates name the responder in their Authority Information Access.
    let text = openssl_ok(&["x509", "-in", &good_file, "-noout", "-text"]);
    assert!(
        text.contains(&format!("OCSP - URI:{}/ocsp", app.base)),
        "{text}"
    );

    // Plain HTTP, no login: the public listener answers.
    let url = format!("{}/ocsp", app.public_base);
    let out = ask(&ca, &ca, &good_file, &url);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{good_file}: good")), "{out}");
    // openssl sends a nonce by default and checks the echo; it warns when it is missing
    // and fails when it differs.
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert!(
        !out.contains("WARNING: no nonce") && !out.to_lowercase().contains("nonce verify error"),
        "{out}"
    );
    // The delegated responder's certificate travels in the response.
    assert!(
        out.contains("OCSP Signing") && out.contains("OCSP No Check"),
        "{out}"
    );
    assert!(out.contains("Responder Id: "), "{out}");

    revoke(&app, &admin, bad["id"].as_str().unwrap(), "keyCompromise").await;
    let out = ask(&ca, &ca, &bad_file, &url);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{bad_file}: revoked")), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");

    // A serial this CA never issued.
    let out = openssl_ok(&[
        "ocsp",
        "-issuer",
        &ca,
        "-CAfile",
        &ca,
        "-serial",
        "0x0123456789ABCDEF",
        "-url",
        &url,
    ]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("0x0123456789ABCDEF: unknown"), "{out}");

    // The TLS-side (main) listener answers the same.
    let out = ask(&ca, &ca, &good_file, &format!("{}/ocsp", app.base));
    assert!(out.contains(&format!("{good_file}: good")), "{out}");

    // SHA-256 CertIDs too.
    let der = request_der(
        &dir,
        "sha256.der",
        &["-sha256", "-issuer", &ca, "-cert", &good_file],
    );
    let response = post_ocsp(&app.http, &url, der).await;
    let body = response.bytes().await.unwrap();
    let resp = dir.write("sha256-resp.der", &body);
    // openssl finds the answer by the CertID it builds itself: SHA-256 too.
    let out = openssl_ok(&[
        "ocsp",
        "-respin",
        &resp,
        "-issuer",
        &ca,
        "-CAfile",
        &ca,
        "-sha256",
        "-cert",
        &good_file,
        "-no_nonce",
        "-resp_text",
    ]);
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );
    assert!(out.contains("Hash Algorithm: sha256"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_get_request_built_by_openssl_and_sent_by_curl_has_rfc_5019_caching_headers() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca = dir.write("ca.pem", &ca_pem);
    let cert = app.issue(&admin, json!({"subject": "CN=ap-7"})).await;
    let cert_file = dir.write("cert.pem", pem_of(&cert));
    let der = request_der(
        &dir,
        "req.der",
        &["-issuer", &ca, "-cert", &cert_file, "-no_nonce"],
    );
    // RFC 6960 A.1: base64, then URL-encoded.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let encoded: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_owned(),
            '/' => "%2F".to_owned(),
            '=' => "%3D".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let url = format!("{}/ocsp/{encoded}", app.public_base);
    let fetch = |n: &str| {
        let body = dir.path(&format!("{n}.der"));
        let headers = dir.path(&format!("{n}.headers"));
        let status = Command::new("curl")
            .args(["-sS", "-D", &headers, "-o", &body, &url])
            .status()
            .expect("curl is installed");
        assert!(status.success());
        (
            std::fs::read(&body).unwrap(),
            std::fs::read_to_string(&headers)
                .unwrap()
                .to_ascii_lowercase(),
        )
    };
    let (first, headers) = fetch("first");
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("content-type: application/ocsp-response"),
        "{headers}"
    );
    let max_age: i64 = headers
        .lines()
        .find_map(|l| l.strip_prefix("cache-control: max-age="))
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().parse().unwrap())
        .expect("Cache-Control with max-age");
    assert!((3000..=3600).contains(&max_age), "about an hour: {max_age}");
    assert!(headers.contains("etag: \""), "{headers}");
    assert!(headers.contains("last-modified: "), "{headers}");
    let out = read_response(&dir, &first, &ca, &ca, &cert_file);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{cert_file}: good")), "{out}");
    assert!(out.contains("Next Update: "), "{out}");

    // A repeat is the same pre-signed answer (same bytes, same ETag).
    let (second, headers_again) = fetch("second");
    assert_eq!(first, second);
    let etag = |h: &str| {
        h.lines()
            .find(|l| l.starts_with("etag:"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(etag(&headers), etag(&headers_again));

    // An answer with a nonce is never cacheable.
    let der = request_der(
        &dir,
        "nonce.der",
        &["-issuer", &ca, "-cert", &cert_file, "-nonce"],
    );
    let response = post_ocsp(&app.http, &format!("{}/ocsp", app.public_base), der).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_issuing_ca_answers_through_its_own_delegated_responder() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (root_id, root_pem) = app.ca().await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &root_pem);
    let url = format!("{}/ocsp", app.public_base);
    // The responder learns the CAs before the issuing CA exists ...
    let (_, out) = openssl(&[
        "ocsp", "-issuer", &root, "-CAfile", &root, "-serial", "0x01", "-url", &url,
    ]);
    assert!(out.contains("0x01: unknown"), "{out}");
    // ... and answers for the issuing CA as soon as it is created, not after its CA list's
    // 30-second refresh: creating a CA on this replica makes that list stale at once.
    let issuing = issuing_ca_under_root(&app, &root_id).await;
    let int = dir.write(
        "issuing.pem",
        keyinfra_pki::certificate_pem(&issuing.certificate_der),
    );
    let cert = app.issue(&admin, json!({"subject": "CN=fw-1"})).await;
    assert_eq!(
        cert["ca_id"],
        issuing.id.to_string(),
        "the issuing CA signs now"
    );
    let cert_file = dir.write("cert.pem", pem_of(&cert));
    let chain_args = |cert: &str| {
        openssl(&[
            "ocsp",
            "-issuer",
            &int,
            "-CAfile",
            &root,
            "-verify_other",
            &int,
            "-cert",
            cert,
            "-url",
            &url,
            "-resp_text",
        ])
    };
    let (ok, out) = chain_args(&cert_file);
    assert!(ok, "{out}");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{cert_file}: good")), "{out}");
    // Signed by a responder the issuing CA certified, not by the root's.
    assert!(out.contains("KeyInfra Issuing CA OCSP Responder"), "{out}");
    revoke(&app, &admin, cert["id"].as_str().unwrap(), "superseded").await;
    let (_, out) = chain_args(&cert_file);
    assert!(
        out.contains(": revoked") && out.contains("Reason: superseded"),
        "{out}"
    );

    // The root is asked about the leaf's serial: not one it issued.
    let serial = format!("0x{}", cert["serial_number"].as_str().unwrap());
    let (_, out) = openssl(&[
        "ocsp", "-issuer", &root, "-CAfile", &root, "-serial", &serial, "-url", &url,
    ]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{serial}: unknown")), "{out}");
    // A CertID that names the issuing CA by name but the root by key names no CA we run
    // (what openssl builds for `-issuer root.pem -cert leaf.pem`).
    let (_, out) = openssl(&[
        "ocsp", "-issuer", &root, "-CAfile", &root, "-cert", &cert_file, "-url", &url,
    ]);
    assert!(out.contains("unauthorized"), "{out}");
}

/// Creates an issuing CA under the app's root.
async fn issuing_ca_under_root(app: &TestApp, root_id: &str) -> AuthorityRecord {
    app.state
        .authority
        .ca_setup
        .create_issuing_ca(
            &app.db,
            &Principal::Operator,
            root_id.parse().unwrap(),
            &IssuingCaOptions {
                name: "issuing".into(),
                subject: "CN=KeyInfra Issuing CA,O=KeyInfra".into(),
                algorithm: None,
                validity: None,
                name_constraints: None,
                starts_at: None,
            },
            &mut OsRandom,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_issuing_ca_names_its_parents_urls_and_the_parent_answers_good_for_it() {
    let app = TestApp::spawn().await;
    let (root_id, root_pem) = app.ca().await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &root_pem);
    let issuing = issuing_ca_under_root(&app, &root_id).await;
    let int = dir.write(
        "issuing.pem",
        keyinfra_pki::certificate_pem(&issuing.certificate_der),
    );

    // A relying party that follows URLs finds the root's CRL, certificate and responder.
    let text = openssl_ok(&["x509", "-in", &int, "-noout", "-text"]);
    for url in [
        "X509v3 CRL Distribution Points:".to_owned(),
        format!("URI:{}/crl/{root_id}.crl", app.base),
        format!("OCSP - URI:{}/ocsp", app.base),
        format!("CA Issuers - URI:{}/ca/{root_id}.crt", app.base),
        format!("URI:{}/crl/{root_id}/delta.crl", app.base),
    ] {
        assert!(text.contains(&url), "{url} in\n{text}");
    }
    // The root is no one's child: it names none.
    let root_text = openssl_ok(&["x509", "-in", &root, "-noout", "-text"]);
    assert!(
        !root_text.contains("CRL Distribution Points") && !root_text.contains("CA Issuers"),
        "{root_text}"
    );

    // Asked by that AIA (a CertID under the root), the root's responder says good: the
    // issuing CA's certificate is in no certificates table, yet the root signed it.
    let url = format!("{}/ocsp", app.public_base);
    let out = ask(&root, &root, &int, &url);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{int}: good")), "{out}");
    assert!(out.contains("KeyInfra Root CA OCSP Responder"), "{out}");

    // Another installation's root has the same name but another key. Given our issuing
    // CA's certificate (imported without its key, linked to that root by name alone), its
    // responder still says unknown: the certificate does not verify under its key.
    let other = TestApp::spawn_with(
        crate::support::PEPPER,
        None,
        crate::support::test_edge(),
        |s| s.ocsp_in_certificates = false,
    )
    .await;
    let (other_root_id, other_root_pem) = other.ca().await;
    let other_root = dir.write("other-root.pem", &other_root_pem);
    let imported = other
        .state
        .authority
        .ca_setup
        .import(
            &other.db,
            "stranger",
            &std::fs::read(&int).unwrap(),
            None,
            &mut OsRandom,
        )
        .await
        .unwrap();
    assert_eq!(
        imported.parent_ca_id.map(|id| id.to_string()),
        Some(other_root_id.clone()),
        "linked by name"
    );
    let serial = openssl_ok(&["x509", "-in", &int, "-noout", "-serial"]);
    let serial = format!("0x{}", serial.trim().trim_start_matches("serial="));
    let (_, out) = openssl(&[
        "ocsp",
        "-issuer",
        &other_root,
        "-CAfile",
        &other_root,
        "-serial",
        &serial,
        "-url",
        &format!("{}/ocsp", other.public_base),
    ]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{serial}: unknown")), "{out}");

    // With OCSP left out of certificates, an issuing CA's AIA names only caIssuers.
    let other_issuing = issuing_ca_under_root(&other, &other_root_id).await;
    let other_int = dir.write(
        "other-issuing.pem",
        keyinfra_pki::certificate_pem(&other_issuing.certificate_der),
    );
    let text = openssl_ok(&["x509", "-in", &other_int, "-noout", "-text"]);
    assert!(
        text.contains(&format!(
            "CA Issuers - URI:{}/ca/{other_root_id}.crt",
            other.base
        )),
        "{text}"
    );
    assert!(!text.contains("OCSP - URI"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_an_ocsp_error_status_never_an_http_error() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca = dir.write("ca.pem", &ca_pem);
    let cert = app.issue(&admin, json!({"subject": "CN=ap-9"})).await;
    let cert_file = dir.write("cert.pem", pem_of(&cert));
    let url = format!("{}/ocsp", app.public_base);
    // OCSPResponse { responseStatus malformedRequest (1) }, nothing else.
    let malformed: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];
    let unauthorized: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x06];
    let good = request_der(&dir, "good.der", &["-issuer", &ca, "-cert", &cert_file]);

    let one_shot = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut cases: Vec<(&str, reqwest::RequestBuilder, &[u8])> = vec![
        (
            "garbage",
            ocsp_request(&app.http, &url, b"\x30\x82\xff\xffnot der".to_vec()),
            malformed,
        ),
        (
            "wrong content type",
            app.http
                .post(&url)
                .header("content-type", "application/json")
                .body(good.clone()),
            malformed,
        ),
        (
            "truncated",
            ocsp_request(&app.http, &url, good[..good.len() - 3].to_vec()),
            malformed,
        ),
        (
            "oversized",
            // On a connection of its own: the server answers before reading the body and
            // then closes the connection, which a pooled client could pick for the next
            // case before it sees the close.
            ocsp_request(&one_shot, &url, vec![0x30; 200 * 1024]),
            malformed,
        ),
        (
            "not base64",
            app.http.get(format!("{url}/%%%not-base64!")),
            malformed,
        ),
    ];
    // More certificates than the responder answers in one request.
    let mut many = vec!["-issuer", ca.as_str()];
    let serials: Vec<String> = (1..=17).map(|i| format!("0x{i:02X}")).collect();
    for s in &serials {
        many.extend(["-serial", s.as_str()]);
    }
    let too_many = request_der(&dir, "many.der", &many);
    cases.push((
        "17 certificates",
        ocsp_request(&app.http, &url, too_many),
        malformed,
    ));
    // A CA KeyInfra does not run: unauthorized.
    let other = dir.path("other");
    openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &format!("{other}.key"),
        "-out",
        &format!("{other}.pem"),
        "-subj",
        "/CN=Someone Else",
        "-days",
        "2",
    ]);
    let foreign = request_der(
        &dir,
        "foreign.der",
        &["-issuer", &format!("{other}.pem"), "-serial", "0x01"],
    );
    cases.push((
        "another CA",
        ocsp_request(&app.http, &url, foreign),
        unauthorized,
    ));
    for (what, request, expected) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/ocsp-response",
            "{what}"
        );
        assert_eq!(response.bytes().await.unwrap().as_ref(), expected, "{what}");
    }
    // /metrics counts answers by outcome.
    let metrics = app.metrics(&admin).await;
    for outcome in ["malformed_request", "unauthorized"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("keyinfra_ocsp_responses_total{")
                    && l.contains(&format!("outcome=\"{outcome}\""))),
            "{outcome} in /metrics"
        );
    }
    // openssl reads the error status as such.
    let resp = dir.write("malformed.der", malformed);
    let (_, out) = openssl(&["ocsp", "-respin", &resp, "-resp_text", "-noverify"]);
    assert!(out.contains("malformedrequest"), "{out}");
}

/// Asks `base`'s responder about the certificate (no nonce, as RFC 5019 clients do) and
/// returns openssl's verdict line.
async fn status_at(
    app: &TestApp,
    base: &str,
    dir: &Scratch,
    request: &[u8],
    ca: &str,
    cert: &str,
) -> String {
    let response = post_ocsp(&app.http, &format!("{base}/ocsp"), request.to_vec()).await;
    let body = response.bytes().await.unwrap();
    read_response(dir, &body, ca, ca, cert)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_shows_at_once_here_and_within_a_second_on_another_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca = dir.write("ca.pem", &ca_pem);
    let cert = app.issue(&admin, json!({"subject": "CN=vpn-1"})).await;
    let cert_file = dir.write("cert.pem", pem_of(&cert));
    let request = request_der(
        &dir,
        "req.der",
        &["-issuer", &ca, "-cert", &cert_file, "-no_nonce"],
    );

    // Both replicas answer good and keep the answer pre-signed (their revocation
    // listeners are up once the cache takes entries).
    for (base, state) in [(&app.base, &app.state), (&replica.base, &replica.state)] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = status_at(&app, base, &dir, &request, &ca, &cert_file).await;
            assert!(out.contains(": good"), "{out}");
            if state.authority.ocsp.cached_answers() >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{base} never cached its answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    revoke(&app, &admin, cert["id"].as_str().unwrap(), "keyCompromise").await;
    // The replica that revoked answers revoked at once.
    let out = status_at(&app, &app.base, &dir, &request, &ca, &cert_file).await;
    assert!(out.contains(": revoked"), "{out}");
    // The other hears of it through the database within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let out = status_at(&app, &replica.base, &dir, &request, &ca, &cert_file).await;
        if out.contains(": revoked") {
            assert!(out.contains("Reason: keyCompromise"), "{out}");
            break;
        }
        assert!(out.contains(": good"), "{out}");
        assert!(
            Instant::now() < deadline,
            "the replica still says good after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A request with a nonce is signed anew, with the status the cache holds (evicted by
    // the revocation, then filled again above): the replica answers it without its
    // database, and says revoked.
    let nonce_request = request_der(
        &dir,
        "nonce.der",
        &["-issuer", &ca, "-cert", &cert_file, "-nonce"],
    );
    replica.state.db.close().await;
    let response = post_ocsp(&app.http, &format!("{}/ocsp", replica.base), nonce_request).await;
    let resp = dir.write("nonce-resp.der", response.bytes().await.unwrap());
    let out = openssl_ok(&[
        "ocsp",
        "-reqin",
        &dir.path("nonce.der"),
        "-respin",
        &resp,
        "-CAfile",
        &ca,
        "-resp_text",
    ]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("Cert Status: revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    // -reqin: openssl compares the nonce with the request's.
    assert!(
        out.contains("OCSP Nonce") && !out.contains("WARNING") && !out.contains("Nonce Verify"),
        "{out}"
    );
}
