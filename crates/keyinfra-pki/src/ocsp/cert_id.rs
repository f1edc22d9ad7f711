//! CertID (RFC 6960 4.1.1): which certificate a request asks about, named by hashes of its
//! issuer and its serial; and [`IssuerHashes`], the CA side those hashes are matched against.

use aws_lc_rs::digest::{self, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Encode, Reader, SliceReader, Tag, Tagged};
use x509_parser::prelude::FromDer;

use crate::{PkiError, SerialNumber};

const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// The hash algorithms a CertID may use here. SHA-1 is what nearly every client sends
/// (RFC 5019 requires it); SHA-256 is what `openssl ocsp -sha256` and newer clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
}

impl HashAlgorithm {
    fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 => 32,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha1 => OID_SHA1,
            HashAlgorithm::Sha256 => OID_SHA256,
        }
    }
}

/// A CertID's serialNumber. Serials that KeyInfra could have issued are [`SerialNumber`]s;
/// anything else (zero, negative, over 20 octets) can only be answered `unknown`, so it is
/// kept as the INTEGER's content octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertSerial {
    Number(SerialNumber),
    Unrepresentable(Vec<u8>),
}

impl CertSerial {
    pub fn number(&self) -> Option<&SerialNumber> {
        match self {
            CertSerial::Number(n) => Some(n),
            CertSerial::Unrepresentable(_) => None,
        }
    }
}

/// One CertID of a request, with the exact bytes it arrived as: a response must echo the
/// CertID, and OpenSSL compares the hash AlgorithmIdentifier byte for byte (NULL parameters
/// or none), so the response carries [`CertId::der`] unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    der: Vec<u8>,
    hash_algorithm: Option<HashAlgorithm>,
    hash_algorithm_oid: ObjectIdentifier,
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    serial: CertSerial,
}

impl CertId {
    /// The CertID a client using `hash` would send for `serial` under the issuer, encoded as
    /// OpenSSL encodes it (hash AlgorithmIdentifier with NULL parameters). For signing
    /// responses ahead of any request; a cached response answers a request whose CertID has
    /// the same [`CertId::der`].
    pub fn new(
        hash: HashAlgorithm,
        issuer: &IssuerHashes,
        serial: &SerialNumber,
    ) -> Result<Self, PkiError> {
        let name_hash = issuer.name_hash(hash).to_vec();
        let key_hash = issuer.key_hash(hash).to_vec();
        let der = encode_cert_id(hash, &name_hash, &key_hash, serial.as_bytes())
            .map_err(|e| PkiError::Encoding(format!("CertID: {e}")))?;
        Ok(Self {
            der,
            hash_algorithm: Some(hash),
            hash_algorithm_oid: hash.oid(),
            issuer_name_hash: name_hash,
            issuer_key_hash: key_hash,
            serial: CertSerial::Number(serial.clone()),
        })
    }

    /// Reads one CertID from exactly `der` (its TLV).
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, CertIdError> {
        let mut reader = SliceReader::new(der)?;
        let id = reader.sequence(|r| {
            let (oid, parameters) = r.sequence(|r| {
                let oid: ObjectIdentifier = r.decode()?;
                let parameters: Option<AnyRef<'_>> = if r.is_finished() {
                    None
                } else {
                    Some(r.decode()?)
                };
                Ok::<_, CertIdError>((oid, parameters))
            })?;
            let name_hash: &OctetStringRef = r.decode()?;
            let key_hash: &OctetStringRef = r.decode()?;
            let serial: AnyRef<'_> = r.decode()?;
            if serial.tag() != Tag::Integer || serial.value().is_empty() {
                return Err(CertIdError::Malformed);
            }
            let hash_algorithm = match oid {
                OID_SHA1 => Some(HashAlgorithm::Sha1),
                OID_SHA256 => Some(HashAlgorithm::Sha256),
                _ => None,
            };
            if let Some(hash) = hash_algorithm {
                // The hash algorithms take no parameters: absent, or NULL as most encoders
                // write them.
                if parameters.is_some_and(|p| p != AnyRef::NULL) {
                    return Err(CertIdError::Malformed);
                }
                if name_hash.as_bytes().len() != hash.output_len()
                    || key_hash.as_bytes().len() != hash.output_len()
                {
                    return Err(CertIdError::HashLength);
                }
            }
            Ok(Self {
                der: der.to_vec(),
                hash_algorithm,
                hash_algorithm_oid: oid,
                issuer_name_hash: name_hash.as_bytes().to_vec(),
                issuer_key_hash: key_hash.as_bytes().to_vec(),
                serial: cert_serial(serial.value()),
            })
        })?;
        reader.finish()?;
        Ok(id)
    }

    /// The CertID's DER as received (or as [`CertId::new`] wrote it).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// None when the client hashed with an algorithm other than SHA-1 or SHA-256: such a
    /// CertID matches no issuer, and the caller answers `unknown` (or malformedRequest).
    pub fn hash_algorithm(&self) -> Option<HashAlgorithm> {
        self.hash_algorithm
    }

    /// The hash algorithm's OID in dotted form, for logs about unsupported ones.
    pub fn hash_algorithm_oid(&self) -> String {
        self.hash_algorithm_oid.to_string()
    }

    pub fn issuer_name_hash(&self) -> &[u8] {
        &self.issuer_name_hash
    }

    pub fn issuer_key_hash(&self) -> &[u8] {
        &self.issuer_key_hash
    }

    pub fn serial(&self) -> &CertSerial {
        &self.serial
    }
}

