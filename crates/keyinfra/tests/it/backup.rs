//! `keyinfra backup create|restore|verify`, run as an operator runs them, on real
//! PostgreSQL databases, checked with the real openssl CLI.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keyinfra_db::testing::TestDatabase;

use crate::support::{Server, base_url, id_in, keyinfra, openssl};

const PASSPHRASE: &str = "correct horse battery staple";

/// One installation's secrets (master keys, pepper, JWT secret) and backup passphrase, used
/// against any database.
struct Operator {
    dir: tempfile::TempDir,
}

impl Operator {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("master-keys"),
            format!("1:{}\n", "5a".repeat(32)),
        )
        .unwrap();
        std::fs::write(dir.path().join("pepper"), "p".repeat(40)).unwrap();
        std::fs::write(dir.path().join("jwt"), "j".repeat(40)).unwrap();
        std::fs::write(dir.path().join("passphrase"), format!("{PASSPHRASE}\n")).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn text(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    fn cmd(&self, db: &TestDatabase, args: &[&str]) -> Command {
        let mut cmd = keyinfra();
        cmd.args(args)
            .env("DATABASE_URL", db.url())
            .env("KEYINFRA_MASTER_KEYS_FILE", self.path("master-keys"))
            .env("KEYINFRA_PEPPER_FILE", self.path("pepper"))
            .env("KEYINFRA_JWT_SECRET_FILE", self.path("jwt"))
            .env_remove("KEYINFRA_BACKUP_PASSPHRASE")
            .env_remove("KEYINFRA_BACKUP_PASSPHRASE_FILE")
            .env("KEYINFRA_LOG", "warn");
        cmd
    }

    fn run(&self, db: &TestDatabase, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .cmd(db, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, db: &TestDatabase, args: &[&str]) -> String {
        self.ok_with_stdin(db, args, "")
    }

    fn ok_with_stdin(&self, db: &TestDatabase, args: &[&str], stdin: &str) -> String {
        let out = self.run(db, args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The single `keyinfra: error:` line of a failed command (no panic, no backtrace, no
/// passphrase).
fn one_clear_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded; stderr:\n{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("keyinfra: error:"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one error line; stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSPHRASE), "{stderr}");
    errors[0].to_owned()
}

/// The word after "serial" in an "issued ..." line.
fn serial_in(line: &str) -> String {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "serial").unwrap();
    words.next().unwrap().to_owned()
}

/// Rows in every table of the public schema (0 when there is none), counted in the
/// database without naming the tables, so that a table added later is counted too.
async fn rows_everywhere(db: &TestDatabase) -> i64 {
    db.scalar_i64(
        "SELECT coalesce(sum((xpath('/row/c/text()',
                    query_to_xml(format('SELECT count(*) AS c FROM %I', c.relname), false, true, '')))[1]::text::bigint), 0)::bigint
         FROM pg_class AS c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition AND c.relname <> '_sqlx_migrations'",
    )
    .await
}

/// A digest of every row of every table, to compare two databases.
async fn contents(db: &TestDatabase) -> Vec<(&'static str, String)> {
    macro_rules! digest {
        ($table:literal) => {
            (
                $table,
                db.scalar_text(concat!(
                    "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ",
                    $table,
                    " AS t"
                ))
                .await,
            )
        };
    }
    vec![
        digest!("users"),
        digest!("private_keys"),
        digest!("certificate_authorities"),
        digest!("certificate_serials"),
        digest!("certificates"),
        digest!("revoked_certificates"),
        digest!("crls"),
        digest!("audit_events"),
    ]
}

