//! CRLs (RFC 5280 5), full and delta, written as a stream.
//!
//! A CRL of a million entries is about 47 MB. Building it as one tree of values (as a
//! generic DER library does) holds it several times over; this writer holds none of it.
//! The caller counts the entries' encoded length first ([`entry_len`]), then feeds the
//! entries one by one: each is encoded into the caller's buffer and hashed on the way
//! ([`CrlWriter::entry`]). At the end the digest is signed ([`CrlWriter::finish`]), which
//! gives the bytes that go before and after the streamed ones.
//!
//! ```text
//! CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier,
//!                                signatureValue BIT STRING }
//! TBSCertList     ::= SEQUENCE { version INTEGER (v2 = 1), signature AlgorithmIdentifier, issuer Name,
//!                                thisUpdate Time, nextUpdate Time,
//!                                revokedCertificates SEQUENCE OF SEQUENCE {
//!                                    userCertificate INTEGER, revocationDate Time,
//!                                    crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
//!                                crlExtensions [0] EXPLICIT Extensions OPTIONAL }
//! ```
//!
//! Only an Ed25519 CA cannot sign a digest (EdDSA hashes the whole message itself): its
//! writer keeps the TBS in memory. That is documented next to the CRL settings.

use aws_lc_rs::digest;
use time::OffsetDateTime;

use crate::ca::{CaSigner, RevokedEntry};
use crate::{KeyAlgorithm, PkiError, RevocationReason};

/// What kind of CRL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind<'a> {
    /// A complete CRL. With a delta URL it carries the Freshest CRL extension pointing at
    /// the delta CRLs (RFC 5280 5.2.6).
    Full { delta_url: Option<&'a str> },
    /// A delta CRL (RFC 5280 5.2.4) over the complete CRL numbered `base`: it carries the
    /// critical Delta CRL Indicator.
    Delta { base: u64 },
}

/// The fields of a CRL other than its entries.
#[derive(Debug, Clone, Copy)]
pub struct CrlHeader<'a> {
    /// The CRL number; complete and delta CRLs of a CA share one sequence.
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub kind: CrlKind<'a>,
}

/// The encoded length of one entry, for the count that comes before the stream.
pub fn entry_len(entry: &RevokedEntry) -> usize {
    // Encoding into a scratch buffer is cheap next to the database read, and means the
    // count and the bytes can never disagree about an encoding rule.
    let mut scratch = Vec::with_capacity(64);
    encode_entry(entry, &mut scratch);
    scratch.len()
}

/// Appends the DER of one revokedCertificates entry.
pub fn encode_entry(entry: &RevokedEntry, out: &mut Vec<u8>) {
    let serial = entry.serial.as_bytes();
    let sign_byte = usize::from(serial.first().is_some_and(|b| b & 0x80 != 0));
    let serial_len = tlv_len(serial.len() + sign_byte);
    let date_len = time_len(entry.revoked_at);
    let extensions_len = entry_extensions_content_len(entry);
    let mut body = serial_len + date_len;
    if extensions_len > 0 {
        body += tlv_len(extensions_len);
    }
    header(0x30, body, out);
    header(0x02, serial.len() + sign_byte, out);
    if sign_byte == 1 {
        out.push(0);
    }
    out.extend_from_slice(serial);
    write_time(entry.revoked_at, out);
    if extensions_len > 0 {
        header(0x30, extensions_len, out);
        if let Some(code) = reason_code(entry.reason) {
            // Extension { reasonCode, OCTET STRING { ENUMERATED code } }
            let value = [0x0a, 0x01, code];
            extension(OID_REASON_CODE, false, &value, out);
        }
        if let Some(invalidity) = entry.invalidity_date {
            let mut value = Vec::with_capacity(17);
            write_generalized_time(invalidity, &mut value);
            extension(OID_INVALIDITY_DATE, false, &value, out);
        }
    }
}

/// RFC 5280 5.3.1: the reasonCode extension SHOULD be absent rather than say
/// unspecified (0).
fn reason_code(reason: RevocationReason) -> Option<u8> {
    (reason != RevocationReason::Unspecified).then(|| reason.code())
}

