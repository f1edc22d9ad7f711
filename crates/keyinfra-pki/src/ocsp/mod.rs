//! OCSP on the wire (RFC 6960, the RFC 5019 profile, RFC 8954 nonces): requests in, signed
//! responses out. Pure functions; the HTTP endpoint and the status look-up live elsewhere.
//!
//! * [`request`]: [`parse_request`] reads an `OCSPRequest` with bounded size and CertID count.
//! * [`cert_id`]: [`CertId`] and the [`IssuerHashes`] a CertID is matched against.
//! * [`response`]: [`OcspResponder`] signs `BasicOCSPResponse`s; [`error_response`] writes the
//!   unsigned error answers.
//! * [`responder_cert`]: [`CaSigner::issue_ocsp_responder`](crate::ca::CaSigner) issues a
//!   delegated responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck).
//!
//! # Why these types are written here, on `der` 0.8
//!
//! The RFC 6960 structures are a dozen small SEQUENCEs; the choice was which ASN.1 library
//! carries them:
//!
//! * `x509-ocsp` 0.2.1 (the newest release) is built on `der` 0.7 / `x509-cert` 0.2 / `spki`
//!   0.7. It would add that second RustCrypto stack to the build beside the `der` 0.8 /
//!   `x509-cert` 0.3 one that `p12-keystore` already brings, with types that do not mix.
//! * `rasn-ocsp` brings `rasn`, a whole ASN.1 framework with its own codecs and proc macros,
//!   for the same dozen types.
//! * `der` 0.8 (with its `derive` and `oid` features) is already compiled into this crate
//!   through `p12-keystore`, so depending on it directly costs no new crate. Its decoder is
//!   strict DER with bounded nesting, and its derives write the response types as they read
//!   in the RFC.
//!
//! So the request is read with `der`'s reader (by hand only where a derive cannot help:
//! the CertID count limit, and keeping each CertID's exact bytes to echo back), and the
//! response types are `der` derives. Hashes and signatures come from aws-lc-rs and the
//! same [`PrivateKey`](crate::PrivateKey) signing that certificates and CRLs use.
//!
//! # Performance
//!
//! A response without a nonce depends only on the certificate's status and the CertID it
//! answers, so callers can sign it once and serve the bytes until its nextUpdate. With a
//! nonce, [`OcspResponder::sign`] is the only per-request work: the responder ID, the
//! signature algorithm and the `certs` field are encoded once when the responder is made.

pub mod cert_id;
pub mod request;
pub mod responder_cert;
pub mod response;

pub use cert_id::{CertId, CertSerial, HashAlgorithm, IssuerHashes};
pub use request::{
    MAX_NONCE_LEN, Nonce, OcspRequest, OcspRequestError, RequestLimits, parse_request,
};
pub use responder_cert::{ResponderCertSpec, ResponderCertificate};
pub use response::{
    BasicResponse, CertStatus, OcspResponder, OcspResponseStatus, SingleResponse, error_response,
};

use der::asn1::ObjectIdentifier;

/// id-pkix-ocsp-nonce (RFC 8954).
pub const ID_PKIX_OCSP_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-basic: the only response type there is.
pub(crate) const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1), as rcgen wants it.
pub(crate) const ID_PKIX_OCSP_NOCHECK: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
