//! The SCEP service (RFC 8894): what `/scep` and `/cgi-bin/pkiclient.exe` answer.
//! Messages are read and written by `keyinfra_pki::scep`; this module decides.
//!
//! * GetCACaps: a fixed list ([`CAPABILITIES`]).
//! * GetCACert: the default issuing CA's RA certificate and the CA chain.
//! * GetNextCACert: a prepared rollover's RA and chain, signed by the current RA.
//! * PKIOperation: a pkiMessage, opened with one of the CA's RAs ([`ras`]). A PKCSReq
//!   must carry an enrollment challenge in its CSR; the challenge is claimed, and the
//!   certificate issued through [`Issuer::issue`] as `Principal::Enrollment` for the
//!   challenge's owner: that owner's policy, quota and write rate apply, and the audit
//!   log names the channel. A challenge with `approval` holds the request PENDING
//!   (`enrollment::requests`) after the policy's dry run passed; the device polls with
//!   CertPoll (or, as scepclient does, by sending its PKCSReq again) until an ADMIN
//!   decides. A RenewalReq signed with a current certificate of this CA renews it for the
//!   owner, without a challenge. GetCert answers a certificate of the CA to a device that
//!   holds its key or a current certificate of the same owner. GetCRL answers the CA's
//!   newest complete CRL to a device holding a certificate of the CA, up to 1 MiB.
//!
//! Every refusal of a readable message is a CertRep FAILURE with its failInfo, signed by
//! the RA; only a body that is no pkiMessage at all is an HTTP 400. A refused enrollment
//! writes one audit event with the subject the device asked for, never the challenge.

pub mod ras;

use std::sync::Arc;

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::{Actor, Database};
use keyinfra_pki::RandomSource;
use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::scep::envelope::{self, EnvelopeError, Opened, RaKey};
use keyinfra_pki::scep::reply::{self, Delivery, Outcome};
use keyinfra_pki::scep::{
    FailInfo, MessageType, PkiMessage, ReplyTo, ScepError, ScepLimits, certs_only,
    read_certificate_id, read_poll_for,
};
use serde_json::json;
use uuid::Uuid;

use crate::Clock;
use crate::ca_registry::CaRegistry;
use crate::crl::CrlPublisher;
use crate::enrollment::{
    ChallengeGrant, Challenges, EnrollmentRequests, HeldEnrollment, PollAnswer,
};
use crate::error::CoreError;
use crate::issuer::{IssueRequest, Issuer, KeySource};
use crate::principal::{EnrollmentChannel, Principal};
use crate::renewal::Renewals;

pub use ras::ActiveRas;
use ras::RegistrationAuthorities;

/// GetCACaps' answer, one capability per line. SHA-384 and DES3 are listed although
/// SHA-256 and AES would do: strongSwan 5.9.8 (Debian's) misreads the list by position
/// and refuses SHA-256, AES and Renewal unless SHA-384 or DES3 is there too (fixed in
/// strongSwan 5.9.11).
pub const CAPABILITIES: &str = "GetNextCACert\nPOSTPKIOperation\nSHA-1\nSHA-256\nSHA-384\nSHA-512\nAES\nDES3\nSCEPStandard\nRenewal\n";

/// What a PKIOperation body gets.
#[derive(Debug)]
pub enum PkiOperationAnswer {
    /// A CertRep (application/x-pki-message): SUCCESS, FAILURE or PENDING.
    CertRep(Vec<u8>),
    /// Not a pkiMessage: HTTP 400, with this reason.
    Unreadable(&'static str),
}

/// Refusals of devices that presented no valid challenge, audited per minute and replica:
/// anyone can send those, and each would otherwise be a row in the append-only audit log.
/// Past the cap they are counted in `keyinfra_scep_refusals_unaudited_total` and logged.
const ANONYMOUS_REFUSAL_AUDITS_PER_MINUTE: u32 = 60;

/// The longest CRL GetCRL delivers (about 20,000 entries); longer ones are fetched from
/// the CRL distribution point.
const MAX_GETCRL_BYTES: usize = 1 << 20;

/// How one PKIOperation ended, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Issued,
    Refused,
    Delivered,
    Pending,
}