fn entry_extensions_content_len(entry: &RevokedEntry) -> usize {
    let mut len = 0;
    if reason_code(entry.reason).is_some() {
        len += extension_len(OID_REASON_CODE.len(), false, 3);
    }
    if entry.invalidity_date.is_some() {
        len += extension_len(OID_INVALIDITY_DATE.len(), false, 17);
    }
    len
}

/// Writes one CRL as a stream: see the module's comment.
pub struct CrlWriter {
    digest: Digesting,
    signing: SigningKeyForDigest,
    algorithm_identifier: &'static [u8],
    entries_left: usize,
    extensions: Vec<u8>,
    tbs_len: usize,
}

impl std::fmt::Debug for CrlWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlWriter")
            .field("entries_left", &self.entries_left)
            .finish_non_exhaustive()
    }
}

/// The bytes around the streamed ones: the CRL is `head`, then what [`CrlWriter::start`]
/// and [`CrlWriter::entry`] wrote, then `tail`.
#[derive(Debug, Clone)]
pub struct CrlEnds {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

impl CaSigner {
    /// Starts a CRL whose entries will take `entries_len` bytes (the sum of [`entry_len`]).
    /// Returns the writer and the first bytes of the TBS, already hashed.
    pub fn crl_writer(
        &self,
        crl: &CrlHeader<'_>,
        entries_len: usize,
    ) -> Result<(CrlWriter, Vec<u8>), PkiError> {
        if crl.next_update <= crl.this_update {
            return Err(PkiError::Encoding(
                "a CRL's nextUpdate must follow its thisUpdate".into(),
            ));
        }
        let facts = crl_issuer_facts(self.certificate_der())?;
        let algorithm = self.key_algorithm();
        let algorithm_identifier = algorithm.signature_algorithm_identifier();
        let extensions = crl_extensions(crl, &facts.key_identifier);
        let revoked_len = if entries_len == 0 {
            // RFC 5280 5.1.2.6: with no entries the list is absent, not empty.
            0
        } else {
            tlv_len(entries_len)
        };
        let tbs_content = 3 // version INTEGER 1
            + algorithm_identifier.len()
            + facts.subject.len()
            + time_len(crl.this_update)
            + time_len(crl.next_update)
            + revoked_len
            + extensions.len();
        let mut start = Vec::with_capacity(256 + facts.subject.len());
        header(0x30, tbs_content, &mut start);
        start.extend_from_slice(&[0x02, 0x01, 0x01]);
        start.extend_from_slice(algorithm_identifier);
        start.extend_from_slice(&facts.subject);
        write_time(crl.this_update, &mut start);
        write_time(crl.next_update, &mut start);
        if entries_len > 0 {
            header(0x30, entries_len, &mut start);
        }
        let signing = SigningKeyForDigest::new(self.key())?;
        let mut digest = signing.digesting();
        digest.update(&start);
        Ok((
            CrlWriter {
                digest,
                signing,
                algorithm_identifier,
                entries_left: entries_len,
                extensions,
                tbs_len: tlv_len(tbs_content),
            },
            start,
        ))
    }

    /// Signs a whole CRL in memory: for tests and small lists. The server streams through
    /// [`CaSigner::crl_writer`].
    pub fn sign_crl(
        &self,
        crl: &CrlHeader<'_>,
        entries: &[RevokedEntry],
    ) -> Result<Vec<u8>, PkiError> {
        let total: usize = entries.iter().map(entry_len).sum();
        let (mut writer, start) = self.crl_writer(crl, total)?;
        let mut body = start;
        for entry in entries {
            writer.entry(entry, &mut body)?;
        }
        let ends = writer.finish()?;
        let mut der = ends.head;
        der.extend_from_slice(&body);
        der.extend_from_slice(&ends.tail);
        Ok(der)
    }
}

impl CrlWriter {
    /// Appends one entry to `out` and hashes it.
    pub fn entry(&mut self, entry: &RevokedEntry, out: &mut Vec<u8>) -> Result<(), PkiError> {
        let from = out.len();
        encode_entry(entry, out);
        let written = out.len() - from;
        self.entries_left = self
            .entries_left
            .checked_sub(written)
            .ok_or_else(|| PkiError::Encoding("the CRL entries are longer than counted".into()))?;
        self.digest.update(&out[from..]);
        Ok(())
    }

