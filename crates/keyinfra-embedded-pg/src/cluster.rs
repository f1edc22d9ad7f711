//! Initialising, starting and stopping one PostgreSQL cluster.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::EmbeddedPgError;
use crate::binaries::PgBinaries;
use crate::os_user::RunAs;
use crate::probe;
use crate::supervisor::{SpawnError, Supervisor, die_with_parent};

/// The port only names the socket file (`.s.PGSQL.5432`); there is no TCP listener.
const PORT: u16 = 5432;
/// `sun_path` is 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Lines of server or initdb output quoted in error messages.
const TAIL_LINES: usize = 30;
/// The server log is renamed to `postgres.log.1` at start once it grows beyond this.
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
/// How long a fast shutdown may take before we escalate to SIGQUIT.
const FAST_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long each of SIGQUIT and SIGKILL gets before we give up.
const ESCALATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// KeyInfra's data directory (`--data-dir` / `KEYINFRA_DATA_DIR`). The cluster lives in
    /// `<data_dir>/postgres`, its socket in `<data_dir>/run` and its log in
    /// `<data_dir>/postgres.log`. Created if missing.
    pub data_dir: PathBuf,
    /// The PostgreSQL installation to use.
    pub binaries: PgBinaries,
    /// The OS account to run PostgreSQL as when we are root; `None` means `postgres`.
    /// Ignored when not running as root (PostgreSQL then runs as the current user).
    pub os_user: Option<String>,
    /// The database superuser `initdb` creates, e.g. `keyinfra`. Only used when the
    /// cluster is initialised and in [`EmbeddedCluster::database_url`].
    pub superuser: String,
    /// How long to wait for the server to accept connections (crash recovery after an
    /// unclean shutdown can take a while).
    pub startup_timeout: Duration,
    /// Trade durability for speed (`initdb --no-sync`, `fsync=off`,
    /// `synchronous_commit=off`, `full_page_writes=off`). Only for throwaway test clusters:
    /// a power loss can corrupt such a cluster.
    pub ephemeral: bool,
}

impl ClusterSettings {
    /// Settings with the defaults: run as `postgres` when root, superuser `keyinfra`,
    /// 60 s startup timeout, durable.
    pub fn new(data_dir: impl Into<PathBuf>, binaries: PgBinaries) -> Self {
        Self {
            data_dir: data_dir.into(),
            binaries,
            os_user: None,
            superuser: "keyinfra".to_owned(),
            startup_timeout: Duration::from_secs(60),
            ephemeral: false,
        }
    }
}

/// A running PostgreSQL server that listens only on a unix socket in a private directory.
///
/// Stopping it (explicitly with [`stop`](Self::stop) or on drop) performs a fast shutdown.
/// If our process dies without stopping it, even by SIGKILL, the kernel sends the
/// postmaster SIGINT, which is also a fast shutdown.
#[derive(Debug)]
pub struct EmbeddedCluster {
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    superuser: String,
    postmaster: Supervisor,
    stopped: bool,
}

/// The paths a cluster uses inside KeyInfra's data directory.
struct Layout {
    data_dir: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
}

impl EmbeddedCluster {
    /// Initialises the cluster if `<data_dir>/postgres` has no `PG_VERSION`, starts the
    /// postmaster as a child process, and returns once it accepts connections.
    ///
    /// # Errors
    ///
    /// Any [`EmbeddedPgError`] except the binaries-related ones; each names the setting to
    /// change, and failures of PostgreSQL itself quote the end of its output.
    pub fn start(settings: ClusterSettings) -> Result<Self, EmbeddedPgError> {
        let run_as = RunAs::resolve(settings.os_user.as_deref())?;
        let layout = prepare_directories(&settings.data_dir, &run_as)?;
        if !layout.pgdata.join("PG_VERSION").exists() {
            initdb(&settings, &layout, &run_as)?;
        }
        let (log, log_start) = open_log(&layout.log_file)?;
        let command = postgres_command(&settings, &layout, &run_as, &log)?;
        drop(log);

        let program = settings.binaries.program("postgres");
        let postmaster =
            Supervisor::spawn("postgres-supervisor", command).map_err(|e| match e {
                SpawnError::Thread(source) => EmbeddedPgError::Thread(source),
                SpawnError::Spawn(source) => EmbeddedPgError::Spawn { program, source },
            })?;
        tracing::debug!(pid = postmaster.pid().as_raw(), "postmaster spawned");

        let mut cluster = Self {
            pgdata: layout.pgdata,
            socket_dir: layout.socket_dir,
            log_file: layout.log_file,
            superuser: settings.superuser,
            postmaster,
            stopped: false,
        };
        cluster.wait_until_ready(settings.startup_timeout, log_start)?;
        tracing::info!(socket_dir = %cluster.socket_dir.display(), "PostgreSQL is ready");
        Ok(cluster)
    }

