//! ACME (RFC 8555, issue 21): the use cases behind `/acme/`. The wire format (JWS, key
//! authorizations, problem types) is `keyinfra_pki::acme`.
//!
//! * [`nonce`]: replay nonces that any replica issues and checks, each spent once;
//! * [`eab`]: the external account binding keys that make an ACME account a KeyInfra
//!   user's;
//! * [`service`]: request verification, accounts, orders, authorizations, challenges,
//!   finalization through the one issuer, certificate download and revocation;
//! * [`validation`]: the background validator of http-01 and tls-alpn-01 challenges.

pub mod eab;
pub mod lifecycle;
pub mod nonce;
pub mod renewal_info;
pub mod service;
pub mod validation;

pub use eab::{CreatedEabKey, EabKeys};
pub use nonce::{AcmeNonces, NONCE_LIFETIME};
pub use service::{AcmeError, AcmeService, AcmeSettings, KeyRule, Verified};
pub use validation::{AcmeValidator, ValidationSettings};
