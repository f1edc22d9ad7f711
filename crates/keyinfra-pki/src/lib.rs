//! X.509 and key material for KeyInfra: pure functions, no I/O, no database.
//!
//! Randomness is an input ([`RandomSource`]) so that tests can control it; the production
//! source lives in the core crate.

mod serial;

pub use serial::SerialNumber;

use sha2::{Digest, Sha256};

/// Errors of the pki crate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkiError {
    #[error("the random number generator failed")]
    RandomSourceFailed,
    #[error("invalid serial number: {0}")]
    InvalidSerialNumber(&'static str),
}

/// A cryptographically secure random source.
pub trait RandomSource {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError>;
}

/// SHA-256 of DER bytes: the fingerprint stored beside every certificate.
pub fn sha256_fingerprint(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}
