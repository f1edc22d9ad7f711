//! A private PostgreSQL server for KeyInfra's zero-configuration default and its tests.
//!
//! When `DATABASE_URL` is not set, `keyinfra serve` runs its own PostgreSQL cluster inside
//! its data directory:
//!
//! ```text
//! <data dir>/postgres       the cluster (PGDATA), created by initdb on first start
//! <data dir>/run            the unix socket directory, mode 0700
//! <data dir>/postgres.log   the server's output
//! ```
//!
//! The server listens on the unix socket only (no TCP), and the database superuser uses
//! `trust` authentication, which is safe because only the server's OS account and root can
//! enter the socket directory. When KeyInfra runs as root, PostgreSQL (which refuses to run
//! as root) runs as the `postgres` account instead.
//!
//! The postmaster is a child process of ours, never daemonised: it shuts down when
//! [`EmbeddedCluster`] is stopped or dropped, and the kernel shuts it down when our process
//! dies, even by SIGKILL.
//!
//! Everything here blocks; async callers use `spawn_blocking`.
//!
//! ```no_run
//! use keyinfra_embedded_pg::{ClusterSettings, EmbeddedCluster, PgBinaries};
//!
//! # fn main() -> Result<(), keyinfra_embedded_pg::EmbeddedPgError> {
//! let binaries = PgBinaries::locate(None)?;
//! let mut cluster = EmbeddedCluster::start(ClusterSettings::new("/var/lib/keyinfra", binaries))?;
//! let url = cluster.database_url("postgres");
//! # let _ = url;
//! cluster.stop()?;
//! # Ok(())
//! # }
//! ```
//!
//! Tests use [`shared_throwaway_cluster`] instead.

mod binaries;
mod cluster;
mod error;
mod os_user;
mod probe;
mod supervisor;
mod throwaway;

pub use binaries::PgBinaries;
pub use cluster::{ClusterSettings, EmbeddedCluster};
pub use error::EmbeddedPgError;
pub use throwaway::{shared_throwaway_cluster, throwaway_root};
