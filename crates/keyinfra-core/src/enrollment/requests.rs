//! Enrollments that wait for an ADMIN (issue 19): a device presented a challenge created
//! with `approval`. The request is held PENDING ([`EnrollmentRequests::hold`]); an ADMIN
//! approves it, which issues the certificate under the challenge owner's policy exactly
//! as the enrollment would have without approval, or rejects it; the device polls with
//! the same transaction id and key ([`EnrollmentRequests::poll`]) and collects the
//! certificate or the refusal.
//!
//! A pending request expires [`PENDING_LIFETIME`] after it was made: it can no longer be
//! approved, and a poll is refused. An approval is recorded before the certificate is
//! issued, so two ADMINs approving at once issue once; an approval that has no certificate
//! [`STALE_APPROVAL`] later (its replica stopped in between) may be approved again.

use std::sync::Arc;

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::enrollment_requests::{
    self as store, NewRequest, RequestFilter, RequestRecord, RequestStatus,
};
use keyinfra_db::{Actor, Database};
use keyinfra_pki::RandomSource;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::ChallengeGrant;
use super::challenges::{stored_days, stored_names};
use crate::error::CoreError;
use crate::issuer::{IssueRequest, Issuer, KeySource};
use crate::principal::{EnrollmentChannel, Principal};
use crate::{Clock, ErrorCode};

/// How long a request may wait for a decision.
pub const PENDING_LIFETIME: Duration = Duration::days(7);
/// How long an approval without a certificate is left alone before it may be retried.
pub const STALE_APPROVAL: Duration = Duration::minutes(5);

/// A request's state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Approved,
    Rejected,
    /// Pending past [`PENDING_LIFETIME`]: nobody decided in time.
    Expired,
}

impl RequestState {
    pub const ALL: [RequestState; 4] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Rejected,
        RequestState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == label)
    }
}

/// A request as listed: never the CSR's bytes, which say nothing a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRequestView {
    pub id: Uuid,
    pub challenge_id: Uuid,
    pub owner_id: Uuid,
    pub channel: String,
    pub transaction_id: String,
    /// The subject in the device's CSR.
    pub requested_subject: Option<String>,
    /// The challenge's terms, which the approval issues under.
    pub profile: String,
    pub validity_days: Option<u32>,
    pub subject: Option<String>,
    pub names: Option<Vec<String>>,
    pub state: RequestState,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    pub decided_by: Option<Uuid>,
    pub reason: Option<String>,
    pub certificate_id: Option<Uuid>,
}

/// What a device's poll learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollAnswer {
    /// No request with that transaction id from that key.
    Unknown,
    Pending,
    /// Rejected, or expired undecided.
    Refused,
    /// Approved: the certificate, DER.
    Issued(Vec<u8>),
}

/// What a device asked for, to hold.
#[derive(Debug, Clone, Copy)]
pub struct HeldEnrollment<'a> {
    pub channel: EnrollmentChannel,
    pub transaction_id: &'a str,
    /// SHA-256 of the SubjectPublicKeyInfo that signed the request.
    pub requester_key_sha256: &'a [u8; 32],
    pub csr_der: &'a [u8],
    pub requested_subject: Option<&'a str>,
}

/// The request use cases.
#[derive(Debug)]
pub struct EnrollmentRequests {
    clock: Arc<dyn Clock>,
    issuer: Arc<Issuer>,
}

impl EnrollmentRequests {
    pub(crate) fn new(clock: Arc<dyn Clock>, issuer: Arc<Issuer>) -> Self {
        Self { clock, issuer }
    }

