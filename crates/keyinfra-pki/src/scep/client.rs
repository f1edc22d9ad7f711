//! The client's side of SCEP, as a device speaks it: builds pkiMessages and reads CertReps.
//! KeyInfra never enrolls anywhere; this is for the tests (every reply is read back), the
//! benchmark's pre-made PKCSReqs and the fuzz seeds. Real clients (scepclient, strongSwan,
//! certmonger) are what the integration tests use to judge the server.

use cms::cert::x509::attr::{Attribute, Attributes};
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::{CmsVersion, ContentInfo};
use der::asn1::{Any, ObjectIdentifier, OctetString, PrintableString, SetOfVec};
use der::{Decode, Encode};

use super::asn1::{IssuerAndSerial, SignedData, SignerInfo};
use super::envelope::{self, ContentCipher, RaKey};
use super::message::{DigestAlgorithm, MessageType, PkiMessage, ScepLimits};
use super::{RSA_ENCRYPTION, attr, content};
use crate::{PkiError, PrivateKey, RandomSource};

fn encoding(e: der::Error) -> PkiError {
    PkiError::Encoding(e.to_string())
}

/// One request as a client would send it.
#[derive(Debug)]
pub struct Request<'a> {
    pub message_type: MessageType,
    /// The plaintext: a CSR (PKCSReq, RenewalReq), an IssuerAndSerialNumber (GetCert,
    /// GetCRL) or an IssuerAndSubject (CertPoll), DER.
    pub content: &'a [u8],
    /// The requester's certificate and key (self-signed for a PKCSReq).
    pub signer: &'a RaKey,
    /// The RA certificate the content is encrypted to.
    pub recipient: &'a [u8],
    pub cipher: ContentCipher,
    pub digest: DigestAlgorithm,
    pub transaction_id: &'a str,
    pub sender_nonce: &'a [u8],
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, PkiError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(encoding)?,
    })
}

/// A pkiMessage: the content sealed to the RA, signed by the requester.
pub fn pki_message(request: &Request<'_>, rng: &mut dyn RandomSource) -> Result<Vec<u8>, PkiError> {
    let sealed = envelope::seal(request.content, request.recipient, request.cipher, rng)?;
    let digest = request.digest;
    let printable = |text: &str| -> Result<Any, PkiError> {
        Any::encode_from(&PrintableString::new(text).map_err(encoding)?).map_err(encoding)
    };
    let octets = |bytes: &[u8]| -> Result<Any, PkiError> {
        Any::encode_from(&OctetString::new(bytes).map_err(encoding)?).map_err(encoding)
    };
    let attributes = vec![
        attribute(
            attr::CONTENT_TYPE,
            Any::encode_from(&content::DATA).map_err(encoding)?,
        )?,
        attribute(attr::MESSAGE_DIGEST, octets(&digest.digest(&sealed))?)?,
        attribute(
            attr::MESSAGE_TYPE,
            printable(&request.message_type.code().to_string())?,
        )?,
        attribute(attr::TRANSACTION_ID, printable(request.transaction_id)?)?,
        attribute(attr::SENDER_NONCE, octets(request.sender_nonce)?)?,
    ];
    let signed_attrs: Attributes = SetOfVec::try_from(attributes).map_err(encoding)?;
    let signature = super::reply::sign(
        request.signer,
        digest,
        &signed_attrs.to_der().map_err(encoding)?,
    )?;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: request.signer.issuer_and_serial().clone(),
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
    };
    super::reply::signed_data(
        request.signer.certificate_der(),
        digest,
        Some(octets(&sealed)?),
        &signer_info,
    )
}

/// A self-signed certificate for `key` (RSA), as a client makes one to sign its PKCSReq.
pub fn self_signed(key: &PrivateKey, common_name: &str) -> Result<Vec<u8>, PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
        .self_signed(key)
        .map(|c| c.der().to_vec())
        .map_err(|e| PkiError::Signing(e.to_string()))
}

/// A CSR for `key` with a CN and, if given, a challengePassword (PKCS#9), DER.
pub fn csr(
    key: &PrivateKey,
    common_name: &str,
    challenge: Option<&str>,
) -> Result<Vec<u8>, PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let mut attributes = Vec::new();
    if let Some(challenge) = challenge {
        // rcgen takes the attribute's whole SET OF values.
        let value = SetOfVec::try_from(vec![PrintableString::new(challenge).map_err(encoding)?])
            .map_err(encoding)?
            .to_der()
            .map_err(encoding)?;
        attributes.push(rcgen::Attribute {
            oid: &[1, 2, 840, 113549, 1, 9, 7],
            values: value,
        });
    }
    params
        .serialize_request_with_attributes(key, attributes)
        .map(|r| r.der().to_vec())
        .map_err(|e| PkiError::Signing(e.to_string()))
}

/// The IssuerAndSerialNumber of a certificate: GetCert's and GetCRL's content.
pub fn issuer_and_serial(certificate: &[u8]) -> Result<Vec<u8>, PkiError> {
    IssuerAndSerial::of_certificate(certificate)
        .ok_or_else(|| PkiError::InvalidCertificate("not a DER X.509 certificate".into()))?
        .to_der()
        .map_err(encoding)
}

/// A CertRep as the client reads it.
#[derive(Debug)]
pub struct Reply {
    pub message: PkiMessage,
    /// SUCCESS only: the certificates and CRLs of the decrypted certs-only content, DER.
    pub certificates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    /// SUCCESS only: the cipher the server encrypted with.
    pub cipher: Option<ContentCipher>,
}

/// Reads a CertRep: checks the RA's signature (by [`PkiMessage::parse`]) and opens its
/// content with the client's own certificate and key.
pub fn read_reply(der: &[u8], client: &RaKey) -> Result<Reply, String> {
    let message = PkiMessage::parse(der, ScepLimits::default()).map_err(|e| e.to_string())?;
    if message.message_type != MessageType::CertRep {
        return Err("not a CertRep".into());
    }
    let (certificates, crls, cipher) = match &message.envelope {
        Some(sealed) => {
            let opened = envelope::open(sealed, client).map_err(|e| e.to_string())?;
            let (certificates, crls) = read_degenerate(&opened.content)?;
            (certificates, crls, Some(opened.cipher))
        }
        None => (Vec::new(), Vec::new(), None),
    };
    Ok(Reply {
        message,
        certificates,
        crls,
        cipher,
    })
}

/// The certificates and the CRLs of a degenerate SignedData, each DER.
pub type Degenerate = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The certificates and CRLs of a degenerate SignedData (GetCACert's answer too).
pub fn read_degenerate(der: &[u8]) -> Result<Degenerate, String> {
    let info = ContentInfo::from_der(der).map_err(|e| e.to_string())?;
    if info.content_type != content::SIGNED_DATA {
        return Err("not a SignedData".into());
    }
    let signed = info
        .content
        .decode_as::<SignedData>()
        .map_err(|e| e.to_string())?;
    let all = |set: Option<SetOfVec<Any>>| -> Result<Vec<Vec<u8>>, String> {
        set.map(|s| s.into_vec())
            .unwrap_or_default()
            .iter()
            .map(|a| a.to_der().map_err(|e| e.to_string()))
            .collect()
    };
    Ok((all(signed.certificates)?, all(signed.crls)?))
}
