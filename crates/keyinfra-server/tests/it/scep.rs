//! SCEP (issue 19) with real clients from Debian: micromdm's `scepclient` (SHA-1 and single
//! DES, as it always sends), strongSwan's `pki --scep` (AES, and 3DES) and the certmonger
//! daemon (by GET), each with a one-time challenge; each result chains to the CA with
//! `openssl verify` and is in the challenge owner's inventory. Reused and wrong challenges
//! are refused with nothing issued; `/cgi-bin/pkiclient.exe` works like `/scep`; what is
//! no pkiMessage gets a 400 problem, never a 5xx.
//!
//! The clients run as blocking child processes while the server answers them on the same
//! runtime: these tests take a multi-threaded one.

use std::process::Command;

use keyinfra_db::UserRole;
use keyinfra_pki::scep::client;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl_ok};
use crate::support::TestApp;

/// GetCACert's certificates, DER; and the RA's SHA-256 fingerprint in hex, which
/// scepclient needs to choose the RA among them.
async fn ca_certificates(app: &TestApp, path: &str) -> (Vec<Vec<u8>>, String) {
    let response = reqwest::get(format!("{}{path}?operation=GetCACert", app.public_base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-x509-ca-ra-cert"
    );
    let der = response.bytes().await.unwrap();
    let (certificates, crls) = client::read_degenerate(&der).unwrap();
    assert!(crls.is_empty());
    let dir = Scratch::new();
    let mut ra = None;
    for (i, certificate) in certificates.iter().enumerate() {
        let file = dir.write(&format!("{i}.der"), certificate);
        let subject = openssl_ok(&["x509", "-in", &file, "-inform", "DER", "-noout", "-subject"]);
        if subject.contains("SCEP RA") {
            ra = Some(hex::encode(keyinfra_pki::sha256_fingerprint(certificate)));
        }
    }
    (certificates, ra.expect("GetCACert names an RA"))
}

/// A challenge for the token's user (or the body's owner).
async fn challenge(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app
        .send(Method::POST, "/api/v1/enrollment/challenges", token, body)
        .await;
    assert_eq!(status, 201, "{created}");
    created["challenge"].as_str().unwrap().to_owned()
}

/// One scepclient enrollment in a fresh directory (it silently reuses ./csr.pem);
/// (succeeded, its output, the certificate PEM if any).
async fn scepclient(
    url: String,
    challenge: String,
    cn: &str,
    ra: &str,
) -> (bool, String, Option<String>) {
    let dir = Scratch::new();
    scepclient_in(&dir, url, challenge, cn, ra).await
}

/// scepclient in `dir`: an enrollment, or, when `dir` holds its certificate already, a
/// RenewalReq signed with it (for the same key and CSR); the certificate is the new one.
async fn scepclient_in(
    dir: &Scratch,
    url: String,
    challenge: String,
    cn: &str,
    ra: &str,
) -> (bool, String, Option<String>) {
    let cn = cn.to_owned();
    let ra = ra.to_owned();
    let (path, key, cert) = (dir.path(""), dir.path("key.pem"), dir.path("cert.pem"));
    let before = std::fs::read_to_string(&cert).ok();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("scepclient")
            .current_dir(&path)
            .args([
                "-server-url",
                &url,
                "-private-key",
                &key,
                "-certificate",
                &cert,
                "-challenge",
                &challenge,
                "-cn",
                &cn,
                "-organization",
                "KeyInfra Test",
                "-ou",
                "",
                "-country",
                "",
                "-ca-fingerprint",
                &ra,
                "-debug",
            ])
            .output()
            .expect("scepclient is installed (package scep; scripts/test installs it)");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let certificate = std::fs::read_to_string(&cert)
            .ok()
            .filter(|c| Some(c) != before.as_ref());
        (
            out.status.success() && certificate.is_some(),
            text,
            certificate,
        )
    })
    .await
    .unwrap()
}