/// Every certificate's DER, in id order, as one hex text.
async fn all_certificate_der(db: &TestDatabase) -> String {
    db.scalar_text(
        "SELECT string_agg(id::text || '=' || encode(certificate_der, 'hex'), ',' ORDER BY id) FROM certificates",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_restores_into_an_empty_database_with_keys_crls_and_logins_intact() {
    let source = TestDatabase::new().await;
    let target = TestDatabase::empty().await;
    let op = Operator::new();

    op.ok(&source, &["init", "--algorithm", "ecdsa-p256"]);
    op.ok_with_stdin(
        &source,
        &["user", "add", "--username", "alice", "--role", "user"],
        "alice-password-1234\n",
    );
    let mut issued = Vec::new();
    for (n, algorithm) in ["ecdsa-p256", "rsa-2048", "ed25519"].iter().enumerate() {
        let line = op.ok(
            &source,
            &[
                "cert",
                "issue",
                "--subject",
                &format!("CN=router-{n},O=Example"),
                "--algorithm",
                algorithm,
                "--owner",
                "alice",
            ],
        );
        issued.push((id_in(&line), serial_in(&line)));
    }
    let (revoked_id, revoked_serial) = issued[2].clone();
    let revoked = op.ok(
        &source,
        &["cert", "revoke", &revoked_id, "--reason", "keyCompromise"],
    );
    assert!(revoked.contains("published CRL number"), "{revoked}");

    let file = op.path("keyinfra.backup");
    let created = op.ok(
        &source,
        &[
            "backup",
            "create",
            "--out",
            &op.text("keyinfra.backup"),
            "--passphrase-file",
            &op.text("passphrase"),
        ],
    );
    assert!(created.contains("certificates: 3 rows"), "{created}");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    // Nothing readable inside: no subject, no serial, no password hash.
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(!haystack.contains("router-0") && !haystack.contains("argon2"));
    assert!(!haystack.contains(&revoked_serial));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!op.path("keyinfra.backup.partial").exists());

    let verified = op.ok(
        &source,
        &[
            "backup",
            "verify",
            &op.text("keyinfra.backup"),
            "--passphrase-file",
            &op.text("passphrase"),
        ],
    );
    assert!(verified.contains("is intact"), "{verified}");

    // Into a database with no schema at all: the restore migrates it. The passphrase comes
    // from the environment this time.
    let restored = {
        let mut cmd = op.cmd(&target, &["backup", "restore", &op.text("keyinfra.backup")]);
        cmd.env("KEYINFRA_BACKUP_PASSPHRASE", PASSPHRASE);
        cmd.output().unwrap()
    };
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(String::from_utf8_lossy(&restored.stdout).contains("restored the backup"));

    // Every row of every table is the same, certificates byte for byte.
    assert_eq!(contents(&source).await, contents(&target).await);
    assert_eq!(
        all_certificate_der(&source).await,
        all_certificate_der(&target).await
    );
    // The derived data is rebuilt, not copied.
    assert_eq!(
        target
            .scalar_i64("SELECT coalesce(sum(certificates), 0)::bigint FROM certificate_stats")
            .await,
        3
    );
    // The partitions came back too: rows are in their months, not in the default partition.
    assert_eq!(
        target
            .scalar_i64("SELECT count(*) FROM certificates_default")
            .await,
        0
    );

    // The sealed keys open with the same master key: a PKCS#12 from the restored database,
    // opened by openssl, holds the certificate's own key.
    let (id, _) = &issued[0];
    let export = op.run(
        &target,
        &["cert", "export", id, "--out", &op.text("router.p12")],
        "12345678\n",
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let p12 = op.text("router.p12");
    let key = openssl(&[
        "pkcs12",
        "-in",
        &p12,
        "-passin",
        "pass:12345678",
        "-nocerts",
        "-nodes",
    ]);
    assert!(key.contains("PRIVATE KEY"), "{key}");
    std::fs::write(op.path("router.key"), &key).unwrap();
    let leaf = openssl(&[
        "pkcs12",
        "-in",
        &p12,
        "-passin",
        "pass:12345678",
        "-nokeys",
        "-clcerts",
    ]);
    std::fs::write(op.path("router.crt"), &leaf).unwrap();
    assert_eq!(
        openssl(&["pkey", "-in", &op.text("router.key"), "-pubout"]),
        openssl(&["x509", "-in", &op.text("router.crt"), "-noout", "-pubkey"])
    );

    // The restored CRL verifies against the CA and lists the revoked serial.
    let chain = op.ok(&target, &["cert", "show", id, "--pem"]);
    let ca = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .last()
        .unwrap();
    std::fs::write(op.path("ca.pem"), ca).unwrap();
    let crl_base64 = target
        .scalar_text("SELECT encode(crl_der, 'base64') FROM crls ORDER BY crl_number DESC LIMIT 1")
        .await;
    std::fs::write(
        op.path("ca.crl"),
        // PostgreSQL breaks base64 every 76 characters, with a trailing newline when the
        // length is a multiple of 76: trimmed, or PEM would get an empty line.
        format!(
            "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
            crl_base64.trim_end()
        ),
    )
    .unwrap();
    let crl = openssl(&[
        "crl",
        "-in",
        &op.text("ca.crl"),
        "-CAfile",
        &op.text("ca.pem"),
        "-verify",
        "-noout",
        "-text",
    ]);
    assert!(crl.contains("verify OK"), "{crl}");
    assert!(
        crl.contains(&revoked_serial),
        "{revoked_serial} not in {crl}"
    );
    assert!(crl.contains("Key Compromise"), "{crl}");

    // The users are back and can log in (the same pepper): through the real server.
    let users = op.ok(&target, &["user", "list"]);
    assert!(users.contains("alice"), "{users}");
    let mut server = Server::spawn({
        let mut cmd = op.cmd(&target, &["serve", "--listen", "127.0.0.1:0"]);
        cmd.stdin(Stdio::null()).env("KEYINFRA_LOG", "info");
        cmd
    });
    let base = base_url(&server.wait_for("listening on", Duration::from_secs(120)));
    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": "alice-password-1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/certificates"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 3, "{mine}");
    server.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_or_wrongly_unlocked_backups_and_full_targets_are_refused_leaving_no_row() {
    let source = TestDatabase::new().await;
    let op = Operator::new();
    op.ok(&source, &["init", "--algorithm", "ecdsa-p256"]);
    for n in 0..3 {
        op.ok(
            &source,
            &["cert", "issue", "--subject", &format!("CN=device-{n}")],
        );
    }
    op.ok(
        &source,
        &[
            "backup",
            "create",
            "--out",
            &op.text("good.backup"),
            "--passphrase-file",
            &op.text("passphrase"),
        ],
    );
    let good = std::fs::read(op.path("good.backup")).unwrap();
    let variant = |name: &str, bytes: &[u8]| -> String {
        std::fs::write(op.path(name), bytes).unwrap();
        op.text(name)
    };
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let flipped = variant("flipped.backup", &flipped);
    let truncated = variant("truncated.backup", &good[..good.len() - 200]);
    let cut_at_half = variant("half.backup", &good[..good.len() / 2]);
    std::fs::write(op.path("wrong"), "not the right passphrase\n").unwrap();
    std::fs::write(op.path("short"), "too-short\n").unwrap();

    // A migrated, empty database, and one with no schema at all.
    let migrated = TestDatabase::new().await;
    let bare = TestDatabase::empty().await;
    let restore = |db: &TestDatabase, file: &str, passphrase: &str| {
        op.run(
            db,
            &[
                "backup",
                "restore",
                file,
                "--passphrase-file",
                &op.text(passphrase),
            ],
            "",
        )
    };
    for (file, passphrase, expected) in [
        (&flipped, "passphrase", "damaged or was tampered with"),
        (&truncated, "passphrase", "damaged or was tampered with"),
        (&cut_at_half, "passphrase", "damaged or was tampered with"),
        (&op.text("good.backup"), "wrong", "wrong passphrase"),
        (&op.text("good.backup"), "short", "at least 12 characters"),
    ] {
        for db in [&migrated, &bare] {
            let error = one_clear_error(&restore(db, file, passphrase));
            assert!(error.contains(expected), "{file} {passphrase}: {error}");
            assert_eq!(rows_everywhere(db).await, 0, "{file}: {error}");
        }
        // Nothing was written: not even the migrations.
        assert_eq!(
            bare.scalar_i64("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .await,
            0
        );
        // `verify` agrees, without a database.
        let error = one_clear_error(&op.run(
            &bare,
            &[
                "backup",
                "verify",
                file,
                "--passphrase-file",
                &op.text(passphrase),
            ],
            "",
        ));
        assert!(error.contains(expected), "verify {file}: {error}");
    }

    // A database that holds anything is refused, and keeps exactly what it had.
    let before = contents(&source).await;
    let error = one_clear_error(&restore(&source, &op.text("good.backup"), "passphrase"));
    assert!(error.contains("not empty"), "{error}");
    assert_eq!(contents(&source).await, before);

    // The good file still restores into the migrated database those attempts left alone.
    let out = restore(&migrated, &op.text("good.backup"), "passphrase");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(contents(&migrated).await, before);
}

#[test]
fn bad_paths_and_missing_passphrases_fail_with_one_sentence() {
    let op = Operator::new();
    let nowhere = |args: &[&str], env: Option<(&str, &str)>| {
        let mut cmd = keyinfra();
        cmd.args(args)
            .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
            .env("KEYINFRA_LOG", "warn")
            .env_remove("KEYINFRA_BACKUP_PASSPHRASE")
            .env_remove("KEYINFRA_BACKUP_PASSPHRASE_FILE");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let passphrase = op.text("passphrase");
    let missing = one_clear_error(&nowhere(
        &["backup", "restore", "/nonexistent/keyinfra.backup"],
        Some(("KEYINFRA_BACKUP_PASSPHRASE_FILE", &passphrase)),
    ));
    assert!(
        missing.contains("cannot open the backup /nonexistent/keyinfra.backup")
            && missing.contains("No such file"),
        "{missing}"
    );
    let error = one_clear_error(&nowhere(&["backup", "restore", &passphrase], None));
    assert!(error.contains("no backup passphrase"), "{error}");
    let error = one_clear_error(&nowhere(
        &[
            "backup",
            "verify",
            "/nonexistent/x",
            "--passphrase-file",
            "/nonexistent/pass",
        ],
        None,
    ));
    assert!(
        error.contains("cannot read the backup passphrase file /nonexistent/pass"),
        "{error}"
    );
    // A file that is not a backup at all.
    let error = one_clear_error(&nowhere(
        &["backup", "verify", &passphrase],
        Some(("KEYINFRA_BACKUP_PASSPHRASE", PASSPHRASE)),
    ));
    assert!(error.contains("is not a KeyInfra backup"), "{error}");
    let error = one_clear_error(&nowhere(
        &[
            "backup",
            "create",
            "--out",
            "/nonexistent-dir/keyinfra.backup",
            "--passphrase-file",
            &passphrase,
        ],
        None,
    ));
    assert!(
        error.contains("cannot write the backup to /nonexistent-dir/keyinfra.backup"),
        "{error}"
    );
}
