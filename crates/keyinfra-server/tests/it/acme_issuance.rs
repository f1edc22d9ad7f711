//! Issue 21, ACME from order to revocation with the real clients from Debian: lego issues
//! (http-01 and tls-alpn-01), renews and revokes; certbot issues with its standalone
//! responder. Names resolve to 127.0.0.1 through lines added to /etc/hosts for the test
//! (and removed after it), and the validator is pointed at the client's ports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_core::Clock;

use keyinfra_core::acme::{AcmeSettings, ValidationSettings};
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::acme::{ClientKey, as_account, nonce, post_jws, register};
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
        Self::add_at(name, "127.0.0.1").await
    }

    /// A line `ADDRESS NAME`.
    pub async fn add_at(name: &str, address: &str) -> Self {
        let line = format!("{address} {name} # keyinfra test");
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
            caa_identities: vec!["ca.keyinfra.test".into()],
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

/// lego's common arguments for one run against `tls`'s directory, its state kept in
/// `state`, registering with the binding key `eab` (from `POST /api/v1/acme/eab`) if given.
fn lego_args(tls: &TlsEndpoint, state: &str, eab: Option<&Value>, domain: &str) -> Vec<String> {
    let mut args = vec![
        "--accept-tos".to_owned(),
        "--email".into(),
        "noc@example.net".into(),
        "--server".into(),
        tls.url("/acme/directory"),
        "--domains".into(),
        domain.to_owned(),
        "--path".into(),
        state.to_owned(),
    ];
    if let Some(eab) = eab {
        args.extend([
            "--eab".to_owned(),
            "--kid".into(),
            eab["kid"].as_str().unwrap().to_owned(),
            "--hmac".into(),
            eab["hmac_key"].as_str().unwrap().to_owned(),
        ]);
    }
    args
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
        let mut args = lego_args(&tls, &dir.path("lego"), Some(&eab), domain);
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

    // /metrics counts orders and validations by outcome.
    app.user("root", UserRole::Admin).await;
    let metrics = app.metrics(&app.token("root").await).await;
    let counted = |name: &str, labels: &[&str]| {
        metrics.lines().any(|line| {
            line.starts_with(name)
                && labels.iter().all(|l| line.contains(l))
                && !line.ends_with(" 0")
        })
    };
    assert!(
        counted(
            "keyinfra_acme_validations_total",
            &["type=\"http-01\"", "outcome=\"valid\""]
        ),
        "{metrics}"
    );
    assert!(
        counted(
            "keyinfra_acme_validations_total",
            &["type=\"tls-alpn-01\"", "outcome=\"valid\""]
        ),
        "{metrics}"
    );
    assert!(
        counted("keyinfra_acme_orders_total", &["outcome=\"issued\""]),
        "{metrics}"
    );

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

/// The refusals a lego user meets, as lego reports them: no binding where one is required,
/// a name outside the owner's policy, and a challenge the validator cannot reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_reports_the_refusals_its_user_meets() {
    let (validated_port, lego_port) = (free_port(), free_port());
    let (app, tls) = acme_server(validated_port, free_port()).await;
    app.user("root", UserRole::Admin).await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    let admin = app.token("root").await;
    let user = app.token("site1-noc").await;
    app.move_to_new_policy(
        &admin,
        &user_id.to_string(),
        json!({ "name": "acme-site", "allowed_dns": [".keyinfra.test"] }),
    )
    .await;
    let dir = Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);
    let unanswered = "lego-unanswered.keyinfra.test";
    let _hosts = HostsEntry::add(unanswered).await;
    let lego = |eab: Option<&Value>, domain: &str| {
        let mut args = lego_args(&tls, &dir.path("lego"), eab, domain);
        // lego answers http-01 on a port the validator does not fetch from.
        args.extend([
            "--http".to_owned(),
            "--http.port".into(),
            format!(":{lego_port}"),
            "run".into(),
        ]);
        run("lego", args, vec![("LEGO_CA_CERTIFICATES", root.clone())])
    };

    // No binding: lego reads the directory's externalAccountRequired and stops before
    // sending anything (the server's own refusal of such a request is tested in acme.rs);
    // no account.
    let (ok, out) = lego(None, unanswered).await;
    assert!(!ok);
    assert!(
        out.contains("Server requires External Account Binding"),
        "{out}"
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM acme_accounts")
            .await,
        0
    );

    // With a binding the account is made (and kept by lego), but a name the policy does
    // not allow is refused at newOrder: no order.
    let (status, eab) = app
        .send(Method::POST, "/api/v1/acme/eab", &user, json!({}))
        .await;
    assert_eq!(status, 201, "{eab}");
    let (ok, out) = lego(Some(&eab), "router.example.org").await;
    assert!(!ok);
    assert!(out.contains("rejectedIdentifier"), "{out}");
    assert!(out.contains("router.example.org"), "{out}");
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM acme_accounts")
            .await,
        1
    );
    assert_eq!(
        app.tdb.scalar_i64("SELECT count(*) FROM acme_orders").await,
        0
    );

    // An allowed name whose challenge nobody answers where the validator looks: after its
    // attempts the challenge, authorization and order are invalid, nothing is issued, and
    // lego shows ACME's connection error.
    let (ok, out) = lego(Some(&eab), unanswered).await;
    assert!(!ok);
    assert!(
        out.contains("urn:ietf:params:acme:error:connection"),
        "{out}"
    );
    assert_eq!(
        app.tdb
            .scalar_text(
                "SELECT concat_ws(' ', o.status, z.status, c.status, c.attempts)
                 FROM acme_orders AS o JOIN acme_authorizations AS z ON z.order_id = o.id
                 JOIN acme_challenges AS c ON c.authorization_id = z.id
                 WHERE c.type = 'http-01'"
            )
            .await,
        "invalid invalid invalid 3"
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM certificates WHERE channel = 'acme'")
            .await,
        0
    );
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

