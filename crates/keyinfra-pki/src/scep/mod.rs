//! SCEP on the wire (RFC 8894): pkiMessages in, CertReps out. Pure functions; the HTTP
//! endpoint, the challenges and the issuance live elsewhere.
//!
//! * [`message`]: [`PkiMessage::parse`] reads a request's SignedData, checks its signature
//!   and its messageDigest, and keeps what a reply must echo ([`ReplyTo`]).
//! * [`envelope`]: opens a request's EnvelopedData with the RA key ([`RaKey`]) and seals a
//!   reply's to the requester's certificate (RSA key transport, DES/3DES/AES-CBC content).
//! * [`reply`]: CertRep messages (SUCCESS, FAILURE, PENDING) signed by the RA, and the
//!   degenerate certificates-only SignedData of GetCACert.
//! * [`request_content`]: GetCert's, GetCRL's and CertPoll's decrypted questions.
//! * [`ra_cert`]: the RA certificate a CA issues to itself.
//! * [`client`]: what a SCEP client sends (PKCSReq and the other requests), for the tests,
//!   the benchmark's pre-made messages and the fuzz seeds.
//!
//! # Why an RA
//!
//! SCEP encrypts requests by key transport to a certificate from GetCACert, and every
//! client expects RSA there. KeyInfra's CAs are often ECDSA, so each CA certifies a
//! separate RSA-2048 key, the RA's, which decrypts requests and signs replies. The CA key
//! never sees a SCEP message.
//!
//! # Types
//!
//! The CMS structures are the `cms` crate's (SignedData, EnvelopedData, SignerInfo,
//! KeyTransRecipientInfo, on `der` 0.8); the SCEP attributes are plain PrintableStrings and
//! OCTET STRINGs inside them. Signatures, key transport and hashes are aws-lc-rs's; the
//! CBC ciphers are RustCrypto's `des` and `aes`.

mod asn1;
pub mod client;
pub mod envelope;
pub mod message;
pub mod ra_cert;
pub mod reply;
pub mod request_content;

pub use envelope::{ContentCipher, Opened, RaKey};
pub use message::{DigestAlgorithm, MessageType, PkiMessage, ReplyTo, ScepError, ScepLimits};
pub use ra_cert::RaCertSpec;
pub use reply::{FailInfo, certs_only, crl_only, next_ca_certificates};
pub use request_content::{CertificateId, PollFor, read_certificate_id, read_poll_for};

use der::asn1::ObjectIdentifier;

/// SCEP's authenticated attributes (RFC 8894 3.2.1), under id-VeriSign's arc.
pub(crate) mod attr {
    use super::ObjectIdentifier;

    pub const MESSAGE_TYPE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
    pub const PKI_STATUS: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
    pub const FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
    pub const SENDER_NONCE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
    pub const RECIPIENT_NONCE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
    pub const TRANSACTION_ID: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");
    /// PKCS#9 contentType, messageDigest and signingTime (RFC 5652 11).
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
}

/// CMS content types (RFC 5652).
pub(crate) use crate::cms::content;

/// rsaEncryption: the signature algorithm of SCEP SignerInfos (strongSwan accepts no
/// other) and the key transport algorithm of their envelopes.
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The size a nonce may have: RFC 8894 says 16 octets; a little room for clients that
/// send more, and none for one that would make us store and echo kilobytes.
pub const MAX_NONCE_LEN: usize = 64;

/// transactionID is a hash of the key, printed: 64 characters covers SHA-256 in hex.
pub const MAX_TRANSACTION_ID_LEN: usize = 128;

#[cfg(test)]
mod tests;
