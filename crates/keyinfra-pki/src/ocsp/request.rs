//! OCSPRequest (RFC 6960 4.1.1) from network bytes: bounded, strict DER, never panics.
//!
//! ```text
//! OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
//! TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1,
//!                            requestorName [1] EXPLICIT GeneralName OPTIONAL,
//!                            requestList SEQUENCE OF Request,
//!                            requestExtensions [2] EXPLICIT Extensions OPTIONAL }
//! Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//! Signature   ::= SEQUENCE { signatureAlgorithm AlgorithmIdentifier, signature BIT STRING,
//!                            certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ```
//!
//! Signed requests are read but their signature is not checked: KeyInfra answers anyone
//! (RFC 5019 2.1.2), so a signature would prove nothing it acts on.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};

use super::ID_PKIX_OCSP_NONCE;
use super::cert_id::{CertId, CertIdError};
use super::response::OcspResponseStatus;

/// RFC 8954: a nonce is 1 to 32 octets.
pub const MAX_NONCE_LEN: usize = 32;

/// What a request may be: larger or longer ones are malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Request size in bytes (the HTTP layer should refuse larger bodies before reading them).
    pub max_bytes: usize,
    /// CertIDs in one request. RFC 5019 clients send one; OpenSSL sends one per `-cert`/`-serial`.
    pub max_cert_ids: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_cert_ids: 16,
        }
    }
}

/// A parsed request: the CertIDs to answer, in order, and the nonce to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    cert_ids: Vec<CertId>,
    nonce: Option<Nonce>,
    signed: bool,
}

impl OcspRequest {
    /// At least one, at most [`RequestLimits::max_cert_ids`].
    pub fn cert_ids(&self) -> &[CertId] {
        &self.cert_ids
    }

    pub fn nonce(&self) -> Option<&Nonce> {
        self.nonce.as_ref()
    }

    /// Whether the request carried an (unchecked) signature.
    pub fn is_signed(&self) -> bool {
        self.signed
    }
}

/// The request's id-pkix-ocsp-nonce extension. RFC 8954 (and OpenSSL) put the nonce in an
/// OCTET STRING inside extnValue; RFC 2560-era clients put the octets there directly. Either
/// way the response echoes extnValue exactly as it came, which is what clients compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nonce {
    extn_value: Vec<u8>,
    /// Where the nonce octets start in `extn_value` (past an OCTET STRING header, if any).
    start: usize,
}

impl Nonce {
    /// The nonce octets (1 to [`MAX_NONCE_LEN`]).
    pub fn value(&self) -> &[u8] {
        self.extn_value.get(self.start..).unwrap_or_default()
    }

    /// The extension's extnValue contents as received: what the response carries.
    pub fn extension_value(&self) -> &[u8] {
        &self.extn_value
    }

    /// Whether the nonce came wrapped in an OCTET STRING (RFC 8954).
    pub fn is_wrapped(&self) -> bool {
        self.start > 0
    }

    fn from_extension_value(extn_value: &[u8]) -> Result<Self> {
        let start = match <&OctetStringRef>::from_der(extn_value) {
            Ok(inner) => extn_value.len() - inner.as_bytes().len(),
            Err(_) => 0,
        };
        let len = extn_value.len() - start;
        if !(1..=MAX_NONCE_LEN).contains(&len) {
            return Err(OcspRequestError::NonceLength(len));
        }
        Ok(Self {
            extn_value: extn_value.to_vec(),
            start,
        })
    }
}

/// Why a request is refused. Every variant is answered `malformedRequest`; the texts name
/// what was wrong, never the request's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspRequestError {
    #[error("the OCSP request is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the OCSP request asks about more than {max} certificates")]
    TooManyCertIds { max: usize },
    #[error("the OCSP request asks about no certificate")]
    NoCertIds,
    #[error("the OCSP request's nonce has {0} octets; RFC 8954 allows 1 to 32")]
    NonceLength(usize),
    #[error("the OCSP request has more than one nonce")]
    DuplicateNonce,
    #[error("the OCSP request has a critical extension that is not supported ({oid})")]
    UnsupportedCriticalExtension { oid: String },
    #[error("the OCSP request's version is not v1")]
    UnsupportedVersion,
    #[error("a CertID's hashes do not have its hash algorithm's length")]
    HashLength,
    #[error("the OCSP request is not valid DER: {0}")]
    Der(String),
}

impl OcspRequestError {
    /// The status to answer with.
    pub fn response_status(&self) -> OcspResponseStatus {
        OcspResponseStatus::MalformedRequest
    }
}

impl From<der::Error> for OcspRequestError {
    fn from(e: der::Error) -> Self {
        // der's messages name the ASN.1 problem and a position, not the bytes.
        OcspRequestError::Der(e.to_string())
    }
}

impl From<CertIdError> for OcspRequestError {
    fn from(e: CertIdError) -> Self {
        match e {
            CertIdError::Der(e) => e.into(),
            CertIdError::Malformed => OcspRequestError::Der("a CertID is malformed".into()),
            CertIdError::HashLength => OcspRequestError::HashLength,
        }
    }
}

type Result<T> = std::result::Result<T, OcspRequestError>;

