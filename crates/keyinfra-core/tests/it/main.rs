//! Use-case tests against a real PostgreSQL.

// Tests fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod acme_accounts;
mod acme_nonces;
mod issuance_policy;
mod name_constraints;
mod serial_retry;