    /// For a protocol handler: holds a device's request, made with a claimed challenge
    /// that asks for approval, until an ADMIN decides. Written as the challenge's owner
    /// (the device acts for them), with an `enrollment.pending` audit event.
    pub async fn hold(
        &self,
        db: &Database,
        grant: &ChallengeGrant,
        held: HeldEnrollment<'_>,
    ) -> Result<Uuid, CoreError> {
        let principal = Principal::Enrollment {
            channel: held.channel,
            owner: grant.owner_id,
            // Held, not issued: the approval's issue links the challenge.
            challenge_id: None,
        };
        let validity_days = grant
            .validity_days
            .map(|d| i32::try_from(d).map_err(|_| CoreError::Internal("validity_days".into())))
            .transpose()?;
        let names = grant.names.as_ref().map(|n| json!(n));
        let now = self.clock.now();
        let mut tx = db.begin(&principal.actor()).await?;
        let id = store::insert(
            &mut tx,
            &NewRequest {
                challenge_id: grant.id,
                owner_id: grant.owner_id,
                channel: held.channel.label(),
                transaction_id: held.transaction_id,
                requester_key_sha256: held.requester_key_sha256,
                csr_der: held.csr_der,
                requested_subject: held.requested_subject,
                profile: &grant.profile,
                validity_days,
                subject: grant.subject.as_deref(),
                names: names.as_ref(),
                created_at: now,
            },
        )
        .await?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: None,
                actor_name: Some(held.channel.label()),
                action: AuditAction::EnrollmentPending,
                target_type: Some("enrollment_request"),
                target_id: Some(id),
                details: json!({
                    "channel": held.channel.label(),
                    "challenge_id": grant.id,
                    "owner_id": grant.owner_id,
                    "transaction_id": held.transaction_id,
                    "subject": held.requested_subject,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// For a protocol handler: what the request with this transaction id, made with this
    /// key, has come to. SYSTEM: the device proved the key by signing the poll, and the
    /// transaction id and key together name only its own request.
    pub async fn poll(
        &self,
        db: &Database,
        channel: EnrollmentChannel,
        transaction_id: &str,
        requester_key_sha256: &[u8; 32],
    ) -> Result<PollAnswer, CoreError> {
        let now = self.clock.now();
        let mut tx = db.begin(&Actor::System).await?;
        let found = store::find_for_poll(
            &mut tx,
            channel.label(),
            transaction_id,
            requester_key_sha256,
        )
        .await?;
        let answer = match found {
            None => PollAnswer::Unknown,
            Some(request) => match (state(&request, now), request.certificate_id) {
                (RequestState::Approved, Some(certificate_id)) => {
                    match keyinfra_db::certificates::get(&mut tx, certificate_id).await? {
                        Some(certificate) => PollAnswer::Issued(certificate.certificate_der),
                        // Retention removed it (years later): nothing to deliver.
                        None => PollAnswer::Refused,
                    }
                }
                // Being issued right now (or its replica stopped): ask again later.
                (RequestState::Approved, None) | (RequestState::Pending, _) => PollAnswer::Pending,
                (RequestState::Rejected | RequestState::Expired, _) => PollAnswer::Refused,
            },
        };
        tx.commit().await?;
        Ok(answer)
    }

    /// The caller's devices' requests, or everyone's for an ADMIN, newest first.
    pub async fn list(
        &self,
        db: &Database,
        by: &Principal,
        mut filter: RequestFilter,
        state_filter: Option<RequestState>,
        limit: i64,
    ) -> Result<Vec<EnrollmentRequestView>, CoreError> {
        if !by.is_admin() {
            match filter.owner_id {
                Some(owner) if Some(owner) != by.user_id() => return Ok(Vec::new()),
                _ => filter.owner_id = by.user_id(),
            }
        }
        // Expired is pending by status and older than PENDING_LIFETIME: the query tells
        // them apart, so that a page holds `limit` of what was asked for.
        let now = self.clock.now();
        let cutoff = now - PENDING_LIFETIME;
        filter.status = state_filter.map(|s| match s {
            RequestState::Pending | RequestState::Expired => RequestStatus::Pending,
            RequestState::Approved => RequestStatus::Approved,
            RequestState::Rejected => RequestStatus::Rejected,
        });
        match state_filter {
            Some(RequestState::Pending) => filter.created_after = Some(cutoff),
            Some(RequestState::Expired) => filter.created_until = Some(cutoff),
            _ => {}
        }
        let mut tx = db.begin(&by.actor()).await?;
        let rows = store::list(&mut tx, &filter, limit).await?;
        tx.commit().await?;
        rows.into_iter().map(|r| view(r, now)).collect()
    }

    /// One request (404 for one the caller may not see).
    pub async fn get(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
    ) -> Result<EnrollmentRequestView, CoreError> {
        let mut tx = db.begin(&by.actor()).await?;
        let found = store::get(&mut tx, id, false).await?;
        tx.commit().await?;
        let request = found.ok_or(CoreError::NotFound("enrollment request"))?;
        view(request, self.clock.now())
    }

    /// ADMIN: approves a pending request and issues its certificate, for the challenge's
    /// owner under the owner's policy (through the one issuer, so the quota, the write
    /// rate and the audit apply as to any enrollment). A refused issue leaves the request
    /// pending and answers the refusal, so the ADMIN sees why (and may reject it).
    pub async fn approve(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<EnrollmentRequestView, CoreError> {
        by.require_admin()?;
        let now = self.clock.now();
        // Take the decision first, under the row lock: a second ADMIN now sees it decided.
        let mut tx = db.begin(&by.actor()).await?;
        let request = decidable(&mut tx, id, now).await?;
        store::decide(
            &mut tx,
            id,
            RequestStatus::Approved,
            Some((now, by.user_id())),
            None,
        )
        .await?;
        tx.commit().await?;

        let channel = channel_of(&request)?;
        let principal = Principal::Enrollment {
            channel,
            owner: request.owner_id,
            challenge_id: Some(request.challenge_id),
        };
        let issued = self
            .issuer
            .issue(
                db,
                &principal,
                IssueRequest {
                    key: KeySource::Csr(request.csr_der.clone()),
                    subject: request.subject.clone(),
                    san: stored_names(request.names.clone())?,
                    profile: request.profile.clone(),
                    validity_days: stored_days(request.validity_days)?,
                    owner_id: Some(request.owner_id),
                    ca_id: None,
                    policy_id: None,
                },
                rng,
            )
            .await;
        let record = match issued {
            Ok(record) => record,
            Err(e) => {
                // Give the decision back: nothing was issued.
                let mut tx = db.begin(&by.actor()).await?;
                store::decide(&mut tx, id, RequestStatus::Pending, None, None).await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        let mut tx = db.begin(&by.actor()).await?;
        store::record_certificate(&mut tx, id, record.id).await?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::EnrollmentApproved,
                target_type: Some("enrollment_request"),
                target_id: Some(id),
                details: json!({
                    "channel": channel.label(),
                    "owner_id": request.owner_id,
                    "challenge_id": request.challenge_id,
                    "certificate_id": record.id,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            request_id = %id,
            certificate_id = %record.id,
            owner_id = %request.owner_id,
            "enrollment request approved and issued"
        );
        self.get(db, by, id).await
    }

    /// ADMIN: rejects a pending request; the device's next poll gets a refusal. The
    /// challenge stays used.
    pub async fn reject(
        &self,
        db: &Database,
        by: &Principal,
        id: Uuid,
        reason: Option<String>,
    ) -> Result<EnrollmentRequestView, CoreError> {
        by.require_admin()?;
        if let Some(reason) = &reason
            && reason.chars().count() > 1024
        {
            return Err(CoreError::invalid(
                ErrorCode::InvalidBody,
                "reason is longer than 1024 characters",
            ));
        }
        let now = self.clock.now();
        let mut tx = db.begin(&by.actor()).await?;
        let request = decidable(&mut tx, id, now).await?;
        store::decide(
            &mut tx,
            id,
            RequestStatus::Rejected,
            Some((now, by.user_id())),
            reason.as_deref(),
        )
        .await?;
        audit::append(
            &mut tx,
            &NewAuditEvent {
                actor_id: by.user_id(),
                actor_name: by.audit_name(),
                action: AuditAction::EnrollmentRejected,
                target_type: Some("enrollment_request"),
                target_id: Some(id),
                details: json!({
                    "channel": request.channel,
                    "owner_id": request.owner_id,
                    "challenge_id": request.challenge_id,
                    "reason": reason,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.get(db, by, id).await
    }
}

/// The request, locked, if it may be decided now: pending and unexpired, or an approval
/// that never got its certificate (see the module's comment). 404, 409 otherwise.
async fn decidable(
    tx: &mut keyinfra_db::Tx,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<RequestRecord, CoreError> {
    let request = store::get(tx, id, true)
        .await?
        .ok_or(CoreError::NotFound("enrollment request"))?;
    let stale_approval = request.status == RequestStatus::Approved
        && request.certificate_id.is_none()
        && request
            .decided_at
            .is_some_and(|at| now - at > STALE_APPROVAL);
    match state(&request, now) {
        RequestState::Pending => Ok(request),
        _ if stale_approval => Ok(request),
        RequestState::Expired => Err(CoreError::Conflict {
            code: ErrorCode::EnrollmentRequestExpired,
            detail: format!(
                "the request waited longer than {} days; the device must enroll again with a new challenge",
                PENDING_LIFETIME.whole_days()
            ),
        }),
        decided => Err(CoreError::Conflict {
            code: ErrorCode::EnrollmentRequestDecided,
            detail: format!("the request is already {}", decided.as_str()),
        }),
    }
}

fn state(r: &RequestRecord, now: OffsetDateTime) -> RequestState {
    match r.status {
        RequestStatus::Approved => RequestState::Approved,
        RequestStatus::Rejected => RequestState::Rejected,
        RequestStatus::Pending if r.created_at + PENDING_LIFETIME <= now => RequestState::Expired,
        RequestStatus::Pending => RequestState::Pending,
    }
}

fn channel_of(r: &RequestRecord) -> Result<EnrollmentChannel, CoreError> {
    match r.channel.as_str() {
        "scep" => Ok(EnrollmentChannel::Scep),
        "est" => Ok(EnrollmentChannel::Est),
        other => Err(CoreError::Internal(format!("stored channel {other:?}"))),
    }
}

fn view(r: RequestRecord, now: OffsetDateTime) -> Result<EnrollmentRequestView, CoreError> {
    Ok(EnrollmentRequestView {
        state: state(&r, now),
        expires_at: r.created_at + PENDING_LIFETIME,
        id: r.id,
        challenge_id: r.challenge_id,
        owner_id: r.owner_id,
        channel: r.channel,
        transaction_id: r.transaction_id,
        requested_subject: r.requested_subject,
        profile: r.profile,
        validity_days: stored_days(r.validity_days)?,
        subject: r.subject,
        names: stored_names(r.names)?,
        created_at: r.created_at,
        decided_at: r.decided_at,
        decided_by: r.decided_by,
        reason: r.reason,
        certificate_id: r.certificate_id,
    })
}
