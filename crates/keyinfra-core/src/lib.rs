//! KeyInfra's use cases: the rules, and the transactions that span repositories.
//!
//! The HTTP server and the CLI both call into this crate, so that there is one
//! implementation of every rule. Time and randomness come in as parameters ([`Clock`],
//! [`keyinfra_pki::RandomSource`]) so that tests control them.

mod clock;
mod error;
mod error_code;
mod gate;
mod group_commit;
mod keys;
mod random;

pub mod acme;
pub mod alerts;
pub mod auth;
pub mod authority;
pub mod backup;
pub mod ca_registry;
pub mod ca_setup;
pub mod certificates;
pub mod crl;
pub mod dashboard;
pub mod enrollment;
pub mod est;
pub mod export;
pub mod issuer;
pub mod issuing_ca;
pub mod jobs;
pub mod ocsp;
pub mod policy;
pub mod principal;
pub mod queries;
pub mod rate;
pub mod reassign;
pub mod renewal;
pub mod retry;
pub mod revocation;
pub mod rotation;
pub mod scep;
pub mod users;

pub use clock::{AdjustableClock, Clock, FixedClock, SystemClock};
pub use error::CoreError;
pub use error_code::ErrorCode;
pub use gate::WorkGate;
pub use principal::{EnrollmentChannel, Principal};
pub use random::OsRandom;
