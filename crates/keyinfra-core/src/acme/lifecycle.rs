//! What happens to an order after newOrder (RFC 8555 7.5 to 7.6): a challenge started,
//! the order finalized through the one issuer, its certificate downloaded, and
//! certificates revoked by their account or by their own key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_db::acme::{self as store, ChallengeRecord, ChallengeStatus, FinalizeOutcome};
use keyinfra_db::{CertificateStatus, Database, certificates};
use keyinfra_pki::acme::jws::Jwk;
use keyinfra_pki::acme::wire::{Identifier, ProblemType};
use keyinfra_pki::names::SubjectAltName;
use keyinfra_pki::{RandomSource, RevocationReason};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::service::{
    ACME_PROFILE, AcmeError, AcmeService, OrderAnswer, Verified, enrollment_principal, owner_actor,
    parse_payload, signer, validity_days_until,
};
use crate::ErrorCode;
use crate::error::CoreError;
use crate::issuer::{IssueRequest, KeySource};

/// Validations an account may fail in an hour before it may start no more (`rateLimited`).
pub const MAX_FAILED_VALIDATIONS_PER_HOUR: i64 = 60;

/// A challenge as its resource shows it, with its authorization (for `Link: rel="up"`).
#[derive(Debug)]
pub struct ChallengeAnswer {
    pub challenge: ChallengeRecord,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FinalizePayload {
    csr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokePayload {
    certificate: String,
    reason: Option<u8>,
}

/// A certificate and the PEM chain its download URL answers.
#[derive(Debug)]
pub struct CertificateChain {
    pub pem: String,
}

impl AcmeService {
    /// A POST to a challenge (RFC 8555 7.5.1): POST-as-GET shows it; `{}` starts it, once,
    /// if its authorization is pending and no other challenge of it has started. The
    /// validator then takes it in the background.
    pub async fn challenge(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
    ) -> Result<ChallengeAnswer, AcmeError> {
        let account = signer(request)?;
        if !request.is_post_as_get() {
            let payload: serde_json::Value = parse_payload(&request.payload)?;
            if !payload.is_object() {
                return Err(AcmeError::new(
                    ProblemType::Malformed,
                    "a challenge response is the JSON object {}",
                ));
            }
        }
        let now = self.clock.now();
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let (challenge, _) = store::get_challenge(&mut tx, id)
            .await?
            .filter(|(_, account_id)| *account_id == account.id)
            .ok_or_else(|| not_found("challenge"))?;
        let mut started = false;
        if !request.is_post_as_get() && challenge.status == ChallengeStatus::Pending {
            // The failed-validation rate, before anything is started.
            let failures = store::count_failed_validations_since(
                &mut tx,
                account.id,
                now - time::Duration::hours(1),
            )
            .await?;
            if failures >= MAX_FAILED_VALIDATIONS_PER_HOUR {
                return Err(AcmeError {
                    retry_after: Some(300),
                    ..AcmeError::new(
                        ProblemType::RateLimited,
                        format!(
                            "at most {MAX_FAILED_VALIDATIONS_PER_HOUR} failed validations an hour per account"
                        ),
                    )
                });
            }
            let authorization = store::lock_authorization(&mut tx, challenge.authorization_id)
                .await?
                .ok_or_else(|| not_found("challenge"))?;
            if authorization.status == store::AuthorizationStatus::Pending
                && authorization.expires_at > now
            {
                started = store::start_challenge(&mut tx, id, now).await?;
            }
        }
        let challenge = if started {
            store::get_challenge(&mut tx, id)
                .await?
                .map(|(c, _)| c)
                .unwrap_or(challenge)
        } else {
            challenge
        };
        tx.commit().await?;
        if started {
            self.validator.wake();
            tracing::info!(challenge_id = %id, kind = %challenge.kind, "ACME challenge started");
        }
        Ok(ChallengeAnswer { challenge })
    }

    /// finalize (RFC 8555 7.4): a ready order's CSR, which must name exactly the order's
    /// identifiers, is issued through the one issuer under the account owner's policy (asked
    /// again: it may have changed since newOrder). A CSR the server cannot use is `badCSR`
    /// and leaves the order ready for another; a policy refusal makes the order invalid.
    pub async fn finalize(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<OrderAnswer, AcmeError> {
        let account = signer(request)?.clone();
        let payload: FinalizePayload = parse_payload(&request.payload)?;
        let csr_der = URL_SAFE_NO_PAD
            .decode(payload.csr.as_bytes())
            .map_err(|_| AcmeError::new(ProblemType::BadCsr, "csr is not base64url DER"))?;
        let now = self.clock.now();
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let order = store::get_order(&mut tx, id)
            .await?
            .filter(|o| o.account_id == account.id)
            .ok_or_else(|| not_found("order"))?;
        let started = store::begin_finalize(&mut tx, id, account.id, now).await?;
        tx.commit().await?;
        if !started {
            let status = if order.expires_at <= now {
                "expired"
            } else {
                order.status.as_str()
            };
            return Err(AcmeError::new(
                ProblemType::OrderNotReady,
                format!("the order is {status}, not ready"),
            ));
        }

        let outcome = self
            .issue_for_order(db, &account, &order, csr_der, rng)
            .await;
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        let answer = match outcome {
            Ok(certificate_id) => {
                store::end_finalize(&mut tx, id, FinalizeOutcome::Issued(certificate_id)).await?;
                Ok(())
            }
            Err(Ending::Retry(e)) => {
                store::end_finalize(&mut tx, id, FinalizeOutcome::Retry).await?;
                Err(e)
            }
            Err(Ending::Refused(e)) => {
                let problem = problem_json(&e);
                store::end_finalize(&mut tx, id, FinalizeOutcome::Refused(&problem)).await?;
                Err(e)
            }
        };
        tx.commit().await?;
        let outcome = match &answer {
            Ok(()) => "issued",
            Err(e) if e.problem == ProblemType::BadCsr => "bad_csr",
            Err(_) => "refused",
        };
        metrics::counter!("keyinfra_acme_orders_total", "outcome" => outcome).increment(1);
        answer?;
        self.order(db, request, id).await
    }

    /// The issue behind finalize: the CSR's names against the order's, then the issuer.
    async fn issue_for_order(
        &self,
        db: &Database,
        account: &super::service::AccountRef,
        order: &store::OrderRecord,
        csr_der: Vec<u8>,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Uuid, Ending> {
        let csr = keyinfra_pki::csr::parse_csr(&csr_der).map_err(|e| {
            Ending::Retry(AcmeError::new(ProblemType::BadCsr, format!("the CSR: {e}")))
        })?;
        let ordered =
            order_identifiers(&order.identifiers).map_err(|e| Ending::Retry(AcmeError::from(e)))?;
        check_csr_names(&csr, &ordered).map_err(Ending::Retry)?;
        let names: Vec<String> = ordered.iter().map(Identifier::value).collect();
        let validity_days = order
            .not_after
            .map(|at| validity_days_until(at, self.clock.now()));
        let request = IssueRequest {
            key: KeySource::Csr(csr_der),
            subject: Some(format!("CN={}", names[0])),
            san: Some(names),
            profile: ACME_PROFILE.to_owned(),
            validity_days,
            owner_id: Some(account.owner_id),
            ca_id: Some(order.ca_id),
            policy_id: None,
        };
        let principal = enrollment_principal(account.owner_id);
        match self.issuer.issue(db, &principal, request, rng).await {
            Ok(record) => {
                tracing::info!(
                    order_id = %order.id, certificate_id = %record.id,
                    owner_id = %account.owner_id, "ACME order issued a certificate"
                );
                Ok(record.id)
            }
            Err(e @ (CoreError::RateLimited(_) | CoreError::Busy { .. } | CoreError::Db(_))) => {
                Err(Ending::Retry(AcmeError::from(e)))
            }
            Err(CoreError::Pki(e)) => Err(Ending::Retry(AcmeError::new(
                ProblemType::BadCsr,
                format!("the CSR: {e}"),
            ))),
            Err(e) => Err(Ending::Refused(super::service::policy_refusal(e))),
        }
    }

    /// The certificate URL (RFC 8555 7.4.2): POST-as-GET by the account whose order issued
    /// it; the leaf and its CA chain, PEM.
    pub async fn certificate(
        &self,
        db: &Database,
        request: &Verified,
        id: Uuid,
    ) -> Result<CertificateChain, AcmeError> {
        let account = signer(request)?;
        if !request.is_post_as_get() {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "a certificate is fetched with POST-as-GET (an empty payload)",
            ));
        }
        let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
        if !store::account_issued(&mut tx, account.id, id).await? {
            return Err(not_found("certificate"));
        }
        let cert = certificates::get(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("certificate"))?;
        tx.commit().await?;
        let ca = self.cas.signer(db, cert.ca_id).await?;
        let mut pem = keyinfra_pki::certificate_pem(&cert.certificate_der);
        for der in &ca.chain {
            pem.push_str(&keyinfra_pki::certificate_pem(der));
        }
        Ok(CertificateChain { pem })
    }

    /// revokeCert (RFC 8555 7.6): signed by the account whose order issued the certificate
    /// (or any account of the certificate's owner), or by the certificate's own key (`jwk`).
    /// The reason is an RFC 5280 code; certificateHold (6) and removeFromCRL (8) are not.
    pub async fn revoke_certificate(
        &self,
        db: &Database,
        request: &Verified,
    ) -> Result<(), AcmeError> {
        let payload: RevokePayload = parse_payload(&request.payload)?;
        let der = URL_SAFE_NO_PAD
            .decode(payload.certificate.as_bytes())
            .map_err(|_| {
                AcmeError::new(ProblemType::Malformed, "certificate is not base64url DER")
            })?;
        let reason = match payload.reason {
            None => RevocationReason::Unspecified,
            Some(code) => RevocationReason::from_code(code)
                .filter(|r| RevocationReason::END_ENTITY.contains(r))
                .ok_or_else(|| {
                    AcmeError::new(
                        ProblemType::BadRevocationReason,
                        format!(
                            "reason {code} is not one of {}",
                            RevocationReason::END_ENTITY
                                .map(|r| r.code().to_string())
                                .join(", ")
                        ),
                    )
                })?,
        };
        let not_ours = || {
            AcmeError::new(
                ProblemType::Malformed,
                "this server did not issue that certificate",
            )
            .with_status(404)
        };
        // Which certificate, before who may: found by its serial, then compared whole, so a
        // certificate of another CA with the same serial is not taken for ours.
        let serial = keyinfra_pki::ca::serial_of_certificate(&der).map_err(|_| {
            AcmeError::new(
                ProblemType::Malformed,
                "certificate is not an X.509 certificate",
            )
        })?;
        let mut tx = db.begin(&keyinfra_db::Actor::System).await?;
        let cert = match certificates::find_by_serial(&mut tx, &serial.to_hex(), None).await? {
            Some(summary) => certificates::get(&mut tx, summary.id).await?,
            None => None,
        };
        tx.commit().await?;
        let cert = cert
            .filter(|c| c.certificate_der == der)
            .ok_or_else(not_ours)?;
        let owner = cert.owner_id.ok_or_else(|| {
            AcmeError::new(
                ProblemType::Unauthorized,
                "that certificate has no owner an ACME account could speak for",
            )
        })?;
        let authorized = match &request.account {
            Some(account) => {
                let mut tx = db.begin(&owner_actor(account.owner_id)).await?;
                let issued = store::account_issued(&mut tx, account.id, cert.id).await?;
                tx.commit().await?;
                issued || account.owner_id == owner
            }
            None => {
                let spki = keyinfra_pki::ca::public_key_of_certificate(&cert.certificate_der)
                    .map_err(CoreError::from)?;
                let certificate_key = Jwk::from_spki_der(&spki).map_err(|_| {
                    AcmeError::new(
                        ProblemType::Unauthorized,
                        "the certificate's key cannot sign ACME requests",
                    )
                })?;
                certificate_key == request.jwk
            }
        };
        if !authorized {
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "the request is signed neither by an account of the certificate's owner nor by its key",
            ));
        }
        if cert.status == CertificateStatus::Revoked {
            return Err(AcmeError::new(
                ProblemType::AlreadyRevoked,
                "the certificate is already revoked",
            ));
        }
        let principal = enrollment_principal(owner);
        self.revocations
            .revoke(db, &principal, cert.id, reason, None)
            .await
            .map_err(|e| match e {
                CoreError::Invalid {
                    code: ErrorCode::InvalidReason,
                    detail,
                } => AcmeError::new(ProblemType::BadRevocationReason, detail),
                CoreError::Conflict { detail, .. } => {
                    AcmeError::new(ProblemType::AlreadyRevoked, detail)
                }
                other => other.into(),
            })?;
        tracing::info!(certificate_id = %cert.id, reason = reason.name(), "ACME revoked a certificate");
        Ok(())
    }
}

