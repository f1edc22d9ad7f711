//! The HTTP surface, in process, against a real PostgreSQL.

// Tests fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod health;
