//! The single error type of this crate.
//!
//! Every message is one sentence that tells the operator what went wrong and which setting
//! (`--data-dir` / `KEYINFRA_DATA_DIR`, `KEYINFRA_PG_BINDIR`, `DATABASE_URL`) to change.
//! Where PostgreSQL itself explains the failure better than we can, the tail of its output
//! is appended after the sentence.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why an embedded PostgreSQL cluster could not be located, started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedPgError {
    /// None of the places we search holds `initdb` and `postgres`.
    #[error(
        "no PostgreSQL server binaries found (looked in KEYINFRA_PG_BINDIR, `pg_config --bindir`, \
         /usr/lib/postgresql/*/bin and PATH); install Debian's `postgresql` package, \
         set KEYINFRA_PG_BINDIR, or set DATABASE_URL to use an existing server"
    )]
    BinariesNotFound,

    /// `KEYINFRA_PG_BINDIR` was given but lacks `initdb` or `postgres`.
    #[error(
        "KEYINFRA_PG_BINDIR={} does not contain initdb and postgres; point it at the directory \
         `pg_config --bindir` prints, unset it, or set DATABASE_URL to use an existing server",
        path.display()
    )]
    BindirIncomplete {
        /// The directory that was given.
        path: PathBuf,
    },

    /// The data directory (or a directory we create inside it) cannot be created or written.
    #[error(
        "the data directory {} cannot be created or written (--data-dir / KEYINFRA_DATA_DIR): {source}",
        path.display()
    )]
    DataDir {
        /// The directory or file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// Running as root, but the OS user PostgreSQL should run as does not exist.
    #[error(
        "the OS user `{user}` does not exist, and PostgreSQL refuses to run as root; create that \
         user (Debian's `postgresql` package does), run KeyInfra as a non-root user, or set \
         DATABASE_URL to use an existing server"
    )]
    OsUserMissing {
        /// The user name that was looked up.
        user: String,
    },

    /// The user database could not be queried at all.
    #[error("could not look up the OS user `{user}`: {source}")]
    OsUserLookup {
        /// The user name that was looked up.
        user: String,
        /// The underlying error.
        source: nix::Error,
    },

    /// Running as root, and the unprivileged OS user cannot reach the cluster directory.
    #[error(
        "the PostgreSQL data directory {} is not reachable by the OS user `{user}` (a parent \
         directory, {}, is not searchable by it); choose another --data-dir / KEYINFRA_DATA_DIR \
         or run `chmod o+x {}`",
        pgdata.display(),
        blocking.display(),
        blocking.display()
    )]
    NotReachable {
        /// The cluster directory (`<data dir>/postgres`).
        pgdata: PathBuf,
        /// The OS user PostgreSQL runs as.
        user: String,
        /// The first directory on the path that the user cannot search.
        blocking: PathBuf,
    },

    /// Handing a directory over to the unprivileged OS user failed.
    #[error(
        "could not give {} to the OS user `{user}` (--data-dir / KEYINFRA_DATA_DIR): {source}",
        path.display()
    )]
    Chown {
        /// The directory that could not be chowned.
        path: PathBuf,
        /// The OS user PostgreSQL runs as.
        user: String,
        /// The underlying error.
        source: nix::Error,
    },

    /// Unix socket paths are limited to 107 bytes on Linux.
    #[error(
        "the PostgreSQL socket path {} is longer than the {max} bytes the OS allows; choose a \
         shorter --data-dir / KEYINFRA_DATA_DIR",
        path.display()
    )]
    SocketPathTooLong {
        /// The socket file path that would be used.
        path: PathBuf,
        /// The limit.
        max: usize,
    },

    /// A PostgreSQL program could not be executed at all.
    #[error(
        "could not run {} (KEYINFRA_PG_BINDIR selects the PostgreSQL installation): {source}",
        program.display()
    )]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The underlying I/O error.
        source: io::Error,
    },

    /// `initdb` exited unsuccessfully.
    #[error(
        "initdb could not create the PostgreSQL cluster in {} ({status}; --data-dir / \
         KEYINFRA_DATA_DIR); its output ends with:\n{output}",
        pgdata.display()
    )]
    InitdbFailed {
        /// The cluster directory.
        pgdata: PathBuf,
        /// How initdb exited.
        status: String,
        /// The last lines of its stdout and stderr.
        output: String,
    },

    /// The postmaster exited before accepting connections.
    #[error(
        "PostgreSQL exited during startup ({status}; cluster in {}); the last lines of {} are:\n{tail}",
        pgdata.display(),
        log.display()
    )]
    StartFailed {
        /// The cluster directory.
        pgdata: PathBuf,
        /// How the postmaster exited.
        status: String,
        /// The server log file.
        log: PathBuf,
        /// The last lines the server wrote during this start.
        tail: String,
    },

    /// Another live postmaster owns the cluster directory.
    #[error(
        "the PostgreSQL data directory {} is already used by a running postmaster (PID {pid}); \
         stop that server or choose another --data-dir / KEYINFRA_DATA_DIR",
        pgdata.display()
    )]
    InUse {
        /// The cluster directory.
        pgdata: PathBuf,
        /// The PID recorded in its `postmaster.pid`.
        pid: i32,
    },

    /// The postmaster did not accept connections in time; it has been stopped again.
    #[error(
        "PostgreSQL did not accept connections within {} (cluster in {}); the last lines of {} are:\n{tail}",
        humanize(*timeout),
        pgdata.display(),
        log.display()
    )]
    StartTimeout {
        /// The cluster directory.
        pgdata: PathBuf,
        /// The configured startup timeout.
        timeout: Duration,
        /// The server log file.
        log: PathBuf,
        /// The last lines the server wrote during this start.
        tail: String,
    },

    /// The postmaster ignored SIGINT, SIGQUIT and SIGKILL, or could not be signalled.
    #[error("could not stop PostgreSQL (PID {pid}): {reason}")]
    StopFailed {
        /// The postmaster PID.
        pid: i32,
        /// What went wrong.
        reason: String,
    },

    /// The thread that owns the postmaster could not be created.
    #[error("could not start the thread that supervises PostgreSQL: {0}")]
    Thread(#[source] io::Error),
}

fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}