    /// Hashes entries encoded earlier with [`encode_entry`] (read back from where they were
    /// staged while being counted), in their order; the same check as [`CrlWriter::entry`].
    pub fn hash_encoded_entries(&mut self, encoded: &[u8]) -> Result<(), PkiError> {
        self.entries_left = self
            .entries_left
            .checked_sub(encoded.len())
            .ok_or_else(|| PkiError::Encoding("the CRL entries are longer than counted".into()))?;
        self.digest.update(encoded);
        Ok(())
    }

    /// Hashes the CRL extensions, signs, and returns the bytes before and after the stream.
    pub fn finish(mut self) -> Result<CrlEnds, PkiError> {
        if self.entries_left != 0 {
            return Err(PkiError::Encoding(
                "the CRL entries are shorter than counted".into(),
            ));
        }
        self.digest.update(&self.extensions);
        let signature = self.signing.sign(self.digest)?;
        let mut tail = self.extensions;
        tail.extend_from_slice(self.algorithm_identifier);
        header(0x03, signature.len() + 1, &mut tail);
        tail.push(0); // no unused bits
        tail.extend_from_slice(&signature);
        let outer = self.tbs_len + self.algorithm_identifier.len() + tlv_len(signature.len() + 1);
        let mut head = Vec::with_capacity(6);
        header(0x30, outer, &mut head);
        Ok(CrlEnds { head, tail })
    }
}

/// The TBS's hash so far, or for Ed25519 the TBS itself (see the module's comment).
enum Digesting {
    Hash(digest::Context),
    Whole(Vec<u8>),
}

impl Digesting {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Digesting::Hash(context) => context.update(bytes),
            Digesting::Whole(message) => message.extend_from_slice(bytes),
        }
    }
}

/// The CA's key in the form that signs a digest.
enum SigningKeyForDigest {
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
}

impl SigningKeyForDigest {
    fn new(key: &crate::PrivateKey) -> Result<Self, PkiError> {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
            Ed25519KeyPair,
        };
        let pkcs8 = key.pkcs8_der();
        let invalid = |_| PkiError::InvalidPrivateKey;
        Ok(match key.algorithm() {
            KeyAlgorithm::EcdsaP256 => Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
                    .map_err(invalid)?,
            ),
            KeyAlgorithm::EcdsaP384 => Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8)
                    .map_err(invalid)?,
            ),
            KeyAlgorithm::Ed25519 => {
                Self::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(invalid)?)
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                Self::Rsa(aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(invalid)?)
            }
        })
    }

    fn digesting(&self) -> Digesting {
        match self {
            SigningKeyForDigest::Ecdsa(pair) => {
                let digest = if std::ptr::eq(
                    pair.algorithm(),
                    &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                ) {
                    &digest::SHA384
                } else {
                    &digest::SHA256
                };
                Digesting::Hash(digest::Context::new(digest))
            }
            SigningKeyForDigest::Rsa(_) => Digesting::Hash(digest::Context::new(&digest::SHA256)),
            SigningKeyForDigest::Ed25519(_) => Digesting::Whole(Vec::new()),
        }
    }

    fn sign(&self, digesting: Digesting) -> Result<Vec<u8>, PkiError> {
        let failed = |_| PkiError::Signing("the CA key could not sign the CRL".into());
        match (self, digesting) {
            (SigningKeyForDigest::Ecdsa(pair), Digesting::Hash(context)) => Ok(pair
                .sign_digest(&context.finish())
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            (SigningKeyForDigest::Rsa(pair), Digesting::Hash(context)) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign_digest(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &context.finish(),
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
            (SigningKeyForDigest::Ed25519(pair), Digesting::Whole(message)) => {
                Ok(pair.sign(&message).as_ref().to_vec())
            }
            _ => Err(PkiError::Signing(
                "the CRL digest does not match the CA key".into(),
            )),
        }
    }
}

/// The parts of the CA certificate a CRL repeats: its subject (the CRL's issuer) and its
/// key identifier (the CRL's Authority Key Identifier).
struct CrlIssuerFacts {
    subject: Vec<u8>,
    key_identifier: Vec<u8>,
}

fn crl_issuer_facts(certificate_der: &[u8]) -> Result<CrlIssuerFacts, PkiError> {
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
    let (_, cert) = X509Certificate::from_der(certificate_der)
        .map_err(|e| PkiError::Encoding(format!("the CA certificate does not parse: {e}")))?;
    let subject = cert.tbs_certificate.subject.as_raw().to_vec();
    let from_extension = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
    // Without a subjectKeyIdentifier (an imported CA), the same method rcgen uses for the
    // certificates this CA signs: SHA-256 of the public key, first 20 bytes.
    let key_identifier = from_extension.unwrap_or_else(|| {
        let key = cert.public_key().subject_public_key.data.as_ref();
        digest::digest(&digest::SHA256, key).as_ref()[..20].to_vec()
    });
    Ok(CrlIssuerFacts {
        subject,
        key_identifier,
    })
}

const OID_AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
const OID_FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
const OID_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
const OID_INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];

