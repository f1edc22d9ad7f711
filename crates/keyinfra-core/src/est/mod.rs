//! EST (RFC 7030): what each operation does, after the HTTP layer has read the body and
//! the credentials. Every certificate goes through the one issuer under the owner's policy,
//! as `Principal::Enrollment { channel: Est, owner }` (a USER's powers, also for an ADMIN
//! who enrolls with their own password).
//!
//! Who the client is:
//! * HTTP Basic with a user's name and password: that user (checked by
//!   `UserService::verify_credentials`, the login's throttle).
//! * HTTP Basic with `{challenge id}:{challenge}`: the challenge's owner, under the
//!   challenge's terms; the challenge is used up by the certificate, as with SCEP.
//! * A TLS client certificate (simplereenroll): the certificate's owner, if KeyInfra issued
//!   that exact certificate and it is active and unexpired.
//!
//! Channel binding (RFC 7030 3.5, RFC 9266): a CSR whose challengePassword is the base64 of
//! 32 bytes is taken as the connection's tls-exporter value and must match it (TLS 1.3
//! only); 12 bytes is tls-unique, which rustls cannot compute, so it is refused with a
//! reason; anything else is not a binding and is ignored (devices put other things
//! there). With `est_channel_binding_required`, a CSR without a binding is refused.

use std::sync::Arc;

use keyinfra_db::certificates::CertificateRecord;
use keyinfra_db::{Actor, CertificateStatus, Database};
use keyinfra_pki::csr::{ParsedCsr, parse_csr};
use keyinfra_pki::est::binding::{ChannelBinding, classify_challenge_password, exporter_matches};
use keyinfra_pki::est::csrattrs::{CsrAttr, encode_csr_attrs};
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::{KeyAlgorithm, RandomSource};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::authority::AuthoritySettings;
use crate::ca_registry::CaRegistry;
use crate::clock::Clock;
use crate::enrollment::challenges::{ChallengeGrant, Challenges, DEFAULT_PROFILE};
use crate::enrollment::requests::{EnrollmentRequests, HeldEnrollment, PollAnswer};
use crate::error::CoreError;
use crate::error_code::ErrorCode;
use crate::export::Exports;
use crate::issuer::{IssueRequest, Issuer, KeySource, pki_to_request_error};
use crate::policy::Policies;
use crate::principal::{EnrollmentChannel, Principal};
use crate::renewal::Renewals;

/// How long a client told 202 waits before asking again (strongSwan's default interval).
pub const RETRY_AFTER_SECONDS: u32 = 60;

/// Who an enroll or serverkeygen is for, once the credentials were checked.
#[derive(Debug, Clone)]
pub enum EstClient {
    /// A user who sent their own name and password.
    User(Uuid),
    /// A device that presented a challenge (already claimed), and its secret: a held
    /// request is polled with it.
    Challenge {
        grant: ChallengeGrant,
        secret: Zeroizing<String>,
    },
}

impl EstClient {
    pub fn owner(&self) -> Uuid {
        match self {
            EstClient::User(id) => *id,
            EstClient::Challenge { grant, .. } => grant.owner_id,
        }
    }

    fn principal(&self) -> Principal {
        Principal::Enrollment {
            channel: EnrollmentChannel::Est,
            owner: self.owner(),
            challenge_id: match self {
                EstClient::User(_) => None,
                EstClient::Challenge { grant, .. } => Some(grant.id),
            },
        }
    }
}

/// What the TLS connection says, for channel binding.
#[derive(Debug, Clone, Copy)]
pub struct TlsFacts<'a> {
    /// The tls-exporter value (RFC 9266), on TLS 1.3 only.
    pub exporter: Option<&'a [u8; 32]>,
}

/// What a simpleenroll came to.
#[derive(Debug)]
pub enum Enrolled {
    Issued(Box<CertificateRecord>),
    /// Held for an ADMIN's approval: 202 with Retry-After; the client sends the same
    /// request again with the same credentials.
    Pending,
}

