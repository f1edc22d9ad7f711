//! The HTTP surface, in process, against a real PostgreSQL.

mod health;
