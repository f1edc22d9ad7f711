//! ACME on the wire (RFC 8555, with RFC 8737 tls-alpn-01, RFC 8738 IP identifiers and
//! RFC 9773 renewal information). Pure functions; nonces, accounts, orders, the validation
//! connections and the HTTP endpoints live elsewhere.
//!
//! * [`jws`]: request bodies (flattened JWS) read and verified, JWKs and their thumbprints,
//!   external account bindings.
//! * [`keyauth`]: key authorizations and what each challenge checks against them (http-01
//!   body, dns-01 TXT value, tls-alpn-01 certificate), reverse names for IP identifiers,
//!   challenge tokens, and renewal information certificate IDs.
//! * [`wire`]: problem types and identifiers.

pub mod jws;
pub mod keyauth;
pub mod wire;

pub use jws::{
    EcCurve, ExternalAccountBinding, Jwk, Jws, JwsError, KeyReference, MAX_JWS_BYTES, MacAlgorithm,
    ProtectedHeader, SUPPORTED_ALGORITHMS, SignatureAlgorithm,
};
pub use keyauth::{
    ACME_TLS_ALPN_PROTOCOL, CertId, CertIdError, TlsAlpnError, check_tls_alpn01_certificate,
    dns01_record_matches, dns01_record_name, dns01_txt_value, http01_body_matches, is_token,
    key_authorization, reverse_dns_name, token_text,
};
pub use wire::{Identifier, IdentifierError, PROBLEM_URN_PREFIX, ProblemType};