/// An http-01 responder: answers `/.well-known/acme-challenge/{token}` with the key
/// authorization set for that token, 404 otherwise.
struct Responder {
    port: u16,
    answers: Arc<Mutex<HashMap<String, String>>>,
}

impl Responder {
    async fn start() -> Self {
        let answers: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::clone(&answers);
        let router = axum::Router::new().route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(
                move |axum::extract::Path(token): axum::extract::Path<String>| {
                    let answer = shared.lock().unwrap().get(&token).cloned();
                    async move { answer.ok_or(axum::http::StatusCode::NOT_FOUND) }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { port, answers }
    }

    fn answer(&self, token: &str, key: &ClientKey) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), format!("{token}.{}", key.thumbprint()));
    }
}

/// An account's client: its key, its URL, and the server it talks to.
struct Client<'a> {
    tls: &'a TlsEndpoint,
    dir: &'a Scratch,
    key: ClientKey,
    kid: String,
}

impl<'a> Client<'a> {
    /// A new account of the user holding `token`, bound with a fresh binding key.
    async fn register(app: &TestApp, tls: &'a TlsEndpoint, dir: &'a Scratch, token: &str) -> Self {
        let (key, kid) = register(app, tls, dir, token).await;
        Self { tls, dir, key, kid }
    }

    async fn post(&self, url: &str, payload: Option<&Value>) -> crate::est::Answer {
        as_account(self.tls, self.dir, &self.key, &self.kid, url, payload).await
    }

    /// newOrder for `names`; the answer.
    async fn order(&self, names: &[&str]) -> crate::est::Answer {
        let identifiers: Vec<Value> = names
            .iter()
            .map(|n| json!({ "type": "dns", "value": n }))
            .collect();
        self.post(
            &self.tls.url("/acme/new-order"),
            Some(&json!({ "identifiers": identifiers })),
        )
        .await
    }

