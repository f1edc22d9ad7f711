//! ACME (RFC 8555, issue 21): the use cases behind `/acme/`. The wire format (JWS, key
//! authorizations, problem types) is `keyinfra_pki::acme`. So far: [`nonce`], replay nonces
//! that any replica issues and checks, each spent once; and [`eab`], the external account
//! binding keys that make an ACME account a KeyInfra user's; [`service`], request
//! verification and the account resources.

pub mod eab;
pub mod nonce;
pub mod service;

pub use eab::{CreatedEabKey, EabKeys};
pub use nonce::{AcmeNonces, NONCE_LIFETIME};
pub use service::{AcmeError, AcmeService, AcmeSettings, KeyRule, Verified};
