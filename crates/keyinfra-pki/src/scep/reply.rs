//! What KeyInfra sends back: CertRep pkiMessages (RFC 8894 3.3.2), signed by the RA. The
//! degenerate certificates-only SignedData of GetCACert and inside a successful CertRep is
//! [`crate::cms`]'s, re-exported here.
//!
//! A CertRep's SignerInfo names rsaEncryption as its signature algorithm (strongSwan
//! accepts no other) and the request's own digest, except SHA-1: aws-lc-rs makes no SHA-1
//! signatures, so a SHA-1 request (scepclient sends nothing else) is answered with
//! SHA-256, which scepclient, strongSwan and certmonger all verify.

use cms::cert::x509::attr::{Attribute, Attributes};
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::EncapsulatedContentInfo;
use der::asn1::{Any, ObjectIdentifier, OctetString, PrintableString, SetOfVec, UtcTime};
use der::{Decode, Encode};
use time::OffsetDateTime;

use super::asn1::{SignedData, SignerInfo};
use super::envelope::{self, ContentCipher, RaKey};
use super::message::{DigestAlgorithm, ReplyTo};
use super::{RSA_ENCRYPTION, attr, content};
pub use crate::cms::{certs_only, crl_only};
use crate::{PkiError, RandomSource};

/// failInfo (RFC 8894 3.2.1.4): why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm.
    BadAlg,
    /// Integrity check (signature, digest, envelope) failed.
    BadMessageCheck,
    /// Transaction not permitted or supported (a refused challenge, a refused policy).
    BadRequest,
    /// The signingTime was not close enough to the system time.
    BadTime,
    /// No certificate could be identified matching the provided criteria.
    BadCertId,
}

impl FailInfo {
    pub fn code(self) -> u8 {
        match self {
            FailInfo::BadAlg => 0,
            FailInfo::BadMessageCheck => 1,
            FailInfo::BadRequest => 2,
            FailInfo::BadTime => 3,
            FailInfo::BadCertId => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "badAlg",
            FailInfo::BadMessageCheck => "badMessageCheck",
            FailInfo::BadRequest => "badRequest",
            FailInfo::BadTime => "badTime",
            FailInfo::BadCertId => "badCertId",
        }
    }
}

/// What a successful CertRep carries, encrypted to the requester.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// The issued certificate (PKCSReq, RenewalReq, CertPoll, GetCert), DER.
    Certificate(&'a [u8]),
    /// A CRL (GetCRL), DER.
    Crl(&'a [u8]),
}

/// The outcome a CertRep reports.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Success {
        delivery: Delivery<'a>,
        /// The requester's certificate (the request's signer): the envelope's recipient.
        recipient: &'a [u8],
        /// The request's cipher; [`ContentCipher::for_reply`] is applied here.
        cipher: ContentCipher,
    },
    Failure(FailInfo),
    Pending,
}

fn encoding(e: der::Error) -> PkiError {
    PkiError::Encoding(e.to_string())
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, PkiError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(encoding)?,
    })
}

fn printable(text: &str) -> Result<Any, PkiError> {
    Any::encode_from(&PrintableString::new(text).map_err(encoding)?).map_err(encoding)
}

fn octets(bytes: &[u8]) -> Result<Any, PkiError> {
    Any::encode_from(&OctetString::new(bytes).map_err(encoding)?).map_err(encoding)
}

/// A CertRep for `reply_to`, signed by the RA. `now` is the signingTime.
pub fn cert_rep(
    ra: &RaKey,
    reply_to: &ReplyTo,
    outcome: Outcome<'_>,
    now: OffsetDateTime,
    rng: &mut dyn RandomSource,
) -> Result<Vec<u8>, PkiError> {
    let (status, fail_info, envelope) = match outcome {
        Outcome::Success {
            delivery,
            recipient,
            cipher,
        } => {
            let inner = match delivery {
                Delivery::Certificate(der) => certs_only(&[der])?,
                Delivery::Crl(der) => crl_only(der)?,
            };
            let sealed = envelope::seal(&inner, recipient, cipher.for_reply(), rng)?;
            ("0", None, Some(sealed))
        }
        Outcome::Failure(fail_info) => ("2", Some(fail_info), None),
        Outcome::Pending => ("3", None, None),
    };
    let digest = reply_to.digest.for_reply();
    let mut sender_nonce = [0u8; 16];
    rng.fill(&mut sender_nonce)?;
    let mut attributes = vec![
        attribute(
            attr::CONTENT_TYPE,
            Any::encode_from(&content::DATA).map_err(encoding)?,
        )?,
        attribute(attr::SIGNING_TIME, signing_time(now)?)?,
        attribute(
            attr::MESSAGE_DIGEST,
            octets(&digest.digest(envelope.as_deref().unwrap_or_default()))?,
        )?,
        attribute(attr::MESSAGE_TYPE, printable("3")?)?,
        attribute(attr::PKI_STATUS, printable(status)?)?,
        attribute(attr::TRANSACTION_ID, printable(&reply_to.transaction_id)?)?,
        attribute(attr::SENDER_NONCE, octets(&sender_nonce)?)?,
        attribute(attr::RECIPIENT_NONCE, octets(&reply_to.sender_nonce)?)?,
    ];
    if let Some(fail_info) = fail_info {
        attributes.push(attribute(
            attr::FAIL_INFO,
            printable(&fail_info.code().to_string())?,
        )?);
    }
    let signer = signer_info(ra, digest, attributes)?;
    // FAILURE and PENDING carry no envelope, but an empty content all the same, as
    // scepserver and NDES send it: certmonger verifies the signature with OpenSSL's
    // PKCS7_verify, which refuses a SignedData without content ("no content").
    let econtent = Some(octets(envelope.as_deref().unwrap_or_default())?);
    signed_data(ra.certificate_der(), digest, econtent, &signer)
}