/// `[0] EXPLICIT Extensions`: Authority Key Identifier, CRL Number, and the Delta CRL
/// Indicator or the Freshest CRL pointer.
fn crl_extensions(crl: &CrlHeader<'_>, key_identifier: &[u8]) -> Vec<u8> {
    let mut list = Vec::with_capacity(128);
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
    let mut aki = Vec::with_capacity(key_identifier.len() + 4);
    header(0x30, tlv_len(key_identifier.len()), &mut aki);
    header(0x80, key_identifier.len(), &mut aki);
    aki.extend_from_slice(key_identifier);
    extension(OID_AUTHORITY_KEY_IDENTIFIER, false, &aki, &mut list);
    extension(OID_CRL_NUMBER, false, &integer(crl.number), &mut list);
    match crl.kind {
        CrlKind::Delta { base } => {
            extension(OID_DELTA_CRL_INDICATOR, true, &integer(base), &mut list);
        }
        CrlKind::Full {
            delta_url: Some(url),
        } => {
            extension(
                OID_FRESHEST_CRL,
                false,
                &distribution_points(url),
                &mut list,
            );
        }
        CrlKind::Full { delta_url: None } => {}
    }
    let mut out = Vec::with_capacity(list.len() + 8);
    header(0xa0, tlv_len(list.len()), &mut out);
    header(0x30, list.len(), &mut out);
    out.extend_from_slice(&list);
    out
}

/// CRLDistributionPoints with one DistributionPoint whose fullName is one URI (the syntax
/// of both the CRL Distribution Points and the Freshest CRL extensions).
pub(crate) fn distribution_points(url: &str) -> Vec<u8> {
    let uri = url.as_bytes();
    let general_names = tlv_len(uri.len()); // [6] IMPLICIT IA5String
    let full_name = tlv_len(general_names); // [0] fullName GeneralNames
    let point_name = tlv_len(full_name); // [0] distributionPoint
    let point = tlv_len(point_name); // DistributionPoint SEQUENCE
    let mut out = Vec::with_capacity(point + 4);
    header(0x30, point, &mut out);
    header(0x30, point_name, &mut out);
    header(0xa0, full_name, &mut out);
    header(0xa0, general_names, &mut out);
    header(0x86, uri.len(), &mut out);
    out.extend_from_slice(uri);
    out
}

