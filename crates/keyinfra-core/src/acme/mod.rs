//! ACME (RFC 8555, issue 21): the use cases behind `/acme/`. The wire format (JWS, key
//! authorizations, problem types) is `keyinfra_pki::acme`. So far: [`nonce`], replay nonces
//! that any replica issues and checks, each spent once.

pub mod nonce;

pub use nonce::{AcmeNonces, NONCE_LIFETIME};
