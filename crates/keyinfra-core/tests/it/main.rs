//! Use-case tests against a real PostgreSQL.

mod serial_retry;
