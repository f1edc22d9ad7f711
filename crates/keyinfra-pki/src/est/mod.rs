//! EST on the wire (RFC 7030, RFC 8951): bodies in, bodies out. Pure functions; the HTTP
//! endpoints, the credentials and the issuance live elsewhere.
//!
//! * [`body`]: request bodies decoded (base64 one-line or wrapped, PEM, raw DER) and
//!   answers encoded as one line of base64.
//! * [`csrattrs`]: the CSR attributes answer (key algorithms, challengePassword).
//! * [`multipart`]: the server-side key generation answer (key and certificate).
//! * [`binding`]: channel bindings (tls-exporter, tls-unique) in a CSR's challengePassword.

pub mod binding;
pub mod body;
pub mod csrattrs;
pub mod multipart;

pub use binding::{ChannelBinding, classify_challenge_password, exporter_matches};
pub use body::{EstBodyError, MAX_EST_BODY_BYTES, decode_base64_body, encode_one_line};
pub use csrattrs::{AttrOrOid, CsrAttr, encode_csr_attrs};
pub use multipart::server_keygen_body;
