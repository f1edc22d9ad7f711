//! The HTTP surface against a real PostgreSQL: in process for the health checks, over real
//! HTTP on a loopback port for the API.

// Tests fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod acme;
mod acme_issuance;
mod api;
mod auth;
mod certificates;
mod crl;
mod enrollment;
mod est;
mod faults;
mod group_commit;
mod hardening;
mod health;
mod keys_at_rest;
mod ocsp;
mod openssl;
mod operations;
mod pkilint;
mod policies;
mod scep;
mod strict_input;
mod support;
mod ui;
mod users;
