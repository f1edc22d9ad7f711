//! What the decrypted content of the requests other than a CSR is: GetCert's and GetCRL's
//! IssuerAndSerialNumber, and CertPoll's IssuerAndSubject (RFC 8894 3.3.2 to 3.3.4).

use der::asn1::Any;
use der::{Decode, Encode, Tag, Tagged};

use super::asn1::{IssuerAndSerial, IssuerAndSubject};
use crate::{PkiError, SerialNumber};

/// GetCert's (and GetCRL's) question: a certificate named by its issuer and serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateId {
    /// The issuer's Name, DER, as sent.
    pub issuer_der: Vec<u8>,
    pub serial: SerialNumber,
}

/// CertPoll's question: the issuer and subject of the PKCSReq being polled for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollFor {
    /// The issuer's Name, DER, as sent.
    pub issuer_der: Vec<u8>,
    /// The subject's Name, DER, as sent.
    pub subject_der: Vec<u8>,
}

/// A Name is a SEQUENCE (of RDNs); anything else is not one.
fn name_der(any: &Any) -> Option<Vec<u8>> {
    (any.tag() == Tag::Sequence)
        .then(|| any.to_der().ok())
        .flatten()
}

/// Reads an IssuerAndSerialNumber; None if it is not one, or its serial is not one
/// RFC 5280 allows (so no CA here issued it).
pub fn read_certificate_id(der: &[u8]) -> Option<CertificateId> {
    let id = IssuerAndSerial::from_der(der).ok()?;
    Some(CertificateId {
        issuer_der: name_der(&id.issuer)?,
        serial: SerialNumber::from_bytes(id.serial.as_bytes()).ok()?,
    })
}

/// Reads an IssuerAndSubject; None if it is not one.
pub fn read_poll_for(der: &[u8]) -> Option<PollFor> {
    let poll = IssuerAndSubject::from_der(der).ok()?;
    Some(PollFor {
        issuer_der: name_der(&poll.issuer)?,
        subject_der: name_der(&poll.subject)?,
    })
}

/// Writes an IssuerAndSubject (a client's CertPoll content).
pub fn issuer_and_subject(issuer_der: &[u8], subject_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let encoding = |e: der::Error| PkiError::Encoding(e.to_string());
    IssuerAndSubject {
        issuer: Any::from_der(issuer_der).map_err(encoding)?,
        subject: Any::from_der(subject_der).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scep::client::issuer_and_serial;

    fn certificate() -> Vec<u8> {
        let key = crate::PrivateKey::generate(crate::KeyAlgorithm::EcdsaP256).unwrap();
        crate::scep::client::self_signed(&key, "device-1").unwrap()
    }

    #[test]
    fn a_certificate_id_reads_back_what_a_client_writes() {
        let der = certificate();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let id = read_certificate_id(&issuer_and_serial(&der).unwrap()).unwrap();
        assert_eq!(id.issuer_der, parsed.issuer().as_raw());
        assert_eq!(
            id.serial,
            SerialNumber::from_bytes(parsed.raw_serial()).unwrap()
        );
    }

    #[test]
    fn a_poll_reads_back_its_issuer_and_subject() {
        let der = certificate();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let written =
            issuer_and_subject(parsed.issuer().as_raw(), parsed.subject().as_raw()).unwrap();
        let poll = read_poll_for(&written).unwrap();
        assert_eq!(poll.issuer_der, parsed.issuer().as_raw());
        assert_eq!(poll.subject_der, parsed.subject().as_raw());
    }

    #[test]
    fn what_is_not_a_name_or_not_the_structure_is_refused() {
        assert_eq!(read_poll_for(b"garbage"), None);
        assert_eq!(read_certificate_id(b""), None);
        // Two INTEGERs where two Names belong.
        let not_names = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02];
        assert_eq!(read_poll_for(&not_names), None);
        // A Name and a zero serial, which RFC 5280 forbids.
        let der = certificate();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let issuer = parsed.issuer().as_raw();
        let mut zero_serial = vec![0x30];
        let body_len = issuer.len() + 3;
        assert!(body_len < 128, "short form length in this test");
        zero_serial.push(body_len as u8);
        zero_serial.extend_from_slice(issuer);
        zero_serial.extend_from_slice(&[0x02, 0x01, 0x00]);
        assert_eq!(read_certificate_id(&zero_serial), None);
    }
}
