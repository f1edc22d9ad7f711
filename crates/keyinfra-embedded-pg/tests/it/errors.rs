//! Configuration mistakes produce one clear error naming the setting to change.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use keyinfra_embedded_pg::{ClusterSettings, EmbeddedCluster, EmbeddedPgError, PgBinaries};

use crate::{scratch, settings};

#[test]
fn locate_finds_the_installed_server() {
    let binaries = PgBinaries::locate(None).unwrap();
    assert!(binaries.bindir().join("initdb").exists());
    assert!(binaries.bindir().join("postgres").exists());
    let again = PgBinaries::locate(Some(binaries.bindir())).unwrap();
    assert_eq!(again.bindir(), binaries.bindir());
}

#[test]
fn a_bogus_explicit_bindir_is_reported_as_such() {
    let dir = scratch();
    let error = PgBinaries::locate(Some(dir.path())).unwrap_err();
    assert!(
        matches!(error, EmbeddedPgError::BindirIncomplete { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "KEYINFRA_PG_BINDIR={} does not contain initdb and postgres",
            dir.path().display()
        )),
        "{message}"
    );
    assert!(PgBinaries::locate(Some(Path::new("/nonexistent/keyinfra"))).is_err());
}

#[test]
fn a_data_dir_under_a_regular_file_is_reported() {
    let dir = scratch();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let error = EmbeddedCluster::start(settings(&file.join("data"))).unwrap_err();
    assert!(matches!(error, EmbeddedPgError::DataDir { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "the data directory {} cannot be created or written (--data-dir / KEYINFRA_DATA_DIR): ",
            file.join("data").display()
        )),
        "{message}"
    );
}

#[test]
fn an_unreachable_data_dir_is_reported_when_root() {
    if !crate::is_root() {
        println!("note: not running as root, so no account switch happens; skipped");
        return;
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let error = EmbeddedCluster::start(settings(&private.path().join("data"))).unwrap_err();
    assert!(
        matches!(error, EmbeddedPgError::NotReachable { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("is not reachable by the OS user `postgres`"),
        "{message}"
    );
    assert!(
        message.contains(&private.path().display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("--data-dir / KEYINFRA_DATA_DIR"),
        "{message}"
    );
}

#[test]
fn a_missing_os_user_is_reported_when_root() {
    if !crate::is_root() {
        println!("note: not running as root, so the OS user setting is ignored; skipped");
        return;
    }
    let dir = scratch();
    let settings = ClusterSettings {
        os_user: Some("keyinfra-no-such-user".to_owned()),
        ..settings(&dir.path().join("data"))
    };
    let error = EmbeddedCluster::start(settings).unwrap_err();
    assert!(
        matches!(error, EmbeddedPgError::OsUserMissing { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("`keyinfra-no-such-user` does not exist"),
        "{error}"
    );
}

#[test]
fn an_initdb_failure_quotes_its_output() {
    let dir = scratch();
    // PostgreSQL reserves role names starting with pg_.
    let settings = ClusterSettings {
        superuser: "pg_keyinfra".to_owned(),
        ..settings(&dir.path().join("data"))
    };
    let error = EmbeddedCluster::start(settings).unwrap_err();
    assert!(
        matches!(error, EmbeddedPgError::InitdbFailed { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("pg_"), "{error}");
}
