//! OCSPResponse (RFC 6960 4.2.1): signed basic responses and the unsigned error answers.
//!
//! ```text
//! OCSPResponse      ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
//! ResponseBytes     ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
//! BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
//!                                  signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ResponseData      ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
//!                                  producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
//!                                  responseExtensions [1] EXPLICIT Extensions OPTIONAL }
//! ResponderID       ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
//! SingleResponse    ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
//!                                  nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL,
//!                                  singleExtensions [1] EXPLICIT Extensions OPTIONAL }
//! CertStatus        ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
//!                                unknown [2] IMPLICIT NULL }
//! RevokedInfo       ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
//! ```

use aws_lc_rs::digest::{self, SHA1_FOR_LEGACY_USE_ONLY};
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, Null, ObjectIdentifier, OctetStringRef};
use der::{Choice, Decode, Encode, Sequence, Tag};
use rcgen::SigningKey;
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::ID_PKIX_OCSP_BASIC;
use super::ID_PKIX_OCSP_NONCE;
use super::cert_id::CertId;
use super::request::Nonce;
use crate::{PkiError, PrivateKey, RevocationReason};

/// The unsuccessful response statuses (RFC 6960 4.2.1): answers without a signature.
/// `successful` is what [`OcspResponder::sign`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspResponseStatus {
    /// Illegal confirmation request.
    MalformedRequest,
    /// Internal error in issuer.
    InternalError,
    /// Try again later.
    TryLater,
    /// Must sign the request.
    SigRequired,
    /// Request unauthorized: RFC 5019 2.2.3 answers this for a CA the responder does not
    /// serve.
    Unauthorized,
}

impl OcspResponseStatus {
    /// The ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            OcspResponseStatus::MalformedRequest => 1,
            OcspResponseStatus::InternalError => 2,
            OcspResponseStatus::TryLater => 3,
            OcspResponseStatus::SigRequired => 5,
            OcspResponseStatus::Unauthorized => 6,
        }
    }
}

/// The DER of an OCSPResponse with this status and no responseBytes.
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: five bytes, the same for every request.
    vec![0x30, 0x03, 0x0a, 0x01, status.code()]
}

/// A certificate's status at thisUpdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        revocation_time: OffsetDateTime,
        /// None writes no revocationReason (RFC 5280's advice for `unspecified`, as CRLs do).
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate (not issued by this CA, or no record).
    Unknown,
}

/// The answer about one CertID.
#[derive(Debug, Clone, Copy)]
pub struct SingleResponse<'a> {
    /// Echoed exactly as the request had it.
    pub cert_id: &'a CertId,
    pub status: CertStatus,
    pub this_update: OffsetDateTime,
    /// When newer information will be available (RFC 5019 requires it for caching).
    pub next_update: Option<OffsetDateTime>,
}

/// What a basic response says; [`OcspResponder::sign`] adds the responder ID, signature and
/// certificate.
#[derive(Debug, Clone, Copy)]
pub struct BasicResponse<'a> {
    pub produced_at: OffsetDateTime,
    /// One per CertID of the request, in its order.
    pub responses: &'a [SingleResponse<'a>],
    /// The request's nonce, echoed as a response extension.
    pub nonce: Option<&'a Nonce>,
}

/// A responder: its certificate and key, with what every response repeats encoded once.
pub struct OcspResponder {
    key: PrivateKey,
    certificate_der: Vec<u8>,
    /// ResponderID byKey: `[2] EXPLICIT OCTET STRING (SHA-1 of the public key)`.
    responder_id: Vec<u8>,
    /// `SEQUENCE OF Certificate` holding the responder certificate.
    certs: Vec<u8>,
    key_hash: [u8; 20],
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder")
            .field("key_hash", &hex::encode(self.key_hash))
            .finish_non_exhaustive()
    }
}

