//! Integration tests of the schema and the storage crate against a real PostgreSQL.
//! One test binary for the crate (faster to link); each test gets its own database.

mod audit;
mod fixtures;
mod migrations;
mod partitions;
mod pool;
mod rls;
mod serials;
mod stats;
mod integrity;