    /// The directory holding the server's unix socket (`<data_dir>/run`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The port number; it only names the socket file `.s.PGSQL.<port>`. Always 5432.
    pub fn port(&self) -> u16 {
        PORT
    }

    /// The cluster directory (`<data_dir>/postgres`, PostgreSQL's `PGDATA`).
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// The file the server's output goes to (`<data_dir>/postgres.log`).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The database superuser name.
    pub fn superuser(&self) -> &str {
        &self.superuser
    }

    /// The postmaster's PID while it runs, `None` once it has exited.
    pub fn pid(&self) -> Option<u32> {
        let pid = u32::try_from(self.postmaster.pid().as_raw()).ok()?;
        self.postmaster.exit().is_none().then_some(pid)
    }

    /// A connection URL for `database` that sqlx's `PgConnectOptions` (and libpq) parse,
    /// e.g. `postgres://keyinfra@localhost/keyinfra?host=/var/lib/keyinfra/run&port=5432`.
    /// It contains no password: the socket directory is private to the server's OS user
    /// and root.
    pub fn database_url(&self, database: &str) -> String {
        format!(
            "postgres://{}@localhost/{}?host={}&port={PORT}",
            percent_encode(self.superuser.as_bytes(), false),
            percent_encode(database.as_bytes(), false),
            percent_encode(self.socket_dir.as_os_str().as_bytes(), true),
        )
    }

    /// Shuts the server down: SIGINT (fast shutdown: roll back open transactions, write a
    /// checkpoint), then after 60 s SIGQUIT (immediate shutdown, crash recovery on next
    /// start), then after 30 s SIGKILL. Returns once the postmaster has exited. Calling it
    /// again does nothing.
    ///
    /// # Errors
    ///
    /// [`EmbeddedPgError::StopFailed`] if the postmaster cannot be signalled or survives
    /// SIGKILL.
    pub fn stop(&mut self) -> Result<(), EmbeddedPgError> {
        if self.stopped {
            return Ok(());
        }
        let pid = self.postmaster.pid().as_raw();
        if self.postmaster.exit().is_none() {
            tracing::info!(pid, "stopping PostgreSQL");
        }
        let steps = [
            (Signal::SIGINT, FAST_SHUTDOWN_TIMEOUT),
            (Signal::SIGQUIT, ESCALATION_TIMEOUT),
            (Signal::SIGKILL, ESCALATION_TIMEOUT),
        ];
        let mut exit = None;
        for (signal, timeout) in steps {
            self.postmaster
                .signal(signal)
                .map_err(|errno| EmbeddedPgError::StopFailed {
                    pid,
                    reason: format!("sending {signal} failed: {errno}"),
                })?;
            exit = self.postmaster.wait_exit(timeout);
            if exit.is_some() {
                break;
            }
            tracing::warn!(pid, %signal, ?timeout, "PostgreSQL did not shut down in time");
        }
        let Some(exit) = exit else {
            return Err(EmbeddedPgError::StopFailed {
                pid,
                reason: "it survived SIGINT, SIGQUIT and SIGKILL".to_owned(),
            });
        };
        self.postmaster.join();
        self.stopped = true;
        tracing::info!(pid, %exit, "PostgreSQL stopped");
        Ok(())
    }