/// Everything an EST operation needs.
#[derive(Debug)]
pub struct EstParts {
    pub settings: Arc<AuthoritySettings>,
    pub clock: Arc<dyn Clock>,
    pub cas: Arc<CaRegistry>,
    pub issuer: Arc<Issuer>,
    pub renewals: Arc<Renewals>,
    pub policies: Arc<Policies>,
    pub challenges: Arc<Challenges>,
    pub requests: Arc<EnrollmentRequests>,
    pub exports: Exports,
}

/// The EST use cases (module docs).
#[derive(Debug)]
pub struct EstService {
    parts: EstParts,
}

impl EstService {
    pub fn new(parts: EstParts) -> Self {
        Self { parts }
    }

    /// The CA a label names (`/.well-known/est/{label}/...`): its id or its short name,
    /// among the CAs whose key KeyInfra holds; without a label, the default issuing CA.
    /// An unknown label is 404.
    pub async fn ca_for_label(
        &self,
        db: &Database,
        label: Option<&str>,
    ) -> Result<Uuid, CoreError> {
        let Some(label) = label else {
            return self.parts.cas.default_issuing_ca(db).await;
        };
        let by_id = Uuid::parse_str(label).ok();
        let cas = self.parts.cas.list_cas(db).await?;
        cas.iter()
            .filter(|ca| ca.private_key_id.is_some())
            .find(|ca| Some(ca.id) == by_id || ca.short_name == label)
            .map(|ca| ca.id)
            .ok_or(CoreError::NotFound("CA label"))
    }

    /// /cacerts: the CA's certificate and its parents up to the root, as a certs-only
    /// SignedData (DER).
    pub async fn ca_certificates(&self, db: &Database, ca_id: Uuid) -> Result<Vec<u8>, CoreError> {
        let ca = self.parts.cas.signer(db, ca_id).await?;
        let chain: Vec<&[u8]> = ca.chain.iter().map(Vec::as_slice).collect();
        Ok(keyinfra_pki::cms::certs_only(&chain)?)
    }

    /// Claims the challenge `id` with `secret` for one request. `None` for a wrong pair
    /// (a right secret with another challenge's id gives the challenge back at once).
    pub async fn claim_challenge(
        &self,
        db: &Database,
        id: Uuid,
        secret: &str,
    ) -> Result<Option<ChallengeGrant>, CoreError> {
        let Some(grant) = self.parts.challenges.claim(db, secret).await? else {
            return Ok(None);
        };
        if grant.id == id {
            return Ok(Some(grant));
        }
        self.parts.challenges.release(db, grant.id).await?;
        Ok(None)
    }

    /// A client sending again the request that was held (202): what became of it. The
    /// poll proves the challenge secret and the CSR's key (see [`poll_key`]).
    pub async fn poll_held(
        &self,
        db: &Database,
        challenge_id: Uuid,
        secret: &str,
        csr_der: &[u8],
    ) -> Result<PollAnswer, CoreError> {
        let Ok(csr) = parse_csr(csr_der) else {
            return Ok(PollAnswer::Unknown);
        };
        self.parts
            .requests
            .poll(
                db,
                EnrollmentChannel::Est,
                &challenge_id.to_string(),
                &poll_key(&csr, secret),
            )
            .await
    }

    /// /simpleenroll: a certificate for the CSR's key, under the client's policy (and the
    /// challenge's terms), from `ca_id`.
    pub async fn enroll(
        &self,
        db: &Database,
        client: &EstClient,
        ca_id: Uuid,
        csr_der: &[u8],
        tls: TlsFacts<'_>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Enrolled, CoreError> {
        let csr = self.checked_csr(csr_der, tls)?;
        let request = self
            .request(db, client, ca_id, KeySource::Csr(csr_der.to_vec()), &csr)
            .await?;
        let principal = client.principal();
        if let EstClient::Challenge { grant, secret } = client
            && grant.approval
        {
            // The dry run first: what the policy refuses fails now, not after approval.
            if let Err(e) = self.parts.issuer.preview(db, &principal, request).await {
                self.parts.challenges.release(db, grant.id).await?;
                return Err(e);
            }
            let subject = csr.subject.as_ref().ok().map(ToString::to_string);
            let key = poll_key(&csr, secret);
            let id = self
                .parts
                .requests
                .hold(
                    db,
                    grant,
                    HeldEnrollment {
                        channel: EnrollmentChannel::Est,
                        transaction_id: &grant.id.to_string(),
                        requester_key_sha256: &key,
                        csr_der,
                        requested_subject: subject.as_deref(),
                    },
                )
                .await?;
            tracing::info!(request_id = %id, owner_id = %grant.owner_id, challenge_id = %grant.id, "EST enrollment held for approval");
            return Ok(Enrolled::Pending);
        }
        let record = self
            .issue(db, client, &principal, request, Some(csr), rng)
            .await?;
        tracing::info!(certificate_id = %record.id, owner_id = %client.owner(), "EST enrollment issued a certificate");
        Ok(Enrolled::Issued(Box::new(record)))
    }