impl Ending {
    fn label(self) -> &'static str {
        match self {
            Ending::Issued => "issued",
            Ending::Refused => "refused",
            Ending::Delivered => "delivered",
            Ending::Pending => "pending",
        }
    }
}

#[derive(Debug)]
pub struct ScepService {
    clock: Arc<dyn Clock>,
    cas: Arc<CaRegistry>,
    issuer: Arc<Issuer>,
    challenges: Arc<Challenges>,
    requests: Arc<EnrollmentRequests>,
    crls: Arc<CrlPublisher>,
    renewals: Arc<Renewals>,
    ras: RegistrationAuthorities,
    limits: ScepLimits,
    /// This minute's audits of refusals without a challenge.
    anonymous_audits: MinuteBudget,
}

/// The use cases SCEP drives, as the composition root hands them over.
pub(crate) struct ScepParts {
    pub clock: Arc<dyn Clock>,
    pub masters: Arc<keyinfra_pki::seal::MasterKeys>,
    pub cas: Arc<CaRegistry>,
    pub issuer: Arc<Issuer>,
    pub challenges: Arc<Challenges>,
    pub requests: Arc<EnrollmentRequests>,
    pub crls: Arc<CrlPublisher>,
    pub renewals: Arc<Renewals>,
}

impl ScepService {
    pub(crate) fn new(parts: ScepParts) -> Self {
        let ScepParts {
            clock,
            masters,
            cas,
            issuer,
            challenges,
            requests,
            crls,
            renewals,
        } = parts;
        Self {
            ras: RegistrationAuthorities::new(masters, Arc::clone(&clock), Arc::clone(&cas)),
            clock,
            cas,
            issuer,
            challenges,
            requests,
            crls,
            renewals,
            limits: ScepLimits::default(),
            anonymous_audits: MinuteBudget::new(ANONYMOUS_REFUSAL_AUDITS_PER_MINUTE),
        }
    }

    /// The largest PKIOperation body read.
    pub fn max_message_bytes(&self) -> usize {
        self.limits.max_bytes
    }

    /// The CA SCEP enrolls under: the default issuing CA.
    async fn ca(&self, db: &Database) -> Result<Uuid, CoreError> {
        self.cas.default_issuing_ca(db).await
    }

