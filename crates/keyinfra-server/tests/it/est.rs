//! EST (issue 20) with real clients from Debian: curl with openssl (enroll with wrapped and
//! one-line base64, re-enroll with the client certificate, serverkeygen, csrattrs, labels),
//! strongSwan's `pki --est` / `--estca` (enroll with a password and with a challenge,
//! re-enroll, poll a held request until an ADMIN approves it) and, for the tls-exporter
//! channel binding no packaged client sends, Debian's pyOpenSSL. Every refusal is a 4xx
//! with nothing issued.
//!
//! The server is `TestApp::spawn_tls`: the TLS listener `serve --tls auto` opens, with its
//! certificate from the test's own CA. The clients run as blocking child processes while
//! the server answers on the same runtime: these tests take a multi-threaded one.

use std::process::Command;

use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl_ok};
use crate::support::{PASSWORD, TestApp, TlsEndpoint};

/// Runs a command to completion off the runtime's workers: (succeeded, stdout, stderr).
pub(crate) async fn run(program: &'static str, args: Vec<String>) -> (bool, Vec<u8>, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} is installed (.ci/run installs it): {e}"));
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

pub(crate) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// What curl got: the status, the response head as received, and the body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// curl against the TLS listener with `extra` arguments; its exit status too (a failed
/// handshake has no HTTP status).
pub(crate) async fn curl(
    tls: &TlsEndpoint,
    dir: &Scratch,
    path: &str,
    extra: &[&str],
) -> (bool, Answer) {
    let root = dir.write("root.pem", &tls.root_pem);
    let head = dir.path("head.txt");
    let body = dir.path("body.out");
    let _ = std::fs::remove_file(&head);
    let _ = std::fs::remove_file(&body);
    let mut list = vec![
        "-sS".to_owned(),
        "--cacert".to_owned(),
        root,
        "-D".to_owned(),
        head.clone(),
        "-o".to_owned(),
        body.clone(),
        "-w".to_owned(),
        "%{http_code}".to_owned(),
    ];
    list.extend(extra.iter().map(|s| (*s).to_owned()));
    list.push(tls.url(path));
    let (ok, stdout, _) = run("curl", list).await;
    let status = String::from_utf8_lossy(&stdout).trim().parse().unwrap_or(0);
    (
        ok,
        Answer {
            status,
            head: std::fs::read_to_string(&head).unwrap_or_default(),
            body: std::fs::read(&body).unwrap_or_default(),
        },
    )
}

/// An ECDSA P-256 key and a CSR for `cn` (with it as a DNS SAN), made by `openssl req`;
/// (key file, CSR DER file).
fn openssl_csr(dir: &Scratch, name: &str, cn: &str) -> (String, String) {
    let key = dir.path(&format!("{name}.key"));
    let csr = dir.path(&format!("{name}.der"));
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        &format!("subjectAltName=DNS:{cn}"),
        "-outform",
        "DER",
        "-out",
        &csr,
    ]);
    (key, csr)
}

/// The base64 of a DER file: `one_line` as `base64 -w0`, else as `openssl base64` (64
/// columns, a newline after each line).
fn base64_file(dir: &Scratch, der: &str, one_line: bool) -> String {
    let out = dir.path(&format!(
        "{der}.{}.b64",
        if one_line { "one" } else { "wrapped" }
    ));
    if one_line {
        let (ok, text) = crate::openssl::openssl(&["base64", "-A", "-in", der, "-out", &out]);
        assert!(ok, "{text}");
    } else {
        openssl_ok(&["base64", "-in", der, "-out", &out]);
    }
    out
}

/// A CSR (DER, in `out`) for a certificate's own subject and SANs, signed with its key.
/// (OpenSSL 3.0's `x509 -x509toreq -outform DER` writes a broken file: PEM, then `req`.)
fn request_from_certificate(certificate: &str, key: &str, out: &str) {
    let pem = format!("{out}.pem");
    openssl_ok(&[
        "x509",
        "-x509toreq",
        "-in",
        certificate,
        "-signkey",
        key,
        "-copy_extensions",
        "copyall",
        "-out",
        &pem,
    ]);
    openssl_ok(&["req", "-in", &pem, "-outform", "DER", "-out", out]);
}

/// curl's arguments for POSTing a base64 CSR file (`@path`) as EST wants it, after `auth`.
fn csr_args<'a>(auth: &[&'a str], body: &'a str) -> Vec<&'a str> {
    let mut list = auth.to_vec();
    list.extend([
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        body,
    ]);
    list
}

/// The certificates of a base64 certs-only PKCS#7 answer, as PEM (openssl pkcs7).
fn certificates_of(dir: &Scratch, base64_body: &[u8]) -> String {
    let b64 = dir.write("answer.b64", base64_body);
    let der = dir.path("answer.p7");
    openssl_ok(&["base64", "-d", "-A", "-in", &b64, "-out", &der]);
    openssl_ok(&["pkcs7", "-inform", "DER", "-in", &der, "-print_certs"])
}

async fn certificates(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, page) = app.get("/api/v1/certificates?limit=100", token).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn basic(user: &str, password: &str) -> String {
    format!("{user}:{password}")
}

