//! Issue 21, ACME from order to revocation with the real clients from Debian: lego issues
//! (http-01 and tls-alpn-01), renews and revokes; certbot issues with its standalone
//! responder. Names resolve to 127.0.0.1 through lines added to /etc/hosts for the test
//! (and removed after it), and the validator is pointed at the client's ports.

use std::time::Duration;

use keyinfra_core::acme::{AcmeSettings, ValidationSettings};
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl_ok};
use crate::support::{TestApp, TlsEndpoint, test_edge};

/// Serialises edits of /etc/hosts between the tests of this process.
static HOSTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A line `127.0.0.1 NAME` in /etc/hosts for as long as this lives.
pub struct HostsEntry {
    line: String,
}

impl HostsEntry {
    pub async fn add(name: &str) -> Self {
        let line = format!("127.0.0.1 {name} # keyinfra test");
        let _lock = HOSTS.lock().await;
        let mut hosts = std::fs::read_to_string("/etc/hosts").expect("/etc/hosts is readable");
        if !hosts.ends_with('\n') && !hosts.is_empty() {
            hosts.push('\n');
        }
        hosts.push_str(&line);
        hosts.push('\n');
        std::fs::write("/etc/hosts", hosts)
            .expect("the tests run as root and may add a name to /etc/hosts");
        Self { line }
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        // Drop cannot wait for the async lock; a blocking lock of the same mutex would
        // deadlock a current-thread runtime, so spin on try_lock briefly.
        for _ in 0..1000 {
            if let Ok(_lock) = HOSTS.try_lock() {
                if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
                    let kept: String = hosts
                        .lines()
                        .filter(|l| *l != self.line)
                        .map(|l| format!("{l}\n"))
                        .collect();
                    let _ = std::fs::write("/etc/hosts", kept);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A TCP port nothing listens on now (for a client's challenge responder).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TLS server whose validator fetches http-01 from `http_port` and connects for
/// tls-alpn-01 to `tls_port`.
pub async fn acme_server(http_port: u16, tls_port: u16) -> (TestApp, TlsEndpoint) {
    TestApp::spawn_tls_acme(
        test_edge(),
        AcmeSettings {
            validation: ValidationSettings {
                http01_port: http_port,
                tls_alpn01_port: tls_port,
                ..ValidationSettings::default()
            },
            ..AcmeSettings::default()
        },
    )
    .await
}

/// Runs a client to completion; (success, stdout and stderr).
async fn run(
    program: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(program)
            .args(&args)
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("{program} is installed (.ci/run installs it): {e}"));
        (
            out.status.success(),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

/// A certificate's serial as openssl prints it (upper-case hex).
fn serial_of(file: &str) -> String {
    openssl_ok(&["x509", "-in", file, "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}

/// Polls the issuing CA's CRLs (complete and delta) on the public listener until one lists
/// `serial`; its text.
async fn crl_listing(app: &TestApp, ca_id: &str, serial: &str, dir: &Scratch) -> String {
    for _ in 0..100 {
        for path in [
            format!("/crl/{ca_id}.crl"),
            format!("/crl/{ca_id}/delta.crl"),
        ] {
            let response = app
                .http
                .get(format!("{}{path}", app.public_base))
                .send()
                .await
                .unwrap();
            if response.status() != 200 {
                continue;
            }
            let file = dir.write("crl.der", response.bytes().await.unwrap());
            let text = openssl_ok(&["crl", "-inform", "DER", "-in", &file, "-noout", "-text"]);
            if text.contains(&format!("Serial Number: {serial}")) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no CRL of {ca_id} lists {serial}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_issues_renews_and_revokes() {
    let (http_port, tls_port) = (free_port(), free_port());
    let (app, tls) = acme_server(http_port, tls_port).await;
    let owner = app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);
    let name = "lego-e2e.keyinfra.test";
    let alpn_name = "lego-alpn.keyinfra.test";
    let _hosts = (
        HostsEntry::add(name).await,
        HostsEntry::add(alpn_name).await,
    );
    let (status, eab) = app
        .send(Method::POST, "/api/v1/acme/eab", &user, json!({}))
        .await;
    assert_eq!(status, 201, "{eab}");
    let lego = |domain: &str, challenge: Vec<String>, command: Vec<&str>| {
        let mut args = vec![
            "--accept-tos".to_owned(),
            "--email".into(),
            "noc@example.net".into(),
            "--server".into(),
            tls.url("/acme/directory"),
            "--eab".into(),
            "--kid".into(),
            eab["kid"].as_str().unwrap().to_owned(),
            "--hmac".into(),
            eab["hmac_key"].as_str().unwrap().to_owned(),
            "--domains".into(),
            domain.to_owned(),
            "--path".into(),
            dir.path("lego"),
        ];
        args.extend(challenge);
        args.extend(command.into_iter().map(str::to_owned));
        run("lego", args, vec![("LEGO_CA_CERTIFICATES", root.clone())])
    };
    let http01 = vec![
        "--http".to_owned(),
        "--http.port".into(),
        format!(":{http_port}"),
    ];

    // Issue with http-01.
    let (ok, out) = lego(name, http01.clone(), vec!["run"]).await;
    assert!(ok, "{out}");
    let cert_file = dir.path(&format!("lego/certificates/{name}.crt"));
    let text = openssl_ok(&["x509", "-in", &cert_file, "-noout", "-text"]);
    assert!(text.contains(&format!("DNS:{name}")), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    // The chain lego saved verifies to our root.
    let verified = openssl_ok(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &cert_file,
        &cert_file,
    ]);
    assert!(verified.contains(": OK"), "{verified}");

    // In the owner's inventory, through the channel it came by, and audited.
    let row = app
        .tdb
        .scalar_text(
            "SELECT concat_ws(' ', owner_id, channel, profile) FROM certificates WHERE owner_id IS NOT NULL",
        )
        .await;
    assert_eq!(row, format!("{owner} acme server"));
    let (status, listed) = app.get("/api/v1/certificates", &user).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let order = app
        .tdb
        .scalar_text("SELECT status::text FROM acme_orders")
        .await;
    assert_eq!(order, "valid");
    let challenge = app
        .tdb
        .scalar_text(
            "SELECT type || ' ' || status::text FROM acme_challenges WHERE status <> 'pending'",
        )
        .await;
    assert_eq!(challenge, "http-01 valid");

    // Renew (lego renews when fewer than --days are left: all of them here).
    let first_serial = serial_of(&cert_file);
    let (ok, out) = lego(
        name,
        http01.clone(),
        vec!["renew", "--days", "3650", "--no-random-sleep"],
    )
    .await;
    assert!(ok, "{out}");
    let renewed_serial = serial_of(&cert_file);
    assert_ne!(first_serial, renewed_serial, "{out}");
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM certificates WHERE channel = 'acme'")
            .await,
        2
    );

    // tls-alpn-01 for another name.
    let tls_alpn = vec![
        "--tls".to_owned(),
        "--tls.port".into(),
        format!(":{tls_port}"),
    ];
    let (ok, out) = lego(alpn_name, tls_alpn, vec!["run"]).await;
    assert!(ok, "{out}");
    assert_eq!(
        app.tdb
            .scalar_i64(
                "SELECT count(*) FROM acme_challenges WHERE type = 'tls-alpn-01' AND status = 'valid'"
            )
            .await,
        1
    );

    // Revoke the renewed certificate (signed by the account key), with a reason.
    let (ok, out) = lego(name, http01, vec!["revoke", "--reason", "4", "--keep"]).await;
    assert!(ok, "{out}");
    let revoked = app
        .tdb
        .scalar_text(
            "SELECT r.reason::text FROM revoked_certificates AS r JOIN certificates AS c
             ON c.id = r.certificate_id WHERE c.status = 'REVOKED'",
        )
        .await;
    assert_eq!(revoked, "superseded");
    // OCSP says revoked, and so does a CRL.
    let ca_id = app
        .tdb
        .scalar_text("SELECT ca_id::text FROM certificates WHERE channel = 'acme' LIMIT 1")
        .await;
    let chain = std::fs::read_to_string(&cert_file).unwrap();
    let issuer_pem = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .nth(1)
        .map_or_else(|| tls.root_pem.clone(), str::to_owned);
    let issuer = dir.write("issuer.pem", &issuer_pem);
    let ocsp = openssl_ok(&[
        "ocsp",
        "-issuer",
        &issuer,
        "-CAfile",
        &root,
        "-cert",
        &cert_file,
        "-url",
        &format!("{}/ocsp", app.public_base),
        "-resp_text",
    ]);
    assert!(ocsp.contains(": revoked"), "{ocsp}");
    assert!(ocsp.contains("Reason: superseded"), "{ocsp}");
    let crl = crl_listing(&app, &ca_id, &renewed_serial, &dir).await;
    assert!(crl.contains("Superseded"), "{crl}");

    // A second revocation is ACME's alreadyRevoked, which lego reports.
    let (ok, out) = lego(
        name,
        vec![
            "--http".to_owned(),
            "--http.port".into(),
            format!(":{http_port}"),
        ],
        vec!["revoke", "--keep"],
    )
    .await;
    assert!(!ok);
    assert!(out.contains("alreadyRevoked"), "{out}");
}

/// certbot's standalone http-01 responder, with its own config, work and logs directories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_issues_with_its_standalone_responder() {
    let http_port = free_port();
    let (app, tls) = acme_server(http_port, free_port()).await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);
    let name = "certbot-e2e.keyinfra.test";
    let _hosts = HostsEntry::add(name).await;
    let (_, eab) = app
        .send(Method::POST, "/api/v1/acme/eab", &user, json!({}))
        .await;
    let args: Vec<String> = [
        "certonly",
        "--standalone",
        "--http-01-port",
        &http_port.to_string(),
        "--server",
        &tls.url("/acme/directory"),
        "--eab-kid",
        eab["kid"].as_str().unwrap(),
        "--eab-hmac-key",
        eab["hmac_key"].as_str().unwrap(),
        "--agree-tos",
        "-m",
        "noc@example.net",
        "-d",
        name,
        "--config-dir",
        &dir.path("etc"),
        "--work-dir",
        &dir.path("work"),
        "--logs-dir",
        &dir.path("logs"),
        "--non-interactive",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let (ok, out) = run("certbot", args, vec![("REQUESTS_CA_BUNDLE", root.clone())]).await;
    assert!(ok, "{out}");
    let cert = dir.path(&format!("etc/live/{name}/cert.pem"));
    let chain = dir.path(&format!("etc/live/{name}/chain.pem"));
    let text = openssl_ok(&["x509", "-in", &cert, "-noout", "-ext", "subjectAltName"]);
    assert!(text.contains(&format!("DNS:{name}")), "{text}");
    let verified = openssl_ok(&["verify", "-CAfile", &root, "-untrusted", &chain, &cert]);
    assert!(verified.contains(": OK"), "{verified}");
    let (_, listed): (_, Value) = app.get("/api/v1/certificates", &user).await;
    assert_eq!(listed["items"][0]["channel"], "acme", "{listed}");
}
