//! X.509 and key material for KeyInfra: pure functions, no I/O, no database.
//!
//! * [`keys`]: key generation and PKCS#8; the only place plaintext private keys exist.
//! * [`seal`]: AES-256-GCM sealing of keys at rest under versioned master keys.
//! * [`names`]: distinguished names (RFC 4514) and subject alternative names.
//! * [`profile`]: certificate profiles as data.
//! * [`csr`]: PKCS#10 parsing and signature verification.
//! * [`ca`]: CA creation, leaf signing, CRL signing.
//! * [`revocation`]: the revocation reasons (names, CRL codes, texts), defined once.
//! * [`constraints`]: CA name constraints (RFC 5280 4.2.1.10), checked as OpenSSL does.
//! * [`cms`]: the degenerate certs-only SignedData that SCEP and EST send.
//! * [`pkcs12`]: PKCS#12 export (modern and legacy).
//! * [`ocsp`]: OCSP requests and signed responses (RFC 6960, RFC 5019, RFC 8954 nonces).
//! * [`scep`]: SCEP messages (RFC 8894): requests read and opened, CertReps sealed and signed.
//! * [`est`]: EST messages (RFC 7030): request bodies, CSR attributes, server-side key
//!   generation answers, channel bindings.
//! * [`acme`]: ACME on the wire (RFC 8555): JWS requests, JWKs, external account bindings,
//!   key authorizations and challenge checks, identifiers, problem types, ARI certIDs.
//! * [`tls`]: the server's own TLS key: a CSR for it, rustls signing keys from it or from PEM.
//!
//! Randomness for serials, salts and nonces is an input ([`RandomSource`]) so that tests can
//! control it; key generation uses the crypto library's own CSPRNG.

mod serial;

pub mod acme;
pub mod ca;
pub mod cms;
pub mod constraints;
pub mod crl;
pub mod csr;
pub mod est;
pub mod keys;
pub mod names;
pub mod ocsp;
pub mod pkcs12;
pub mod profile;
pub mod revocation;
pub mod scep;
pub mod seal;
pub mod tls;

pub use keys::{KeyAlgorithm, PrivateKey};
pub use revocation::RevocationReason;
pub use serial::SerialNumber;

use sha2::{Digest, Sha256};

/// Errors of the pki crate. Texts never contain key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkiError {
    #[error("the random number generator failed")]
    RandomSourceFailed,
    #[error("invalid serial number: {0}")]
    InvalidSerialNumber(&'static str),
    #[error("key generation failed")]
    KeyGeneration,
    #[error("the private key is not a valid PKCS#8 key of a supported algorithm")]
    InvalidPrivateKey,
    #[error(
        "the private key is a PEM {0:?} block; convert it to PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`)"
    )]
    UnsupportedKeyEncoding(String),
    #[error(
        "unsupported key algorithm (KeyInfra accepts ECDSA P-256/P-384, Ed25519 and RSA 2048/3072/4096)"
    )]
    UnsupportedKeyAlgorithm,
    #[error("the RSA public exponent must be 65537")]
    UnsupportedRsaExponent,
    #[error("invalid master key: {0}")]
    InvalidMasterKey(&'static str),
    #[error("master key version {0} is not configured")]
    MasterKeyVersionMissing(i32),
    #[error("sealing a private key failed")]
    Sealing,
    #[error("a sealed private key does not open: wrong master key, or the row was altered")]
    Unsealing,
    #[error("{0}")]
    InvalidCsr(String),
    #[error("the CSR's signature does not verify")]
    CsrSignatureInvalid,
    #[error("{0}")]
    InvalidName(String),
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate would outlive its CA")]
    BeyondCaValidity,
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("encoding failed: {0}")]
    Encoding(String),
    #[error(
        "the PIN must have {min} to {} characters, no control characters and no emoji (characters outside the Basic Multilingual Plane)",
        crate::pkcs12::PIN_MAX_CHARS
    )]
    InvalidPin { min: usize },
    #[error("building the PKCS#12 file failed")]
    Pkcs12,
}

/// A cryptographically secure random source.
pub trait RandomSource {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError>;
}

/// SHA-256 of DER bytes: the fingerprint stored beside every certificate.
pub fn sha256_fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// PEM text of a DER certificate.
pub fn certificate_pem(der: &[u8]) -> String {
    pem_text("CERTIFICATE", der)
}

/// PEM with Unix line endings (the pem crate's default is CRLF).
pub(crate) fn pem_text(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// PEM text of a DER CRL.
pub fn crl_pem(der: &[u8]) -> String {
    pem_text("X509 CRL", der)
}

/// The DER of the first `CERTIFICATE` block of a PEM text (or the input, if it is DER).
pub fn certificate_der_from_pem_or_der(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    if input.trim_ascii_start().starts_with(b"-----") {
        let block =
            pem::parse(input).map_err(|_| PkiError::InvalidCertificate("not valid PEM".into()))?;
        if block.tag() != "CERTIFICATE" {
            return Err(PkiError::InvalidCertificate(format!(
                "expected a PEM CERTIFICATE block, found {:?}",
                block.tag()
            )));
        }
        Ok(block.into_contents())
    } else {
        Ok(input.to_vec())
    }
}