    /// /serverkeygen: as enroll, but the key is made here with the policy's first allowed
    /// algorithm (the CSR only names the subject and proves nothing else); it is sealed
    /// and stored like any server-made key, and handed back once, as PKCS#8.
    pub async fn server_keygen(
        &self,
        db: &Database,
        client: &EstClient,
        ca_id: Uuid,
        csr_der: &[u8],
        tls: TlsFacts<'_>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<(Zeroizing<Vec<u8>>, CertificateRecord), CoreError> {
        let csr = self.checked_csr(csr_der, tls)?;
        let algorithm = self.key_algorithms(db, client.owner()).await?[0];
        let request = self
            .request(db, client, ca_id, KeySource::Generate(algorithm), &csr)
            .await?;
        let principal = client.principal();
        if let EstClient::Challenge { grant, .. } = client
            && grant.approval
        {
            self.parts.challenges.release(db, grant.id).await?;
            return Err(CoreError::invalid(
                ErrorCode::Forbidden,
                "this challenge needs an ADMIN's approval, and a held request cannot hand back a server-made key; use simpleenroll",
            ));
        }
        // The CSR names the certificate; the key is made here, so the issuer parses nothing.
        let record = self
            .issue(db, client, &principal, request, None, rng)
            .await?;
        let key = self
            .parts
            .exports
            .pkcs8_for_delivery(db, &principal, record.id)
            .await?;
        tracing::info!(certificate_id = %record.id, owner_id = %client.owner(), "EST serverkeygen issued a certificate and key");
        Ok((key, record))
    }

