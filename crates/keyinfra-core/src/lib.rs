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
mod random;

pub mod alerts;
pub mod auth;
pub mod authority;
pub mod backup;
pub mod ca_setup;
pub mod certificates;
pub mod crl;
pub mod dashboard;
pub mod export;
pub mod issuer;
pub mod issuing_ca;
pub mod jobs;
pub mod policy;
pub mod principal;
pub mod queries;
pub mod rate;
pub mod reassign;
pub mod renewal;
pub mod retry;
pub mod revocation;
pub mod rotation;
pub mod users;

pub use clock::{AdjustableClock, Clock, FixedClock, SystemClock};
pub use error::CoreError;
pub use error_code::ErrorCode;
pub use gate::WorkGate;
/// The former name of [`Principal`], while callers move to it.
pub use principal::Principal as Requester;
pub use principal::{EnrollmentChannel, Principal};
pub use random::OsRandom;

/// The lifecycle's request types under their former paths, while callers move to the
/// use-case modules.
pub mod lifecycle {
    pub use crate::issuer::{IssueRequest, KeySource};
    pub use crate::renewal::RenewRequest;
    pub use crate::revocation::parse_reason;
}
