//! What the issuer is asked for: a request as a channel received it, the same request
//! parsed, and the plan every check produced.

use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::profile::Profile;
use keyinfra_pki::{KeyAlgorithm, PkiError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ErrorCode;
use crate::error::CoreError;

/// Where the certificate's key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Generated here, sealed and stored.
    Generate(KeyAlgorithm),
    /// The device's own key, from its PKCS#10 request (PEM or DER); nothing is stored.
    Csr(Vec<u8>),
}

/// A request as a channel received it: text and bytes, not yet parsed.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub key: KeySource,
    /// RFC 4514; required with `Generate`, overrides the CSR's subject with `Csr`.
    pub subject: Option<String>,
    /// DNS names, IP addresses, `email:` and `URI:` names; overrides the CSR's SANs.
    pub san: Option<Vec<String>>,
    pub profile: String,
    pub validity_days: Option<u32>,
    pub owner_id: Option<Uuid>,
    pub ca_id: Option<Uuid>,
    /// The policy to check against instead of the owner's (ADMIN only).
    pub policy_id: Option<Uuid>,
}

/// The key a parsed request certifies.
#[derive(Debug, Clone)]
pub enum RequestedKey {
    /// Generate one of this algorithm (after every check passed).
    Generate(KeyAlgorithm),
    /// The requester's own public key (SubjectPublicKeyInfo DER), from its CSR.
    Public {
        spki: Vec<u8>,
        algorithm: KeyAlgorithm,
    },
}

impl RequestedKey {
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            RequestedKey::Generate(a) | RequestedKey::Public { algorithm: a, .. } => *a,
        }
    }
}

/// A request with every field parsed: what the issuer checks and signs. Channels build it
/// from their own wire format ([`ParsedRequest::parse`] for the REST, UI and CLI form).
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub subject: DistinguishedName,
    pub sans: Vec<SubjectAltName>,
    pub key: RequestedKey,
    pub profile: String,
    pub validity_days: Option<u32>,
    pub owner_id: Option<Uuid>,
    pub ca_id: Option<Uuid>,
    /// CSR extensions KeyInfra did not copy (the audit log records them).
    pub ignored_csr_extensions: Option<Vec<String>>,
}

impl ParsedRequest {
    /// Parses the names and the CSR. Cheap checks only: no database, no key generation.
    pub fn parse(request: &IssueRequest) -> Result<Self, CoreError> {
        let csr = match &request.key {
            KeySource::Generate(_) => None,
            KeySource::Csr(bytes) => Some(parse_csr(bytes).map_err(pki_to_request_error)?),
        };
        Self::with_csr(request, csr)
    }

    /// As [`ParsedRequest::parse`], with the request's CSR already parsed (and its
    /// signature verified) by a channel that needed it first (EST's channel binding).
    pub(crate) fn with_csr(
        request: &IssueRequest,
        csr: Option<keyinfra_pki::csr::ParsedCsr>,
    ) -> Result<Self, CoreError> {
        // Names: from the request, else from the CSR.
        let subject = match (&request.subject, &csr) {
            (Some(s), _) => DistinguishedName::parse(s)
                .map_err(|e| invalid_name(ErrorCode::InvalidSubject, e))?,
            (None, Some(csr)) => csr
                .subject
                .clone()
                .map_err(|e| invalid_name(ErrorCode::InvalidSubject, e))?,
            (None, None) => {
                return Err(CoreError::invalid(
                    ErrorCode::InvalidSubject,
                    "subject is required when the server generates the key (e.g. \"CN=edge-router-1,O=Example\")",
                ));
            }
        };
        let sans = match (&request.san, &csr) {
            (Some(list), _) => SubjectAltName::parse_list(list)
                .map_err(|e| invalid_name(ErrorCode::InvalidSan, e))?,
            (None, Some(csr)) => csr
                .sans
                .clone()
                .map_err(|e| invalid_name(ErrorCode::InvalidSan, e))?,
            (None, None) => Vec::new(),
        };
        let key = match (&request.key, csr.as_ref()) {
            (KeySource::Generate(algorithm), _) => RequestedKey::Generate(*algorithm),
            (KeySource::Csr(_), Some(csr)) => RequestedKey::Public {
                spki: csr.public_key_der.clone(),
                algorithm: csr.key_algorithm,
            },
            (KeySource::Csr(_), None) => return Err(CoreError::Internal("no CSR".into())),
        };
        Ok(ParsedRequest {
            subject,
            sans,
            key,
            profile: request.profile.clone(),
            validity_days: request.validity_days,
            owner_id: request.owner_id,
            ca_id: request.ca_id,
            ignored_csr_extensions: csr.map(|c| c.ignored_extensions),
        })
    }
}

/// What an issue would sign, every check passed: the dry run's answer, and the plan the
/// issuer carries out.
#[derive(Debug, Clone)]
pub struct IssuePlan {
    pub subject: DistinguishedName,
    pub sans: Vec<SubjectAltName>,
    pub profile: Profile,
    pub key_algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub ca_id: Uuid,
    pub ca_name: String,
    pub owner_id: Option<Uuid>,
    pub policy_id: Uuid,
    pub policy_name: String,
    /// The owner's quota under the policy (`None`: no limit).
    pub quota: Option<u32>,
}

fn invalid_name(code: ErrorCode, e: impl std::fmt::Display) -> CoreError {
    CoreError::invalid(code, e.to_string())
}

pub(crate) fn pki_to_request_error(e: PkiError) -> CoreError {
    match e {
        PkiError::InvalidCsr(text) => CoreError::invalid(ErrorCode::InvalidCsr, text),
        PkiError::CsrSignatureInvalid => CoreError::invalid(
            ErrorCode::CsrSignatureInvalid,
            "the CSR's signature does not verify",
        ),
        PkiError::UnsupportedKeyAlgorithm => CoreError::invalid(
            ErrorCode::UnsupportedKey,
            "the CSR's key is not ECDSA P-256/P-384, Ed25519 or RSA 2048/3072/4096",
        ),
        PkiError::UnsupportedRsaExponent => CoreError::invalid(
            ErrorCode::UnsupportedKey,
            "the CSR's RSA key has a public exponent other than 65537; KeyInfra accepts only 65537",
        ),
        PkiError::InvalidName(text) => CoreError::invalid(ErrorCode::InvalidSan, text),
        PkiError::BeyondCaValidity => CoreError::invalid(
            ErrorCode::BeyondCaValidity,
            "the certificate would outlive its CA; ask for a shorter validity",
        ),
        other => other.into(),
    }
}