async fn certificates_of(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, page) = app.get("/api/v1/certificates?limit=100", token).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scepclient_enrolls_with_a_one_time_challenge() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    app.user("alice", UserRole::User).await;
    let alice = app.token("alice").await;
    let url = format!("{}/scep", app.public_base);

    // GetCACaps: what strongSwan 5.9.8 needs to see, one per line.
    let caps = reqwest::get(format!("{url}?operation=GetCACaps"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-384",
        "SHA-512",
        "AES",
        "DES3",
        "SCEPStandard",
        "Renewal",
        "GetNextCACert",
    ] {
        assert!(caps.lines().any(|l| l == cap), "{cap} in {caps}");
    }

    let (certificates, ra) = ca_certificates(&app, "/scep").await;
    // The RA and the CA.
    assert_eq!(certificates.len(), 2);
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);

    let secret = challenge(&app, &alice, json!({})).await;
    let device = Scratch::new();
    let (ok, out, certificate) =
        scepclient_in(&device, url.clone(), secret.clone(), "router-1", &ra).await;
    assert!(ok, "{out}");
    let certificate = certificate.unwrap();
    let cert_file = dir.write("router-1.pem", &certificate);
    let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &cert_file]);
    assert!(verified.contains(": OK"), "{verified}");
    let text = openssl_ok(&["x509", "-in", &cert_file, "-noout", "-subject"]);
    assert!(text.contains("CN = router-1"), "{text}");

    // It is alice's, in her inventory.
    let mine = certificates_of(&app, &alice).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(
        mine[0]["subject"].as_str().unwrap().contains("CN=router-1"),
        "{mine:?}"
    );
    assert_eq!(mine[0]["channel"], "scep", "{mine:?}");
    let before = app.written_rows().await;

    // The same challenge again: refused, nothing written.
    let (ok, out, _) = scepclient(url.clone(), secret, "router-2", &ra).await;
    assert!(!ok, "{out}");
    // A challenge that never existed.
    let (ok, out, _) = scepclient(url.clone(), "X".repeat(32), "router-3", &ra).await;
    assert!(!ok, "{out}");
    assert_eq!(certificates_of(&app, &alice).await.len(), 1);
    // The refusals are audited (their only rows), with the subject the device asked for.
    let (_, audit) = app.get("/api/v1/audit?limit=50", &admin).await;
    let refusals: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "enrollment.refused")
        .collect();
    assert_eq!(refusals.len(), 2, "{audit}");
    assert!(
        refusals.iter().any(|e| e.to_string().contains("router-2")),
        "{refusals:?}"
    );
    assert!(!audit.to_string().contains(&"X".repeat(32)));
    assert_eq!(app.written_rows().await, before);

    // The device renews with a RenewalReq signed by its certificate, without a challenge:
    // version 2, the first one superseded, still alice's.
    let (ok, out, renewed) =
        scepclient_in(&device, url.clone(), String::new(), "router-1", &ra).await;
    assert!(ok, "{out}");
    let renewed_file = dir.write("router-1-v2.pem", renewed.unwrap());
    let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &renewed_file]);
    assert!(verified.contains(": OK"), "{verified}");
    let mine = certificates_of(&app, &alice).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    let by_version = |v: i64| mine.iter().find(|c| c["version"] == v).unwrap().clone();
    assert_eq!(by_version(1)["status"], "SUPERSEDED", "{mine:?}");
    assert_eq!(by_version(2)["status"], "ACTIVE", "{mine:?}");
    assert_eq!(by_version(2)["channel"], "scep", "{mine:?}");
    // A revoked certificate renews nothing.
    let (status, body) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                by_version(2)["id"].as_str().unwrap()
            ),
            &alice,
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (ok, out, _) = scepclient_in(&device, url.clone(), String::new(), "router-1", &ra).await;
    assert!(!ok, "{out}");
    assert_eq!(certificates_of(&app, &alice).await.len(), 2);

    // The path Cisco IOS uses, with a fresh challenge.
    let (_, ra_cgi) = ca_certificates(&app, "/cgi-bin/pkiclient.exe").await;
    assert_eq!(ra_cgi, ra);
    let secret = challenge(&app, &alice, json!({})).await;
    let (ok, out, _) = scepclient(
        format!("{}/cgi-bin/pkiclient.exe", app.public_base),
        secret,
        "router-4",
        &ra,
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(certificates_of(&app, &alice).await.len(), 3);
}

#[tokio::test]
async fn what_is_not_a_pkimessage_gets_a_400_problem() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let url = format!("{}/scep", app.public_base);
    for (request, code) in [
        (
            http.post(format!("{url}?operation=PKIOperation"))
                .body(b"garbage".to_vec()),
            "scep_malformed_message",
        ),
        (
            http.get(format!("{url}?operation=PKIOperation&message=%%%")),
            "scep_malformed_message",
        ),
        (
            http.get(format!("{url}?operation=PKIOperation")),
            "scep_malformed_message",
        ),
        (
            http.get(format!("{url}?operation=Nonsense")),
            "scep_unknown_operation",
        ),
        (http.get(url.clone()), "scep_malformed_message"),
        (
            http.post(format!("{url}?operation=GetCACert"))
                .body(Vec::new()),
            "scep_unknown_operation",
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
    }
    // A DER SignedData that is not a SCEP request is no pkiMessage either.
    let (certificates, _) = ca_certificates(&app, "/scep").await;
    let degenerate = keyinfra_pki::scep::certs_only(&[&certificates[0]]).unwrap();
    let response = http
        .post(format!("{url}?operation=PKIOperation"))
        .body(degenerate)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// Runs a command to completion off the runtime's workers; (succeeded, stdout + stderr,
/// stdout alone).
async fn run(program: &'static str, args: Vec<String>) -> (bool, String, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} is installed (scripts/test installs it): {e}"));
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text, out.stdout)
    })
    .await
    .unwrap()
}

/// The RA's and the CA's certificates as PEM files in `dir`, for strongSwan's
/// `--cacert-enc`/`--cacert-sig` and `--cacert`.
async fn strongswan_files(app: &TestApp, dir: &Scratch) -> (String, String) {
    let (certificates, _) = ca_certificates(app, "/scep").await;
    let (_, ca_pem) = app.ca().await;
    let ca_file = dir.write("ca.pem", &ca_pem);
    let mut ra_file = None;
    for (i, certificate) in certificates.iter().enumerate() {
        let der = dir.write(&format!("{i}.der"), certificate);
        let pem = dir.path(&format!("{i}.pem"));
        openssl_ok(&["x509", "-in", &der, "-inform", "DER", "-out", &pem]);
        if openssl_ok(&["x509", "-in", &pem, "-noout", "-subject"]).contains("SCEP RA") {
            ra_file = Some(pem);
        }
    }
    (ra_file.expect("GetCACert names an RA"), ca_file)
}