    fn wait_until_ready(
        &mut self,
        timeout: Duration,
        log_start: u64,
    ) -> Result<(), EmbeddedPgError> {
        let socket = self.socket_dir.join(format!(".s.PGSQL.{PORT}"));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.postmaster.exit() {
                self.stopped = true;
                self.postmaster.join();
                return Err(self.early_exit_error(status, log_start));
            }
            // The socket alone proves nothing: it may belong to another postmaster that
            // ours is about to lose the data-directory lock to.
            if self.pid_file_says_ready()
                && socket.exists()
                && probe::accepting(&socket, &self.superuser)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // Stop first so that the log tail includes the shutdown messages too.
                if let Err(error) = self.stop() {
                    tracing::warn!(%error, "could not stop PostgreSQL after startup timeout");
                }
                return Err(EmbeddedPgError::StartTimeout {
                    pgdata: self.pgdata.clone(),
                    timeout,
                    log: self.log_file.clone(),
                    tail: log_tail(&self.log_file, log_start),
                });
            }
            // Sleeps, but wakes up as soon as the postmaster exits.
            self.postmaster.wait_exit(Duration::from_millis(50));
        }
    }

    /// Whether `postmaster.pid` names our child and reports it ready, as `pg_ctl` checks.
    fn pid_file_says_ready(&self) -> bool {
        let Ok(text) = fs::read_to_string(self.pgdata.join("postmaster.pid")) else {
            return false;
        };
        let mut lines = text.lines();
        let ours = lines.next().and_then(|l| l.trim().parse::<i32>().ok())
            == Some(self.postmaster.pid().as_raw());
        // Line 8 is the postmaster status (PostgreSQL 10 and later).
        ours && lines.nth(6).is_some_and(|status| status.trim() == "ready")
    }

    fn early_exit_error(&self, status: String, log_start: u64) -> EmbeddedPgError {
        // PostgreSQL itself decides whether a postmaster.pid is stale; we only look at it
        // afterwards to explain a refusal better than the log line does.
        if let Some(pid) = live_postmaster(&self.pgdata)
            && pid != self.postmaster.pid()
        {
            return EmbeddedPgError::InUse {
                pgdata: self.pgdata.clone(),
                pid: pid.as_raw(),
            };
        }
        EmbeddedPgError::StartFailed {
            pgdata: self.pgdata.clone(),
            status,
            log: self.log_file.clone(),
            tail: log_tail(&self.log_file, log_start),
        }
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "could not stop PostgreSQL");
        }
    }
}

fn data_dir_error(path: &Path) -> impl FnOnce(io::Error) -> EmbeddedPgError + '_ {
    move |source| EmbeddedPgError::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the data directory and the two directories PostgreSQL owns inside it, and hands
/// those to the OS account it runs as.
fn prepare_directories(data_dir: &Path, run_as: &RunAs) -> Result<Layout, EmbeddedPgError> {
    // When root, the unprivileged account must be able to pass through the data directory
    // (search only, not list). Existing directories keep their mode; see check_reachable.
    let mode = if run_as.switches() { 0o711 } else { 0o700 };
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(data_dir)
        .map_err(data_dir_error(data_dir))?;
    // Absolute and symlink-free: the socket path goes into URLs and the reachability check
    // must look at the directories actually traversed.
    let data_dir = data_dir.canonicalize().map_err(data_dir_error(data_dir))?;
    let layout = Layout {
        pgdata: data_dir.join("postgres"),
        socket_dir: data_dir.join("run"),
        log_file: data_dir.join("postgres.log"),
        data_dir,
    };
    let socket = layout.socket_dir.join(format!(".s.PGSQL.{PORT}"));
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(EmbeddedPgError::SocketPathTooLong {
            path: socket,
            max: MAX_SOCKET_PATH,
        });
    }
    run_as.check_reachable(&layout.data_dir, &layout.pgdata)?;

    // PostgreSQL insists on 0700 (or 0750) for its data directory. Once initialised it
    // is PostgreSQL's business; before that (first run, or initdb was interrupted) we set
    // owner and mode so that initdb, running unprivileged, can use it.
    let created = create_private_dir(&layout.pgdata)?;
    if created || !layout.pgdata.join("PG_VERSION").exists() {
        make_private(&layout.pgdata, run_as)?;
    }
    // trust authentication is only safe because nobody but the server's account (and
    // root) can enter the socket directory, so enforce that on every start.
    create_private_dir(&layout.socket_dir)?;
    make_private(&layout.socket_dir, run_as)?;
    Ok(layout)
}

/// Creates `dir` with mode 0700; returns whether it was newly created.
fn create_private_dir(dir: &Path) -> Result<bool, EmbeddedPgError> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(error) => Err(data_dir_error(dir)(error)),
    }
}

fn make_private(dir: &Path, run_as: &RunAs) -> Result<(), EmbeddedPgError> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(data_dir_error(dir))?;
    run_as.give(dir)
}

/// Environment for PostgreSQL programs: nothing of ours (DATABASE_URL, secrets, PG* client
/// variables) leaks into them, and output is untranslated so errors quote consistently.
fn base_command(program: PathBuf, layout: &Layout, run_as: &RunAs) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("PATH", "/usr/bin:/bin");
    if let Some(tz) = std::env::var_os("TZ") {
        command.env("TZ", tz);
    }
    // The programs resolve their own path via the working directory, which must be
    // readable by the account they run as (root's cwd often is not).
    command.current_dir(&layout.pgdata).stdin(Stdio::null());
    if let RunAs::Switch { uid, gid, .. } = run_as {
        // std also drops supplementary groups when switching from root.
        command.uid(uid.as_raw()).gid(gid.as_raw());
    }
    command
}