/// A fresh enrollment challenge of the token's user: (id, secret).
async fn new_challenge(app: &TestApp, token: &str) -> (String, String) {
    let (status, created) = app
        .send(
            Method::POST,
            "/api/v1/enrollment/challenges",
            token,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["challenge"].as_str().unwrap().to_owned(),
    )
}

/// The answer strongSwan 5.9.8 can read: status line `HTTP/1.1`, Content-Length and no
/// chunking, the head under about 1 KiB, one-line base64.
fn assert_strongswan_readable(answer: &Answer) {
    assert!(answer.head.starts_with("HTTP/1.1 "), "{}", answer.head);
    assert!(
        answer.head.len() < 1000,
        "head of {} bytes",
        answer.head.len()
    );
    assert_eq!(
        answer
            .header("content-length")
            .map(|l| l.parse::<usize>().unwrap()),
        Some(answer.body.len())
    );
    assert_eq!(answer.header("transfer-encoding"), None);
    if answer.status == 200 && !answer.body.is_empty() {
        assert!(!answer.body.contains(&b'\n'), "base64 on one line");
    }
}

/// cacerts, simpleenroll with wrapped and one-line base64 (with and without
/// Content-Transfer-Encoding), simplereenroll with the client certificate, serverkeygen
/// and csrattrs, with curl and openssl.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn curl_enrolls_reenrolls_and_gets_a_server_made_key() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("alice", UserRole::User).await;
    let token = app.token("alice").await;
    let dir = Scratch::new();
    let alice = basic("alice", PASSWORD);

    // cacerts: the CA chain (here the root alone; see the labels test for an issuing CA),
    // without credentials.
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/cacerts", &[]).await;
    assert!(ok && answer.status == 200, "{}", answer.text());
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/pkcs7-mime; smime-type=certs-only")
    );
    assert_strongswan_readable(&answer);
    let chain = certificates_of(&dir, &answer.body);
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 1, "{chain}");
    assert_eq!(chain.matches("-----BEGIN").count(), 1);
    assert!(
        chain.contains(tls.root_pem.lines().nth(1).unwrap()),
        "{chain}"
    );
    let chain_file = dir.write("chain.pem", &chain);

    // simpleenroll, four ways of sending the same kind of CSR.
    let mut issued = Vec::new();
    for (i, (one_line, cte)) in [(false, true), (false, false), (true, true), (true, false)]
        .into_iter()
        .enumerate()
    {
        let cn = format!("dev{i}.example.net");
        let (_, csr) = openssl_csr(&dir, &format!("dev{i}"), &cn);
        let body = format!("@{}", base64_file(&dir, &csr, one_line));
        let mut extra = vec![
            "-u",
            &alice,
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &body,
        ];
        if cte {
            extra.extend(["-H", "Content-Transfer-Encoding: base64"]);
        }
        let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simpleenroll", &extra).await;
        assert!(
            ok && answer.status == 200,
            "{i}: {} {}",
            answer.status,
            answer.text()
        );
        assert_strongswan_readable(&answer);
        let pem = certificates_of(&dir, &answer.body);
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1);
        let file = dir.write(&format!("dev{i}.pem"), &pem);
        let subject = openssl_ok(&[
            "x509",
            "-in",
            &file,
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
        ]);
        assert!(
            subject.contains(&format!("CN = {cn}")) && subject.contains(&format!("DNS:{cn}")),
            "{subject}"
        );
        let root = dir.write("root.pem", &tls.root_pem);
        openssl_ok(&["verify", "-CAfile", &root, "-untrusted", &chain_file, &file]);
        issued.push(file);
    }
    let listed = certificates(&app, &token).await;
    let est: Vec<&Value> = listed.iter().filter(|c| c["channel"] == "est").collect();
    assert_eq!(est.len(), 4, "{listed:?}");

    // simplereenroll: the same names, a CSR from the current certificate and key.
    let (key, _) = (dir.path("dev0.key"), ());
    let again = dir.path("again.der");
    request_from_certificate(&issued[0], &key, &again);
    let body = format!("@{}", base64_file(&dir, &again, true));
    let reenroll = [
        "--cert",
        &issued[0],
        "--key",
        &key,
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        &body,
    ];
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simplereenroll", &reenroll).await;
    assert!(
        ok && answer.status == 200,
        "{} {}",
        answer.status,
        answer.text()
    );
    let renewed = dir.write("renewed.pem", certificates_of(&dir, &answer.body));
    let serial = |file: &str| {
        openssl_ok(&["x509", "-in", file, "-noout", "-serial"])
            .trim()
            .trim_start_matches("serial=")
            .to_ascii_lowercase()
    };
    let listed = certificates(&app, &token).await;
    let find = |serial: &str| {
        listed
            .iter()
            .find(|c| {
                c["serial_number"]
                    .as_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .trim_start_matches('0')
                    == serial.trim_start_matches('0')
            })
            .cloned()
            .unwrap_or_else(|| panic!("{serial} in {listed:?}"))
    };
    let old = find(&serial(&issued[0]));
    let new = find(&serial(&renewed));
    assert_eq!(old["status"], "SUPERSEDED", "{old}");
    assert_eq!(new["version"], 2, "{new}");
    assert_eq!(new["channel"], "est");

    // The renewed-away certificate no longer re-enrolls.
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simplereenroll", &reenroll).await;
    assert!(
        ok && answer.status == 403,
        "{} {}",
        answer.status,
        answer.text()
    );

    // Another subject on re-enrollment: refused, nothing issued.
    let before = app.written_rows().await;
    let (_, other) = openssl_csr(&dir, "other", "other.example.net");
    let body = format!("@{}", base64_file(&dir, &other, true));
    let dev1_key = dir.path("dev1.key");
    let rename = [
        "--cert",
        issued[1].as_str(),
        "--key",
        dev1_key.as_str(),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        body.as_str(),
    ];
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simplereenroll", &rename).await;
    assert!(
        ok && answer.status == 422,
        "{} {}",
        answer.status,
        answer.text()
    );
    assert_eq!(answer.json()["code"], "names_changed");
    assert_eq!(app.written_rows().await, before);

    // Unless the owner's policy allows name changes on renewal: then the new names (which
    // still pass its rules) replace the old in the renewal.
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let alice_id = app.get("/api/v1/users/me", &token).await.1["id"].clone();
    let policy = app
        .move_to_new_policy(
            &admin,
            alice_id.as_str().unwrap(),
            json!({ "name": "renames", "renewal_name_changes": true }),
        )
        .await;
    assert_eq!(policy["renewal_name_changes"], true);
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simplereenroll", &rename).await;
    assert!(
        ok && answer.status == 200,
        "{} {}",
        answer.status,
        answer.text()
    );
    let renamed = dir.write("renamed.pem", certificates_of(&dir, &answer.body));
    let names = openssl_ok(&[
        "x509",
        "-in",
        &renamed,
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        names.contains("CN = other.example.net") && names.contains("DNS:other.example.net"),
        "{names}"
    );
    let listed = certificates(&app, &token).await;
    let renewal = listed
        .iter()
        .find(|c| c["subject"] == "CN=other.example.net")
        .unwrap_or_else(|| {
            let subjects: Vec<_> = listed
                .iter()
                .map(|c| (&c["subject"], &c["status"], &c["version"]))
                .collect();
            panic!("{subjects:?}")
        });
    assert_eq!(renewal["version"], 2, "{renewal}");

    // serverkeygen: the key in the answer is the certificate's, and it is stored sealed,
    // so a PKCS#12 export works later.
    let (_, csr) = openssl_csr(&dir, "gen", "gen.example.net");
    let body = format!("@{}", base64_file(&dir, &csr, true));
    let (ok, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/serverkeygen",
        &csr_args(&["-u", &alice], &body),
    )
    .await;
    assert!(
        ok && answer.status == 200,
        "{} {}",
        answer.status,
        answer.text()
    );
    let content_type = answer.header("content-type").unwrap();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    assert!(
        content_type.starts_with("multipart/mixed"),
        "{content_type}"
    );
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
    let text = answer.text();
    let parts: Vec<&str> = text
        .split(&format!("--{boundary}"))
        .filter(|p| p.contains("Content-Type"))
        .collect();
    assert_eq!(parts.len(), 2, "{text}");
    let body_of = |part: &str| part.split("\r\n\r\n").nth(1).unwrap().trim().to_owned();
    assert!(parts[0].contains("application/pkcs8"), "{}", parts[0]);
    let key_b64 = dir.write("gen.key.b64", body_of(parts[0]));
    let key_der = dir.path("gen.key.der");
    openssl_ok(&["base64", "-d", "-A", "-in", &key_b64, "-out", &key_der]);
    let cert_pem = dir.write(
        "gen.pem",
        certificates_of(&dir, body_of(parts[1]).as_bytes()),
    );
    let from_key = openssl_ok(&["pkey", "-inform", "DER", "-in", &key_der, "-pubout"]);
    let from_cert = openssl_ok(&["x509", "-in", &cert_pem, "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    let gen_serial = serial(&cert_pem);
    let listed = certificates(&app, &token).await;
    let generated = listed
        .iter()
        .find(|c| {
            c["serial_number"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
                .trim_start_matches('0')
                == gen_serial.trim_start_matches('0')
        })
        .unwrap();
    assert_eq!(generated["has_private_key"], true, "{generated}");
    let id = generated["id"].as_str().unwrap();
    let export = app
        .post_raw(
            &format!("/api/v1/certificates/{id}/pkcs12"),
            &token,
            json!({ "pin": "an export PIN 1234" }),
        )
        .await;
    assert_eq!(export.status(), 200);

    // csrattrs: the default policy allows every algorithm and no binding is required.
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/csrattrs", &["-u", &alice]).await;
    assert!(
        ok && answer.status == 204,
        "{} {}",
        answer.status,
        answer.text()
    );
}

/// A policy that allows only ECDSA P-384 asks for it in csrattrs, and serverkeygen makes
/// such a key; labels pick the CA by short name or id, and an unknown label is 404. An
/// issuing CA created while the server runs is trusted for client certificates once the
/// trust store is refreshed (as the app's minute poll does), not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn csrattrs_follow_the_policy_and_labels_pick_the_ca() {
    let (app, tls) = TestApp::spawn_tls().await;
    let bob = app.user("bob", UserRole::User).await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    app.move_to_new_policy(
        &admin,
        &bob.to_string(),
        json!({ "name": "p384-only", "key_algorithms": ["ecdsa-p384"] }),
    )
    .await;
    let dir = Scratch::new();
    let bob_basic = basic("bob", PASSWORD);

    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/csrattrs", &["-u", &bob_basic]).await;
    assert!(
        ok && answer.status == 200,
        "{} {}",
        answer.status,
        answer.text()
    );
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/csrattrs")
    );
    let b64 = dir.write("attrs.b64", &answer.body);
    let der = dir.path("attrs.der");
    openssl_ok(&["base64", "-d", "-A", "-in", &b64, "-out", &der]);
    let parsed = openssl_ok(&["asn1parse", "-inform", "DER", "-in", &der]);
    assert!(
        parsed.contains("id-ecPublicKey") && parsed.contains("secp384r1"),
        "{parsed}"
    );

    // Without credentials csrattrs is 401 with the Basic challenge.
    let (_, answer) = curl(&tls, &dir, "/.well-known/est/csrattrs", &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate").as_deref(),
        Some("Basic realm=\"keyinfra-est\"")
    );

    // An issuing CA under the root, made while the server runs: it becomes the default.
    let root = app
        .state
        .authority
        .cas
        .list_cas(&app.db)
        .await
        .unwrap()
        .remove(0);
    let issuing = app
        .state
        .authority
        .ca_setup
        .create_issuing_ca(
            &app.db,
            &keyinfra_core::Principal::Operator,
            root.id,
            &keyinfra_core::issuing_ca::IssuingCaOptions {
                name: "Branch Office CA".into(),
                subject: "CN=Branch Office CA".into(),
                algorithm: None,
                validity: None,
                name_constraints: None,
                starts_at: None,
            },
            &mut keyinfra_core::OsRandom,
        )
        .await
        .unwrap();
    assert_eq!(issuing.short_name, "branch-office-ca");
    let (_, listed) = app.get("/api/v1/cas", &admin).await;
    let shown: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["short_name"].as_str().unwrap())
        .collect();
    assert_eq!(shown, [root.short_name.as_str(), "branch-office-ca"]);
    assert_ne!(root.short_name, issuing.short_name);
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/cacerts", &[]).await;
    assert!(ok && answer.status == 200);
    assert_eq!(
        certificates_of(&dir, &answer.body)
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );

    // Labels: the issuing CA by short name and by id; the root refuses leaves; unknown 404.
    let (ok, answer) = curl(
        &tls,
        &dir,
        &format!("/.well-known/est/{}/cacerts", root.short_name),
        &[],
    )
    .await;
    assert!(ok && answer.status == 200);
    assert_eq!(
        certificates_of(&dir, &answer.body)
            .matches("BEGIN CERTIFICATE")
            .count(),
        1
    );
    let mut from_label = Vec::new();
    for label in [issuing.short_name.clone(), issuing.id.to_string()] {
        let (_, csr) = openssl_csr_p384(&dir, "label", "label.example.net");
        let body = format!("@{}", base64_file(&dir, &csr, true));
        let (ok, answer) = curl(
            &tls,
            &dir,
            &format!("/.well-known/est/{label}/simpleenroll"),
            &csr_args(&["-u", &bob_basic], &body),
        )
        .await;
        assert!(
            ok && answer.status == 200,
            "{label}: {} {}",
            answer.status,
            answer.text()
        );
        let pem = dir.write(
            &format!("label-{}.pem", from_label.len()),
            certificates_of(&dir, &answer.body),
        );
        let issuer = openssl_ok(&["x509", "-in", &pem, "-noout", "-issuer"]);
        assert!(issuer.contains("Branch Office CA"), "{issuer}");
        from_label.push(pem);
    }

    // Re-enrolling with a certificate of the new CA: the handshake refuses it until the
    // trust store follows the CA list, then it renews.
    let key = dir.path("label.key");
    let again = dir.path("label-again.der");
    request_from_certificate(&from_label[1], &key, &again);
    let again_body = format!("@{}", base64_file(&dir, &again, true));
    let reenroll = [
        "--cert",
        from_label[1].as_str(),
        "--key",
        key.as_str(),
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        again_body.as_str(),
    ];
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simplereenroll", &reenroll).await;
    assert!(
        !ok && answer.status == 0,
        "trusted before the refresh: {}",
        answer.status
    );
    let cas = keyinfra_server::tls::client_cas(&app.state.authority, &app.db)
        .await
        .unwrap();
    assert_eq!(cas.len(), 2);
    assert!(tls.server.trust_client_cas(&cas).unwrap());
    assert!(
        !tls.server.trust_client_cas(&cas).unwrap(),
        "no rebuild without a change"
    );
    let (ok, answer) = curl(&tls, &dir, "/.well-known/est/simplereenroll", &reenroll).await;
    assert!(
        ok && answer.status == 200,
        "{} {}",
        answer.status,
        answer.text()
    );
    let before = app.written_rows().await;
    let (_, csr) = openssl_csr_p384(&dir, "rootleaf", "rootleaf.example.net");
    let body = format!("@{}", base64_file(&dir, &csr, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        &format!("/.well-known/est/{}/simpleenroll", root.short_name),
        &csr_args(&["-u", &bob_basic], &body),
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert_eq!(answer.json()["code"], "root_ca_cannot_issue");
    let (_, answer) = curl(&tls, &dir, "/.well-known/est/no-such-ca/cacerts", &[]).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["code"], "unknown_ca");
    // A P-256 CSR is refused by this policy.
    let (_, csr) = openssl_csr(&dir, "p256", "p256.example.net");
    let body = format!("@{}", base64_file(&dir, &csr, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &bob_basic], &body),
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert_eq!(answer.json()["code"], "key_algorithm_not_allowed");
    assert_eq!(app.written_rows().await, before);

    // serverkeygen makes the policy's algorithm.
    let (_, csr) = openssl_csr(&dir, "gen", "gen.example.net");
    let body = format!("@{}", base64_file(&dir, &csr, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/serverkeygen",
        &csr_args(&["-u", &bob_basic], &body),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("application/pkcs8"));
    let token = app.token("bob").await;
    let listed = certificates(&app, &token).await;
    let generated = listed
        .iter()
        .find(|c| c["has_private_key"] == true)
        .unwrap();
    assert_eq!(generated["key_algorithm"], "ecdsa-p384", "{generated}");
}

fn openssl_csr_p384(dir: &Scratch, name: &str, cn: &str) -> (String, String) {
    let key = dir.path(&format!("{name}.key"));
    let csr = dir.path(&format!("{name}.der"));
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        &format!("subjectAltName=DNS:{cn}"),
        "-outform",
        "DER",
        "-out",
        &csr,
    ]);
    (key, csr)
}