    /// /simplereenroll: renews the client's TLS certificate for the CSR's key (version + 1,
    /// the old one SUPERSEDED), if KeyInfra issued that exact certificate, it is active
    /// and unexpired, and the CSR asks for the same subject and names.
    pub async fn reenroll(
        &self,
        db: &Database,
        client_certificate: Option<&[u8]>,
        csr_der: &[u8],
        tls: TlsFacts<'_>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let Some(presented) = client_certificate else {
            return Err(CoreError::Denied {
                code: ErrorCode::ClientCertificateRequired,
                detail: "simplereenroll authenticates with the TLS client certificate to renew; none was presented".into(),
            });
        };
        let current = self.issued_here(db, presented).await?;
        let Some(current) = current else {
            return Err(CoreError::Denied {
                code: ErrorCode::ClientCertificateUnknown,
                detail: "the TLS client certificate was not issued by this KeyInfra".into(),
            });
        };
        let now = self.parts.clock.now();
        let owner = match (current.status, current.owner_id) {
            (CertificateStatus::Revoked, _) => {
                return Err(CoreError::Denied {
                    code: ErrorCode::CertificateRevoked,
                    detail: "the TLS client certificate is revoked".into(),
                });
            }
            _ if current.not_after <= now => {
                return Err(CoreError::Denied {
                    code: ErrorCode::CertificateExpired,
                    detail: "the TLS client certificate has expired".into(),
                });
            }
            (CertificateStatus::Active, Some(owner)) => owner,
            (status, _) => {
                return Err(CoreError::Denied {
                    code: ErrorCode::NotRenewable,
                    detail: format!(
                        "the TLS client certificate is {} and cannot be renewed",
                        status.as_str()
                    ),
                });
            }
        };
        let csr = self.checked_csr(csr_der, tls)?;
        let principal = Principal::Enrollment {
            channel: EnrollmentChannel::Est,
            owner,
            challenge_id: None,
        };
        let renewals = &self.parts.renewals;
        let record = match asked_names(&csr, &current)? {
            None => {
                renewals
                    .renew_for_device(db, &principal, current.id, &csr.public_key_der, rng)
                    .await?
            }
            Some(names) => {
                let policy = self.parts.policies.for_owner(db, Some(owner)).await?;
                if !policy.policy.renewal_name_changes {
                    return Err(CoreError::invalid(
                        ErrorCode::NamesChanged,
                        format!(
                            "the CSR asks for other names than the certificate it renews, and policy {:?} keeps a certificate's names on renewal (renewal_name_changes); enroll anew for new names",
                            policy.policy.name
                        ),
                    ));
                }
                renewals
                    .renew_for_device_with_names(
                        db,
                        &principal,
                        current.id,
                        &csr.public_key_der,
                        names,
                        rng,
                    )
                    .await?
            }
        };
        tracing::info!(certificate_id = %record.id, renewed_from = %current.id, "EST re-enrollment renewed a certificate");
        Ok(record)
    }

    /// /csrattrs: the key algorithm the client's policy prefers (the first it allows) and,
    /// when bindings are required, challengePassword. DER, or `None` when there is nothing
    /// to ask for (204).
    pub async fn csr_attributes(
        &self,
        db: &Database,
        owner: Uuid,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        let algorithms = self.key_algorithms(db, owner).await?;
        let mut wanted = Vec::new();
        // A policy that allows every algorithm asks for nothing in particular.
        if algorithms.len() < KeyAlgorithm::ALL.len() {
            wanted.push(CsrAttr::KeyAlgorithm(algorithms[0]));
        }
        if self.parts.settings.est_channel_binding_required {
            wanted.push(CsrAttr::ChallengePassword);
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        Ok(Some(encode_csr_attrs(&wanted)?))
    }

    /// The algorithms the owner's policy allows, best first; never empty.
    async fn key_algorithms(
        &self,
        db: &Database,
        owner: Uuid,
    ) -> Result<Vec<KeyAlgorithm>, CoreError> {
        let policy = self.parts.policies.for_owner(db, Some(owner)).await?;
        let allowed: Vec<KeyAlgorithm> = KeyAlgorithm::ALL
            .into_iter()
            .filter(|a| policy.check_key_algorithm(*a).is_ok())
            .collect();
        if allowed.is_empty() {
            return Err(CoreError::invalid(
                ErrorCode::KeyAlgorithmNotAllowed,
                "the owner's policy allows no key algorithm",
            ));
        }
        Ok(allowed)
    }

    /// The CSR, parsed with its signature verified, and its channel binding checked.
    fn checked_csr(&self, csr_der: &[u8], tls: TlsFacts<'_>) -> Result<ParsedCsr, CoreError> {
        let csr = parse_csr(csr_der).map_err(pki_to_request_error)?;
        check_binding(
            csr.challenge_password.as_deref().map(String::as_str),
            tls,
            self.parts.settings.est_channel_binding_required,
        )?;
        Ok(csr)
    }

    /// The issue request: the challenge's terms when it pins them, else the CSR's subject
    /// and names with the default profile (or the policy's first).
    async fn request(
        &self,
        db: &Database,
        client: &EstClient,
        ca_id: Uuid,
        key: KeySource,
        csr: &ParsedCsr,
    ) -> Result<IssueRequest, CoreError> {
        let default_ca = self.parts.cas.default_issuing_ca(db).await?;
        let ca_id = (ca_id != default_ca).then_some(ca_id);
        let generated = matches!(key, KeySource::Generate(_));
        // A server-made key has no CSR of its own: the names come from the client's CSR.
        let csr_subject = || {
            csr.subject
                .as_ref()
                .map(ToString::to_string)
                .map_err(|e| CoreError::invalid(ErrorCode::InvalidSubject, e.to_string()))
        };
        let csr_names = || {
            csr.sans
                .as_ref()
                .map(|sans| {
                    sans.iter()
                        .map(SubjectAltName::to_tagged)
                        .collect::<Vec<_>>()
                })
                .map_err(|e| CoreError::invalid(ErrorCode::InvalidSan, e.to_string()))
        };
        Ok(match client {
            EstClient::Challenge { grant, .. } => IssueRequest {
                key,
                subject: match (&grant.subject, generated) {
                    (Some(subject), _) => Some(subject.clone()),
                    (None, true) => Some(csr_subject()?),
                    (None, false) => None,
                },
                san: match (&grant.names, generated) {
                    (Some(names), _) => Some(names.clone()),
                    (None, true) => Some(csr_names()?),
                    (None, false) => None,
                },
                profile: grant.profile.clone(),
                validity_days: grant.validity_days,
                owner_id: Some(grant.owner_id),
                ca_id,
                policy_id: None,
            },
            EstClient::User(owner) => {
                let policy = self.parts.policies.for_owner(db, Some(*owner)).await?;
                let allowed = &policy.policy.profiles;
                let profile = if allowed.is_empty() || allowed.iter().any(|p| p == DEFAULT_PROFILE)
                {
                    DEFAULT_PROFILE.to_owned()
                } else {
                    policy
                        .policy
                        .profiles
                        .first()
                        .cloned()
                        .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
                };
                IssueRequest {
                    key,
                    subject: generated.then(csr_subject).transpose()?,
                    san: generated.then(csr_names).transpose()?,
                    profile,
                    validity_days: None,
                    owner_id: Some(*owner),
                    ca_id,
                    policy_id: None,
                }
            }
        })
    }

    /// Issues; a challenge is used up by the certificate and given back by a refusal (the
    /// device may try again until it expires), as with SCEP. `csr`: the request's CSR as
    /// [`Self::checked_csr`] parsed it, so that the issuer does not parse and verify it
    /// again.
    async fn issue(
        &self,
        db: &Database,
        client: &EstClient,
        principal: &Principal,
        request: IssueRequest,
        csr: Option<ParsedCsr>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<CertificateRecord, CoreError> {
        let issuer = &self.parts.issuer;
        let issued = match csr {
            Some(csr) => {
                issuer
                    .issue_with_csr(db, principal, request, csr, rng)
                    .await
            }
            None => issuer.issue(db, principal, request, rng).await,
        };
        // The certificate's own statement linked the challenge (the principal names it).
        if let (EstClient::Challenge { grant, .. }, Err(_)) = (client, &issued) {
            self.parts.challenges.release(db, grant.id).await?;
        }
        issued
    }

    /// The record of a certificate if KeyInfra issued exactly these bytes.
    async fn issued_here(
        &self,
        db: &Database,
        der: &[u8],
    ) -> Result<Option<CertificateRecord>, CoreError> {
        let Ok(serial) = keyinfra_pki::ca::serial_of_certificate(der) else {
            return Ok(None);
        };
        // SYSTEM: the client is nobody until its certificate is found.
        let mut tx = db.begin(&Actor::System).await?;
        let found =
            keyinfra_db::certificates::find_by_serial(&mut tx, &serial.to_hex(), None).await?;
        let record = match found {
            Some(summary) => keyinfra_db::certificates::get(&mut tx, summary.id).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(record.filter(|r| r.certificate_der == der))
    }
}

/// RFC 7030 3.5 as KeyInfra applies it (module docs).
pub fn check_binding(
    challenge_password: Option<&str>,
    tls: TlsFacts<'_>,
    required: bool,
) -> Result<(), CoreError> {
    let binding =
        challenge_password.map_or(ChannelBinding::NotABinding, classify_challenge_password);
    match binding {
        ChannelBinding::TlsExporter(presented) => match tls.exporter {
            Some(session) if exporter_matches(&presented, session) => Ok(()),
            Some(_) => Err(CoreError::invalid(
                ErrorCode::ChannelBindingMismatch,
                "the CSR's tls-exporter channel binding (challengePassword) is not this TLS connection's: the CSR was made for another connection",
            )),
            None => Err(CoreError::invalid(
                ErrorCode::ChannelBindingMismatch,
                "the CSR carries a tls-exporter channel binding, which KeyInfra checks on TLS 1.3 only; connect with TLS 1.3",
            )),
        },
        ChannelBinding::TlsUnique => Err(CoreError::invalid(
            ErrorCode::ChannelBindingMismatch,
            "the CSR carries a tls-unique channel binding, which KeyInfra does not support; use TLS 1.3 and tls-exporter (RFC 9266)",
        )),
        ChannelBinding::NotABinding if required => Err(CoreError::invalid(
            ErrorCode::ChannelBindingRequired,
            "this server requires the tls-exporter channel binding (RFC 9266) in the CSR's challengePassword, over TLS 1.3",
        )),
        ChannelBinding::NotABinding => Ok(()),
    }
}

/// The names a reenroll's CSR asks for when they differ from the certificate's (`None`:
/// the same subject and the same set of SANs). Compared as parsed names, not bytes:
/// clients re-encode strings. A CSR whose names do not parse is refused.
fn asked_names(
    csr: &ParsedCsr,
    current: &CertificateRecord,
) -> Result<Option<(DistinguishedName, Vec<SubjectAltName>)>, CoreError> {
    let subject = csr
        .subject
        .clone()
        .map_err(|e| CoreError::invalid(ErrorCode::InvalidSubject, e.to_string()))?;
    let sans = csr
        .sans
        .clone()
        .map_err(|e| CoreError::invalid(ErrorCode::InvalidSan, e.to_string()))?;
    let same_subject = DistinguishedName::parse(&current.subject_dn)
        .is_ok_and(|had| had.to_string() == subject.to_string());
    let mut asked: Vec<String> = sans.iter().map(SubjectAltName::to_tagged).collect();
    let mut had: Vec<String> = current
        .subject_alt_names
        .iter()
        .filter_map(|n| SubjectAltName::parse(n).ok())
        .map(|n| n.to_tagged())
        .collect();
    asked.sort();
    had.sort();
    Ok((!same_subject || asked != had).then_some((subject, sans)))
}

/// What names a held EST request for polling: the CSR's key and the challenge secret
/// together, so that only the device holding both learns the outcome. (The challenge id
/// is the transaction id.)
fn poll_key(csr: &ParsedCsr, secret: &str) -> [u8; 32] {
    let mut input = Zeroizing::new(csr.public_key_der.clone());
    input.extend_from_slice(secret.trim().to_ascii_lowercase().as_bytes());
    keyinfra_pki::sha256_fingerprint(&input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn bindings_are_checked_on_tls13_and_refused_when_unsupported_or_required() {
        let exporter = [9u8; 32];
        let facts = TlsFacts {
            exporter: Some(&exporter),
        };
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let code = |r: Result<(), CoreError>| match r {
            Ok(()) => None,
            Err(CoreError::Invalid { code, .. }) => Some(code),
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(
            code(check_binding(Some(&b64(&exporter)), facts, true)),
            None
        );
        assert_eq!(
            code(check_binding(Some(&b64(&[8u8; 32])), facts, false)),
            Some(ErrorCode::ChannelBindingMismatch)
        );
        assert_eq!(
            code(check_binding(
                Some(&b64(&exporter)),
                TlsFacts { exporter: None },
                false
            )),
            Some(ErrorCode::ChannelBindingMismatch)
        );
        assert_eq!(
            code(check_binding(Some(&b64(&[1u8; 12])), facts, false)),
            Some(ErrorCode::ChannelBindingMismatch)
        );
        // Not a binding: ignored unless bindings are required.
        assert_eq!(code(check_binding(Some("hunter2"), facts, false)), None);
        assert_eq!(code(check_binding(None, facts, false)), None);
        assert_eq!(
            code(check_binding(None, facts, true)),
            Some(ErrorCode::ChannelBindingRequired)
        );
    }
}
