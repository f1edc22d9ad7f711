//! Issuance policies (issue 17): who may get which names, from which CA, with which
//! profile, key and validity, and how many. A policy is data an ADMIN manages
//! ([`Policies`]); every user holds one (the `default` policy unless moved); the issuer
//! checks every request against it ([`CompiledPolicy::check`]) before any key is made or
//! anything is signed, whichever channel the request came through.
//!
//! - [`names`]: DNS patterns, IP ranges, e-mail domains and URIs, the public-suffix
//!   wildcard refusal and the server's reserved names;
//! - [`subject`]: which subject attributes may appear, and fixed values;
//! - `model`: the policy as the API shows it, its validation and compiled form;
//! - `enforce`: one request against one compiled policy (pure);
//! - `store`: management, assignment, and the per-replica cache the issuer reads.

pub mod names;
pub mod subject;

mod enforce;
mod model;
mod store;

pub use enforce::Candidate;
pub use keyinfra_db::policies::DEFAULT_POLICY_ID;
pub use model::{CompiledPolicy, DEFAULT_POLICY_NAME, Policy, PolicyChanges};
pub use store::Policies;
