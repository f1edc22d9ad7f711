//! One disposable cluster per test process.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::{ClusterSettings, EmbeddedCluster, EmbeddedPgError, PgBinaries};

static CLUSTER: OnceLock<EmbeddedCluster> = OnceLock::new();
static STARTING: Mutex<()> = Mutex::new(());

/// The directory under which each test process gets `<pid>/`.
pub fn throwaway_root() -> PathBuf {
    std::env::temp_dir().join("keyinfra-test-pg")
}

/// Returns this process's throwaway cluster, starting it on first use.
///
/// The cluster lives in `<temp dir>/keyinfra-test-pg/<pid>`, is [`ephemeral`]
/// (no fsync), uses the superuser `keyinfra`, and honours `KEYINFRA_PG_BINDIR`. It is never
/// stopped explicitly: when the process exits, the kernel sends the postmaster SIGINT. The
/// first call also removes directories left behind by processes that are gone (and whose
/// postmaster is gone too). If starting fails, the error is returned and the next call
/// tries again.
///
/// Tests should create their own database on it (`CREATE DATABASE`) and connect with
/// [`EmbeddedCluster::database_url`].
///
/// # Errors
///
/// Whatever [`PgBinaries::locate`] or [`EmbeddedCluster::start`] return.
///
/// [`ephemeral`]: ClusterSettings::ephemeral
pub fn shared_throwaway_cluster() -> Result<&'static EmbeddedCluster, EmbeddedPgError> {
    if let Some(cluster) = CLUSTER.get() {
        return Ok(cluster);
    }
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cluster) = CLUSTER.get() {
        return Ok(cluster);
    }
    let root = throwaway_root();
    create_shared_root(&root).map_err(|source| EmbeddedPgError::DataDir {
        path: root.clone(),
        source,
    })?;
    remove_stale(&root);

    let dir = root.join(std::process::id().to_string());
    // A directory with our PID belongs to a dead process whose PID we reuse.
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|source| EmbeddedPgError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    let explicit = std::env::var_os("KEYINFRA_PG_BINDIR").map(PathBuf::from);
    let binaries = PgBinaries::locate(explicit.as_deref())?;
    let settings = ClusterSettings {
        ephemeral: true,
        // Test machines are often busy; a slow start should not fail the whole suite.
        startup_timeout: Duration::from_secs(120),
        ..ClusterSettings::new(dir, binaries)
    };
    let cluster = EmbeddedCluster::start(settings)?;
    Ok(CLUSTER.get_or_init(|| cluster))
}

/// Creates the root shared by every test process, possibly of several OS users, like
/// `/tmp` itself: world-writable and sticky, so nobody can remove another user's clusters.
fn create_shared_root(root: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(root) {
        // Set after creation: the umask would strip the bits from the mode above.
        Ok(()) => fs::set_permissions(root, fs::Permissions::from_mode(0o1777)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && root.is_dir() => Ok(()),
        Err(error) => Err(error),
    }
}

/// Removes `<root>/<pid>` directories whose process and postmaster are both gone.
fn remove_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let own = std::process::id();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if pid == own || alive(pid) || postmaster_alive(&path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => tracing::debug!(path = %path.display(), "removed stale throwaway cluster"),
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "could not remove stale throwaway cluster")
            }
        }
    }
}

fn postmaster_alive(dir: &Path) -> bool {
    fs::read_to_string(dir.join("postgres").join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
        .is_some_and(alive)
}

/// Whether a process exists and is not a zombie (in containers, orphans are not always
/// reaped, so a dead postmaster can linger as a zombie).
fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

fn is_zombie(pid: u32) -> bool {
    // The state follows the parenthesised command name, which may itself contain spaces.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = &stat[stat.rfind(')')? + 1..];
            after.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}