/// Wrong password, unknown user, no credentials, a wrong content type, a body that is no
/// CSR, a CSR whose signature does not verify, re-enrollment with a revoked, a foreign or
/// no client certificate, and plain HTTP: each a 4xx, and nothing is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_are_4xx_and_issue_nothing() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("carol", UserRole::User).await;
    let token = app.token("carol").await;
    let dir = Scratch::new();
    let (key, csr) = openssl_csr(&dir, "dev", "dev.example.net");
    let csr_body = format!("@{}", base64_file(&dir, &csr, true));
    let pkcs10 = "Content-Type: application/pkcs10";

    // One good enrollment, revoked below.
    let carol = basic("carol", PASSWORD);
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &carol], &csr_body),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let device = dir.write("dev.pem", certificates_of(&dir, &answer.body));
    let before = app.written_rows().await;

    let wrong = basic("carol", "not the password at all");
    let nobody = basic("nobody", PASSWORD);
    for (credentials, what) in [
        (Some(wrong.as_str()), "wrong password"),
        (Some(nobody.as_str()), "unknown user"),
        (None, "no credentials"),
    ] {
        let mut extra = vec!["-H", pkcs10, "--data-binary", &csr_body];
        if let Some(c) = credentials {
            extra.extend(["-u", c]);
        }
        let (_, answer) = curl(&tls, &dir, "/.well-known/est/simpleenroll", &extra).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text());
        assert_eq!(
            answer.header("www-authenticate").as_deref(),
            Some("Basic realm=\"keyinfra-est\""),
            "{what}"
        );
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/problem+json")
        );
    }

    // Without -H Content-Type curl sends a form: 415.
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &["-u", &carol, "--data-binary", &csr_body],
    )
    .await;
    assert_eq!(answer.status, 415, "{}", answer.text());
    assert_eq!(answer.json()["code"], "unsupported_media_type");

    // Not base64 at all, and base64 of something that is no CSR.
    for (body, code) in [
        ("@/dev/null", 400),
        ("this is not base64 !!", 400),
        ("aGVsbG8gd29ybGQ=", 422),
    ] {
        let (_, answer) = curl(
            &tls,
            &dir,
            "/.well-known/est/simpleenroll",
            &["-u", &carol, "-H", pkcs10, "--data-binary", body],
        )
        .await;
        assert_eq!(answer.status, code, "{body}: {}", answer.text());
    }

    // A CSR whose signature does not verify: flip a byte of the signature.
    let mut bad = std::fs::read(&csr).unwrap();
    let last = bad.len() - 3;
    bad[last] ^= 0x55;
    let bad_file = dir.write("bad.der", &bad);
    let bad_body = format!("@{}", base64_file(&dir, &bad_file, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &carol], &bad_body),
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert_eq!(answer.json()["code"], "csr_signature_invalid");

    // Re-enrollment without a client certificate, then with a self-signed one (the
    // handshake refuses it: no HTTP answer at all).
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simplereenroll",
        &["-H", pkcs10, "--data-binary", &csr_body],
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(answer.json()["code"], "client_certificate_required");
    let own = dir.path("self.pem");
    openssl_ok(&[
        "req",
        "-x509",
        "-key",
        &key,
        "-subj",
        "/CN=dev.example.net",
        "-days",
        "2",
        "-out",
        &own,
    ]);
    let (ok, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simplereenroll",
        &[
            "--cert",
            &own,
            "--key",
            &key,
            "-H",
            pkcs10,
            "--data-binary",
            &csr_body,
        ],
    )
    .await;
    assert!(
        !ok && answer.status == 0,
        "a foreign client certificate got an answer: {}",
        answer.status
    );

    // Revoked: 403 certificate_revoked.
    let listed = certificates(&app, &token).await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &token,
            json!({ "reason": "keyCompromise" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let before_reenroll = app.written_rows().await;
    let again = dir.path("again.der");
    request_from_certificate(&device, &key, &again);
    let again_body = format!("@{}", base64_file(&dir, &again, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simplereenroll",
        &[
            "--cert",
            &device,
            "--key",
            &key,
            "-H",
            pkcs10,
            "--data-binary",
            &again_body,
        ],
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(answer.json()["code"], "certificate_revoked");
    assert_eq!(app.written_rows().await, before_reenroll);
    // (Revoking wrote a row; nothing else was written by the refusals.)
    assert!(before_reenroll >= before);

    // Plain HTTP: the public listener does not route EST; the full router refuses it.
    let plain = reqwest::get(format!("{}/.well-known/est/cacerts", app.public_base))
        .await
        .unwrap();
    assert_eq!(plain.status(), 404);
    let plain = reqwest::get(app.url("/.well-known/est/cacerts"))
        .await
        .unwrap();
    assert_eq!(plain.status(), 403);
    let problem: Value = plain.json().await.unwrap();
    assert_eq!(problem["code"], "https_required");
    let plain = app
        .http
        .post(app.url("/.well-known/est/simpleenroll"))
        .basic_auth("carol", Some(PASSWORD))
        .header("content-type", "application/pkcs10")
        .body(std::fs::read(&csr_body[1..]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 403);
    assert_eq!(app.written_rows().await, before_reenroll);

    // /metrics counts EST operations by outcome (the recorder is shared by the tests of
    // this process, so the counts are at least this test's).
    app.user("ops", UserRole::Admin).await;
    let ops = app.token("ops").await;
    let metrics = app.metrics(&ops).await;
    let count = |operation: &str, outcome: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("keyinfra_est_operations_total{"))
            .filter(|l| l.contains(&format!("operation=\"{operation}\"")))
            .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(count("simpleenroll", "ok") >= 1.0, "{metrics}");
    assert!(count("simpleenroll", "unauthenticated") >= 3.0);
    assert!(count("simpleenroll", "refused") >= 4.0);
    assert!(count("simplereenroll", "forbidden") >= 2.0);
}

/// strongSwan's `pki --estca` and `pki --est`: enroll with a password and with a
/// challenge (`{id}:{secret}`, used once), then re-enroll with the certificate for a new
/// key; the old certificate is SUPERSEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strongswan_pki_enrolls_and_reenrolls() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("dave", UserRole::User).await;
    let token = app.token("dave").await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);
    let url = tls.base.clone();

    let caout = dir.path("ca.pem");
    let (ok, _, err) = run(
        "pki",
        args(&[
            "--estca",
            "--url",
            &url,
            "--cacert",
            &root,
            "--caout",
            &caout,
            "--outform",
            "pem",
            "--force",
        ]),
    )
    .await;
    assert!(ok, "{err}");
    let fetched = std::fs::read_to_string(&caout).unwrap();
    assert!(fetched.contains("BEGIN CERTIFICATE"));

    let key = |name: &str| {
        let dir = &dir;
        let name = name.to_owned();
        async move {
            let path = dir.path(&name);
            let (ok, pem, err) = run(
                "pki",
                args(&[
                    "--gen",
                    "--type",
                    "ecdsa",
                    "--size",
                    "256",
                    "--outform",
                    "pem",
                ]),
            )
            .await;
            assert!(ok, "{err}");
            std::fs::write(&path, pem).unwrap();
            path
        }
    };
    let request = |key: String, csr: String| async move {
        let (ok, der, err) = run(
            "pki",
            args(&[
                "--req",
                "--in",
                &key,
                "--dn",
                "CN=sw1.example.net",
                "--san",
                "sw1.example.net",
                "--outform",
                "der",
            ]),
        )
        .await;
        assert!(ok, "{err}");
        std::fs::write(&csr, der).unwrap();
        csr
    };

    // With a password.
    let key1 = key("sw1.key").await;
    let csr1 = request(key1.clone(), dir.path("sw1.csr")).await;
    let userpass = basic("dave", PASSWORD);
    let (ok, pem, err) = run(
        "pki",
        args(&[
            "--est",
            "--url",
            &url,
            "--cacert",
            &root,
            "--userpass",
            &userpass,
            "--in",
            &csr1,
            "--outform",
            "pem",
        ]),
    )
    .await;
    assert!(ok, "{err}");
    let cert1 = dir.write("sw1.pem", &pem);
    let subject = openssl_ok(&["x509", "-in", &cert1, "-noout", "-subject"]);
    assert!(subject.contains("sw1.example.net"), "{subject}");

    // With a challenge: the challenge's owner gets it; the challenge is then used.
    let (id, secret) = new_challenge(&app, &token).await;
    let challenge = basic(&id, &secret);
    let key2 = key("sw2.key").await;
    let csr2 = request(key2.clone(), dir.path("sw2.csr")).await;
    let (ok, _, err) = run(
        "pki",
        args(&[
            "--est",
            "--url",
            &url,
            "--cacert",
            &root,
            "--userpass",
            &challenge,
            "--in",
            &csr2,
            "--outform",
            "pem",
        ]),
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        "pki",
        args(&[
            "--est",
            "--url",
            &url,
            "--cacert",
            &root,
            "--userpass",
            &challenge,
            "--in",
            &csr2,
            "--outform",
            "pem",
        ]),
    )
    .await;
    assert!(
        !ok && err.contains("401"),
        "a used challenge enrolled again: {err}"
    );
    let (_, listed) = app.get("/api/v1/enrollment/challenges", &token).await;
    assert_eq!(listed["items"][0]["state"], "used", "{listed}");

    // Re-enroll with the first certificate, for a new key.
    let key3 = key("sw3.key").await;
    let csr3 = request(key3.clone(), dir.path("sw3.csr")).await;
    let (ok, pem, err) = run(
        "pki",
        args(&[
            "--est",
            "--url",
            &url,
            "--cacert",
            &root,
            "--cert",
            &cert1,
            "--key",
            &key1,
            "--in",
            &csr3,
            "--outform",
            "pem",
        ]),
    )
    .await;
    assert!(ok, "{err}");
    let cert3 = dir.write("sw3.pem", &pem);
    let pubkey = openssl_ok(&["x509", "-in", &cert3, "-noout", "-pubkey"]);
    let key3_pub = openssl_ok(&["pkey", "-in", &key3, "-pubout"]);
    assert_eq!(pubkey, key3_pub);
    let listed = certificates(&app, &token).await;
    let superseded: Vec<_> = listed
        .iter()
        .filter(|c| c["status"] == "SUPERSEDED")
        .collect();
    assert_eq!(superseded.len(), 1, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|c| c["version"] == 2 && c["channel"] == "est")
    );
}