/// A new RSA-2048 key from strongSwan's `pki --gen`, as the PEM file `name` in `dir`.
async fn strongswan_key(dir: &Scratch, name: &str) -> String {
    let key = dir.path(name);
    let (ok, out, pem) = run(
        "pki",
        [
            "--gen",
            "--type",
            "rsa",
            "--size",
            "2048",
            "--outform",
            "pem",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(ok, "{out}");
    std::fs::write(&key, pem).unwrap();
    key
}

/// strongSwan's `pki --scep` (5.9.8): SHA-256 and AES-128, then SHA-512 and 3DES (what it
/// falls back to), each with a fresh challenge; it accepts a reply only if it is signed
/// with rsaEncryption by the RA it was given, and checks the transaction it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strongswan_pki_enrolls_with_aes_and_with_3des() {
    let app = TestApp::spawn().await;
    app.user("bob", UserRole::User).await;
    let bob = app.token("bob").await;
    let url = format!("{}/scep", app.public_base);
    let dir = Scratch::new();
    let (ra_file, ca_file) = strongswan_files(&app, &dir).await;
    let key = strongswan_key(&dir, "key.pem").await;

    for (cn, cipher, digest) in [("ss-aes", "aes", "sha256"), ("ss-3des", "des3", "sha512")] {
        let secret = challenge(&app, &bob, json!({})).await;
        let (ok, out, certificate) = run(
            "pki",
            [
                "--scep",
                "--url",
                &url,
                "--in",
                &key,
                "--dn",
                &format!("CN={cn}"),
                "--password",
                &secret,
                "--cacert-enc",
                &ra_file,
                "--cacert-sig",
                &ra_file,
                "--cacert",
                &ca_file,
                "--cipher",
                cipher,
                "--digest",
                digest,
                "--outform",
                "pem",
            ]
            .map(String::from)
            .to_vec(),
        )
        .await;
        assert!(ok, "{cipher}/{digest}: {out}");
        let cert_file = dir.write(&format!("{cn}.pem"), &certificate);
        let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &cert_file]);
        assert!(verified.contains(": OK"), "{verified}");
        let subject = openssl_ok(&["x509", "-in", &cert_file, "-noout", "-subject"]);
        assert!(subject.contains(&format!("CN = {cn}")), "{subject}");
    }
    assert_eq!(certificates_of(&app, &bob).await.len(), 2);

    // Renewal: a RenewalReq for a new key, signed with the current certificate and key
    // (--cert, --key), no challenge. Version 2, the first superseded, still bob's.
    let new_key = strongswan_key(&dir, "new-key.pem").await;
    let (ok, out, renewed) = run(
        "pki",
        [
            "--scep",
            "--url",
            &url,
            "--in",
            &new_key,
            "--dn",
            "CN=ss-aes",
            "--cacert-enc",
            &ra_file,
            "--cacert-sig",
            &ra_file,
            "--cacert",
            &ca_file,
            "--cert",
            &dir.path("ss-aes.pem"),
            "--key",
            &key,
            "--outform",
            "pem",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(ok, "{out}");
    let renewed_file = dir.write("ss-aes-v2.pem", &renewed);
    let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &renewed_file]);
    assert!(verified.contains(": OK"), "{verified}");
    let listed = certificates_of(&app, &bob).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let v2 = listed
        .iter()
        .find(|c| c["version"] == 2)
        .expect("version 2");
    assert_eq!(v2["channel"], "scep");
    let v1 = listed
        .iter()
        .find(|c| c["id"] == v2["renewed_from"])
        .expect("renewed from the first");
    assert_eq!(v1["status"], "SUPERSEDED");
    assert!(v1["subject"].as_str().unwrap().contains("CN=ss-aes"));
}

/// certmonger (0.79.17), the daemon, without systemd or D-Bus: `certmonger -n -L` on a
/// private socket runs a script of `getcert` commands and exits with it. certmonger sends
/// PKIOperation by GET with percent-encoded base64, AES-256, and a self-signed certificate
/// with a 33-byte serial; it verifies the reply's signature against GetCACert's chain.
/// certmonger fetches the CA's certificates in the background after `add-scep-ca`, and a
/// request it takes before they arrive stops as CA_UNCONFIGURED ("No RA certificate"),
/// which failed this test now and then: the script resubmits until the CA is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certmonger_enrolls_by_get() {
    let app = TestApp::spawn().await;
    app.user("carol", UserRole::User).await;
    let carol = app.token("carol").await;
    let secret = challenge(&app, &carol, json!({})).await;
    let dir = Scratch::new();
    for sub in ["req", "cas", "tmp"] {
        std::fs::create_dir_all(dir.path(sub)).unwrap();
    }
    let script = format!(
        "#!/bin/sh\nset -e\n\
         trap 'status=$?; [ $status -eq 0 ] || getcert list; exit $status' EXIT\n\
         getcert add-scep-ca -c KeyInfra -u {url}/scep\n\
         getcert request -c KeyInfra -I cm-router -k {key} -f {cert} -N CN=cm-router -L {secret} -w --wait-timeout 60 || true\n\
         for try in 1 2 3 4 5 6 7 8 9 10; do\n\
           getcert list -i cm-router | grep -q 'status: CA_UNCONFIGURED' || break\n\
           sleep 0.5; getcert resubmit -i cm-router -w --wait-timeout 60 || true\n\
         done\n\
         getcert list -i cm-router | grep -q 'status: MONITORING'\n\
         cp {cert} {cert}.v1\n\
         getcert resubmit -i cm-router -w --wait-timeout 60\n\
         getcert list\n",
        url = app.public_base,
        key = dir.path("key.pem"),
        cert = dir.path("cert.pem"),
    );
    let run_file = dir.write("run.sh", script);
    std::fs::set_permissions(
        &run_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let (req, cas, tmp, sock) = (
        dir.path("req"),
        dir.path("cas"),
        dir.path("tmp"),
        dir.path("cm.sock"),
    );
    let (ok, out) = tokio::task::spawn_blocking(move || {
        let out = Command::new("certmonger")
            .args(["-n", "-L", "-P", &sock, "-c", &run_file])
            .env("CERTMONGER_REQUESTS_DIR", req)
            .env("CERTMONGER_CAS_DIR", cas)
            .env("CERTMONGER_TMPDIR", tmp)
            .output()
            .expect("certmonger is installed (scripts/test installs it)");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("status: MONITORING"), "{out}");
    let (_, ca_pem) = app.ca().await;
    let ca_file = dir.write("ca.pem", &ca_pem);
    let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &dir.path("cert.pem")]);
    assert!(verified.contains(": OK"), "{verified}");
    // `getcert resubmit` renewed it with a PKCSReq signed by the first certificate (no
    // challenge): version 2, the first superseded.
    let listed = certificates_of(&app, &carol).await;
    assert_eq!(listed.len(), 2, "{out}");
    let v2 = listed
        .iter()
        .find(|c| c["version"] == 2)
        .expect("version 2");
    assert_eq!(v2["channel"], "scep");
    let v1 = listed.iter().find(|c| c["version"] == 1).unwrap();
    assert_eq!(v1["status"], "SUPERSEDED");
    assert_eq!(v2["renewed_from"], v1["id"]);
    let first = std::fs::read_to_string(dir.path("cert.pem.v1")).unwrap();
    let now = std::fs::read_to_string(dir.path("cert.pem")).unwrap();
    assert_ne!(first, now, "certmonger saved the renewed certificate");
}

