//! A SCEP request (pkiMessage, RFC 8894 3.2): a CMS SignedData, signed by the requester,
//! whose content is the EnvelopedData that carries the request itself.
//!
//! ```text
//! ContentInfo { signedData, SignedData {
//!     encapContentInfo { id-data, OCTET STRING { ContentInfo { envelopedData, ... } } },
//!     certificates { the signer's certificate (self-signed, or its current one) },
//!     signerInfos { SignerInfo { sid, digestAlgorithm, signedAttrs {
//!         contentType, messageDigest, messageType, transactionID, senderNonce, ... },
//!         signatureAlgorithm, signature } } } }
//! ```
//!
//! [`PkiMessage::parse`] is the only entry from the network: bounded in size, strict DER,
//! never panics. What a FAILURE reply needs (transactionID, senderNonce, digest) is read
//! before anything is checked, so that every later refusal can still be answered in SCEP.

use cms::content_info::ContentInfo;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, PrintableStringRef};
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};

use super::reply::FailInfo;
use super::{MAX_NONCE_LEN, MAX_TRANSACTION_ID_LEN, RSA_ENCRYPTION, asn1, attr, content};

/// The SCEP message types KeyInfra reads (RFC 8894 3.2.1.2), and CertRep, which it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    CertRep,
    RenewalReq,
    PkcsReq,
    CertPoll,
    GetCert,
    GetCrl,
}

impl MessageType {
    pub fn code(self) -> u8 {
        match self {
            MessageType::CertRep => 3,
            MessageType::RenewalReq => 17,
            MessageType::PkcsReq => 19,
            MessageType::CertPoll => 20,
            MessageType::GetCert => 21,
            MessageType::GetCrl => 22,
        }
    }

    fn from_text(text: &str) -> Option<Self> {
        Some(match text {
            "3" => MessageType::CertRep,
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            _ => return None,
        })
    }

    /// The name in logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            MessageType::CertRep => "CertRep",
            MessageType::RenewalReq => "RenewalReq",
            MessageType::PkcsReq => "PKCSReq",
            MessageType::CertPoll => "CertPoll",
            MessageType::GetCert => "GetCert",
            MessageType::GetCrl => "GetCRL",
        }
    }
}

/// The digest a requester signed with; the reply is signed with the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub(crate) const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    pub(crate) const SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub(crate) const SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub(crate) const SHA512: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha1 => Self::SHA1,
            DigestAlgorithm::Sha256 => Self::SHA256,
            DigestAlgorithm::Sha384 => Self::SHA384,
            DigestAlgorithm::Sha512 => Self::SHA512,
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|d| d.oid() == *oid)
    }

    /// The signature algorithm OIDs a client may name instead of rsaEncryption.
    fn rsa_signature_oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(match self {
            DigestAlgorithm::Sha1 => "1.2.840.113549.1.1.5",
            DigestAlgorithm::Sha256 => "1.2.840.113549.1.1.11",
            DigestAlgorithm::Sha384 => "1.2.840.113549.1.1.12",
            DigestAlgorithm::Sha512 => "1.2.840.113549.1.1.13",
        })
    }

    pub(crate) fn aws(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            DigestAlgorithm::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            DigestAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
            DigestAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.aws(), data)
            .as_ref()
            .to_vec()
    }

    fn rsa_verification(self) -> &'static aws_lc_rs::signature::RsaParameters {
        use aws_lc_rs::signature as s;
        match self {
            DigestAlgorithm::Sha1 => &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlgorithm::Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
            DigestAlgorithm::Sha384 => &s::RSA_PKCS1_2048_8192_SHA384,
            DigestAlgorithm::Sha512 => &s::RSA_PKCS1_2048_8192_SHA512,
        }
    }

    /// The digest of a reply to a request that used this one: the same, except SHA-1,
    /// answered with SHA-256 (see [`super::reply`]).
    pub fn for_reply(self) -> Self {
        match self {
            DigestAlgorithm::Sha1 => DigestAlgorithm::Sha256,
            other => other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha1 => "SHA-1",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha384 => "SHA-384",
            DigestAlgorithm::Sha512 => "SHA-512",
        }
    }
}

/// What every reply to a request echoes or follows, known before anything is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    pub transaction_id: String,
    /// The request's senderNonce: the reply's recipientNonce.
    pub sender_nonce: Vec<u8>,
    pub digest: DigestAlgorithm,
}

