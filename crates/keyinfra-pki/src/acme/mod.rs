//! ACME on the wire (RFC 8555, with RFC 8737 tls-alpn-01, RFC 8738 IP identifiers and
//! RFC 9773 renewal information). Pure functions; nonces, accounts, orders, the validation
//! connections and the HTTP endpoints live elsewhere.
//!
//! * [`wire`]: problem types and identifiers.

pub mod wire;

pub use wire::{Identifier, IdentifierError, PROBLEM_URN_PREFIX, ProblemType};
