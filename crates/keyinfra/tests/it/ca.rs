//! The operator CLI for the CA: init, ca import/list, cert issue/list/show/export/renew/
//! revoke, keys rotate. Same use cases as the API; checked with the real openssl CLI.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use keyinfra_db::testing::TestDatabase;

use crate::support::{id_in, keyinfra, openssl};

/// The binary against one test database and master-key file (name_constraints.rs too).
pub struct Cli<'a> {
    pub db: &'a TestDatabase,
    pub keys_file: String,
}

impl Cli<'_> {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = keyinfra();
        cmd.args(args)
            .env("DATABASE_URL", self.db.url())
            .env("KEYINFRA_MASTER_KEYS_FILE", &self.keys_file)
            .env("KEYINFRA_LOG", "warn");
        cmd
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

#[tokio::test]
async fn an_operator_runs_the_whole_lifecycle_from_the_cli() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let v1 = "11".repeat(32);
    std::fs::write(path("keys"), format!("1:{v1}\n")).unwrap();
    let cli = Cli {
        db: &db,
        keys_file: path("keys"),
    };

    let created = cli.ok(&[
        "init",
        "--algorithm",
        "rsa-2048",
        "--intermediate",
        "CN=Example Issuing CA,O=Example",
    ]);
    assert_eq!(created.matches("created CA").count(), 2, "{created}");
    assert!(cli.fails(&["init"]).contains("a CA already exists"));
    let cas = cli.ok(&["ca", "list"]);
    assert_eq!(cas.matches("signs").count(), 2, "{cas}");
    // Short names, EST's CA labels, made from the names (migration 0024).
    assert_eq!(cas.matches("    short name: ").count(), 2, "{cas}");
    assert!(
        cas.contains("    short name: root\n") && cas.contains("    short name: issuing\n"),
        "{cas}"
    );

    assert!(
        cli.fails(&["cert", "issue", "--subject", "XX=1"])
            .contains("unknown attribute type")
    );
    let issued = cli.ok(&[
        "cert",
        "issue",
        "--subject",
        "CN=cli-router,O=Example",
        "--san",
        "cli.example.net",
        "--algorithm",
        "ecdsa-p256",
    ]);
    let id = id_in(&issued);
    assert!(
        cli.ok(&["cert", "show", &id]).contains("channel cli"),
        "an operator's issue is recorded as the CLI's"
    );
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ed25519",
        "-nodes",
        "-keyout",
        &path("dev.key"),
        "-out",
        &path("dev.csr"),
        "-subj",
        "/CN=cli-csr",
    ]);
    let from_csr = cli.ok(&[
        "cert",
        "issue",
        "--csr",
        &path("dev.csr"),
        "--profile",
        "client",
    ]);
    let csr_id = id_in(&from_csr);
    assert!(
        cli.ok(&["cert", "show", &csr_id])
            .contains("has private key: false")
    );
    assert_eq!(cli.ok(&["cert", "list"]).lines().count(), 2);

    // The chain: leaf, issuing CA, root; openssl builds the path.
    let chain = cli.ok(&["cert", "show", &id, "--pem"]);
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3, "{chain}");
    let blocks: Vec<String> = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .map(str::to_owned)
        .collect();
    std::fs::write(path("leaf.pem"), &blocks[0]).unwrap();
    std::fs::write(path("issuing.pem"), &blocks[1]).unwrap();
    std::fs::write(path("root.pem"), &blocks[2]).unwrap();
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &path("root.pem"),
        "-untrusted",
        &path("issuing.pem"),
        &path("leaf.pem"),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    assert!(openssl(&["x509", "-in", &path("root.pem"), "-noout", "-text"]).contains("(2048 bit)"));
    // The issuing CA names where its root publishes: its CRL and certificate.
    let root_id = id_in(created.lines().next().unwrap());
    let issuing_text = openssl(&["x509", "-in", &path("issuing.pem"), "-noout", "-text"]);
    for url in [format!("/crl/{root_id}.crl"), format!("/ca/{root_id}.crt")] {
        assert!(issuing_text.contains(&url), "{url} in\n{issuing_text}");
    }

    let export = cli.with_stdin(
        &[
            "cert",
            "export",
            &id,
            "--out",
            &path("dev.p12"),
            "--compat",
            "legacy",
        ],
        "123456\n",
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert_eq!(
        std::fs::metadata(path("dev.p12"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(
        openssl(&[
            "pkcs12",
            "-info",
            "-noout",
            "-passin",
            "pass:123456",
            "-in",
            &path("dev.p12")
        ])
        .contains("TripleDES")
    );
    let short = cli.with_stdin(&["cert", "export", &id, "--out", &path("x.p12")], "123\n");
    assert!(!short.status.success() && String::from_utf8_lossy(&short.stderr).contains("8 to 128"));

    let renewed = cli.ok(&["cert", "renew", &id, "--rekey"]);
    assert!(renewed.contains(" v2 "), "{renewed}");
    let new_id = id_in(&renewed);
    let revoked = cli.ok(&["cert", "revoke", &new_id, "--reason", "keyCompromise"]);
    assert!(
        revoked.contains("REVOKED") && revoked.contains("published CRL number"),
        "{revoked}"
    );
    assert!(
        cli.fails(&["cert", "revoke", &new_id])
            .contains("already revoked")
    );

    // Rotation: add version 2, re-seal, then version 1 can go.
    let v2 = "22".repeat(32);
    std::fs::write(path("keys"), format!("1:{v1}\n2:{v2}\n")).unwrap();
    let rotated = cli.ok(&["keys", "rotate", "--batch", "2"]);
    assert!(
        rotated.contains("4 keys to re-seal") && rotated.contains("re-sealed 4 keys"),
        "{rotated}"
    );
    std::fs::write(path("keys"), format!("2:{v2}\n")).unwrap();
    let export = cli.with_stdin(
        &["cert", "export", &id, "--out", &path("after.p12")],
        "12345678\n",
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(
        cli.ok(&["cert", "issue", "--subject", "CN=after-rotation"])
            .starts_with("issued")
    );
    // A key file without the version a key needs is a clear error, not garbage.
    std::fs::write(path("keys"), format!("3:{}\n", "33".repeat(32))).unwrap();
    let err = cli.with_stdin(
        &["cert", "export", &id, "--out", &path("no.p12")],
        "12345678\n",
    );
    assert!(!err.status.success());
    assert!(!String::from_utf8_lossy(&err.stderr).contains(&v2));
}

#[tokio::test]
async fn an_existing_ca_is_imported_and_a_mismatched_key_is_refused() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(path("keys"), format!("1:{}\n", "44".repeat(32))).unwrap();
    let cli = Cli {
        db: &db,
        keys_file: path("keys"),
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
        "-days",
        "365",
        "-subj",
        "/CN=Legacy Device CA/O=Example",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    // A self-signed certificate without basicConstraints: not a CA.
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("other.key"),
        "-out",
        &path("other.csr"),
        "-subj",
        "/CN=x",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path("other.csr"),
        "-key",
        &path("other.key"),
        "-days",
        "1",
        "-out",
        &path("other.pem"),
    ]);
    let err = cli.fails(&[
        "ca",
        "import",
        "--cert",
        &path("ca.pem"),
        "--key",
        &path("other.key"),
        "--name",
        "legacy",
    ]);
    assert!(err.contains("does not belong"), "{err}");
    let err = cli.fails(&[
        "ca",
        "import",
        "--cert",
        &path("other.pem"),
        "--key",
        &path("other.key"),
        "--name",
        "leafish",
    ]);
    assert!(err.contains("not a CA certificate"), "{err}");
    let imported = cli.ok(&[
        "ca",
        "import",
        "--cert",
        &path("ca.pem"),
        "--key",
        &path("ca.key"),
        "--name",
        "legacy",
    ]);
    assert!(
        imported.contains("imported CA") && imported.contains("O=Example,CN=Legacy Device CA"),
        "{imported}"
    );
    assert!(
        cli.fails(&["ca", "import", "--cert", &path("ca.pem"), "--name", "again"])
            .contains("already here")
    );
    // The imported CA signs.
    let issued = cli.ok(&[
        "cert",
        "issue",
        "--subject",
        "CN=imported-leaf",
        "--validity-days",
        "30",
    ]);
    let chain = cli.ok(&["cert", "show", &id_in(&issued), "--pem"]);
    std::fs::write(
        path("leaf.pem"),
        chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(openssl(&["verify", "-CAfile", &path("ca.pem"), &path("leaf.pem")]).contains(": OK"));
}