/// What the real clients never send, built with KeyInfra's own test client
/// (`keyinfra_pki::scep::client`), whose replies it reads back and verifies: GetCRL, and
/// messages that are readable but wrong. Each wrong one gets a signed CertRep FAILURE with
/// its failInfo, never a 5xx; /metrics counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn getcrl_and_bad_messages_get_signed_certreps() {
    use keyinfra_pki::scep::client::{self, Request};
    use keyinfra_pki::scep::{ContentCipher, DigestAlgorithm, MessageType, RaKey};
    use keyinfra_pki::{KeyAlgorithm, PrivateKey};

    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let url = format!("{}/scep?operation=PKIOperation", app.public_base);
    let (certificates, ra_fingerprint) = ca_certificates(&app, "/scep").await;
    let ra = certificates
        .iter()
        .find(|c| hex::encode(keyinfra_pki::sha256_fingerprint(c)) == ra_fingerprint)
        .unwrap()
        .clone();
    let (_, ca_pem) = app.ca().await;
    let ca_der = certificates.iter().find(|c| **c != ra).unwrap().clone();
    let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let device = std::sync::Arc::new(
        RaKey::new(client::self_signed(&key, "test-device").unwrap(), &key).unwrap(),
    );
    let ias = client::issuer_and_serial(&ca_der).unwrap();
    let no_challenge = client::csr(&key, "test-device", None).unwrap();
    let http = reqwest::Client::new();
    let send = |body: Vec<u8>| {
        let http = http.clone();
        let url = url.clone();
        let device = std::sync::Arc::clone(&device);
        async move {
            let response = http.post(url).body(body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()["content-type"],
                "application/x-pki-message"
            );
            client::read_reply(&response.bytes().await.unwrap(), &device).unwrap()
        }
    };
    let message = |message_type, content: &[u8], recipient: &[u8]| {
        client::pki_message(
            &Request {
                message_type,
                content,
                signer: &device,
                recipient,
                cipher: ContentCipher::Aes256Cbc,
                digest: DigestAlgorithm::Sha256,
                transaction_id: "T-1",
                sender_nonce: &[9u8; 16],
            },
            &mut keyinfra_core::OsRandom,
        )
        .unwrap()
    };

    // GetCRL from a stranger (a self-signed certificate): badCertId.
    let reply = send(message(MessageType::GetCrl, &ias, &ra)).await;
    let status = reply.message.cert_rep.as_ref().unwrap();
    assert_eq!(
        (status.pki_status.as_str(), status.fail_info.as_deref()),
        ("2", Some("4"))
    );
    assert_eq!(status.recipient_nonce, [9u8; 16]);
    assert_eq!(reply.message.reply_to.transaction_id, "T-1");

    // A device enrolls with a challenge (the test client's PKCSReq), then asks for the CRL
    // signed with its new certificate: the CA's CRL, sealed in the request's cipher, which
    // openssl verifies.
    app.user("dave", UserRole::User).await;
    let dave = app.token("dave").await;
    let secret = challenge(&app, &dave, json!({})).await;
    let csr = client::csr(&key, "test-device", Some(&secret)).unwrap();
    let reply = send(message(MessageType::PkcsReq, &csr, &ra)).await;
    assert_eq!(reply.message.cert_rep.as_ref().unwrap().pki_status, "0");
    let enrolled = RaKey::new(reply.certificates[0].clone(), &key).unwrap();
    let get_crl = client::pki_message(
        &Request {
            message_type: MessageType::GetCrl,
            content: &ias,
            signer: &enrolled,
            recipient: &ra,
            cipher: ContentCipher::Aes256Cbc,
            digest: DigestAlgorithm::Sha256,
            transaction_id: "T-CRL",
            sender_nonce: &[9u8; 16],
        },
        &mut keyinfra_core::OsRandom,
    )
    .unwrap();
    let response = http
        .post(&url)
        .body(get_crl)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // The reply is sealed to the certificate that signed the request.
    let reply = client::read_reply(&response, &enrolled).unwrap();
    let status = reply.message.cert_rep.as_ref().unwrap();
    assert_eq!(status.pki_status, "0");
    assert_eq!(reply.message.reply_to.transaction_id, "T-CRL");
    assert_eq!(reply.cipher, Some(ContentCipher::Aes256Cbc));
    assert_eq!(reply.crls.len(), 1);
    let dir = Scratch::new();
    let crl = dir.write("ca.crl", &reply.crls[0]);
    let ca_file = dir.write("ca.pem", &ca_pem);
    let verified = openssl_ok(&[
        "crl", "-in", &crl, "-inform", "DER", "-CAfile", &ca_file, "-noout", "-verify",
    ]);
    assert!(verified.contains("verify OK"), "{verified}");

    let failure = |reply: &client::Reply| {
        let status = reply.message.cert_rep.clone().unwrap();
        assert_eq!(status.pki_status, "2");
        assert!(reply.message.envelope.is_none());
        status.fail_info.unwrap()
    };
    // Encrypted to a certificate that is not the RA: badMessageCheck.
    let wrong = message(MessageType::GetCrl, &ias, device.certificate_der());
    assert_eq!(failure(&send(wrong).await), "1");
    // A signed attribute changed after signing: badMessageCheck.
    let mut tampered = message(MessageType::GetCrl, &ias, &ra);
    let at = tampered.windows(3).position(|w| w == b"T-1").unwrap();
    tampered[at + 2] = b'2';
    let reply = send(tampered).await;
    assert_eq!(failure(&reply), "1");
    assert_eq!(reply.message.reply_to.transaction_id, "T-2");
    // A PKCSReq without a challenge: badRequest, nothing issued.
    let before = app.written_rows().await;
    let reply = send(message(MessageType::PkcsReq, &no_challenge, &ra)).await;
    assert_eq!(failure(&reply), "2");
    // A FAILURE carries an empty content, which OpenSSL's PKCS7_verify (certmonger's)
    // needs: openssl verifies the signature (the RA chain aside).
    let raw = http
        .post(&url)
        .body(message(MessageType::PkcsReq, &no_challenge, &ra))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let failure_file = dir.write("failure.der", &raw);
    let checked = openssl_ok(&[
        "cms",
        "-verify",
        "-noverify",
        "-inform",
        "DER",
        "-in",
        &failure_file,
        "-out",
        "/dev/null",
    ]);
    assert!(checked.contains("Verification successful"), "{checked}");
    // A PKCSReq whose CSR is garbage: badRequest.
    let reply = send(message(MessageType::PkcsReq, b"not a CSR", &ra)).await;
    assert_eq!(failure(&reply), "2");
    // A RenewalReq signed with a certificate this CA did not issue: badCertId.
    let reply = send(message(MessageType::RenewalReq, &no_challenge, &ra)).await;
    assert_eq!(failure(&reply), "4");
    // A CertRep is no request: badRequest.
    let reply = send(message(MessageType::CertRep, &ias, &ra)).await;
    assert_eq!(failure(&reply), "2");
    assert_eq!(app.written_rows().await, before);

    let metrics = app.metrics(&admin).await;
    for outcome in ["delivered", "refused", "issued"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("keyinfra_scep_operations_total{")
                    && l.contains(&format!("outcome=\"{outcome}\""))),
            "{outcome} in /metrics"
        );
    }
}