/// A challenge with `approval`: simpleenroll answers 202 with Retry-After; strongSwan polls
/// (sending the same request again) until an ADMIN approves through the API, then gets
/// the certificate. A rejected request ends in a 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strongswan_polls_a_held_request_until_an_admin_approves() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("erin", UserRole::User).await;
    app.user("boss", UserRole::Admin).await;
    let token = app.token("erin").await;
    let admin = app.token("boss").await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);

    let challenge = |approval: bool| {
        let app = &app;
        let token = token.clone();
        async move {
            let (status, created) = app
                .send(
                    Method::POST,
                    "/api/v1/enrollment/challenges",
                    &token,
                    json!({ "approval": approval }),
                )
                .await;
            assert_eq!(status, 201, "{created}");
            basic(
                created["id"].as_str().unwrap(),
                created["challenge"].as_str().unwrap(),
            )
        }
    };

    // curl sees the 202 itself.
    let held = challenge(true).await;
    let (_, csr) = openssl_csr(&dir, "held", "held.example.net");
    let body = format!("@{}", base64_file(&dir, &csr, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &held], &body),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(answer.header("retry-after").as_deref(), Some("60"));
    assert_strongswan_readable(&answer);
    // Asking again with the same request: still pending; another CSR with it: 401.
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &held], &body),
    )
    .await;
    assert_eq!(answer.status, 202);
    let (_, other) = openssl_csr(&dir, "other", "held.example.net");
    let other_body = format!("@{}", base64_file(&dir, &other, true));
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &held], &other_body),
    )
    .await;
    assert_eq!(answer.status, 401);
    // Rejected: the next poll is refused.
    let (_, requests) = app
        .get("/api/v1/enrollment/requests?state=pending", &admin)
        .await;
    let id = requests["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/enrollment/requests/{id}/reject"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &held], &body),
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.text());

    // strongSwan polls every second until the ADMIN approves.
    let approved = challenge(true).await;
    let (ok, key, err) = run(
        "pki",
        args(&[
            "--gen",
            "--type",
            "ecdsa",
            "--size",
            "256",
            "--outform",
            "pem",
        ]),
    )
    .await;
    assert!(ok, "{err}");
    let key_file = dir.write("sw.key", &key);
    let (ok, der, err) = run(
        "pki",
        args(&[
            "--req",
            "--in",
            &key_file,
            "--dn",
            "CN=polled.example.net",
            "--san",
            "polled.example.net",
            "--outform",
            "der",
        ]),
    )
    .await;
    assert!(ok, "{err}");
    let csr_file = dir.write("sw.csr", &der);
    let url = tls.base.clone();
    let client = tokio::spawn(run(
        "pki",
        args(&[
            "--est",
            "--url",
            &url,
            "--cacert",
            &root,
            "--userpass",
            &approved,
            "--in",
            &csr_file,
            "--interval",
            "1",
            "--maxpolltime",
            "60",
            "--outform",
            "pem",
        ]),
    ));
    let mut request_id = None;
    for _ in 0..100 {
        let (_, requests) = app
            .get("/api/v1/enrollment/requests?state=pending", &admin)
            .await;
        if let Some(id) = requests["items"][0]["id"].as_str() {
            request_id = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let request_id = request_id.expect("strongSwan's request is held");
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/enrollment/requests/{request_id}/approve"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (ok, pem, err) = client.await.unwrap();
    assert!(ok, "{err}");
    let cert = dir.write("polled.pem", &pem);
    assert!(
        openssl_ok(&["x509", "-in", &cert, "-noout", "-subject"]).contains("polled.example.net")
    );
}

/// The tls-exporter channel binding (RFC 9266) in the CSR's challengePassword, from a
/// Python client (Debian's pyOpenSSL and cryptography) on TLS 1.3: the right value is
/// accepted, another connection's value and the tls-unique shape are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_exporter_binding_must_match_the_connection() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("fay", UserRole::User).await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);
    let script = dir.write("bind.py", BINDING_CLIENT);
    let port = tls.address.port().to_string();
    for (mode, expected) in [
        ("right", "200"),
        ("other", "422 channel_binding_mismatch"),
        ("unique", "422 channel_binding_mismatch"),
        ("none", "200"),
    ] {
        let (ok, out, err) = run(
            "/usr/bin/python3",
            args(&[&script, &port, &root, "fay", PASSWORD, mode]),
        )
        .await;
        assert!(ok, "{mode}: {err}");
        let out = String::from_utf8_lossy(&out);
        assert!(out.trim().starts_with(expected), "{mode}: {out}");
    }
}

