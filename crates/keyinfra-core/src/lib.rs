//! KeyInfra's use cases: the rules, and the transactions that span repositories.
//!
//! The HTTP server and the CLI both call into this crate, so that there is one
//! implementation of every rule. Time and randomness come in as parameters ([`Clock`],
//! [`keyinfra_pki::RandomSource`]) so that tests control them.

mod clock;
mod error;
mod gate;
mod group_commit;
mod random;

pub mod alerts;
pub mod auth;
pub mod authority;
pub mod backup;
pub mod certificates;
pub mod crl;
pub mod jobs;
pub mod lifecycle;
pub mod policy;
pub mod rate;
pub mod requester;
pub mod retry;
pub mod rotation;
pub mod users;

pub use clock::{AdjustableClock, Clock, FixedClock, SystemClock};
pub use error::CoreError;
pub use gate::WorkGate;
pub use random::OsRandom;
pub use requester::Requester;
