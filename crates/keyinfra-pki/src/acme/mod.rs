//! ACME on the wire (RFC 8555, with RFC 8737 tls-alpn-01, RFC 8738 IP identifiers and
//! RFC 9773 renewal information). Pure functions; nonces, accounts, orders, the validation
//! connections and the HTTP endpoints live elsewhere.
//!
//! * [`jws`]: request bodies (flattened JWS) read and verified, JWKs and their thumbprints,
//!   external account bindings.
//! * [`wire`]: problem types and identifiers.

pub mod jws;
pub mod wire;

pub use jws::{
    EcCurve, ExternalAccountBinding, Jwk, Jws, JwsError, KeyReference, MAX_JWS_BYTES, MacAlgorithm,
    ProtectedHeader, SUPPORTED_ALGORITHMS, SignatureAlgorithm,
};
pub use wire::{Identifier, IdentifierError, PROBLEM_URN_PREFIX, ProblemType};
