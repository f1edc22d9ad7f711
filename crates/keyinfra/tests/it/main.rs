//! The `keyinfra` binary, run as a user runs it.

// Tests fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod acme;
mod backup;
mod bad_config;
mod ca;
mod edge;
mod embedded;
mod hardening;
mod logs;
mod migrate;
mod name_constraints;
mod policies;
mod support;
mod tls;
mod users;
