//! ACME set up as an operator sets it up, on the real binary: accounts without a binding,
//! owned by `KEYINFRA_ACME_DEFAULT_OWNER`, terms of service, and the http-01 port; lego
//! registers and issues. (keyinfra-server's tests/it/acme*.rs cover the protocol itself.)

use std::process::{Command, Stdio};
use std::time::Duration;

use keyinfra_db::testing::TestDatabase;

use crate::support::{Server, add_user, base_url, keyinfra, openssl};

const START: Duration = Duration::from_secs(180);

/// A line `127.0.0.1 NAME` in /etc/hosts while this lives, so that the validator finds the
/// name (the tests run as root; no other test of this binary edits the file).
struct HostsLine(String);

impl HostsLine {
    fn add(name: &str) -> Self {
        let line = format!("127.0.0.1 {name} # keyinfra test");
        let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap();
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
        std::fs::write("/etc/hosts", format!("{hosts}{line}\n")).unwrap();
        Self(line)
    }
}

impl Drop for HostsLine {
    fn drop(&mut self) {
        if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = hosts
                .lines()
                .filter(|l| *l != self.0)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}

fn curl_ok(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-f", "--max-time", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn lego_registers_without_a_binding_and_issues_for_the_default_owner() {
    let db = TestDatabase::new().await;
    let added = add_user(db.url(), "acme-robot", "user", "a long robot password");
    assert!(added.status.success(), "{added:?}");

    let http01_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = "lego-cli.keyinfra.test";
    let _hosts = HostsLine::add(name);
    let mut serve = keyinfra();
    serve
        .args([
            "serve",
            "--tls",
            "auto",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_ACME_EAB_REQUIRED", "false")
        .env("KEYINFRA_ACME_DEFAULT_OWNER", "acme-robot")
        .env(
            "KEYINFRA_ACME_TERMS_OF_SERVICE",
            "https://ca.keyinfra.test/terms",
        )
        .env("KEYINFRA_ACME_HTTP01_PORT", http01_port.to_string());
    let mut server = Server::spawn(serve);
    let https = {
        let line = server.wait_for("listening on https://", START);
        let start = line.find("https://").unwrap();
        line[start..].split_whitespace().next().unwrap().to_owned()
    };
    let plain = base_url(&server.wait_for("serving CRLs and CA certificates", START));
    let created = server.wait_for("created CA", START);
    let ca_id = created
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ca_id="))
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem").to_string_lossy().into_owned();
    curl_ok(&["-o", &ca, &format!("{plain}/ca/{ca_id}.pem")]);

    // The directory says what the settings say.
    let directory: serde_json::Value = serde_json::from_str(&curl_ok(&[
        "--cacert",
        &ca,
        &format!("{https}/acme/directory"),
    ]))
    .unwrap();
    assert_eq!(directory["meta"]["externalAccountRequired"], false);
    assert_eq!(
        directory["meta"]["termsOfService"],
        "https://ca.keyinfra.test/terms"
    );

    // lego registers without a binding (agreeing to the terms) and gets a certificate.
    let state = dir.path().join("lego").to_string_lossy().into_owned();
    let out = Command::new("lego")
        .args([
            "--accept-tos",
            "--email",
            "noc@example.net",
            "--server",
            &format!("{https}/acme/directory"),
            "--domains",
            name,
            "--path",
            &state,
            "--http",
            "--http.port",
            &format!(":{http01_port}"),
            "run",
        ])
        .env("LEGO_CA_CERTIFICATES", &ca)
        .stdin(Stdio::null())
        .output()
        .expect("lego is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}{}\nserver:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.seen.join("\n")
    );
    let text = openssl(&[
        "x509",
        "-in",
        &format!("{state}/certificates/{name}.crt"),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(text.contains(&format!("DNS:{name}")), "{text}");

    // The account and the certificate belong to the default owner.
    assert_eq!(
        db.scalar_text(
            "SELECT u.username FROM acme_accounts AS a JOIN users AS u ON u.id = a.owner_id"
        )
        .await,
        "acme-robot"
    );
    assert_eq!(
        db.scalar_text(
            "SELECT u.username || ' ' || c.channel FROM certificates AS c
             JOIN users AS u ON u.id = c.owner_id WHERE c.channel = 'acme'"
        )
        .await,
        "acme-robot acme"
    );

    let status = server.terminate();
    assert!(status.success(), "{status:?}:\n{}", server.seen.join("\n"));
}