/// Why a request gets no certificate, in the two forms SCEP has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScepError {
    /// Not a pkiMessage a reply could be addressed to: the HTTP layer answers 400.
    #[error("not a SCEP message: {0}")]
    Unreadable(&'static str),
    /// A pkiMessage that is refused: answered with a CertRep FAILURE and this failInfo.
    #[error("{reason}")]
    Refused {
        reply_to: ReplyTo,
        fail_info: FailInfo,
        reason: &'static str,
    },
}

/// How large a request may be. A PKCSReq with a 4096-bit key is about 5 KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScepLimits {
    pub max_bytes: usize,
}

impl Default for ScepLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
        }
    }
}

/// A pkiMessage whose signature and messageDigest were checked against the certificate it
/// carries. Whether that certificate may ask for anything is the caller's decision: for a
/// PKCSReq it is self-signed and proves only possession of the key; for a RenewalReq it
/// must be one KeyInfra issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiMessage {
    pub message_type: MessageType,
    pub reply_to: ReplyTo,
    /// The DER of the certificate that signed the message: the reply is encrypted to it.
    pub signer_certificate: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER.
    pub signer_spki: Vec<u8>,
    /// The pkcsPKIEnvelope: a ContentInfo holding the EnvelopedData (see `envelope`).
    /// Every request has one; a CertRep has one only on SUCCESS.
    pub envelope: Option<Vec<u8>>,
    /// A CertRep's status attributes (None for requests).
    pub cert_rep: Option<CertRepStatus>,
}

/// What a CertRep reports, besides its content (read by [`super::client`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRepStatus {
    /// pkiStatus: 0 SUCCESS, 2 FAILURE, 3 PENDING.
    pub pki_status: String,
    pub fail_info: Option<String>,
    pub recipient_nonce: Vec<u8>,
}