    /// GetCACert: a degenerate SignedData with the RA certificate and the CA chain (the
    /// issuing CA up to its root). Only the newest RA: scepclient encrypts to every
    /// certificate it is given that is not a CA.
    pub async fn ca_certificates(
        &self,
        db: &Database,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Vec<u8>, CoreError> {
        let ca_id = self.ca(db).await?;
        let ras = self.ras.current(db, ca_id, rng).await?;
        let ra = ras
            .newest()
            .ok_or_else(|| CoreError::Internal("no SCEP RA".into()))?;
        let ca = self.cas.signer(db, ca_id).await?;
        let mut certificates: Vec<&[u8]> = vec![ra.certificate_der()];
        certificates.extend(ca.chain.iter().map(Vec::as_slice));
        Ok(certs_only(&certificates)?)
    }

    /// GetNextCACert: when a CA rollover is prepared (an issuing CA whose validity starts
    /// in the future, `CaRegistry::next_issuing_ca`), that CA's RA certificate and chain,
    /// signed by the current RA; None when none is prepared.
    pub async fn next_ca_certificates(
        &self,
        db: &Database,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Option<Vec<u8>>, CoreError> {
        let Some(next_id) = self.cas.next_issuing_ca(db).await? else {
            return Ok(None);
        };
        let current_ras = self.ras.current(db, self.ca(db).await?, rng).await?;
        let current = current_ras
            .newest()
            .ok_or_else(|| CoreError::Internal("no SCEP RA".into()))?;
        let next_ras = self.ras.current(db, next_id, rng).await?;
        let next_ra = next_ras
            .newest()
            .ok_or_else(|| CoreError::Internal("no SCEP RA for the next CA".into()))?;
        let next = self.cas.signer(db, next_id).await?;
        let mut certificates: Vec<&[u8]> = vec![next_ra.certificate_der()];
        certificates.extend(next.chain.iter().map(Vec::as_slice));
        Ok(Some(keyinfra_pki::scep::next_ca_certificates(
            current,
            &certificates,
            self.clock.now(),
        )?))
    }

    /// Makes a new RA for the default issuing CA when its newest has less than
    /// [`ras::RENEW_BEFORE`] left, and deletes RAs that expired a week ago (the `scep-ras`
    /// job). True when it made one.
    pub async fn renew_ra(
        &self,
        db: &Database,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<bool, CoreError> {
        let ca_id = self.ca(db).await?;
        let made = self.ras.ensure(db, ca_id, ras::RENEW_BEFORE, rng).await?;
        let mut tx = db.begin(&Actor::System).await?;
        keyinfra_db::scep::delete_expired_ras(&mut tx, self.clock.now() - time::Duration::days(7))
            .await?;
        tx.commit().await?;
        Ok(made)
    }

    /// PKIOperation: reads, checks and answers one pkiMessage.
    pub async fn pki_operation(
        &self,
        db: &Database,
        body: &[u8],
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<PkiOperationAnswer, CoreError> {
        // The cheap parse first: a body that is no pkiMessage costs no database work.
        let parsed = PkiMessage::parse(body, self.limits);
        if let Err(ScepError::Unreadable(reason)) = parsed {
            count("unreadable");
            return Ok(PkiOperationAnswer::Unreadable(reason));
        }
        let ca_id = self.ca(db).await?;
        let ras = self.ras.current(db, ca_id, rng).await?;
        let newest = ras
            .newest()
            .ok_or_else(|| CoreError::Internal("no SCEP RA".into()))?;
        let message = match parsed {
            Ok(message) => message,
            Err(ScepError::Refused {
                reply_to,
                fail_info,
                reason,
            }) => {
                tracing::info!(transaction_id = %reply_to.transaction_id, reason, "SCEP request refused");
                return self.failure(newest, &reply_to, fail_info, rng);
            }
            Err(ScepError::Unreadable(reason)) => {
                return Ok(PkiOperationAnswer::Unreadable(reason));
            }
        };
        let reply_to = message.reply_to.clone();
        let Some(sealed) = message.envelope.as_deref() else {
            return self.failure(newest, &reply_to, FailInfo::BadRequest, rng);
        };
        // The envelope names its RA: any of the CA's valid ones (a device may hold an
        // older RA certificate than the newest).
        let mut opened = Err(EnvelopeError::WrongRecipient);
        let mut signer = newest;
        for ra in &ras.ras {
            opened = envelope::open(sealed, ra);
            if !matches!(opened, Err(EnvelopeError::WrongRecipient)) {
                signer = ra;
                break;
            }
        }
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => {
                tracing::info!(transaction_id = %reply_to.transaction_id, reason = %e, "SCEP envelope refused");
                let fail_info = match e {
                    EnvelopeError::UnsupportedCipher => FailInfo::BadAlg,
                    _ => FailInfo::BadMessageCheck,
                };
                return self.failure(signer, &reply_to, fail_info, rng);
            }
        };
        let (outcome, ending) = match message.message_type {
            // A PKCSReq signed with a certificate of this CA is how certmonger (and older
            // Cisco IOS) renew: a RenewalReq by another name.
            MessageType::PkcsReq
                if self.signed_with_ca_certificate(db, ca_id, &message).await? =>
            {
                self.renew(db, ca_id, &message, &opened, rng).await?
            }
            MessageType::PkcsReq => self.enroll(db, &message, &opened, rng).await?,
            MessageType::RenewalReq => self.renew(db, ca_id, &message, &opened, rng).await?,
            MessageType::GetCrl => self.crl(db, ca_id, &message).await?,
            MessageType::CertPoll => self.poll(db, &message, &opened).await?,
            MessageType::GetCert => self.certificate(db, ca_id, &message, &opened).await?,
            // A CertRep is never a request.
            MessageType::CertRep => (Reply::Failure(FailInfo::BadRequest), Ending::Refused),
        };
        count(ending.label());
        let outcome = match &outcome {
            Reply::Failure(fail_info) => Outcome::Failure(*fail_info),
            Reply::Pending => Outcome::Pending,
            Reply::Certificate(der) => Outcome::Success {
                delivery: Delivery::Certificate(der),
                recipient: &message.signer_certificate,
                cipher: opened.cipher,
            },
            Reply::Crl(der) => Outcome::Success {
                delivery: Delivery::Crl(der),
                recipient: &message.signer_certificate,
                cipher: opened.cipher,
            },
        };
        Ok(PkiOperationAnswer::CertRep(reply::cert_rep(
            signer,
            &reply_to,
            outcome,
            self.clock.now(),
            rng,
        )?))
    }

    fn failure(
        &self,
        ra: &RaKey,
        reply_to: &ReplyTo,
        fail_info: FailInfo,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<PkiOperationAnswer, CoreError> {
        count(Ending::Refused.label());
        Ok(PkiOperationAnswer::CertRep(reply::cert_rep(
            ra,
            reply_to,
            Outcome::Failure(fail_info),
            self.clock.now(),
            rng,
        )?))
    }

    /// GetCRL: the CA's newest complete CRL, for a device holding a certificate of this
    /// CA (RFC 8894 3.3.4: the request is signed with it), and only while the CRL is small
    /// enough to carry in a message: a long one travels from its distribution point, not
    /// through a decrypt-and-encrypt for whoever asks.
    async fn crl(
        &self,
        db: &Database,
        ca_id: Uuid,
        message: &PkiMessage,
    ) -> Result<(Reply, Ending), CoreError> {
        let refuse = |fail_info| Ok((Reply::Failure(fail_info), Ending::Refused));
        if self.issued_here(db, ca_id, message).await?.is_none() {
            return refuse(FailInfo::BadCertId);
        }
        let crl = self.crls.latest_crl(db, ca_id).await?;
        if crl.crl_der.len() > MAX_GETCRL_BYTES {
            tracing::info!(
                bytes = crl.crl_der.len(),
                "SCEP GetCRL refused: the CRL is longer than a SCEP reply carries"
            );
            return refuse(FailInfo::BadRequest);
        }
        Ok((Reply::Crl(crl.crl_der), Ending::Delivered))
    }

    /// PKCSReq: the challenge in the CSR decides who the device enrolls for.
    async fn enroll(
        &self,
        db: &Database,
        message: &PkiMessage,
        opened: &Opened,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<(Reply, Ending), CoreError> {
        let refused = || Ok((Reply::Failure(FailInfo::BadRequest), Ending::Refused));
        let Ok(csr) = parse_csr(&opened.content) else {
            self.audit_refusal(db, message, None, None, "the CSR is invalid")
                .await?;
            return refused();
        };
        let claimed_subject = csr.subject.as_ref().ok().map(|s| s.to_string());
        // RFC 8894 3.3.1: a PKCSReq is signed with the key it asks to certify.
        if csr.public_key_der != message.signer_spki {
            self.audit_refusal(
                db,
                message,
                claimed_subject.as_deref(),
                None,
                "the message is not signed with the CSR's key",
            )
            .await?;
            return refused();
        }
        let grant = match csr.challenge_password.as_deref() {
            Some(secret) => self.challenges.claim(db, secret).await?,
            None => None,
        };
        let Some(grant) = grant else {
            // scepclient polls by sending its PKCSReq again: a held request answers it.
            let held = self
                .requests
                .poll(
                    db,
                    EnrollmentChannel::Scep,
                    &message.reply_to.transaction_id,
                    &key_hash(message),
                )
                .await?;
            if held != PollAnswer::Unknown {
                return Ok(poll_reply(held));
            }
            self.audit_refusal(
                db,
                message,
                claimed_subject.as_deref(),
                None,
                "no valid enrollment challenge",
            )
            .await?;
            return refused();
        };
        let principal = Principal::Enrollment {
            channel: EnrollmentChannel::Scep,
            owner: grant.owner_id,
            challenge_id: Some(grant.id),
        };
        let request = IssueRequest {
            key: KeySource::Csr(opened.content.to_vec()),
            // A challenge that pins names gives the device exactly those.
            subject: grant.subject.clone(),
            san: grant.names.clone(),
            profile: grant.profile.clone(),
            validity_days: grant.validity_days,
            owner_id: Some(grant.owner_id),
            ca_id: None,
            policy_id: None,
        };
        if grant.approval {
            return self
                .hold(db, message, &grant, &principal, request, claimed_subject)
                .await;
        }
        match self.issuer.issue(db, &principal, request, rng).await {
            // The certificate's own statement linked the challenge (the principal names it).
            Ok(record) => {
                tracing::info!(
                    certificate_id = %record.id,
                    owner_id = %grant.owner_id,
                    challenge_id = %grant.id,
                    "SCEP enrollment issued a certificate"
                );
                Ok((Reply::Certificate(record.certificate_der), Ending::Issued))
            }
            Err(e) => {
                // The challenge is not used up by a refused or failed issue: the device (or
                // its operator, after fixing the request) may try again until it expires.
                self.challenges.release(db, grant.id).await?;
                if is_refusal(&e) {
                    self.audit_refusal(
                        db,
                        message,
                        claimed_subject.as_deref(),
                        Some(&grant),
                        &e.to_string(),
                    )
                    .await?;
                    refused()
                } else {
                    Err(e)
                }
            }
        }
    }

    /// A PKCSReq whose challenge asks for approval: the policy's dry run first (a request
    /// the policy refuses fails now, not after someone approved it), then the request is
    /// held and the device told PENDING.
    async fn hold(
        &self,
        db: &Database,
        message: &PkiMessage,
        grant: &ChallengeGrant,
        principal: &Principal,
        request: IssueRequest,
        claimed_subject: Option<String>,
    ) -> Result<(Reply, Ending), CoreError> {
        let csr_der = match &request.key {
            KeySource::Csr(der) => der.clone(),
            KeySource::Generate { .. } => {
                return Err(CoreError::Internal("a SCEP request carries a CSR".into()));
            }
        };
        if let Err(e) = self.issuer.preview(db, principal, request).await {
            self.challenges.release(db, grant.id).await?;
            if !is_refusal(&e) {
                return Err(e);
            }
            self.audit_refusal(
                db,
                message,
                claimed_subject.as_deref(),
                Some(grant),
                &e.to_string(),
            )
            .await?;
            return Ok((Reply::Failure(FailInfo::BadRequest), Ending::Refused));
        }
        let id = self
            .requests
            .hold(
                db,
                grant,
                HeldEnrollment {
                    channel: EnrollmentChannel::Scep,
                    transaction_id: &message.reply_to.transaction_id,
                    requester_key_sha256: &key_hash(message),
                    csr_der: &csr_der,
                    requested_subject: claimed_subject.as_deref(),
                },
            )
            .await?;
        tracing::info!(
            request_id = %id,
            owner_id = %grant.owner_id,
            challenge_id = %grant.id,
            "SCEP enrollment held for approval"
        );
        Ok((Reply::Pending, Ending::Pending))
    }

    /// CertPoll (GetCertInitial): what became of the held request with this transaction
    /// id, asked with the key that made it.
    async fn poll(
        &self,
        db: &Database,
        message: &PkiMessage,
        opened: &Opened,
    ) -> Result<(Reply, Ending), CoreError> {
        if read_poll_for(&opened.content).is_none() {
            return Ok((Reply::Failure(FailInfo::BadRequest), Ending::Refused));
        }
        let answer = self
            .requests
            .poll(
                db,
                EnrollmentChannel::Scep,
                &message.reply_to.transaction_id,
                &key_hash(message),
            )
            .await?;
        Ok(poll_reply(answer))
    }

    /// GetCert: a certificate of this CA, by issuer and serial, for a device that holds
    /// its key, or holds a current certificate of this CA with the same owner. Anyone else
    /// gets badCertId, as for a serial that does not exist.
    async fn certificate(
        &self,
        db: &Database,
        ca_id: Uuid,
        message: &PkiMessage,
        opened: &Opened,
    ) -> Result<(Reply, Ending), CoreError> {
        let refuse = |fail_info| Ok((Reply::Failure(fail_info), Ending::Refused));
        let Some(asked) = read_certificate_id(&opened.content) else {
            return refuse(FailInfo::BadRequest);
        };
        let mut tx = db.begin(&Actor::System).await?;
        let found =
            keyinfra_db::certificates::find_by_serial(&mut tx, &asked.serial.to_hex(), Some(ca_id))
                .await?;
        let wanted = match found {
            Some(summary) => keyinfra_db::certificates::get(&mut tx, summary.id).await?,
            None => None,
        };
        tx.commit().await?;
        let Some(wanted) = wanted else {
            return refuse(FailInfo::BadCertId);
        };
        if keyinfra_pki::ca::issuer_of_certificate(&wanted.certificate_der)? != asked.issuer_der {
            return refuse(FailInfo::BadCertId);
        }
        let own_key = keyinfra_pki::ca::public_key_of_certificate(&wanted.certificate_der)?
            == message.signer_spki;
        let same_owner = || async {
            let signer = self.issued_here(db, ca_id, message).await?;
            Ok::<_, CoreError>(signer.is_some_and(|s| {
                s.owner_id.is_some()
                    && s.owner_id == wanted.owner_id
                    && s.status == keyinfra_db::CertificateStatus::Active
                    && s.not_after > self.clock.now()
            }))
        };
        if own_key || same_owner().await? {
            Ok((
                Reply::Certificate(wanted.certificate_der),
                Ending::Delivered,
            ))
        } else {
            refuse(FailInfo::BadCertId)
        }
    }

    /// RenewalReq: signed with a current certificate this CA issued, it renews that
    /// certificate for the device's CSR key (RFC 8894 3.3.1.2); no challenge. The renewal
    /// is the owner's, under the owner's current policy (`Renewals::renew_for_device`).
    async fn renew(
        &self,
        db: &Database,
        ca_id: Uuid,
        message: &PkiMessage,
        opened: &Opened,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<(Reply, Ending), CoreError> {
        let refuse = |fail_info| Ok((Reply::Failure(fail_info), Ending::Refused));
        let Ok(csr) = parse_csr(&opened.content) else {
            self.audit_refusal(db, message, None, None, "the CSR is invalid")
                .await?;
            return refuse(FailInfo::BadRequest);
        };
        let claimed_subject = csr.subject.as_ref().ok().map(|s| s.to_string());
        let current = self.issued_here(db, ca_id, message).await?;
        let Some(current) = current else {
            self.audit_refusal(
                db,
                message,
                claimed_subject.as_deref(),
                None,
                "the signer's certificate was not issued by this CA",
            )
            .await?;
            return refuse(FailInfo::BadCertId);
        };
        let (Some(owner), true, true) = (
            current.owner_id,
            current.status == keyinfra_db::CertificateStatus::Active,
            current.not_after > self.clock.now(),
        ) else {
            self.audit_refusal(
                db,
                message,
                claimed_subject.as_deref(),
                None,
                &format!(
                    "the signer's certificate is {} (not an owned, unexpired, active one)",
                    current.status.as_str()
                ),
            )
            .await?;
            return refuse(FailInfo::BadRequest);
        };
        let principal = Principal::Enrollment {
            channel: EnrollmentChannel::Scep,
            owner,
            challenge_id: None,
        };
        match self
            .renewals
            .renew_for_device(db, &principal, current.id, &csr.public_key_der, rng)
            .await
        {
            Ok(record) => {
                tracing::info!(
                    certificate_id = %record.id,
                    renewed_from = %current.id,
                    "SCEP renewal issued a certificate"
                );
                Ok((Reply::Certificate(record.certificate_der), Ending::Issued))
            }
            Err(e) if is_refusal(&e) => {
                let mut tx = db.begin(&principal.actor()).await?;
                audit_refusal_in(
                    &mut tx,
                    message,
                    claimed_subject.as_deref(),
                    Some(owner),
                    None,
                    &e.to_string(),
                )
                .await?;
                tx.commit().await?;
                refuse(FailInfo::BadRequest)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the message's signer certificate names this CA as its issuer (a device's
    /// self-signed certificate names itself). Only a name comparison: `renew` then finds
    /// the certificate and checks it byte for byte.
    async fn signed_with_ca_certificate(
        &self,
        db: &Database,
        ca_id: Uuid,
        message: &PkiMessage,
    ) -> Result<bool, CoreError> {
        let Ok(issuer) = keyinfra_pki::ca::issuer_of_certificate(&message.signer_certificate)
        else {
            return Ok(false);
        };
        let ca = self.cas.signer(db, ca_id).await?;
        let Some(ca_certificate) = ca.chain.first() else {
            return Ok(false);
        };
        let ca_subject = keyinfra_pki::ca::inspect_ca_certificate(ca_certificate)?.subject_raw;
        Ok(issuer == ca_subject)
    }

    /// The record of the message's signer certificate if this CA issued it (found by
    /// serial, and the stored bytes are the same).
    async fn issued_here(
        &self,
        db: &Database,
        ca_id: Uuid,
        message: &PkiMessage,
    ) -> Result<Option<keyinfra_db::certificates::CertificateRecord>, CoreError> {
        let der = &message.signer_certificate;
        let Some(serial) = message.signer_serial() else {
            return Ok(None);
        };
        // SYSTEM: the device is nobody until its certificate is found.
        let mut tx = db.begin(&Actor::System).await?;
        let found =
            keyinfra_db::certificates::find_by_serial(&mut tx, &serial.to_hex(), Some(ca_id))
                .await?;
        let record = match found {
            Some(summary) => keyinfra_db::certificates::get(&mut tx, summary.id).await?,
            None => None,
        };
        tx.commit().await?;
        Ok(record.filter(|r| &r.certificate_der == der))
    }

    /// One audit event for a refused enrollment: what the device asked for and why, and
    /// the challenge's id when one was presented; never the challenge itself.
    async fn audit_refusal(
        &self,
        db: &Database,
        message: &PkiMessage,
        subject: Option<&str>,
        grant: Option<&ChallengeGrant>,
        reason: &str,
    ) -> Result<(), CoreError> {
        if grant.is_none() && !self.anonymous_audits.take(self.clock.now()) {
            metrics::counter!("keyinfra_scep_refusals_unaudited_total").increment(1);
            tracing::warn!(
                transaction_id = %message.reply_to.transaction_id,
                reason,
                "SCEP refusal not audited: over the per-minute cap for unauthenticated refusals"
            );
            return Ok(());
        }
        let actor = grant.map_or(Actor::Anonymous, |g| Actor::User {
            id: g.owner_id,
            role: keyinfra_db::UserRole::User,
        });
        let mut tx = db.begin(&actor).await?;
        audit_refusal_in(
            &mut tx,
            message,
            subject,
            grant.map(|g| g.owner_id),
            grant.map(|g| g.id),
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// At most `per_minute` of something per calendar minute (of the Clock).
#[derive(Debug)]
struct MinuteBudget {
    per_minute: u32,
    /// The current minute and how many were taken in it.
    window: std::sync::Mutex<(i64, u32)>,
}

impl MinuteBudget {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            window: std::sync::Mutex::new((i64::MIN, 0)),
        }
    }

    fn take(&self, now: time::OffsetDateTime) -> bool {
        let minute = now.unix_timestamp().div_euclid(60);
        let Ok(mut window) = self.window.lock() else {
            return false;
        };
        if window.0 != minute {
            *window = (minute, 0);
        }
        window.1 = window.1.saturating_add(1);
        window.1 <= self.per_minute
    }
}

/// The audit event of a refused enrollment or renewal, in `tx`.
async fn audit_refusal_in(
    tx: &mut keyinfra_db::Tx,
    message: &PkiMessage,
    subject: Option<&str>,
    owner_id: Option<Uuid>,
    challenge_id: Option<Uuid>,
    reason: &str,
) -> Result<(), CoreError> {
    audit::append(
        tx,
        &NewAuditEvent {
            actor_id: None,
            actor_name: Some(EnrollmentChannel::Scep.label()),
            action: AuditAction::EnrollmentRefused,
            target_type: challenge_id.map(|_| "enrollment_challenge"),
            target_id: challenge_id,
            details: json!({
                "channel": EnrollmentChannel::Scep.label(),
                "message_type": message.message_type.name(),
                "transaction_id": message.reply_to.transaction_id,
                "subject": subject,
                "owner_id": owner_id,
                "reason": reason,
            }),
        },
    )
    .await?;
    Ok(())
}

/// What one PKIOperation answers, before it is sealed and signed.
enum Reply {
    Certificate(Vec<u8>),
    Crl(Vec<u8>),
    Failure(FailInfo),
    Pending,
}

/// A refusal the device caused (a 4xx on the REST API), as opposed to the server's own
/// trouble (busy, a database failure), which is an HTTP error the device retries.
fn is_refusal(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Forbidden
            | CoreError::Denied { .. }
            | CoreError::NotFound(_)
            | CoreError::Conflict { .. }
            | CoreError::Invalid { .. }
            | CoreError::RateLimited(_)
            | CoreError::Pki(_)
    )
}

/// The SHA-256 of the key that signed a message: with the transaction id, it names a
/// held request.
fn key_hash(message: &PkiMessage) -> [u8; 32] {
    keyinfra_pki::sha256_fingerprint(&message.signer_spki)
}

/// What a poll (CertPoll, or a PKCSReq sent again) of a held request answers.
fn poll_reply(answer: PollAnswer) -> (Reply, Ending) {
    match answer {
        PollAnswer::Pending => (Reply::Pending, Ending::Pending),
        PollAnswer::Issued(der) => (Reply::Certificate(der), Ending::Delivered),
        PollAnswer::Refused => (Reply::Failure(FailInfo::BadRequest), Ending::Refused),
        PollAnswer::Unknown => (Reply::Failure(FailInfo::BadCertId), Ending::Refused),
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("keyinfra_scep_operations_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_budget_refuses_past_its_cap_and_refills_next_minute() {
        let budget = MinuteBudget::new(3);
        let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap();
        let start = 1_800_000_000i64.div_euclid(60) * 60 - 1_800_000_000 + 60;
        assert!((0..3).all(|_| budget.take(at(start))));
        assert!(!budget.take(at(start + 59)));
        assert!(budget.take(at(start + 60)));
    }
}