/// A non-negative INTEGER's DER content: big-endian, minimal, with a sign byte if needed.
fn integer(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    let mut content = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[first..]);
    let mut out = Vec::with_capacity(content.len() + 2);
    header(0x02, content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

/// Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
fn extension(oid: &[u8], critical: bool, value: &[u8], out: &mut Vec<u8>) {
    header(
        0x30,
        extension_content_len(oid.len(), critical, value.len()),
        out,
    );
    header(0x06, oid.len(), out);
    out.extend_from_slice(oid);
    if critical {
        out.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    header(0x04, value.len(), out);
    out.extend_from_slice(value);
}

fn extension_content_len(oid_len: usize, critical: bool, value_len: usize) -> usize {
    tlv_len(oid_len) + if critical { 3 } else { 0 } + tlv_len(value_len)
}

/// The whole encoded length of an Extension with this OID length and value length.
fn extension_len(oid_len: usize, critical: bool, value_len: usize) -> usize {
    tlv_len(extension_content_len(oid_len, critical, value_len))
}

/// Length of a TLV whose content is `content` bytes (one-byte tag).
fn tlv_len(content: usize) -> usize {
    1 + length_octets(content) + content
}

fn length_octets(len: usize) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

/// Writes a tag and a definite length.
fn header(tag: u8, len: usize, out: &mut Vec<u8>) {
    out.push(tag);
    let octets = length_octets(len);
    if octets == 1 {
        // The match in length_octets bounds len to 0x7f here.
        out.push(len as u8);
    } else {
        out.push(0x80 | (octets - 1) as u8);
        for i in (0..octets - 1).rev() {
            out.push((len >> (8 * i)) as u8);
        }
    }
}

/// RFC 5280 5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
fn time_len(at: OffsetDateTime) -> usize {
    if utc_time_year(at) { 15 } else { 17 }
}

fn utc_time_year(at: OffsetDateTime) -> bool {
    (1950..2050).contains(&at.to_offset(time::UtcOffset::UTC).year())
}

fn write_time(at: OffsetDateTime, out: &mut Vec<u8>) {
    if utc_time_year(at) {
        let at = at.to_offset(time::UtcOffset::UTC);
        out.extend_from_slice(&[0x17, 13]);
        push_two(at.year().rem_euclid(100) as u8, out);
        push_clock(at, out);
    } else {
        write_generalized_time(at, out);
    }
}

fn write_generalized_time(at: OffsetDateTime, out: &mut Vec<u8>) {
    let at = at.to_offset(time::UtcOffset::UTC);
    out.extend_from_slice(&[0x18, 15]);
    let year = at.year().clamp(0, 9999) as u16;
    push_two((year / 100) as u8, out);
    push_two((year % 100) as u8, out);
    push_clock(at, out);
}

/// MMDDHHMMSSZ, whole seconds.
fn push_clock(at: OffsetDateTime, out: &mut Vec<u8>) {
    push_two(u8::from(at.month()), out);
    push_two(at.day(), out);
    push_two(at.hour(), out);
    push_two(at.minute(), out);
    push_two(at.second(), out);
    out.push(b'Z');
}

fn push_two(value: u8, out: &mut Vec<u8>) {
    out.push(b'0' + value / 10);
    out.push(b'0' + value % 10);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lengths_cross_every_length_octet_boundary() {
        for len in [
            0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0xff_ffff, 0x100_0000,
        ] {
            let mut out = Vec::new();
            header(0x30, len, &mut out);
            assert_eq!(out.len() + len, tlv_len(len), "{len}");
            // Read the length back the way a DER parser does.
            let read = if out[1] < 0x80 {
                usize::from(out[1])
            } else {
                out[2..]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
            };
            assert_eq!(read, len);
        }
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(127), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(256), [0x02, 0x02, 0x01, 0x00]);
        assert_eq!(integer(u64::MAX).len(), 11);
    }

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        let mut out = Vec::new();
        let at = time::macros::datetime!(2049-12-31 23:59:59 UTC);
        write_time(at, &mut out);
        assert_eq!(out, b"\x17\x0d491231235959Z");
        out.clear();
        write_time(at + time::Duration::seconds(1), &mut out);
        assert_eq!(out, b"\x18\x0f20500101000000Z");
        assert_eq!(time_len(at), 15);
        assert_eq!(time_len(at + time::Duration::seconds(1)), 17);
    }
}