impl PkiMessage {
    /// Reads and checks a request. Errors before the SCEP attributes are read are
    /// [`ScepError::Unreadable`]; later ones are [`ScepError::Refused`].
    pub fn parse(der: &[u8], limits: ScepLimits) -> Result<Self, ScepError> {
        use ScepError::Unreadable;
        if der.len() > limits.max_bytes {
            return Err(Unreadable("larger than a SCEP request may be"));
        }
        let info = ContentInfo::from_der(der).map_err(|_| Unreadable("not a DER ContentInfo"))?;
        if info.content_type != content::SIGNED_DATA {
            return Err(Unreadable("not a SignedData"));
        }
        let signed_data_der = info
            .content
            .to_der()
            .map_err(|_| Unreadable("not a DER SignedData"))?;
        let signed = asn1::SignedData::from_der(&signed_data_der)
            .map_err(|_| Unreadable("not a DER SignedData"))?;
        let mut signers = signed.signer_infos.iter();
        let (Some(signer), None) = (signers.next(), signers.next()) else {
            return Err(Unreadable("a pkiMessage has exactly one signer"));
        };
        let signer: asn1::SignerInfo = signer
            .decode_as()
            .map_err(|_| Unreadable("the signer is not named by issuer and serial number"))?;
        let attributes = signer
            .signed_attrs
            .as_ref()
            .ok_or(Unreadable("the signer has no signed attributes"))?;
        let attributes = Attributes::read(attributes)?;
        let digest = DigestAlgorithm::from_oid(&signer.digest_alg.oid);
        let reply_to = ReplyTo {
            transaction_id: attributes.transaction_id.clone(),
            sender_nonce: attributes.sender_nonce.clone(),
            // An unknown digest is refused below; the refusal itself is signed with SHA-256.
            digest: digest.unwrap_or(DigestAlgorithm::Sha256),
        };
        let refuse = |fail_info, reason| ScepError::Refused {
            reply_to: reply_to.clone(),
            fail_info,
            reason,
        };
        let Some(digest) = digest else {
            return Err(refuse(FailInfo::BadAlg, "unsupported digest algorithm"));
        };
        let message_type = MessageType::from_text(&attributes.message_type)
            .ok_or_else(|| refuse(FailInfo::BadRequest, "unknown messageType"))?;
        if attributes.content_type != content::DATA {
            return Err(refuse(FailInfo::BadRequest, "the content is not id-data"));
        }
        // The signed content: an OCTET STRING holding the envelope.
        let encapsulated = &signed.encap_content_info;
        if encapsulated.econtent_type != content::DATA {
            return Err(refuse(FailInfo::BadRequest, "the content is not id-data"));
        }
        let envelope = match &encapsulated.econtent {
            // micromdm's server writes a FAILURE or PENDING CertRep's absent content as an
            // empty OCTET STRING.
            Some(econtent)
                if message_type == MessageType::CertRep && econtent.value().len() <= 2 =>
            {
                match econtent.decode_as::<&OctetStringRef>() {
                    Ok(empty) if empty.is_empty() => None,
                    _ => {
                        return Err(refuse(
                            FailInfo::BadRequest,
                            "the content is not an OCTET STRING",
                        ));
                    }
                }
            }
            Some(econtent) => Some(
                econtent
                    .decode_as::<&OctetStringRef>()
                    .map_err(|_| {
                        refuse(FailInfo::BadRequest, "the content is not an OCTET STRING")
                    })?
                    .as_bytes()
                    .to_vec(),
            ),
            None if message_type == MessageType::CertRep => None,
            None => return Err(refuse(FailInfo::BadRequest, "the message has no content")),
        };
        if digest.digest(envelope.as_deref().unwrap_or_default()) != attributes.message_digest {
            return Err(refuse(
                FailInfo::BadMessageCheck,
                "the messageDigest does not match the content",
            ));
        }
        // The signer's certificate, named by the SignerInfo's sid, byte for byte.
        let signer_certificate = signed
            .certificates
            .iter()
            .flat_map(|set| set.iter())
            .filter_map(|any| any.to_der().ok())
            .find(|der| asn1::IssuerAndSerial::of_certificate(der).as_ref() == Some(&signer.sid))
            .ok_or_else(|| refuse(FailInfo::BadCertId, "the signer's certificate is missing"))?;
        let (_, certificate) = x509_parser::parse_x509_certificate(&signer_certificate)
            .map_err(|_| refuse(FailInfo::BadCertId, "the signer's certificate is invalid"))?;
        let spki = certificate.public_key();
        if spki.algorithm.algorithm.to_id_string() != RSA_ENCRYPTION.to_string() {
            // SCEP replies travel by RSA key transport to this certificate's key.
            return Err(refuse(FailInfo::BadAlg, "the signer's key is not RSA"));
        }
        let signature_oid = signer.signature_algorithm.oid;
        if signature_oid != RSA_ENCRYPTION && signature_oid != digest.rsa_signature_oid() {
            return Err(refuse(FailInfo::BadAlg, "unsupported signature algorithm"));
        }
        let signer_spki = spki.raw.to_vec();
        let public_key = spki.subject_public_key.data.to_vec();
        // The signature covers the signed attributes as the client encoded them, with the
        // SET OF tag in place of the [0] the SignerInfo carries (RFC 5652 5.4).
        let signed_attributes = raw_signed_attributes(&signed_data_der)
            .ok_or_else(|| refuse(FailInfo::BadMessageCheck, "unreadable signed attributes"))?;
        aws_lc_rs::signature::UnparsedPublicKey::new(digest.rsa_verification(), &public_key)
            .verify(&signed_attributes, signer.signature.as_bytes())
            .map_err(|_| refuse(FailInfo::BadMessageCheck, "the signature does not verify"))?;
        let cert_rep = match (message_type, attributes.pki_status) {
            (MessageType::CertRep, Some(pki_status)) => Some(CertRepStatus {
                pki_status,
                fail_info: attributes.fail_info,
                recipient_nonce: attributes.recipient_nonce.unwrap_or_default(),
            }),
            (MessageType::CertRep, None) => {
                return Err(refuse(FailInfo::BadRequest, "a CertRep without pkiStatus"));
            }
            _ => None,
        };
        Ok(PkiMessage {
            message_type,
            reply_to,
            signer_certificate,
            signer_spki,
            envelope,
            cert_rep,
        })
    }
}

impl PkiMessage {
    /// The signer's certificate's serial, canonical (a RenewalReq's certificate is found
    /// by it); None for a serial RFC 5280 does not allow, which no CA here issued.
    pub fn signer_serial(&self) -> Option<crate::SerialNumber> {
        let (_, certificate) =
            x509_parser::parse_x509_certificate(&self.signer_certificate).ok()?;
        crate::SerialNumber::from_bytes(certificate.raw_serial()).ok()
    }
}

