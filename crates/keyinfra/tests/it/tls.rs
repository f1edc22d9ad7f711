//! `serve` with TLS (its own certificate, or files), the plain listener for CRLs, the
//! loopback rule for plain HTTP, and graceful shutdown. Checked with the real openssl and
//! curl, against the real binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keyinfra_db::testing::TestDatabase;

use crate::support::{Server, base_url, keyinfra, run};

const PASSWORD: &str = "correct horse battery staple";
const START: Duration = Duration::from_secs(180);

fn serve(db: &TestDatabase, args: &[&str]) -> Server {
    let mut cmd = keyinfra();
    cmd.arg("serve")
        .args(args)
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_ADMIN_PASSWORD", PASSWORD);
    Server::spawn(cmd)
}

/// The `scheme://host:port` in a log line.
fn url_in(line: &str, scheme: &str) -> String {
    let start = line.find(scheme).expect("an address");
    line[start..].split_whitespace().next().unwrap().to_owned()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// `key=value` in a log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!("{key}=")).expect(key) + key.len() + 1;
    line[start..].split_whitespace().next().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (apt-get install curl)")
}

fn curl_ok(args: &[&str]) -> String {
    let out = curl(args);
    assert!(out.status.success(), "curl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `openssl s_client` against 127.0.0.1:port, verifying the chain and the IP against `ca`.
fn s_client(port: u16, ca: &Path, servername: &str) -> String {
    let out = openssl(&[
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        servername,
        "-CAfile",
        ca.to_str().unwrap(),
        "-verify_return_error",
        "-verify_ip",
        "127.0.0.1",
        "-showcerts",
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "s_client: {shown}");
    assert!(
        shown.contains("Verify return code: 0 (ok)"),
        "s_client: {shown}"
    );
    shown
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[tokio::test]
async fn tls_auto_serves_a_certificate_from_its_own_ca_that_openssl_and_curl_verify() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        &db,
        &[
            "--tls",
            "auto",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--tls-names",
            "keyinfra.test",
        ],
    );
    let https = url_in(&server.wait_for("listening on https://", START), "https://");
    let port = port_of(&https);
    let plain = base_url(&server.wait_for("serving CRLs and CA certificates", START));
    let ca_id = field(&server.wait_for("created CA", START), "ca_id").to_owned();
    let issued = server.wait_for("issued the server's own TLS certificate", START);
    let own_id = field(&issued, "certificate_id").to_owned();

    // The CA certificate comes from the plain listener, as a client would fetch it.
    let ca = path(dir.path(), "ca.pem");
    curl_ok(&["-f", "-o", &ca, &format!("{plain}/ca/{ca_id}.pem")]);

    // The chain verifies against it, for the IP and for the extra name; the CA is served.
    let shown = s_client(port, Path::new(&ca), "keyinfra.test");
    assert!(
        shown.matches("BEGIN CERTIFICATE").count() >= 2,
        "the chain has no CA certificate: {shown}"
    );
    let health = curl_ok(&[
        "--cacert",
        &ca,
        &format!("https://127.0.0.1:{port}/healthz"),
    ]);
    assert!(health.contains("ok"), "{health}");
    curl_ok(&[
        "-f",
        "--cacert",
        &ca,
        "--resolve",
        &format!("keyinfra.test:{port}:127.0.0.1"),
        &format!("https://keyinfra.test:{port}/readyz"),
    ]);
    // A name it was not issued for is refused by the client.
    let wrong = curl(&[
        "--cacert",
        &ca,
        "--resolve",
        &format!("other.test:{port}:127.0.0.1"),
        &format!("https://other.test:{port}/healthz"),
    ]);
    assert!(!wrong.status.success(), "{}", text(&wrong));
    // The API works over HTTPS.
    let login = curl_ok(&[
        "--cacert",
        &ca,
        "-H",
        "content-type: application/json",
        "-d",
        &format!(r#"{{"username":"admin","password":"{PASSWORD}"}}"#),
        &format!("https://127.0.0.1:{port}/api/v1/auth/login"),
    ]);
    assert!(login.contains("access_token"), "{login}");

    // Plain HTTP to the TLS port gets nothing.
    let refused = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(!refused.status.success(), "{}", text(&refused));

    // The plain listener serves the CRL (DER, as openssl reads it) and nothing else: it
    // is the app's public router (keyinfra-server's tests/it/crl.rs tries every route).
    let crl = path(dir.path(), "ca.crl");
    curl_ok(&["-f", "-o", &crl, &format!("{plain}/crl/{ca_id}.crl")]);
    let parsed = openssl(&["crl", "-inform", "DER", "-in", &crl, "-noout", "-issuer"]);
    assert!(parsed.status.success(), "{}", text(&parsed));
    let out = curl(&["-i", &format!("{plain}/api/v1/cas")]);
    let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(answer.starts_with("http/1.1 404"), "{answer}");
    assert!(
        answer.contains("application/problem+json") && answer.contains("use https"),
        "{answer}"
    );

    // The server's certificate went through the lifecycle: recorded, CSR-only, audited.
    let shown = run(keyinfra()
        .args(["cert", "show", &own_id])
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_LOG", "warn"));
    let shown = text(&shown);
    assert!(
        shown.contains("profile server, has private key: false, channel server"),
        "{shown}"
    );
    assert!(shown.contains("DNS:keyinfra.test"), "{shown}");
    let database = db.database().await;
    let mut tx = database.begin(&keyinfra_db::Actor::System).await.unwrap();
    let events = keyinfra_db::audit::list(
        &mut tx,
        &keyinfra_db::audit::AuditFilter {
            action: keyinfra_db::audit::ActionFilter::Is(
                keyinfra_db::audit::AuditAction::CertificateIssued,
            ),
            ..Default::default()
        },
        10,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let event = events
        .iter()
        .find(|e| e.target_id.map(|t| t.to_string()) == Some(own_id.clone()))
        .expect("an audit event for the server's certificate");
    // The server itself, not the operator, issued it (issue 17's Principal::Server).
    assert_eq!(event.actor_name.as_deref(), Some("server"));
    assert_eq!(event.details["key_source"], "csr");
    database.close().await;

    let status = server.terminate();
    assert!(status.success(), "{status:?}:\n{}", server.seen.join("\n"));
}

#[tokio::test]
async fn tls_from_files_made_by_openssl_and_clear_errors_for_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (path(dir.path(), "cert.pem"), path(dir.path(), "key.pem"));
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let other = path(dir.path(), "other.pem");
    let made = openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &other,
    ]);
    assert!(made.status.success(), "{}", text(&made));
    let key_text = std::fs::read_to_string(&key).unwrap();
    let secret_line = key_text.lines().nth(1).unwrap().to_owned();

    // Bad files stop the start before any database work, in one sentence naming the flag.
    let refused = |args: &[&str], needles: &[&str]| {
        let out = run(keyinfra()
            .arg("serve")
            .args(args)
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} started");
        let errors: Vec<_> = stderr
            .lines()
            .filter(|l| l.starts_with("keyinfra: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        for needle in needles {
            assert!(
                errors[0].contains(needle),
                "{needle:?} not in {}",
                errors[0]
            );
        }
        assert!(!stderr.contains(&secret_line), "the key leaked: {stderr}");
    };
    let missing = path(dir.path(), "missing.pem");
    refused(
        &["--tls-cert", &cert, "--tls-key", &missing],
        &["cannot read the TLS private key", "--tls-key", &missing],
    );
    refused(
        &["--tls-cert", &cert, "--tls-key", &other],
        &["--tls-key", "does not belong to the first certificate"],
    );
    refused(
        &["--tls-cert", &key, "--tls-key", &key],
        &["--tls-cert", "no PEM CERTIFICATE block"],
    );
    refused(
        &["--tls-cert", &cert, "--tls-key", &cert],
        &["--tls-key", "no unencrypted PEM private key"],
    );
    refused(&["--tls-cert", &cert], &["needs --tls-key"]);

    let db = TestDatabase::new().await;
    let mut server = serve(
        &db,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    let https = url_in(&server.wait_for("listening on https://", START), "https://");
    let port = port_of(&https);
    s_client(port, Path::new(&cert), "localhost");
    let health = curl_ok(&[
        "--cacert",
        &cert,
        &format!("https://127.0.0.1:{port}/healthz"),
    ]);
    assert!(health.contains("ok"), "{health}");
    let status = server.terminate();
    assert!(status.success(), "{status:?}:\n{}", server.seen.join("\n"));
}

#[tokio::test]
async fn plain_http_off_loopback_needs_insecure_http() {
    let out = run(keyinfra()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let errors: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("keyinfra: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("not a loopback address") && errors[0].contains("--insecure-http"),
        "{stderr}"
    );

    let db = TestDatabase::new().await;
    let mut cmd = keyinfra();
    cmd.args(["serve", "--listen", "0.0.0.0:0"])
        .env("KEYINFRA_INSECURE_HTTP", "true")
        .env("DATABASE_URL", db.url());
    let mut server = Server::spawn(cmd);
    let line = server.wait_for("listening on http://", START);
    assert!(
        server
            .seen
            .iter()
            .any(|l| l.contains("WARN") && l.contains("not a loopback address")),
        "{}",
        server.seen.join("\n")
    );
    // Only loopback traffic here: the wildcard listener answers on 127.0.0.1 too.
    let port = port_of(&base_url(&line));
    let health = curl_ok(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(health.contains("ok"), "{health}");
    let status = server.terminate();
    assert!(status.success(), "{status:?}:\n{}", server.seen.join("\n"));
}

/// Sends a login request's headers and the first half of its body: from the server's side a
/// request in flight (its handler waits for the rest), finished whenever the test wants.
fn half_sent_login(address: SocketAddr) -> (TcpStream, Vec<u8>) {
    let body = format!(r#"{{"username":"admin","password":"{PASSWORD}"}}"#).into_bytes();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    (stream, rest.to_vec())
}

fn plain_server(db: &TestDatabase, extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut server = serve(db, &args);
    let line = server.wait_for("listening on http://", START);
    let address = base_url(&line)
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    (server, address)
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_then_stops_in_order() {
    let db = TestDatabase::new().await;
    let (mut server, address) = plain_server(&db, &[]);
    let (mut stream, rest) = half_sent_login(address);
    // Let the server read the headers and start the handler.
    std::thread::sleep(Duration::from_millis(500));

    server.signal("TERM");
    server.wait_for("stopped accepting connections", Duration::from_secs(30));
    // New clients are refused from now on.
    assert!(TcpStream::connect(address).is_err(), "still accepting");

    // The request in flight still completes, with the database still open.
    std::thread::sleep(Duration::from_millis(500));
    stream.write_all(&rest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("access_token"), "{response}");

    let status = server.wait_exit(Duration::from_secs(60));
    let log = server.seen.join("\n");
    assert!(status.success(), "{status:?}:\n{log}");
    let order = [
        "received SIGTERM",
        "stopped accepting connections",
        "every request finished",
        "stopping background tasks",
        "closing database connections",
    ];
    let positions: Vec<_> = order
        .iter()
        .map(|step| {
            server
                .seen
                .iter()
                .position(|l| l.contains(step))
                .unwrap_or_else(|| panic!("no {step:?} in:\n{log}"))
        })
        .collect();
    assert!(positions.is_sorted(), "steps out of order:\n{log}");
}

#[tokio::test]
async fn the_shutdown_timeout_drops_requests_that_do_not_finish() {
    let db = TestDatabase::new().await;
    let (mut server, address) = plain_server(&db, &["--shutdown-timeout", "1s"]);
    let (mut stream, _rest) = half_sent_login(address);
    std::thread::sleep(Duration::from_millis(500));

    let signalled = std::time::Instant::now();
    server.signal("INT");
    // The rest of the body never comes: after the deadline the server hangs up and exits.
    let status = server.wait_exit(Duration::from_secs(60));
    let log = server.seen.join("\n");
    assert!(status.success(), "{status:?}:\n{log}");
    assert!(signalled.elapsed() >= Duration::from_secs(1), "{log}");
    assert!(log.contains("received SIGINT"), "{log}");
    assert!(log.contains("dropping the requests still running"), "{log}");
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    assert!(
        read.is_err() || response.is_empty(),
        "got an answer: {}",
        String::from_utf8_lossy(&response)
    );
}