/// INTEGER content octets (two's complement) as a serial KeyInfra could have issued, when
/// they are one.
fn cert_serial(content: &[u8]) -> CertSerial {
    let negative = content.first().is_some_and(|b| b & 0x80 != 0);
    match SerialNumber::from_bytes(content) {
        Ok(number) if !negative => CertSerial::Number(number),
        _ => CertSerial::Unrepresentable(content.to_vec()),
    }
}

/// CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber }.
fn encode_cert_id(
    hash: HashAlgorithm,
    name_hash: &[u8],
    key_hash: &[u8],
    serial: &[u8],
) -> der::Result<Vec<u8>> {
    #[derive(der::Sequence)]
    struct AlgorithmIdentifier<'a> {
        algorithm: ObjectIdentifier,
        parameters: Option<AnyRef<'a>>,
    }
    #[derive(der::Sequence)]
    struct CertIdDer<'a> {
        hash_algorithm: AlgorithmIdentifier<'a>,
        issuer_name_hash: &'a OctetStringRef,
        issuer_key_hash: &'a OctetStringRef,
        serial_number: der::asn1::UintRef<'a>,
    }
    CertIdDer {
        hash_algorithm: AlgorithmIdentifier {
            algorithm: hash.oid(),
            parameters: Some(AnyRef::NULL),
        },
        issuer_name_hash: OctetStringRef::new(name_hash)?,
        issuer_key_hash: OctetStringRef::new(key_hash)?,
        serial_number: der::asn1::UintRef::new(serial)?,
    }
    .to_der()
}

/// Why a CertID was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertIdError {
    Der(der::Error),
    Malformed,
    HashLength,
}

impl From<der::Error> for CertIdError {
    fn from(e: der::Error) -> Self {
        CertIdError::Der(e)
    }
}

/// The hashes that name one CA in CertIDs: of its subject Name's DER and of its public key
/// (the subjectPublicKey BIT STRING's contents, without the unused-bits octet), RFC 6960
/// 4.1.1, under each supported hash algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    sha1_name: [u8; 20],
    sha1_key: [u8; 20],
    sha256_name: [u8; 32],
    sha256_key: [u8; 32],
}

impl IssuerHashes {
    /// From the CA's certificate (DER).
    pub fn from_certificate(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
        Ok(Self::new(
            cert.subject().as_raw(),
            &cert.public_key().subject_public_key.data,
        ))
    }

    /// From the subject Name's DER and the subjectPublicKey BIT STRING's contents.
    pub fn new(subject_der: &[u8], public_key: &[u8]) -> Self {
        let sha1 = |data: &[u8]| -> [u8; 20] {
            let mut out = [0; 20];
            out.copy_from_slice(digest::digest(&SHA1_FOR_LEGACY_USE_ONLY, data).as_ref());
            out
        };
        let sha256 = |data: &[u8]| -> [u8; 32] {
            let mut out = [0; 32];
            out.copy_from_slice(digest::digest(&SHA256, data).as_ref());
            out
        };
        Self {
            sha1_name: sha1(subject_der),
            sha1_key: sha1(public_key),
            sha256_name: sha256(subject_der),
            sha256_key: sha256(public_key),
        }
    }

    pub fn name_hash(&self, hash: HashAlgorithm) -> &[u8] {
        match hash {
            HashAlgorithm::Sha1 => &self.sha1_name,
            HashAlgorithm::Sha256 => &self.sha256_name,
        }
    }

    pub fn key_hash(&self, hash: HashAlgorithm) -> &[u8] {
        match hash {
            HashAlgorithm::Sha1 => &self.sha1_key,
            HashAlgorithm::Sha256 => &self.sha256_key,
        }
    }

    /// Whether the CertID names this issuer: both hashes, under the CertID's algorithm.
    /// (Only public data is compared, so the comparison need not be constant-time.)
    pub fn matches(&self, id: &CertId) -> bool {
        id.hash_algorithm.is_some_and(|hash| {
            id.issuer_name_hash == self.name_hash(hash) && id.issuer_key_hash == self.key_hash(hash)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn issuer() -> IssuerHashes {
        IssuerHashes::new(b"name", b"key")
    }

    #[test]
    fn a_cert_id_made_here_reads_back_and_matches_its_issuer_only() {
        let serial = SerialNumber::from_hex("8F00AA").unwrap();
        for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let id = CertId::new(hash, &issuer(), &serial).unwrap();
            let read = CertId::from_der(id.der()).unwrap();
            assert_eq!(read, id);
            assert_eq!(read.serial().number(), Some(&serial));
            assert!(issuer().matches(&read));
            assert!(!IssuerHashes::new(b"name", b"other key").matches(&read));
            assert!(!IssuerHashes::new(b"other name", b"key").matches(&read));
        }
        // SHA-1 of "name" as `openssl dgst -sha1` prints it.
        assert_eq!(
            hex::encode(issuer().name_hash(HashAlgorithm::Sha1)),
            "6ae999552a0d2dca14d62e2bc8b764d377b1dd6c"
        );
    }

    #[test]
    fn serials_that_keyinfra_never_issues_are_kept_raw() {
        assert_eq!(cert_serial(&[0x00]), CertSerial::Unrepresentable(vec![0]));
        assert_eq!(
            cert_serial(&[0xff]),
            CertSerial::Unrepresentable(vec![0xff])
        );
        assert_eq!(
            cert_serial(&[0x00, 0x80]),
            CertSerial::Number(SerialNumber::from_hex("80").unwrap())
        );
        let long = [0x7f; 21];
        assert_eq!(
            cert_serial(&long),
            CertSerial::Unrepresentable(long.to_vec())
        );
    }
}