    /// Polls `url` (POST-as-GET) until its status is one of `wanted`; the last answer.
    async fn until(&self, url: &str, wanted: &[&str]) -> Value {
        let mut last = Value::Null;
        for _ in 0..100 {
            last = self.post(url, None).await.json();
            if wanted.iter().any(|w| last["status"] == *w) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("{url} never reached {wanted:?}: {last}");
    }

    /// Orders `name` and reads its authorization; (order URL, authorization URL, the
    /// challenge of type `kind`).
    async fn ordered(&self, name: &str, kind: &str) -> (String, String, Value) {
        let answer = self.order(&[name]).await;
        assert_eq!(
            answer.status,
            201,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let order_url = answer.header("location").unwrap();
        let authz_url = answer.json()["authorizations"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let authz = self.post(&authz_url, None).await.json();
        let challenge = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap()
            .clone();
        (order_url, authz_url, challenge)
    }

    /// Orders `name`, starts its http-01 challenge (answered by `responder` if given) and
    /// waits for the authorization to end; (order URL, authorization).
    async fn validate(&self, name: &str, responder: Option<&Responder>) -> (String, Value) {
        let (order_url, authz_url, challenge) = self.ordered(name, "http-01").await;
        if let Some(responder) = responder {
            responder.answer(challenge["token"].as_str().unwrap(), &self.key);
        }
        let started = self
            .post(challenge["url"].as_str().unwrap(), Some(&json!({})))
            .await;
        assert_eq!(
            started.status,
            200,
            "{}",
            String::from_utf8_lossy(&started.body)
        );
        assert!(
            started.head.contains(&format!("<{authz_url}>;rel=\"up\"")),
            "{}",
            started.head
        );
        let authz = self.until(&authz_url, &["valid", "invalid"]).await;
        (order_url, authz)
    }

    /// finalize with a CSR (DER) for `names`, made by openssl with `key_pem`.
    async fn finalize(&self, order_url: &str, key_pem: &str, names: &[&str]) -> crate::est::Answer {
        let key = self.dir.write("csr-key.pem", key_pem);
        let csr = self.dir.path("csr.der");
        let san = names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .collect::<Vec<_>>()
            .join(",");
        openssl_ok(&[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={}", names[0]),
            "-addext",
            &format!("subjectAltName={san}"),
            "-outform",
            "DER",
            "-out",
            &csr,
        ]);
        let der = self.dir.read("csr.der");
        self.post(
            &format!("{order_url}/finalize"),
            Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(der) })),
        )
        .await
    }
}