impl OcspResponder {
    /// A responder signing with `key`, whose certificate is `certificate_der`: a delegated
    /// responder certificate ([`crate::ca::CaSigner::issue_ocsp_responder`]) or the CA's own.
    pub fn new(certificate_der: Vec<u8>, key: PrivateKey) -> Result<Self, PkiError> {
        let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(&certificate_der)
            .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
        if !rest.is_empty() {
            return Err(PkiError::InvalidCertificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        if cert.public_key().raw != key.public_key_der().as_slice() {
            return Err(PkiError::KeyMismatch);
        }
        // RFC 6960 4.2.1: KeyHash is the SHA-1 of the subjectPublicKey BIT STRING's value.
        let mut key_hash = [0; 20];
        key_hash.copy_from_slice(
            digest::digest(
                &SHA1_FOR_LEGACY_USE_ONLY,
                &cert.public_key().subject_public_key.data,
            )
            .as_ref(),
        );
        let encoding = |e: der::Error| PkiError::Encoding(format!("OCSP responder: {e}"));
        let responder_id = ResponderIdDer::ByKey(OctetStringRef::new(&key_hash).map_err(encoding)?)
            .to_der()
            .map_err(encoding)?;
        let certs = vec![AnyRef::from_der(&certificate_der).map_err(encoding)?]
            .to_der()
            .map_err(encoding)?;
        Ok(Self {
            key,
            certificate_der,
            responder_id,
            certs,
            key_hash,
        })
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// SHA-1 of the responder's public key: its ResponderID.
    pub fn key_hash(&self) -> &[u8; 20] {
        &self.key_hash
    }

    /// Signs the response and returns the whole OCSPResponse DER (status successful).
    pub fn sign(&self, response: &BasicResponse<'_>) -> Result<Vec<u8>, PkiError> {
        let encoding = |e: der::Error| PkiError::Encoding(format!("OCSP response: {e}"));
        if response.responses.is_empty() {
            return Err(PkiError::Encoding(
                "an OCSP response needs at least one SingleResponse".into(),
            ));
        }
        let mut responses = Vec::with_capacity(response.responses.len());
        for single in response.responses {
            responses.push(SingleResponseDer {
                cert_id: AnyRef::from_der(single.cert_id.der()).map_err(encoding)?,
                cert_status: match single.status {
                    CertStatus::Good => CertStatusDer::Good(Null),
                    CertStatus::Revoked {
                        revocation_time,
                        reason,
                    } => CertStatusDer::Revoked(RevokedInfoDer {
                        revocation_time: generalized_time(revocation_time)?,
                        revocation_reason: reason.map(crl_reason).transpose().map_err(encoding)?,
                    }),
                    CertStatus::Unknown => CertStatusDer::Unknown(Null),
                },
                this_update: generalized_time(single.this_update)?,
                next_update: single.next_update.map(generalized_time).transpose()?,
            });
        }
        let nonce = match response.nonce {
            Some(nonce) => Some(vec![ExtensionDer {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetStringRef::new(nonce.extension_value()).map_err(encoding)?,
            }]),
            None => None,
        };
        let tbs = ResponseDataDer {
            responder_id: AnyRef::from_der(&self.responder_id).map_err(encoding)?,
            produced_at: generalized_time(response.produced_at)?,
            responses,
            response_extensions: nonce,
        }
        .to_der()
        .map_err(encoding)?;
        let signature = self
            .key
            .sign(&tbs)
            .map_err(|e| PkiError::Signing(e.to_string()))?;
        let basic = BasicOcspResponseDer {
            tbs_response_data: AnyRef::from_der(&tbs).map_err(encoding)?,
            signature_algorithm: AnyRef::from_der(
                self.key.algorithm().signature_algorithm_identifier(),
            )
            .map_err(encoding)?,
            signature: BitStringRef::from_bytes(&signature).map_err(encoding)?,
            certs: Some(AnyRef::from_der(&self.certs).map_err(encoding)?),
        }
        .to_der()
        .map_err(encoding)?;
        OcspResponseDer {
            response_status: AnyRef::new(Tag::Enumerated, &[0]).map_err(encoding)?,
            response_bytes: Some(ResponseBytesDer {
                response_type: ID_PKIX_OCSP_BASIC,
                response: OctetStringRef::new(&basic).map_err(encoding)?,
            }),
        }
        .to_der()
        .map_err(encoding)
    }
}

/// A time as GeneralizedTime: whole seconds, UTC (RFC 5280 4.1.2.5.2).
fn generalized_time(at: OffsetDateTime) -> Result<GeneralizedTime, PkiError> {
    u64::try_from(at.unix_timestamp())
        .ok()
        .and_then(|secs| {
            GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).ok()
        })
        .ok_or_else(|| PkiError::Encoding(format!("{at} cannot be a GeneralizedTime")))
}

/// CRLReason ::= ENUMERATED, with the code CRLs carry.
fn crl_reason(reason: RevocationReason) -> der::Result<AnyRef<'static>> {
    // ENUMERATED content octets of every code KeyInfra writes (0 to 10), borrowable for as
    // long as the encoder needs them.
    const CODES: [u8; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let code = usize::from(reason.code());
    let content = CODES.get(code..=code).ok_or(der::ErrorKind::Value {
        tag: Tag::Enumerated,
    })?;
    AnyRef::new(Tag::Enumerated, content)
}

#[derive(Sequence)]
struct OcspResponseDer<'a> {
    response_status: AnyRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    response_bytes: Option<ResponseBytesDer<'a>>,
}

#[derive(Sequence)]
struct ResponseBytesDer<'a> {
    response_type: ObjectIdentifier,
    response: &'a OctetStringRef,
}

#[derive(Sequence)]
struct BasicOcspResponseDer<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    certs: Option<AnyRef<'a>>,
}

#[derive(Sequence)]
struct ResponseDataDer<'a> {
    // version: v1, the DEFAULT, so never written.
    responder_id: AnyRef<'a>,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponseDer<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    response_extensions: Option<Vec<ExtensionDer<'a>>>,
}

#[derive(Choice)]
enum ResponderIdDer<'a> {
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(&'a OctetStringRef),
}

#[derive(Sequence)]
struct SingleResponseDer<'a> {
    cert_id: AnyRef<'a>,
    cert_status: CertStatusDer<'a>,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    next_update: Option<GeneralizedTime>,
}

#[derive(Choice)]
enum CertStatusDer<'a> {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfoDer<'a>),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

#[derive(Sequence)]
struct RevokedInfoDer<'a> {
    revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    revocation_reason: Option<AnyRef<'a>>,
}

#[derive(Sequence)]
struct ExtensionDer<'a> {
    extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    critical: bool,
    extn_value: &'a OctetStringRef,
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