/// Approval with strongSwan's `pki --scep`, which polls with CertPoll (GetCertInitial):
/// a challenge with `"approval": true` holds the enrollment PENDING (the client keeps
/// polling) until an ADMIN approves it through the API; the client's next poll collects
/// the certificate, which chains to the CA and is in the challenge owner's inventory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strongswan_pki_polls_until_an_admin_approves() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    app.user("erin", UserRole::User).await;
    let admin = app.token("root").await;
    let erin = app.token("erin").await;
    let url = format!("{}/scep", app.public_base);
    let dir = Scratch::new();
    let (ra_file, ca_file) = strongswan_files(&app, &dir).await;
    let key = strongswan_key(&dir, "key.pem").await;
    let secret = challenge(&app, &erin, json!({"approval": true})).await;
    let args = [
        "--scep",
        "--url",
        &url,
        "--in",
        &key,
        "--dn",
        "CN=ss-approved",
        "--password",
        &secret,
        "--cacert-enc",
        &ra_file,
        "--cacert-sig",
        &ra_file,
        "--cacert",
        &ca_file,
        "--interval",
        "1",
        "--maxpolltime",
        "60",
        "--outform",
        "pem",
    ]
    .map(String::from)
    .to_vec();
    let client = tokio::spawn(run("pki", args));

    // The request appears, pending, in the owner's list; a USER may not approve it.
    let mut pending = Value::Null;
    for _ in 0..100 {
        let (status, page) = app
            .get("/api/v1/enrollment/requests?state=pending", &erin)
            .await;
        assert_eq!(status, 200, "{page}");
        if let Some(first) = page["items"].as_array().unwrap().first() {
            pending = first.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pending["state"], "pending", "the request was held");
    assert_eq!(pending["channel"], "scep");
    assert_eq!(pending["requested_subject"], "CN=ss-approved");
    let id = pending["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/enrollment/requests/{id}/approve");
    let (status, _) = app.send(Method::POST, &approve, &erin, json!({})).await;
    assert_eq!(status, 403);
    assert!(certificates_of(&app, &erin).await.is_empty());
    // Let the client poll at least once more while it is still pending.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!client.is_finished(), "the client still polls");

    let (status, approved) = app.send(Method::POST, &approve, &admin, json!({})).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "approved");
    let certificate_id = approved["certificate_id"].as_str().unwrap().to_owned();

    let (ok, out, certificate) = client.await.unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("PENDING") || out.contains("pending"), "{out}");
    let cert_file = dir.write("approved.pem", &certificate);
    let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &cert_file]);
    assert!(verified.contains(": OK"), "{verified}");
    let listed = certificates_of(&app, &erin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], certificate_id.as_str());
    // Deciding twice is a conflict.
    let (status, problem) = app.send(Method::POST, &approve, &admin, json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "enrollment_request_decided");
}

