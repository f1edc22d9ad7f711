//! Integration tests of the schema and the storage crate against a real PostgreSQL.
//! One test binary for the crate (faster to link); each test gets its own database.

// Tests fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod acme;
mod audit;
mod batches;
mod fixtures;
mod ids;
mod integrity;
mod migrations;
mod partitions;
mod pool;
mod rls;
mod serials;
mod stats;
mod vocabularies;