/// How a finalization that did not issue ends.
enum Ending {
    /// The order goes back to ready: the client may send another CSR (or retry later).
    Retry(AcmeError),
    /// The order is invalid.
    Refused(AcmeError),
}

fn problem_json(e: &AcmeError) -> serde_json::Value {
    json!({ "type": e.problem.urn(), "detail": e.detail, "status": e.status })
}

fn not_found(what: &str) -> AcmeError {
    AcmeError::new(ProblemType::Malformed, format!("no such {what}")).with_status(404)
}

/// An order's identifiers, as stored (canonical, written by newOrder).
fn order_identifiers(json: &serde_json::Value) -> Result<Vec<Identifier>, CoreError> {
    json.as_array()
        .map(|items| {
            items
                .iter()
                .map(Identifier::from_json)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .ok()
        .flatten()
        .ok_or_else(|| CoreError::Internal("an order's stored identifiers".into()))
}

/// RFC 8555 7.4: the CSR's subjectAltNames (and its common name, if any) are exactly the
/// order's identifiers: none missing, none extra.
fn check_csr_names(
    csr: &keyinfra_pki::csr::ParsedCsr,
    ordered: &[Identifier],
) -> Result<(), AcmeError> {
    let sans = csr
        .sans
        .as_ref()
        .map_err(|e| AcmeError::new(ProblemType::BadCsr, format!("the CSR's names: {e}")))?;
    let mut requested: Vec<Identifier> = Vec::with_capacity(sans.len() + 1);
    for san in sans {
        let identifier = match san {
            SubjectAltName::Dns(name) => Identifier::parse("dns", name),
            SubjectAltName::Ip(ip) => Identifier::parse("ip", &ip.to_string()),
            other => {
                return Err(AcmeError::new(
                    ProblemType::BadCsr,
                    format!("the CSR asks for {other}, which an ACME order cannot name"),
                ));
            }
        }
        .map_err(|e| AcmeError::new(ProblemType::BadCsr, format!("the CSR's names: {e}")))?;
        if !requested.contains(&identifier) {
            requested.push(identifier);
        }
    }
    if let Ok(subject) = &csr.subject
        && let Some(cn) = subject.common_name()
    {
        let kind = if cn.parse::<std::net::IpAddr>().is_ok() {
            "ip"
        } else {
            "dns"
        };
        let identifier = Identifier::parse(kind, cn).map_err(|_| {
            AcmeError::new(
                ProblemType::BadCsr,
                "the CSR's common name is not one of the order's identifiers",
            )
        })?;
        if !requested.contains(&identifier) {
            requested.push(identifier);
        }
    }
    if let Some(extra) = requested.iter().find(|r| !ordered.contains(r)) {
        return Err(AcmeError::new(
            ProblemType::BadCsr,
            format!("the CSR names {}, which the order does not", extra.value()),
        ));
    }
    if let Some(missing) = ordered.iter().find(|o| !requested.contains(o)) {
        return Err(AcmeError::new(
            ProblemType::BadCsr,
            format!(
                "the CSR does not name {}, which the order does",
                missing.value()
            ),
        ));
    }
    Ok(())
}
