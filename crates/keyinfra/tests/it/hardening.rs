//! Issue 16's hardening, seen from outside the process: secrets given in the environment
//! stay out of child processes, and a superuser DATABASE_URL is warned about.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use keyinfra_db::testing::TestDatabase;

use crate::support::{Server, keyinfra, run};

#[test]
fn secrets_given_in_the_environment_are_not_inherited_by_child_processes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The embedded default asks `pg_config` where PostgreSQL is: a child process of ours.
    // This one, first on PATH, writes down the environment it was given and then fails, so
    // that the real binaries are found the next way (the Debian layout or PATH).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let dump = dir.path().join("pg_config.env");
    let script = bin.join("pg_config");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nenv > '{}'\nexit 1\n", dump.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let master_key = format!("1:{}", "ab".repeat(32));
    let secrets = [
        ("KEYINFRA_PEPPER", "pepper-pepper-pepper-pepper-pepper-0001"),
        (
            "KEYINFRA_JWT_SECRET",
            "jwt-secret-jwt-secret-jwt-secret-0002",
        ),
        ("KEYINFRA_MASTER_KEYS", master_key.as_str()),
        ("KEYINFRA_ADMIN_PASSWORD", "admin password 0003"),
        ("KEYINFRA_BACKUP_PASSPHRASE", "backup passphrase 0004"),
        ("KEYINFRA_ALERT_WEBHOOK_SECRET", "webhook secret 0005"),
        (
            "KEYINFRA_SMTP_URL",
            "smtp://user:smtp-password-0006@localhost",
        ),
    ];
    let mut cmd = keyinfra();
    cmd.env("PATH", &path).args(["migrate", "status"]);
    for (name, value) in secrets {
        cmd.env(name, value);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let env = std::fs::read_to_string(&dump).expect("keyinfra ran pg_config");
    assert!(env.contains("PATH="), "{env}");
    for (name, value) in secrets {
        assert!(
            !env.contains(name) && !env.contains(value),
            "the child process inherited {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_warns_when_database_url_logs_in_as_a_superuser() {
    // The tests' server URL names its superuser (in CI `postgres`).
    let db = TestDatabase::new().await;
    let superuser: bool = db
        .scalar("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
        .await;
    assert!(superuser, "this test needs a superuser DATABASE_URL");

    let mut cmd = keyinfra();
    cmd.env("DATABASE_URL", db.url())
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Server::spawn(cmd);
    let warning = server.wait_for("superuser or BYPASSRLS", Duration::from_secs(120));
    assert!(
        warning.contains("WARN") && warning.contains("RESET ROLE"),
        "{warning}"
    );
    server.wait_for("listening on", Duration::from_secs(60));
    assert!(server.terminate().success());
}
