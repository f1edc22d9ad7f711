//! Bad configuration fails at start with one clear sentence naming the setting.

use std::process::Output;

use crate::support::{keyinfra, run};

fn assert_clear_failure(out: &Output, setting: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded despite bad {setting}");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("keyinfra: error:"))
        .collect();
    assert_eq!(
        error_lines.len(),
        1,
        "expected one error line; stderr:\n{stderr}"
    );
    assert!(
        error_lines[0].contains(setting),
        "{setting} not named in: {}",
        error_lines[0]
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_database_url() {
    let out = run(keyinfra()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db-acquire-timeout",
            "2s",
        ])
        .env(
            "DATABASE_URL",
            "postgres://keyinfra:hunter2hunter2@127.0.0.1:1/keyinfra",
        ));
    assert_clear_failure(&out, "DATABASE_URL");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("hunter2"),
        "the password leaked"
    );
}

#[test]
fn a_database_url_that_is_not_a_url() {
    let out = run(keyinfra()
        .args(["migrate", "status"])
        .env("DATABASE_URL", "mysql:/nonsense"));
    assert_clear_failure(&out, "DATABASE_URL");
}

#[test]
fn no_postgresql_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYINFRA_DATA_DIR", dir.path().join("data"))
        .env("KEYINFRA_PG_BINDIR", dir.path().join("no-such-bindir")));
    assert_clear_failure(&out, "KEYINFRA_PG_BINDIR");
}

#[test]
fn a_data_directory_that_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYINFRA_DATA_DIR", file.join("data")));
    assert_clear_failure(&out, "KEYINFRA_DATA_DIR");
}

#[test]
fn pool_bounds_that_contradict_each_other() {
    let out = run(keyinfra()
        .args(["serve"])
        .env("KEYINFRA_DB_POOL_MIN", "30")
        .env("KEYINFRA_DB_POOL_MAX", "20"));
    assert_clear_failure(&out, "KEYINFRA_DB_POOL_MIN");
}

#[test]
fn a_listen_address_already_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    // A migrated database, so that serve gets as far as binding the address.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(keyinfra_db::testing::TestDatabase::new());
    let out = run(keyinfra()
        .args(["serve", "--listen", &addr])
        .env("DATABASE_URL", db.url()));
    assert_clear_failure(&out, "KEYINFRA_LISTEN");
}

#[test]
fn secrets_that_are_missing_or_too_short() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("pepper");
    std::fs::write(&short, b"too short\n").unwrap();
    let out = run(keyinfra()
        .args(["user", "list"])
        .env("KEYINFRA_PEPPER_FILE", &short));
    assert_clear_failure(&out, "KEYINFRA_PEPPER_FILE");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("too short"),
        "the secret leaked"
    );

    let out = run(keyinfra()
        .args(["user", "list"])
        .env("KEYINFRA_JWT_SECRET_FILE", dir.path().join("missing")));
    assert_clear_failure(&out, "KEYINFRA_JWT_SECRET_FILE");

    let out = run(keyinfra()
        .args(["user", "list"])
        .env("KEYINFRA_JWT_SECRET", "short"));
    assert_clear_failure(&out, "KEYINFRA_JWT_SECRET");
}

#[test]
fn acme_settings_that_name_no_user_or_no_url() {
    // A migrated database, so that serve gets as far as reading the ACME settings.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(keyinfra_db::testing::TestDatabase::new());
    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_ACME_EAB_REQUIRED", "false")
        .env("KEYINFRA_ACME_DEFAULT_OWNER", "nobody-here"));
    assert_clear_failure(&out, "KEYINFRA_ACME_DEFAULT_OWNER");

    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_ACME_TERMS_OF_SERVICE", "javascript:alert(1)"));
    assert_clear_failure(&out, "KEYINFRA_ACME_TERMS_OF_SERVICE");

    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", db.url())
        .env("KEYINFRA_ACME_CAA_IDENTITIES", "ca.example.net,not a name"));
    assert_clear_failure(&out, "KEYINFRA_ACME_CAA_IDENTITIES");

    // A validation deny list that is not CIDRs: clap refuses it, naming the option.
    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYINFRA_ACME_VALIDATION_DENY", "10.0.0.0/8,intranet"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("acme-validation-deny"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(keyinfra()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYINFRA_ACME_EAB_REQUIRED", "maybe"));
    // clap's own refusal, before anything starts: it names the option and the choices.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--acme-eab-required") && stderr.contains("true, false"),
        "{stderr}"
    );
}