/// Parses a DER OCSPRequest. The whole input must be the request: trailing bytes are an error.
pub fn parse_request(der: &[u8], limits: &RequestLimits) -> Result<OcspRequest> {
    if der.len() > limits.max_bytes {
        return Err(OcspRequestError::TooLarge {
            max: limits.max_bytes,
        });
    }
    let mut reader = SliceReader::new(der)?;
    let request = reader.sequence(|r| {
        let mut request = r.sequence(|r| tbs_request(r, limits))?;
        request.signed = explicit(r, 0, signature)?.is_some();
        Ok::<_, OcspRequestError>(request)
    })?;
    reader.finish()?;
    Ok(request)
}

fn tbs_request<'a>(r: &mut SliceReader<'a>, limits: &RequestLimits) -> Result<OcspRequest> {
    // v1 is the DEFAULT and so absent in DER; tolerate it written out, refuse anything else.
    if let Some(version) = explicit(r, 0, |r| Ok(r.decode::<u8>()?))?
        && version != 0
    {
        return Err(OcspRequestError::UnsupportedVersion);
    }
    // requestorName: only meaningful with a signature, which is not checked.
    explicit(r, 1, |r| Ok(r.decode::<AnyRef<'a>>()?))?;
    let cert_ids = r.sequence(|r| {
        let mut ids = Vec::new();
        while !r.is_finished() {
            if ids.len() == limits.max_cert_ids {
                return Err(OcspRequestError::TooManyCertIds {
                    max: limits.max_cert_ids,
                });
            }
            ids.push(r.sequence(|r| {
                let id = CertId::from_der(r.tlv_bytes()?)?;
                explicit(r, 0, |r| {
                    // No singleRequestExtension is supported (RFC 6960 4.4.6's service
                    // locator is for forwarding), so only non-critical ones may appear.
                    extensions(r, |ext| refuse_critical(&ext))
                })?;
                Ok::<_, OcspRequestError>(id)
            })?);
        }
        Ok(ids)
    })?;
    if cert_ids.is_empty() {
        return Err(OcspRequestError::NoCertIds);
    }
    let mut nonce = None;
    explicit(r, 2, |r| {
        extensions(r, |ext| {
            if ext.oid == ID_PKIX_OCSP_NONCE {
                if nonce.is_some() {
                    return Err(OcspRequestError::DuplicateNonce);
                }
                nonce = Some(Nonce::from_extension_value(ext.value)?);
                Ok(())
            } else {
                // Others (acceptable responses, preferred signature algorithms) only state
                // preferences; the responder answers basic responses signed its own way.
                refuse_critical(&ext)
            }
        })
    })?;
    Ok(OcspRequest {
        cert_ids,
        nonce,
        signed: false,
    })
}

/// Signature ::= SEQUENCE { signatureAlgorithm, signature BIT STRING, certs [0] OPTIONAL }.
fn signature(r: &mut SliceReader<'_>) -> Result<()> {
    r.sequence(|r| {
        r.sequence(|r| {
            let _: ObjectIdentifier = r.decode()?;
            if !r.is_finished() {
                let _: AnyRef<'_> = r.decode()?;
            }
            Ok::<_, OcspRequestError>(())
        })?;
        let _: BitStringRef<'_> = r.decode()?;
        explicit(r, 0, |r| {
            r.sequence(|r| {
                while !r.is_finished() {
                    let cert: AnyRef<'_> = r.decode()?;
                    cert.tag().assert_eq(Tag::Sequence)?;
                }
                Ok(())
            })
        })?;
        Ok(())
    })
}

/// One Extension, borrowed from the request.
struct Extension<'a> {
    oid: ObjectIdentifier,
    critical: bool,
    value: &'a [u8],
}

/// Extensions ::= SEQUENCE OF Extension; calls `each` for every one, in order.
fn extensions<'a>(
    r: &mut SliceReader<'a>,
    mut each: impl FnMut(Extension<'a>) -> Result<()>,
) -> Result<()> {
    r.sequence(|r| {
        while !r.is_finished() {
            let ext = r.sequence(|r| {
                let oid: ObjectIdentifier = r.decode()?;
                let critical = if Tag::peek(r)? == Tag::Boolean {
                    r.decode::<bool>()?
                } else {
                    false
                };
                let value: &'a OctetStringRef = r.decode()?;
                Ok::<_, OcspRequestError>(Extension {
                    oid,
                    critical,
                    value: value.as_bytes(),
                })
            })?;
            each(ext)?;
        }
        Ok(())
    })
}

fn refuse_critical(ext: &Extension<'_>) -> Result<()> {
    if ext.critical {
        return Err(OcspRequestError::UnsupportedCriticalExtension {
            oid: ext.oid.to_string(),
        });
    }
    Ok(())
}

/// An optional `[number] EXPLICIT` field: None when the next element is something else (or
/// there is none), else `f` reads its contents, which it must consume entirely.
fn explicit<'a, T>(
    r: &mut SliceReader<'a>,
    number: u32,
    f: impl FnOnce(&mut SliceReader<'a>) -> Result<T>,
) -> Result<Option<T>> {
    let wanted = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(number),
    };
    if r.is_finished() || Tag::peek(r)? != wanted {
        return Ok(None);
    }
    let header = Header::decode(r)?;
    r.read_nested(header.length(), f).map(Some)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
