//! Integration tests against the real PostgreSQL binaries (no mocks).

// clippy.toml only exempts #[test] functions; the shared helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::panic)]

mod cluster;
mod errors;
mod kill;
mod throwaway;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use keyinfra_embedded_pg::{ClusterSettings, EmbeddedCluster, PgBinaries};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// A scratch directory the unprivileged `postgres` account can pass through when the
/// tests run as root (tempfile creates 0700 directories).
pub fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("kpg").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    dir
}

pub fn settings(data_dir: &Path) -> ClusterSettings {
    ClusterSettings {
        ephemeral: true,
        startup_timeout: Duration::from_secs(120),
        ..ClusterSettings::new(data_dir, PgBinaries::locate(None).unwrap())
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs one SQL statement through psql over the cluster's socket; returns trimmed stdout.
pub fn psql(cluster: &EmbeddedCluster, sql: &str) -> String {
    let bundled = PgBinaries::locate(None).unwrap().bindir().join("psql");
    let program = if bundled.exists() {
        bundled
    } else {
        "psql".into()
    };
    let output = Command::new(program)
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE")
        .arg("-X")
        .arg("-h")
        .arg(cluster.socket_dir())
        .args(["-p", &cluster.port().to_string()])
        .args([
            "-U",
            cluster.superuser(),
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-Atc", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Whether `pid` is a running process (zombies count as dead: orphans are not always
/// reaped in containers).
pub fn alive(pid: u32) -> bool {
    match kill(Pid::from_raw(i32::try_from(pid).unwrap()), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .next();
    state != Some("Z")
}
