//! The `keyinfra` binary, run as a user runs it.

mod bad_config;
mod embedded;
mod migrate;
mod support;
