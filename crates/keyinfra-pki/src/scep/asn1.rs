//! The CMS structures as SCEP clients really write them. `cms`'s own types are stricter
//! than the clients, in two places found in captured requests:
//!
//! * certmonger's self-signed certificate has a 33-byte serial, beyond the 20 (21 with the
//!   sign byte) that `x509-cert` decodes, so IssuerAndSerialNumber keeps its serial as any
//!   INTEGER ([`IssuerAndSerial`]), certificates stay bytes (`Any`, read with x509-parser),
//!   and the SignerInfo and KeyTransRecipientInfo that name one are mirrored here;
//! * scepclient (Go's pkcs7) writes encryptedContent as a constructed `[0]` around an
//!   OCTET STRING, where `cms` expects the primitive `[0]`, so [`EncryptedContent`] takes
//!   either ([`EncryptedContent::ciphertext`]).
//!
//! These are `der` derives of RFC 5652's definitions, field for field; nothing is parsed by
//! hand.

use cms::cert::x509::attr::Attributes;
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::CmsVersion;
use der::asn1::{Any, Int, ObjectIdentifier, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};

/// IssuerAndSerialNumber (RFC 5652 10.2.4) with the issuer's bytes as sent (compared
/// byte for byte, as Go's pkcs7 does) and a serial of any length.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct IssuerAndSerial {
    pub(crate) issuer: Any,
    pub(crate) serial: Int,
}

impl IssuerAndSerial {
    /// Of a certificate, read with x509-parser (which takes any serial length).
    pub(crate) fn of_certificate(der: &[u8]) -> Option<Self> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(IssuerAndSerial {
            issuer: Any::from_der(certificate.issuer().as_raw()).ok()?,
            serial: Int::new(certificate.raw_serial()).ok()?,
        })
    }
}

pub(crate) use crate::cms::SignedData;

/// SignerInfo (RFC 5652 5.3) naming its signer by issuer and serial (every SCEP client
/// does).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SignerInfo {
    pub(crate) version: CmsVersion,
    pub(crate) sid: IssuerAndSerial,
    pub(crate) digest_alg: AlgorithmIdentifierOwned,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub(crate) signed_attrs: Option<Attributes>,
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: OctetString,
    #[asn1(
        context_specific = "1",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub(crate) unsigned_attrs: Option<Attributes>,
}

/// EnvelopedData (RFC 5652 6.1) with key-transport recipients only.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EnvelopedData {
    pub(crate) version: CmsVersion,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub(crate) originator_info: Option<SetOfVec<Any>>,
    /// Each a RecipientInfo; the [`KeyTransRecipient`]s are the ones SCEP uses.
    pub(crate) recip_infos: SetOfVec<Any>,
    pub(crate) encrypted_content: EncryptedContent,
}

/// KeyTransRecipientInfo (RFC 5652 6.2.1), version 0: named by issuer and serial.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct KeyTransRecipient {
    pub(crate) version: CmsVersion,
    pub(crate) rid: IssuerAndSerial,
    pub(crate) key_enc_alg: AlgorithmIdentifierOwned,
    pub(crate) enc_key: OctetString,
}

/// EncryptedContentInfo (RFC 5652 6.1), its `[0] IMPLICIT` content kept as sent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct EncryptedContent {
    pub(crate) content_type: ObjectIdentifier,
    pub(crate) content_enc_alg: AlgorithmIdentifierOwned,
    pub(crate) encrypted_content: Option<Any>,
}

const CONTENT_TAG: Tag = Tag::ContextSpecific {
    constructed: false,
    number: TagNumber(0),
};

impl EncryptedContent {
    /// The encrypted content as a primitive `[0]`, as DER and every reader expect.
    pub(crate) fn new(
        content_type: ObjectIdentifier,
        content_enc_alg: AlgorithmIdentifierOwned,
        ciphertext: Vec<u8>,
    ) -> der::Result<Self> {
        Ok(Self {
            content_type,
            content_enc_alg,
            encrypted_content: Some(Any::new(CONTENT_TAG, ciphertext)?),
        })
    }

    /// The ciphertext: a primitive `[0]`'s value, or the OCTET STRINGs inside a
    /// constructed one, joined (what Go's pkcs7 writes). None if it is neither.
    pub(crate) fn ciphertext(&self) -> Option<Vec<u8>> {
        let content = self.encrypted_content.as_ref()?;
        match content.tag() {
            CONTENT_TAG => Some(content.value().to_vec()),
            Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            } => {
                let mut reader = SliceReader::new(content.value()).ok()?;
                let mut joined = Vec::new();
                while !reader.is_finished() {
                    joined
                        .extend_from_slice(<&OctetStringRef>::decode(&mut reader).ok()?.as_bytes());
                }
                Some(joined)
            }
            _ => None,
        }
    }
}

/// IssuerAndSubject (RFC 8894 3.3.3), CertPoll's content: the CA's name and the subject the
/// PKCSReq asked for, both as sent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct IssuerAndSubject {
    pub(crate) issuer: Any,
    pub(crate) subject: Any,
}