fn problem_type(answer: &crate::est::Answer) -> String {
    answer.json()["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("urn:ietf:params:acme:error:")
        .to_owned()
}

/// What lego and certbot never send, with raw requests: names outside the owner's policy
/// (at newOrder, and at finalize after the policy changed), a CSR with an extra name, a
/// challenge nobody answers, another account's certificate, and revocation by the
/// certificate's own key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_refused_where_the_rfc_and_the_policy_say() {
    let responder = Responder::start().await;
    let (app, tls) = acme_server(responder.port, free_port()).await;
    app.user("root", UserRole::Admin).await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    app.user("site2-noc", UserRole::User).await;
    let admin = app.token("root").await;
    let user = app.token("site1-noc").await;
    let other = app.token("site2-noc").await;
    let policy = app
        .move_to_new_policy(
            &admin,
            &user_id.to_string(),
            json!({ "name": "acme-site", "allowed_dns": [".keyinfra.test"], "max_validity_days": 30 }),
        )
        .await;
    let dir = Scratch::new();
    let client = Client::register(&app, &tls, &dir, &user).await;
    let good = "refusals.keyinfra.test";
    let silent = "silent.keyinfra.test";
    let later = "later.keyinfra.test";
    let _hosts = (
        HostsEntry::add(good).await,
        HostsEntry::add(later).await,
        // Nothing listens on the responder's port at this address.
        HostsEntry::add_at(silent, "127.0.0.2").await,
    );

    // Outside the policy: refused at newOrder, with the rule's reason; nothing written.
    let answer = client.order(&["router.example.org"]).await;
    assert_eq!(answer.status, 400);
    assert_eq!(problem_type(&answer), "rejectedIdentifier");
    let beyond = (app.clock.now() + time::Duration::days(60))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let answer = client
        .post(
            &tls.url("/acme/new-order"),
            Some(&json!({ "identifiers": [{ "type": "dns", "value": good }], "notAfter": beyond })),
        )
        .await;
    assert_eq!(problem_type(&answer), "malformed");
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("notAfter")
    );
    assert_eq!(
        app.tdb.scalar_i64("SELECT count(*) FROM acme_orders").await,
        0
    );

    // A validated order; finalize before that would be orderNotReady.
    let (order_url, authz) = client.validate(good, Some(&responder)).await;
    assert_eq!(authz["status"], "valid", "{authz}");
    assert!(
        authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "valid" && c["validated"].is_string())
    );
    let order = client.until(&order_url, &["ready"]).await;
    assert!(order.get("certificate").is_none());

    // A CSR with an extra name, or no CSR at all: badCSR, and the order stays ready.
    let cert_key = ClientKey::new();
    let answer = client
        .finalize(
            &order_url,
            &cert_key.pkcs8_pem(),
            &[good, "extra.keyinfra.test"],
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(problem_type(&answer), "badCSR");
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("extra.keyinfra.test")
    );
    let answer = client
        .post(
            &format!("{order_url}/finalize"),
            Some(&json!({ "csr": "AAAA" })),
        )
        .await;
    assert_eq!(problem_type(&answer), "badCSR");
    assert_eq!(
        client.post(&order_url, None).await.json()["status"],
        "ready"
    );

    // The right CSR: valid, with the certificate's URL.
    let answer = client
        .finalize(&order_url, &cert_key.pkcs8_pem(), &[good])
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let order = answer.json();
    assert_eq!(order["status"], "valid");
    let cert_url = order["certificate"].as_str().unwrap().to_owned();
    let answer = client
        .finalize(&order_url, &cert_key.pkcs8_pem(), &[good])
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(problem_type(&answer), "orderNotReady");
    let download = client.post(&cert_url, None).await;
    assert_eq!(download.status, 200);
    assert_eq!(
        download.header("content-type").as_deref(),
        Some("application/pem-certificate-chain")
    );
    let chain = String::from_utf8(download.body.clone()).unwrap();
    assert!(chain.matches("BEGIN CERTIFICATE").count() >= 2, "{chain}");
    let leaf = dir.write(
        "leaf.pem",
        chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap(),
    );
    let text = openssl_ok(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-enddate",
        "-ext",
        "subjectAltName",
    ]);
    assert!(text.contains(&format!("DNS:{good}")), "{text}");
    let certificate_der = URL_SAFE_NO_PAD.encode(openssl_der(&leaf));

    // Another user's account may neither download nor revoke it.
    let (stranger, stranger_kid) = register(&app, &tls, &dir, &other).await;
    let answer = as_account(&tls, &dir, &stranger, &stranger_kid, &cert_url, None).await;
    assert_eq!(answer.status, 404);
    let revoke_url = tls.url("/acme/revoke-cert");
    let payload = json!({ "certificate": certificate_der, "reason": 1 });
    let answer = as_account(
        &tls,
        &dir,
        &stranger,
        &stranger_kid,
        &revoke_url,
        Some(&payload),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(problem_type(&answer), "unauthorized");
    // A reason KeyInfra does not use (certificateHold) is badRevocationReason.
    let hold = json!({ "certificate": certificate_der, "reason": 6 });
    let answer = client.post(&revoke_url, Some(&hold)).await;
    assert_eq!(problem_type(&answer), "badRevocationReason");
    // The certificate's own key may (jwk, no account).
    let jws = cert_key.sign(&revoke_url, &nonce(&tls, &dir).await, None, Some(&payload));
    let answer = post_jws(&tls, &dir, "/acme/revoke-cert", &jws).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        app.tdb
            .scalar_text("SELECT reason::text FROM revoked_certificates")
            .await,
        "keyCompromise"
    );

    // Nobody answers: after its attempts the challenge, the authorization and the order
    // are invalid, with the connection problem.
    let (order_url, authz) = client.validate(silent, None).await;
    assert_eq!(authz["status"], "invalid", "{authz}");
    let failed = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "invalid")
        .unwrap()
        .clone();
    assert_eq!(
        failed["error"]["type"], "urn:ietf:params:acme:error:connection",
        "{failed}"
    );
    assert!(failed.get("validated").is_none());
    let order = client.post(&order_url, None).await.json();
    assert_eq!(order["status"], "invalid");
    assert_eq!(
        order["error"]["type"],
        "urn:ietf:params:acme:error:connection"
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT attempts::bigint FROM acme_challenges WHERE status = 'invalid'")
            .await,
        3
    );

    // The policy changes after validation: finalize asks it again, and the order is invalid.
    let (order_url, authz) = client.validate(later, Some(&responder)).await;
    assert_eq!(authz["status"], "valid");
    client.until(&order_url, &["ready"]).await;
    let (status, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/policies/{}", policy["id"].as_str().unwrap()),
            &admin,
            json!({ "allowed_dns": [".elsewhere.test"] }),
        )
        .await;
    assert_eq!(status, 200);
    let answer = client
        .finalize(&order_url, &ClientKey::new().pkcs8_pem(), &[later])
        .await;
    assert_eq!(
        problem_type(&answer),
        "rejectedIdentifier",
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let order = client.post(&order_url, None).await.json();
    assert_eq!(order["status"], "invalid");
    assert_eq!(
        order["error"]["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier"
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM certificates WHERE channel = 'acme'")
            .await,
        1
    );
}

/// The DER of a PEM certificate file.
fn openssl_der(pem_file: &str) -> Vec<u8> {
    let out = format!("{pem_file}.der");
    openssl_ok(&["x509", "-in", pem_file, "-outform", "DER", "-out", &out]);
    std::fs::read(out).unwrap()
}

/// KEYINFRA_ACME_VALIDATION_DENY: a name that resolves only into an excluded network fails
/// at the first attempt, without a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validator_never_connects_to_an_excluded_network() {
    let responder = Responder::start().await;
    let (app, tls) = TestApp::spawn_tls_acme(
        test_edge(),
        AcmeSettings {
            validation: ValidationSettings {
                http01_port: responder.port,
                deny: vec!["127.0.0.0/8".parse().unwrap()],
                ..ValidationSettings::default()
            },
            ..AcmeSettings::default()
        },
    )
    .await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = Scratch::new();
    let client = Client::register(&app, &tls, &dir, &user).await;
    let name = "denied.keyinfra.test";
    let _hosts = HostsEntry::add(name).await;
    let (_, authz) = client.validate(name, Some(&responder)).await;
    assert_eq!(authz["status"], "invalid", "{authz}");
    let failed = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "invalid")
        .unwrap()
        .clone();
    assert_eq!(
        failed["error"]["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier"
    );
    assert!(
        failed["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("KEYINFRA_ACME_VALIDATION_DENY")
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT attempts::bigint FROM acme_challenges WHERE status = 'invalid'")
            .await,
        1
    );
}

/// dnsmasq answering TXT records on a loopback port, until dropped.
struct DnsServer {
    child: std::process::Child,
    port: u16,
}

impl DnsServer {
    /// Serves `records` (name, value) over UDP and TCP on 127.0.0.1.
    // Every path reaps it: the failure below, and Drop for the server returned.
    #[allow(clippy::zombie_processes)]
    async fn start(port: u16, records: &[(String, String)]) -> Self {
        let mut args = vec![
            "--keep-in-foreground".to_owned(),
            format!("--port={port}"),
            "--listen-address=127.0.0.1".into(),
            "--bind-interfaces".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--conf-file=/dev/null".into(),
            // The zone's own server: a name without records is NXDOMAIN, not REFUSED.
            "--local=/keyinfra.test/".into(),
            "--pid-file=".into(),
            "--user=root".into(),
        ];
        for (name, value) in records {
            args.push(format!("--txt-record={name},{value}"));
        }
        let child = std::process::Command::new("/usr/sbin/dnsmasq")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq is installed (.ci/run installs dnsmasq-base)");
        // Ready when it accepts a TCP connection.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("dnsmasq did not start on port {port}");
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dns-01 through KEYINFRA_ACME_DNS_RESOLVER: a name and a wildcard are proven by TXT
/// records, and a name without one fails; the wildcard certificate is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_proves_names_and_wildcards_through_the_configured_resolver() {
    // The resolver's address must be known when the server starts, and the records only
    // after the orders exist: the server is told a port, and dnsmasq starts on it later.
    let dns_port = free_port();
    let (app, tls) = TestApp::spawn_tls_acme(
        test_edge(),
        AcmeSettings {
            validation: ValidationSettings {
                dns_resolver: Some(std::net::SocketAddr::from(([127, 0, 0, 1], dns_port))),
                ..ValidationSettings::default()
            },
            ..AcmeSettings::default()
        },
    )
    .await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = Scratch::new();
    let client = Client::register(&app, &tls, &dir, &user).await;

    // Orders, and the dns-01 challenge of each.
    let mut challenges = Vec::new();
    for name in [
        "dns.keyinfra.test",
        "*.wild.keyinfra.test",
        "missing.keyinfra.test",
    ] {
        let (order_url, authz_url, challenge) = client.ordered(name, "dns-01").await;
        challenges.push((name, order_url, authz_url, challenge));
    }
    let records: Vec<(String, String)> = challenges
        .iter()
        .filter(|(name, ..)| !name.starts_with("missing"))
        .map(|(name, _, _, challenge)| {
            let token = challenge["token"].as_str().unwrap();
            let key_authorization = format!("{token}.{}", client.key.thumbprint());
            (
                format!("_acme-challenge.{}", name.trim_start_matches("*.")),
                keyinfra_pki::acme::keyauth::dns01_txt_value(&key_authorization),
            )
        })
        .collect();
    let dns = DnsServer::start(dns_port, &records).await;
    assert_eq!(dns.port, dns_port);
    for (_, _, _, challenge) in &challenges {
        let answer = client
            .post(challenge["url"].as_str().unwrap(), Some(&json!({})))
            .await;
        assert_eq!(answer.status, 200);
    }
    for (name, order_url, authz_url, _) in &challenges {
        let authz = client.until(authz_url, &["valid", "invalid"]).await;
        if name.starts_with("missing") {
            assert_eq!(authz["status"], "invalid", "{authz}");
            let failed = authz["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "dns-01")
                .unwrap();
            let error = &failed["error"];
            assert_eq!(
                error["type"], "urn:ietf:params:acme:error:unauthorized",
                "{authz}"
            );
            assert!(
                error["detail"]
                    .as_str()
                    .unwrap()
                    .contains("_acme-challenge.missing")
            );
        } else {
            assert_eq!(authz["status"], "valid", "{name}: {authz}");
            assert_eq!(
                authz["wildcard"].as_bool().unwrap_or(false),
                name.starts_with('*')
            );
            client.until(order_url, &["ready"]).await;
        }
    }

    // The wildcard order issues a wildcard certificate.
    let (_, wildcard_order, _, _) = &challenges[1];
    let answer = client
        .finalize(
            wildcard_order,
            &ClientKey::new().pkcs8_pem(),
            &["*.wild.keyinfra.test"],
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let cert_url = answer.json()["certificate"].as_str().unwrap().to_owned();
    let chain = String::from_utf8(client.post(&cert_url, None).await.body).unwrap();
    let leaf = dir.write(
        "wild.pem",
        chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap(),
    );
    let text = openssl_ok(&["x509", "-in", &leaf, "-noout", "-ext", "subjectAltName"]);
    assert!(text.contains("DNS:*.wild.keyinfra.test"), "{text}");
}

/// Within two seconds of each other (timestamps are shown to the second).
fn near(a: time::OffsetDateTime, b: time::OffsetDateTime) -> bool {
    let apart: time::Duration = a - b;
    apart.abs() < time::Duration::seconds(2)
}

/// A timestamp of an ARI answer.
fn instant(value: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// Renewal information (RFC 9773) with raw HTTP (Debian's lego and certbot do not speak it):
/// the normal window, `replaces` on a renewal order, a window moved by a prepared CA
/// rollover, and one in the past once the certificate is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_information_moves_with_rollovers_and_revocations() {
    use keyinfra_core::issuing_ca::IssuingCaOptions;
    use keyinfra_core::{OsRandom, Principal};

    let responder = Responder::start().await;
    let (app, tls) = acme_server(responder.port, free_port()).await;
    app.user("site1-noc", UserRole::User).await;
    app.user("site2-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let other = app.token("site2-noc").await;
    let dir = Scratch::new();
    let client = Client::register(&app, &tls, &dir, &user).await;
    let name = "ari.keyinfra.test";
    let _hosts = HostsEntry::add(name).await;
    let directory = crate::est::curl(&tls, &dir, "/acme/directory", &[])
        .await
        .1
        .json();
    let renewal_info = directory["renewalInfo"].as_str().unwrap().to_owned();
    assert_eq!(renewal_info, tls.url("/acme/renewal-info"));
    assert_eq!(
        directory["meta"]["caaIdentities"],
        json!(["ca.keyinfra.test"])
    );
    assert_eq!(directory["keyChange"], json!(tls.url("/acme/key-change")));
    assert_eq!(directory["revokeCert"], json!(tls.url("/acme/revoke-cert")));
    assert_eq!(directory["newOrder"], json!(tls.url("/acme/new-order")));

    let (order_url, _) = client.validate(name, Some(&responder)).await;
    client.until(&order_url, &["ready"]).await;
    let answer = client
        .finalize(&order_url, &ClientKey::new().pkcs8_pem(), &[name])
        .await;
    let cert_url = answer.json()["certificate"].as_str().unwrap().to_owned();
    let chain = String::from_utf8(client.post(&cert_url, None).await.body).unwrap();
    let leaf = dir.write(
        "leaf.pem",
        chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap(),
    );
    let der = openssl_der(&leaf);
    let cert_id = keyinfra_pki::acme::keyauth::CertId::from_certificate(&der)
        .unwrap()
        .to_string();
    let (not_before, not_after) = {
        let row = app
            .tdb
            .scalar_text(
                "SELECT extract(epoch FROM not_before)::bigint || ' ' || extract(epoch FROM not_after)::bigint
                 FROM certificates WHERE channel = 'acme'",
            )
            .await;
        let (a, b) = row.split_once(' ').unwrap();
        (
            time::OffsetDateTime::from_unix_timestamp(a.parse().unwrap()).unwrap(),
            time::OffsetDateTime::from_unix_timestamp(b.parse().unwrap()).unwrap(),
        )
    };
    let ask = |id: String| {
        let tls = &tls;
        let dir = &dir;
        async move {
            crate::est::curl(tls, dir, &format!("/acme/renewal-info/{id}"), &[])
                .await
                .1
        }
    };

    // The normal window: two thirds to five sixths of the validity, and when to ask again.
    let answer = ask(cert_id.clone()).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("retry-after").as_deref(), Some("21600"));
    let window = answer.json()["suggestedWindow"].clone();
    let lifetime: time::Duration = not_after - not_before;
    let start = instant(&window["start"]);
    let end = instant(&window["end"]);
    assert!(near(start, not_before + lifetime * 2 / 3), "{window}");
    assert!(near(end, not_before + lifetime * 5 / 6), "{window}");
    // A certID that does not parse, and one of no certificate of ours.
    let answer = ask("not-a-cert-id".into()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:malformed"
    );
    let (aki, _) = cert_id.split_once('.').unwrap();
    let answer = ask(format!("{aki}.AQ")).await;
    assert_eq!(answer.status, 404);

    // A renewal order names what it replaces: once, and only the owner's.
    let replaces = |certificate: &str| json!({ "identifiers": [{ "type": "dns", "value": name }], "replaces": certificate });
    let new_order = tls.url("/acme/new-order");
    let (stranger, stranger_kid) = register(&app, &tls, &dir, &other).await;
    let answer = as_account(
        &tls,
        &dir,
        &stranger,
        &stranger_kid,
        &new_order,
        Some(&replaces(&cert_id)),
    )
    .await;
    assert_eq!(
        answer.status,
        401,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = client.post(&new_order, Some(&replaces(&cert_id))).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = client.post(&new_order, Some(&replaces(&cert_id))).await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:alreadyReplaced"
    );

    // An operator prepares the next issuing CA, starting in ten days: sooner than the
    // normal window, so the window moves to its start.
    let (root_id, _) = app.ca().await;
    let starts = app.clock.now() + time::Duration::days(10);
    app.state
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
    let window = ask(cert_id.clone()).await.json()["suggestedWindow"].clone();
    assert!(near(instant(&window["start"]), starts), "{window}");
    assert!(instant(&window["end"]) <= end);

    // Revoked: the window is already past, so a client renews at once.
    let payload = json!({ "certificate": URL_SAFE_NO_PAD.encode(&der), "reason": 4 });
    let answer = client
        .post(&tls.url("/acme/revoke-cert"), Some(&payload))
        .await;
    assert_eq!(answer.status, 200);
    let window = ask(cert_id).await.json()["suggestedWindow"].clone();
    assert!(instant(&window["end"]) <= app.clock.now(), "{window}");
    assert!(instant(&window["start"]) < instant(&window["end"]));
}

/// An order and its authorizations expire after 24 hours unvalidated: they read invalid and
/// expired, their challenges can no longer be started, and finalize says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unvalidated_order_expires() {
    let responder = Responder::start().await;
    let (app, tls) = acme_server(responder.port, free_port()).await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = Scratch::new();
    let client = Client::register(&app, &tls, &dir, &user).await;
    let (order_url, authz_url, challenge) = client.ordered("late.keyinfra.test", "http-01").await;
    let challenge_url = challenge["url"].as_str().unwrap().to_owned();

    app.clock.advance(time::Duration::hours(25));
    assert_eq!(
        client.post(&order_url, None).await.json()["status"],
        "invalid"
    );
    assert_eq!(
        client.post(&authz_url, None).await.json()["status"],
        "expired"
    );
    let started = client.post(&challenge_url, Some(&json!({}))).await;
    assert_eq!(started.status, 200);
    assert_eq!(
        started.json()["status"],
        "pending",
        "an expired authorization starts nothing"
    );
    let answer = client
        .finalize(
            &order_url,
            &ClientKey::new().pkcs8_pem(),
            &["late.keyinfra.test"],
        )
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(problem_type(&answer), "orderNotReady");
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

/// The per-account rates: after 60 failed validations in the last hour no challenge starts,
/// and after 300 new orders no order is made; both are rateLimited with Retry-After, and
/// nothing changes. The history is written as the validator and newOrder write it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_failed_validations_are_rate_limited_per_account() {
    let (app, tls) = acme_server(free_port(), free_port()).await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = Scratch::new();
    let client = Client::register(&app, &tls, &dir, &user).await;
    let (_, _, challenge) = client.ordered("rate.keyinfra.test", "http-01").await;
    let challenge_url = challenge["url"].as_str().unwrap().to_owned();

    // 60 validations this account failed within the hour.
    app.tdb
        .owner_execute(
            "INSERT INTO acme_challenges
                 (authorization_id, account_id, owner_id, type, token, status, validated_at)
             SELECT c.authorization_id, c.account_id, c.owner_id, 'http-01', repeat('A', 43),
                    'invalid', now() - interval '10 minutes'
             FROM (SELECT * FROM acme_challenges LIMIT 1) AS c, generate_series(1, 60)",
        )
        .await;
    let refused = client.post(&challenge_url, Some(&json!({}))).await;
    assert_eq!(refused.status, 429);
    assert_eq!(problem_type(&refused), "rateLimited");
    assert!(refused.header("retry-after").is_some(), "{}", refused.head);
    assert_eq!(
        client.post(&challenge_url, None).await.json()["status"],
        "pending"
    );

    // 300 orders within the hour (this one and 299 more).
    app.tdb
        .owner_execute(
            "INSERT INTO acme_orders
                 (account_id, owner_id, ca_id, identifiers, expires_at, created_at)
             SELECT o.account_id, o.owner_id, o.ca_id, o.identifiers, o.expires_at,
                    now() - interval '5 minutes'
             FROM (SELECT * FROM acme_orders LIMIT 1) AS o, generate_series(1, 299)",
        )
        .await;
    let orders = app.tdb.scalar_i64("SELECT count(*) FROM acme_orders").await;
    assert_eq!(orders, 300);
    let refused = client.order(&["rate.keyinfra.test"]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(problem_type(&refused), "rateLimited");
    assert!(refused.header("retry-after").is_some(), "{}", refused.head);
    assert_eq!(
        app.tdb.scalar_i64("SELECT count(*) FROM acme_orders").await,
        orders
    );
}