fn initdb(
    settings: &ClusterSettings,
    layout: &Layout,
    run_as: &RunAs,
) -> Result<(), EmbeddedPgError> {
    tracing::info!(
        "initialising PostgreSQL cluster in {}",
        layout.pgdata.display()
    );
    let program = settings.binaries.program("initdb");
    let mut command = base_command(program.clone(), layout, run_as);
    command
        .arg("-D")
        .arg(&layout.pgdata)
        .arg("-U")
        .arg(&settings.superuser)
        // trust is safe here: the server has no TCP listener and its socket directory is
        // 0700, so only its own OS account and root can connect at all.
        .arg("--auth=trust")
        .args(["-E", "UTF8", "--locale=C.UTF-8"]);
    if settings.ephemeral {
        command.arg("--no-sync");
    }
    // initdb removes what it created when terminated, so a killed KeyInfra does not leave
    // a half-initialised directory behind.
    die_with_parent(&mut command, Signal::SIGTERM);
    let output = command
        .output()
        .map_err(|source| EmbeddedPgError::Spawn { program, source })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(EmbeddedPgError::InitdbFailed {
        pgdata: layout.pgdata.clone(),
        status: output.status.to_string(),
        output: last_lines(&text),
    })
}

/// Opens the server log for appending; returns it and its length before this start.
fn open_log(path: &Path) -> Result<(File, u64), EmbeddedPgError> {
    if fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        fs::rename(path, old).map_err(data_dir_error(path))?;
    }
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        // Server messages can quote SQL, which is nobody else's business.
        .mode(0o600)
        .open(path)
        .map_err(data_dir_error(path))?;
    let start = log.metadata().map_err(data_dir_error(path))?.len();
    Ok((log, start))
}

fn postgres_command(
    settings: &ClusterSettings,
    layout: &Layout,
    run_as: &RunAs,
    log: &File,
) -> Result<Command, EmbeddedPgError> {
    let mut command = base_command(settings.binaries.program("postgres"), layout, run_as);
    command
        .arg("-D")
        .arg(&layout.pgdata)
        .arg("-k")
        .arg(&layout.socket_dir);
    command.arg("-p").arg(PORT.to_string());
    // Command-line settings beat postgresql.conf and ALTER SYSTEM, so no configuration
    // change inside the database can open a TCP port or loosen the socket.
    let mut options = vec![
        "listen_addresses=",
        "unix_socket_permissions=0700",
        "max_connections=100",
        "shared_buffers=128MB",
        // Errors must reach our log file so that startup failures can be quoted.
        "logging_collector=off",
        "log_destination=stderr",
    ];
    if settings.ephemeral {
        options.extend([
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ]);
    }
    for option in options {
        command.arg("-c").arg(option);
    }
    let stdout = log.try_clone().map_err(data_dir_error(&layout.log_file))?;
    let stderr = log.try_clone().map_err(data_dir_error(&layout.log_file))?;
    command.stdout(stdout).stderr(stderr);
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and
    // PostgreSQL must not begin shutting down while we still drain requests; we stop it
    // ourselves, last.
    command.process_group(0);
    // SIGINT is PostgreSQL's fast shutdown: clean, and quick enough for a dying parent.
    die_with_parent(&mut command, Signal::SIGINT);
    Ok(command)
}

/// The PID in `postmaster.pid`, if that process is alive.
fn live_postmaster(pgdata: &Path) -> Option<Pid> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let pid = Pid::from_raw(text.lines().next()?.trim().parse().ok()?);
    match kill(pid, None) {
        Ok(()) | Err(Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}

/// The last lines the server wrote since `start`, or a note why they are unavailable.
fn log_tail(path: &Path, start: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        // Only the end matters; cap what we read from a chatty server.
        let from = start.max(len.saturating_sub(64 * 1024));
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) if text.trim().is_empty() => "(the log is empty)".to_owned(),
        Ok(text) => last_lines(&text),
        Err(error) => format!("(could not read the log: {error})"),
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` if asked), so
/// that paths with spaces, `&`, `+` or `#` survive URL parsing and query decoding.
fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && byte == b'/')
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(percent_encode(b"/tmp/a b&c+d", true), "/tmp/a%20b%26c%2Bd");
        assert_eq!(percent_encode(b"my/db", false), "my%2Fdb");
        assert_eq!(
            percent_encode(b"keyinfra_test-1.x~", false),
            "keyinfra_test-1.x~"
        );
    }

    #[test]
    fn last_lines_keeps_the_end() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = last_lines(&text);
        assert!(tail.starts_with("line 70\n"));
        assert!(tail.ends_with("line 99"));
    }
}