/// The held request's whole life with KeyInfra's own test client, which reads every reply
/// back: PENDING, CertPoll from the same key (PENDING) and from another key (badCertId), a
/// PKCSReq sent again (as scepclient polls), approval, the certificate collected both
/// ways, GetCert for it, rejection of a second request, and the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_enrollment_is_polled_approved_or_rejected() {
    use keyinfra_pki::scep::client::{self, Request};
    use keyinfra_pki::scep::request_content::issuer_and_subject;
    use keyinfra_pki::scep::{ContentCipher, DigestAlgorithm, MessageType, RaKey};
    use keyinfra_pki::{KeyAlgorithm, PrivateKey};

    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    app.user("fay", UserRole::User).await;
    let admin = app.token("root").await;
    let fay = app.token("fay").await;
    let url = format!("{}/scep?operation=PKIOperation", app.public_base);
    let (certificates, ra_fingerprint) = ca_certificates(&app, "/scep").await;
    let ra = certificates
        .iter()
        .find(|c| hex::encode(keyinfra_pki::sha256_fingerprint(c)) == ra_fingerprint)
        .unwrap()
        .clone();
    let ca_subject = keyinfra_pki::ca::issuer_of_certificate(&ra).unwrap();
    let http = reqwest::Client::new();
    let send = |body: Vec<u8>, reader: std::sync::Arc<RaKey>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let response = http.post(url).body(body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            client::read_reply(&response.bytes().await.unwrap(), &reader).unwrap()
        }
    };
    let message = |message_type, content: &[u8], signer: &RaKey, transaction_id: &str| {
        client::pki_message(
            &Request {
                message_type,
                content,
                signer,
                recipient: &ra,
                cipher: ContentCipher::Aes128Cbc,
                digest: DigestAlgorithm::Sha256,
                transaction_id,
                sender_nonce: &[7u8; 16],
            },
            &mut keyinfra_core::OsRandom,
        )
        .unwrap()
    };
    let status_of = |reply: &client::Reply| {
        let status = reply.message.cert_rep.clone().unwrap();
        (status.pki_status, status.fail_info)
    };
    let device = |cn: &str| {
        let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let signer =
            std::sync::Arc::new(RaKey::new(client::self_signed(&key, cn).unwrap(), &key).unwrap());
        (key, signer)
    };

    // Held: PENDING, an enrollment.pending event, nothing issued.
    let (key, signer) = device("held-device");
    let secret = challenge(&app, &fay, json!({"approval": true})).await;
    let csr = client::csr(&key, "held-device", Some(&secret)).unwrap();
    let pkcs_req = message(MessageType::PkcsReq, &csr, &signer, "TX-HELD");
    let reply = send(pkcs_req.clone(), signer.clone()).await;
    assert_eq!(status_of(&reply), ("3".to_owned(), None));
    assert!(reply.message.envelope.is_none());
    assert!(certificates_of(&app, &fay).await.is_empty());
    let subject = keyinfra_pki::ca::issuer_of_certificate(signer.certificate_der()).unwrap();
    let poll_content = issuer_and_subject(&ca_subject, &subject).unwrap();

    // CertPoll from the same key: PENDING. From another key, or for another transaction:
    // badCertId. Garbage as the poll's content: badRequest.
    let poll = message(MessageType::CertPoll, &poll_content, &signer, "TX-HELD");
    assert_eq!(status_of(&send(poll.clone(), signer.clone()).await).0, "3");
    let (_, stranger) = device("stranger");
    let foreign = message(MessageType::CertPoll, &poll_content, &stranger, "TX-HELD");
    assert_eq!(
        status_of(&send(foreign, stranger.clone()).await),
        ("2".to_owned(), Some("4".to_owned()))
    );
    let unknown = message(MessageType::CertPoll, &poll_content, &signer, "TX-OTHER");
    assert_eq!(
        status_of(&send(unknown, signer.clone()).await),
        ("2".to_owned(), Some("4".to_owned()))
    );
    let garbage = message(
        MessageType::CertPoll,
        b"not IssuerAndSubject",
        &signer,
        "TX-HELD",
    );
    assert_eq!(
        status_of(&send(garbage, signer.clone()).await),
        ("2".to_owned(), Some("2".to_owned()))
    );

    // The owner sees it; an ADMIN approves it.
    let (status, page) = app.get("/api/v1/enrollment/requests", &fay).await;
    assert_eq!(status, 200, "{page}");
    let held = &page["items"][0];
    assert_eq!(held["transaction_id"], "TX-HELD");
    assert_eq!(held["state"], "pending");
    let id = held["id"].as_str().unwrap().to_owned();
    let (status, approved) = app
        .send(
            Method::POST,
            &format!("/api/v1/enrollment/requests/{id}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{approved}");

    // Both ways of polling now collect the certificate, for the device's key.
    let collected = send(poll, signer.clone()).await;
    assert_eq!(status_of(&collected).0, "0");
    let again = send(pkcs_req, signer.clone()).await;
    assert_eq!(status_of(&again).0, "0");
    assert_eq!(collected.certificates, again.certificates);
    let issued = collected.certificates[0].clone();
    assert_eq!(
        keyinfra_pki::ca::public_key_of_certificate(&issued).unwrap(),
        keyinfra_pki::ca::public_key_of_certificate(signer.certificate_der()).unwrap()
    );
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);
    let cert_file = dir.write("issued.pem", keyinfra_pki::certificate_pem(&issued));
    let verified = openssl_ok(&["verify", "-CAfile", &ca_file, &cert_file]);
    assert!(verified.contains(": OK"), "{verified}");
    let listed = certificates_of(&app, &fay).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], approved["certificate_id"]);
    assert_eq!(listed[0]["channel"], "scep");

    // GetCert by issuer and serial: for the device with the key, yes; a stranger, no.
    let enrolled = std::sync::Arc::new(RaKey::new(issued.clone(), &key).unwrap());
    let id_content = client::issuer_and_serial(&issued).unwrap();
    let get_cert = message(MessageType::GetCert, &id_content, &enrolled, "TX-GET");
    let reply = send(get_cert, enrolled.clone()).await;
    assert_eq!(status_of(&reply).0, "0");
    assert_eq!(reply.certificates, vec![issued.clone()]);
    let get_cert = message(MessageType::GetCert, &id_content, &stranger, "TX-GET2");
    assert_eq!(
        status_of(&send(get_cert, stranger.clone()).await),
        ("2".to_owned(), Some("4".to_owned()))
    );

    // A second held request, rejected: the poll is refused, and a decision is final.
    let (key2, signer2) = device("rejected-device");
    let secret = challenge(&app, &fay, json!({"approval": true})).await;
    let csr = client::csr(&key2, "rejected-device", Some(&secret)).unwrap();
    let reply = send(
        message(MessageType::PkcsReq, &csr, &signer2, "TX-REJECT"),
        signer2.clone(),
    )
    .await;
    assert_eq!(status_of(&reply).0, "3");
    let (_, page) = app
        .get("/api/v1/enrollment/requests?state=pending", &admin)
        .await;
    let id2 = page["items"][0]["id"].as_str().unwrap().to_owned();
    let reject = format!("/api/v1/enrollment/requests/{id2}/reject");
    let (status, _) = app
        .send(Method::POST, &reject, &fay, json!({"reason": "no"}))
        .await;
    assert_eq!(status, 403);
    let (status, rejected) = app
        .send(
            Method::POST,
            &reject,
            &admin,
            json!({"reason": "unknown device"}),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["reason"], "unknown device");
    let subject2 = keyinfra_pki::ca::issuer_of_certificate(signer2.certificate_der()).unwrap();
    let poll2 = message(
        MessageType::CertPoll,
        &issuer_and_subject(&ca_subject, &subject2).unwrap(),
        &signer2,
        "TX-REJECT",
    );
    assert_eq!(
        status_of(&send(poll2, signer2.clone()).await),
        ("2".to_owned(), Some("2".to_owned()))
    );
    let (status, problem) = app
        .send(
            Method::POST,
            &format!("/api/v1/enrollment/requests/{id2}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "enrollment_request_decided");
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/enrollment/requests/{}/approve", uuid::Uuid::nil()),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(certificates_of(&app, &fay).await.len(), 1);

    // The audit log tells the story.
    let (_, audit) = app.get("/api/v1/audit?limit=200", &admin).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "enrollment.pending",
        "enrollment.approved",
        "enrollment.rejected",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    // Two requests nobody decides for 8 days expire; one made then is pending. The list
    // tells them apart in the query, so a page of expired ones is full and pages on.
    let mut held = Vec::new();
    for n in 1..=3 {
        if n == 3 {
            app.clock.advance(time::Duration::days(8));
        }
        // Tokens last 15 minutes: a fresh one after the clock moved.
        let fay = app.token("fay").await;
        let (key, signer) = device(&format!("later-{n}"));
        let secret = challenge(&app, &fay, json!({"approval": true})).await;
        let csr = client::csr(&key, &format!("later-{n}"), Some(&secret)).unwrap();
        let tx = format!("TX-LATER-{n}");
        let reply = send(
            message(MessageType::PkcsReq, &csr, &signer, &tx),
            signer.clone(),
        )
        .await;
        assert_eq!(status_of(&reply).0, "3");
        held.push((signer, tx));
    }
    let admin = app.token("root").await;
    let page = |query: &str| {
        let url = format!("/api/v1/enrollment/requests?{query}");
        let (app, admin) = (&app, admin.clone());
        async move {
            let (status, page) = app.get(&url, &admin).await;
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    let pending = page("state=pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending["items"][0]["transaction_id"], "TX-LATER-3");
    let first = page("state=expired&limit=1").await;
    assert_eq!(first["items"][0]["state"], "expired", "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = page(&format!("state=expired&limit=1&cursor={cursor}")).await;
    assert_eq!(second["items"][0]["state"], "expired", "{second}");
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    // An expired request cannot be approved, and its device's poll is refused.
    let expired_id = first["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, problem) = app
        .send(
            Method::POST,
            &format!("/api/v1/enrollment/requests/{expired_id}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "enrollment_request_expired");
    let (old_signer, old_tx) = &held[0];
    let old_subject =
        keyinfra_pki::ca::issuer_of_certificate(old_signer.certificate_der()).unwrap();
    let poll = message(
        MessageType::CertPoll,
        &issuer_and_subject(&ca_subject, &old_subject).unwrap(),
        old_signer,
        old_tx,
    );
    assert_eq!(
        status_of(&send(poll, std::sync::Arc::clone(old_signer)).await),
        ("2".to_owned(), Some("2".to_owned()))
    );
}

/// A prepared CA rollover: an issuing CA whose validity starts in ten days is not the
/// default yet (GetCACert is unchanged), GetNextCACert hands out its RA and chain signed by
/// the current RA (openssl verifies it against the root), and once its start has come it is
/// what GetCACert serves and nothing is announced any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn getnextcacert_announces_a_prepared_rollover_until_it_starts() {
    use keyinfra_core::issuing_ca::IssuingCaOptions;
    use keyinfra_core::{Clock, OsRandom, Principal};

    let app = TestApp::spawn().await;
    let url = format!("{}/scep?operation=GetNextCACert", app.public_base);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 404);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "not_found");

    let (root_id, root_pem) = app.ca().await;
    let (_, current_ra) = ca_certificates(&app, "/scep").await;
    let starts = app.clock.now() + time::Duration::days(10);
    let next = app
        .state
        .authority
        .ca_setup
        .create_issuing_ca(
            &app.db,
            &Principal::Operator,
            root_id.parse().unwrap(),
            &IssuingCaOptions {
                name: "next".into(),
                subject: "CN=KeyInfra Next Issuing CA,O=KeyInfra".into(),
                algorithm: None,
                validity: None,
                name_constraints: None,
                starts_at: Some(starts),
            },
            &mut OsRandom,
        )
        .await
        .unwrap();
    assert_eq!(next.not_before.unix_timestamp(), starts.unix_timestamp());
    // Not the default yet: the same RA as before, and the root still issues.
    assert_eq!(ca_certificates(&app, "/scep").await.1, current_ra);
    app.user("gil", UserRole::User).await;
    let gil = app.token("gil").await;
    let issue = json!({"subject": "CN=rollover-test", "key_algorithm": "ecdsa-p256"});
    let before = app.issue(&gil, issue.clone()).await;
    assert_eq!(before["ca_id"], root_id.as_str());

    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-x509-next-ca-cert"
    );
    let dir = Scratch::new();
    let signed = dir.write("next.der", response.bytes().await.unwrap());
    let root = dir.write("root.pem", &root_pem);
    let inner = dir.path("inner.der");
    let verified = openssl_ok(&[
        "cms", "-verify", "-inform", "DER", "-in", &signed, "-CAfile", &root, "-purpose", "any",
        "-out", &inner,
    ]);
    assert!(verified.contains("Verification successful"), "{verified}");
    let announced = openssl_ok(&["pkcs7", "-inform", "DER", "-in", &inner, "-print_certs"]);
    assert!(
        announced.contains("CN = KeyInfra Next Issuing CA SCEP RA"),
        "{announced}"
    );
    assert!(
        announced.contains("subject=O = KeyInfra, CN = KeyInfra Next Issuing CA\n"),
        "{announced}"
    );
    // Signed by the RA devices hold now.
    let signer = openssl_ok(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", &signed]);
    assert!(signer.contains("SCEP RA"), "{signer}");
    assert!(!signer.contains("Next Issuing CA SCEP RA,"), "{signer}");

    // Its start comes: it is the CA SCEP enrolls under, and no rollover is announced.
    app.clock.advance(time::Duration::days(11));
    let (certificates, ra_now) = ca_certificates(&app, "/scep").await;
    assert_ne!(ra_now, current_ra);
    assert!(certificates.contains(&next.certificate_der));
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    // (Eleven days on, the earlier token has expired.)
    let gil = app.token("gil").await;
    let after = app.issue(&gil, issue).await;
    assert_eq!(after["ca_id"], next.id.to_string());
}

/// PKIOperation is rate-limited per client address (KEYINFRA_SCEP_RATE) before any work:
/// past the burst an address gets 429 `rate_limited` with Retry-After, whatever it sends,
/// while another address and the cheap GET operations go on.
#[tokio::test]
async fn pkioperation_is_rate_limited_per_address() {
    let edge = keyinfra_server::edge::EdgeSettings {
        trusted_proxies: keyinfra_server::edge::parse_trusted_proxies("127.0.0.1/32").unwrap(),
        scep_per_minute: Some(3),
        ..Default::default()
    };
    let app = TestApp::spawn_with(
        crate::support::PEPPER,
        None,
        std::sync::Arc::new(edge),
        |_| {},
    )
    .await;
    let url = format!("{}/scep?operation=PKIOperation", app.public_base);
    let post = |from: &'static str| {
        app.http
            .post(&url)
            .header("x-forwarded-for", from)
            .body(b"not a pkiMessage".to_vec())
            .send()
    };
    for _ in 0..3 {
        assert_eq!(post("192.0.2.7").await.unwrap().status(), 400);
    }
    let limited = post("192.0.2.7").await.unwrap();
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    let problem: Value = limited.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    // By GET too, from the same address.
    let get = app
        .http
        .get(format!("{url}&message=AAAA"))
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 429);
    // Another address is not held back, nor is GetCACert.
    assert_eq!(post("198.51.100.9").await.unwrap().status(), 400);
    let ca = app
        .http
        .get(format!("{}/scep?operation=GetCACert", app.public_base))
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await
        .unwrap();
    assert_eq!(ca.status(), 200);
}
