//! KeyInfra's storage layer: the only crate that talks SQL.
//!
//! * [`migrations`]: the reversible schema migrations (`migrations/NNNN_name.{up,down}.sql`)
//!   and the `migrate up|down|status` operations.
//! * [`Database`]: the application's connection pool. Every pooled connection runs as the
//!   `keyinfra_app` role, so row-level security applies even when the configured URL names a
//!   superuser, and every unit of work is a [`Tx`] that carries the caller's [`Actor`].
//! * [`backup`]: the consistent snapshot and the restore behind `keyinfra backup`.
//! * Repositories ([`users`], [`authorities`], [`private_keys`], [`certificates`],
//!   [`revocations`], [`crls`], [`audit`], [`partitions`], [`stats`],
//!   [`enrollment_challenges`]) are plain async functions taking a
//!   `&mut Tx`, so the caller decides what one transaction spans.
//! * [`DbError`] classifies every failure into something the layers above can answer with.

mod error;
mod pool;
mod session;
mod types;
mod warm;

pub mod acme;
pub mod alerts;
pub mod audit;
pub mod authorities;
pub mod backup;
pub mod certificates;
pub mod crls;
pub mod enrollment_challenges;
pub mod enrollment_requests;
pub mod jobs;
pub mod migrations;
pub mod ocsp;
pub mod partitions;
pub mod policies;
pub mod private_keys;
pub mod revocations;
pub mod scep;
pub mod stats;
pub mod users;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{DbError, UnavailableReason};
pub use pool::{
    Database, LoginRole, Maintenance, PoolSettings, PoolUsage, create_database_if_missing,
    describe_url,
};
pub use session::{Actor, Tx, epoch_from_micros, epoch_micros};
pub use types::{AlertChannel, AlertStatus, CertificateStatus, KeyAlgorithm, UserRole};