/// The SCEP attributes of a SignerInfo, as read.
struct Attributes {
    content_type: ObjectIdentifier,
    message_digest: Vec<u8>,
    message_type: String,
    transaction_id: String,
    sender_nonce: Vec<u8>,
    pki_status: Option<String>,
    fail_info: Option<String>,
    recipient_nonce: Option<Vec<u8>>,
}

impl Attributes {
    fn read(attributes: &cms::cert::x509::attr::Attributes) -> Result<Self, ScepError> {
        use ScepError::Unreadable;
        let single = |oid: ObjectIdentifier| -> Result<AnyRef<'_>, ScepError> {
            let mut found = attributes.iter().filter(|a| a.oid == oid);
            let (Some(attribute), None) = (found.next(), found.next()) else {
                return Err(Unreadable("a SCEP attribute is missing or repeated"));
            };
            let mut values = attribute.values.iter();
            match (values.next(), values.next()) {
                (Some(value), None) => Ok(value.to_ref()),
                _ => Err(Unreadable("a SCEP attribute must have one value")),
            }
        };
        let printable = |oid, max: usize| -> Result<String, ScepError> {
            let text = single(oid)?
                .decode_as::<PrintableStringRef<'_>>()
                .map_err(|_| Unreadable("a SCEP attribute is not a PrintableString"))?
                .as_str()
                .to_owned();
            if text.is_empty() || text.len() > max {
                return Err(Unreadable("a SCEP attribute has an unreasonable length"));
            }
            Ok(text)
        };
        let octets = |oid| -> Result<Vec<u8>, ScepError> {
            Ok(single(oid)?
                .decode_as::<&OctetStringRef>()
                .map_err(|_| Unreadable("a SCEP attribute is not an OCTET STRING"))?
                .as_bytes()
                .to_vec())
        };
        let present = |oid| attributes.iter().any(|a| a.oid == oid);
        let sender_nonce = octets(attr::SENDER_NONCE)?;
        if sender_nonce.is_empty() || sender_nonce.len() > MAX_NONCE_LEN {
            return Err(Unreadable("the senderNonce has an unreasonable length"));
        }
        Ok(Attributes {
            content_type: single(attr::CONTENT_TYPE)?
                .decode_as::<ObjectIdentifier>()
                .map_err(|_| Unreadable("the contentType is not an OID"))?,
            message_digest: octets(attr::MESSAGE_DIGEST)?,
            message_type: printable(attr::MESSAGE_TYPE, 2)?,
            transaction_id: printable(attr::TRANSACTION_ID, MAX_TRANSACTION_ID_LEN)?,
            sender_nonce,
            pki_status: match present(attr::PKI_STATUS) {
                true => Some(printable(attr::PKI_STATUS, 2)?),
                false => None,
            },
            fail_info: match present(attr::FAIL_INFO) {
                true => Some(printable(attr::FAIL_INFO, 2)?),
                false => None,
            },
            recipient_nonce: match present(attr::RECIPIENT_NONCE) {
                true => Some(octets(attr::RECIPIENT_NONCE)?),
                false => None,
            },
        })
    }
}

/// The signed attributes of the (only) SignerInfo of `signed_data` (a SignedData's DER)
/// as the signature covers them: the client's bytes under a SET OF tag. Read from the
/// bytes rather than re-encoded from the decoded set, which `der` sorts: a client that
/// sent them unsorted signed them unsorted.
fn raw_signed_attributes(signed_data: &[u8]) -> Option<Vec<u8>> {
    let outer = AnyRef::from_der(signed_data).ok()?;
    let mut fields = SliceReader::new(outer.value()).ok()?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos:
    // the last field is the SET of SignerInfos.
    let mut signer_infos = None;
    while !fields.is_finished() {
        signer_infos = Some(AnyRef::decode(&mut fields).ok()?);
    }
    let signer_infos = signer_infos?;
    if signer_infos.tag() != Tag::Set {
        return None;
    }
    let signer_info = AnyRef::from_der(signer_infos.value()).ok()?;
    let mut fields = SliceReader::new(signer_info.value()).ok()?;
    // version, sid, digestAlgorithm, then [0] IMPLICIT SignedAttributes.
    for _ in 0..3 {
        AnyRef::decode(&mut fields).ok()?;
    }
    let attributes = AnyRef::decode(&mut fields).ok()?;
    if attributes.tag().number().value() != 0 || !attributes.tag().is_context_specific() {
        return None;
    }
    AnyRef::new(Tag::Set, attributes.value())
        .ok()?
        .to_der()
        .ok()
}