/// GetNextCACert's answer (RFC 8894 4.7): the next CA's certificates-only SignedData (its
/// RA and chain), wrapped in a SignedData signed by the current RA, so a device can trust
/// the new certificates because the CA it already trusts vouches for them.
pub fn next_ca_certificates(
    current_ra: &RaKey,
    next_certificates: &[&[u8]],
    now: OffsetDateTime,
) -> Result<Vec<u8>, PkiError> {
    let inner = certs_only(next_certificates)?;
    let digest = DigestAlgorithm::Sha256;
    let attributes = vec![
        attribute(
            attr::CONTENT_TYPE,
            Any::encode_from(&content::DATA).map_err(encoding)?,
        )?,
        attribute(attr::SIGNING_TIME, signing_time(now)?)?,
        attribute(attr::MESSAGE_DIGEST, octets(&digest.digest(&inner))?)?,
    ];
    let signer = signer_info(current_ra, digest, attributes)?;
    signed_data(
        current_ra.certificate_der(),
        digest,
        Some(octets(&inner)?),
        &signer,
    )
}

fn signing_time(now: OffsetDateTime) -> Result<Any, PkiError> {
    let at = UtcTime::from_unix_duration(std::time::Duration::from_secs(
        u64::try_from(now.unix_timestamp()).map_err(|_| PkiError::Encoding("time".into()))?,
    ))
    .map_err(encoding)?;
    Any::encode_from(&at).map_err(encoding)
}

/// The RA's SignerInfo over these signed attributes.
fn signer_info(
    ra: &RaKey,
    digest: DigestAlgorithm,
    attributes: Vec<Attribute>,
) -> Result<SignerInfo, PkiError> {
    let signed_attrs: Attributes = SetOfVec::try_from(attributes).map_err(encoding)?;
    // RFC 5652 5.4: the signature is over the attributes' DER with the SET OF tag.
    let to_sign = signed_attrs.to_der().map_err(encoding)?;
    let signature = sign(ra, digest, &to_sign)?;
    Ok(SignerInfo {
        version: CmsVersion::V1,
        sid: ra.issuer_and_serial().clone(),
        digest_alg: AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: None,
        },
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(encoding)?,
        unsigned_attrs: None,
    })
}

/// A SignedData with one signer and its certificate, as a ContentInfo: a CertRep, or
/// (from the test client) a request.
pub(crate) fn signed_data(
    certificate: &[u8],
    digest: DigestAlgorithm,
    econtent: Option<Any>,
    signer: &SignerInfo,
) -> Result<Vec<u8>, PkiError> {
    let one = |any: Any| SetOfVec::try_from(vec![any]).map_err(encoding);
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: None,
        }])
        .map_err(encoding)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content::DATA,
            econtent,
        },
        certificates: Some(one(Any::from_der(certificate).map_err(encoding)?)?),
        crls: None,
        signer_infos: one(Any::encode_from(signer).map_err(encoding)?)?,
    };
    ContentInfo {
        content_type: content::SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

/// RSA PKCS#1 v1.5 over `message` with the RA key and `digest`.
pub(crate) fn sign(
    ra: &RaKey,
    digest: DigestAlgorithm,
    message: &[u8],
) -> Result<Vec<u8>, PkiError> {
    use aws_lc_rs::signature as s;
    let encoding: &'static dyn s::RsaEncoding = match digest {
        DigestAlgorithm::Sha1 => {
            return Err(PkiError::Signing(
                "KeyInfra does not make SHA-1 signatures".into(),
            ));
        }
        DigestAlgorithm::Sha256 => &s::RSA_PKCS1_SHA256,
        DigestAlgorithm::Sha384 => &s::RSA_PKCS1_SHA384,
        DigestAlgorithm::Sha512 => &s::RSA_PKCS1_SHA512,
    };
    let key = ra.signing();
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        encoding,
        &aws_lc_rs::rand::SystemRandom::new(),
        message,
        &mut signature,
    )
    .map_err(|_| PkiError::Signing("RSA signing failed".into()))?;
    Ok(signature)
}