/// Connects with TLS 1.3, makes a CSR whose challengePassword is the base64 of the
/// connection's tls-exporter value (or another's, or 12 bytes, or none), and POSTs it on
/// that connection; prints the status and the problem's code.
const BINDING_CLIENT: &str = r#"
import base64, json, os, socket, sys
from OpenSSL import SSL
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AttributeOID, NameOID

port, root, user, password, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = SSL.Context(SSL.TLS_METHOD)
ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
ctx.load_verify_locations(root)
ctx.set_verify(SSL.VERIFY_PEER, lambda *a: a[-1])
conn = SSL.Connection(ctx, socket.create_connection(("127.0.0.1", port)))
conn.set_tlsext_host_name(b"localhost")
conn.set_connect_state()
conn.do_handshake()
exporter = conn.export_keying_material(b"EXPORTER-Channel-Binding", 32)
binding = {"right": exporter, "other": os.urandom(32), "unique": os.urandom(12), "none": None}[mode]
key = ec.generate_private_key(ec.SECP256R1())
builder = x509.CertificateSigningRequestBuilder().subject_name(
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bound.example.net")])
).add_extension(x509.SubjectAlternativeName([x509.DNSName("bound.example.net")]), critical=False)
if binding is not None:
    builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, base64.b64encode(binding))
csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
body = base64.b64encode(csr)
auth = base64.b64encode(f"{user}:{password}".encode()).decode()
conn.sendall(
    b"POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n"
    + f"Authorization: Basic {auth}\r\nContent-Type: application/pkcs10\r\n".encode()
    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    + body
)
data = b""
while True:
    try:
        chunk = conn.recv(65536)
    except (SSL.ZeroReturnError, SSL.SysCallError):
        break
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
status = head.split(b" ")[1].decode()
code = ""
if status != "200":
    code = json.loads(rest)["code"]
print(status, code)
"#;

/// A challenge this server made and another replica withdrew: this server still holds it
/// in memory and signs, and the certificate's own statement refuses it (migration 0032).
/// The device gets the 401 of a withdrawn challenge and nothing is issued; a challenge
/// made afterwards still enrolls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_challenge_withdrawn_on_another_replica_gets_401_and_issues_nothing() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("dave", UserRole::User).await;
    let token = app.token("dave").await;
    let replica = app.replica().await;
    let dir = Scratch::new();
    let (_, csr) = openssl_csr(&dir, "dev", "dev.example.net");
    let csr_body = format!("@{}", base64_file(&dir, &csr, false));

    let (id, secret) = new_challenge(&app, &token).await;
    let r = app
        .http
        .delete(format!(
            "{}/api/v1/enrollment/challenges/{id}",
            replica.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let before = app.written_rows().await;
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &basic(&id, &secret)], &csr_body),
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(
        answer.header("www-authenticate").as_deref(),
        Some("Basic realm=\"keyinfra-est\"")
    );
    assert_eq!(app.written_rows().await, before);
    // Asked again, the database answers (this server forgot it): the same 401.
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &basic(&id, &secret)], &csr_body),
    )
    .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(app.written_rows().await, before);

    let (id, secret) = new_challenge(&app, &token).await;
    let (_, answer) = curl(
        &tls,
        &dir,
        "/.well-known/est/simpleenroll",
        &csr_args(&["-u", &basic(&id, &secret)], &csr_body),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(certificates_of(&dir, &answer.body).contains("BEGIN CERTIFICATE"));
    assert_eq!(certificates(&app, &token).await.len(), 1);
}
