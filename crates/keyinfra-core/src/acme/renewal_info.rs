//! ACME renewal information (RFC 9773, "ARI"): for each certificate, a window in which its
//! client should renew, served without authentication at `renewalInfo/{certID}`.
//!
//! * Normally the window runs from two thirds to five sixths of the certificate's
//!   validity (a 90-day certificate: days 60 to 75), leaving a sixth for retries.
//! * A revoked certificate's window lies before its revocation: already past, so a client
//!   renews at once (RFC 9773 4.2).
//! * A CA rollover moves it earlier: when the certificate's CA is no longer the default
//!   issuing CA, the window starts when the new one took over (past: renew now); when an
//!   operator has prepared the next issuing CA, the window starts when that one takes over,
//!   if that is sooner than the normal start.

use keyinfra_db::{Actor, Database, certificates, revocations};
use keyinfra_pki::acme::keyauth::CertId;
use keyinfra_pki::acme::wire::ProblemType;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::service::{AcmeError, AcmeService};

/// How long a client should wait before asking again (RFC 9773 4.3: Retry-After).
pub const RETRY_AFTER_SECONDS: u64 = 6 * 3600;
/// The length of a window that a rollover or a revocation moved.
const MOVED_WINDOW: Duration = Duration::days(1);

/// A suggested renewal window, and why it is where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalWindow {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub reason: WindowReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowReason {
    Normal,
    Revoked,
    CaRollover,
}

/// The normal window of a certificate valid from `not_before` to `not_after`.
pub fn normal_window(not_before: OffsetDateTime, not_after: OffsetDateTime) -> RenewalWindow {
    let lifetime = not_after - not_before;
    RenewalWindow {
        start: not_before + lifetime * 2 / 3,
        end: not_before + lifetime * 5 / 6,
        reason: WindowReason::Normal,
    }
}

impl AcmeService {
    /// The renewal window of the certificate `cert_id` names (text from the URL). Unknown
    /// certificates are 404; a certID that does not parse is malformed.
    pub async fn renewal_info(
        &self,
        db: &Database,
        cert_id: &str,
    ) -> Result<RenewalWindow, AcmeError> {
        let id = CertId::parse(cert_id)
            .map_err(|e| AcmeError::new(ProblemType::Malformed, e.to_string()))?;
        let (certificate_id, cert) = self.certificate_by_cert_id(db, &id).await?;
        let mut tx = db.begin(&Actor::System).await?;
        let revocation = revocations::for_certificate(&mut tx, certificate_id).await?;
        tx.commit().await?;
        if let Some(revocation) = revocation {
            return Ok(RenewalWindow {
                start: revocation.revoked_at - MOVED_WINDOW,
                end: revocation.revoked_at,
                reason: WindowReason::Revoked,
            });
        }
        let normal = normal_window(cert.not_before, cert.not_after);
        // A rollover: the CA that took over (already past), or the one prepared to.
        let default_ca = self.cas.default_issuing_ca(db).await?;
        let takeover = if default_ca != cert.ca_id {
            Some(self.cas.ca(db, default_ca).await?.not_before)
        } else {
            match self.cas.next_issuing_ca(db).await? {
                Some(next) => Some(self.cas.ca(db, next).await?.not_before),
                None => None,
            }
        };
        Ok(match takeover {
            Some(at) if at < normal.start => RenewalWindow {
                start: at,
                end: (at + MOVED_WINDOW).min(normal.end),
                reason: WindowReason::CaRollover,
            },
            _ => normal,
        })
    }

    /// The certificate a certID names: found by serial, then its own certID compared, so
    /// a serial of another CA is not taken for it.
    pub(crate) async fn certificate_by_cert_id(
        &self,
        db: &Database,
        id: &CertId,
    ) -> Result<(Uuid, certificates::CertificateRecord), AcmeError> {
        let unknown = || {
            AcmeError::new(
                ProblemType::Malformed,
                "this server issued no certificate with that certificate ID",
            )
            .with_status(404)
        };
        let mut tx = db.begin(&Actor::System).await?;
        let cert = match certificates::find_by_serial(&mut tx, &id.serial.to_hex(), None).await? {
            Some(summary) => certificates::get(&mut tx, summary.id).await?,
            None => None,
        };
        tx.commit().await?;
        let cert = cert
            .filter(|c| CertId::from_certificate(&c.certificate_der).ok().as_ref() == Some(id))
            .ok_or_else(unknown)?;
        Ok((cert.id, cert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_window_runs_from_two_thirds_to_five_sixths_of_the_validity() {
        let not_before = time::macros::datetime!(2026-01-01 00:00 UTC);
        let window = normal_window(not_before, not_before + Duration::days(90));
        assert_eq!(window.start, not_before + Duration::days(60));
        assert_eq!(window.end, not_before + Duration::days(75));
    }
}
