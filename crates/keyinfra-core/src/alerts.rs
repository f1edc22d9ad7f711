//! Expiry alerts: find what expires soon, record one alert per channel and recipient, and
//! deliver them (log, webhook, e-mail) with retries.
//!
//! The `expiry_alerts` table is both the record and the outbox. Recording is an
//! `INSERT ... ON CONFLICT DO NOTHING` on (certificate, channel, recipient), so a certificate
//! is announced once per window however many replicas or restarts run the job. Delivery
//! claims due rows with `FOR UPDATE SKIP LOCKED` and pushes their next attempt ahead first:
//! a replica that dies between sending and recording leaves the row to be retried, so
//! delivery is at-least-once in that one case (receivers can de-duplicate on the
//! `X-KeyInfra-Delivery` header, which is the alert id).

use std::time::Duration as StdDuration;

use aws_lc_rs::hmac;
use keyinfra_db::alerts::{self, Channels, Delivery};
use keyinfra_db::{Actor, AlertChannel, AlertStatus, CertificateStatus, Database};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::ErrorCode;
use crate::error::CoreError;

/// How many alerts one claim takes.
const BATCH: i64 = 100;
/// How long a claimed alert is hidden from other deliverers.
const CLAIM_LEASE: Duration = Duration::minutes(5);
/// Attempts within one run before the alert waits for a later run (webhook only).
const QUICK_RETRIES: u32 = 3;

/// The webhook: where to POST, and the key that signs each body.
pub struct WebhookSettings {
    pub url: reqwest::Url,
    pub secret: Zeroizing<Vec<u8>>,
    pub timeout: StdDuration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url.as_str())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// E-mail over SMTP.
pub struct EmailSettings {
    /// lettre's URL form: `smtp://[user:password@]host[:port][?tls=required|opportunistic]`
    /// or `smtps://...`. Holds credentials: never logged.
    pub smtp_url: Zeroizing<String>,
    pub from: Mailbox,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("smtp_url", &"<redacted>")
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// What the alert job announces, and how.
#[derive(Debug)]
pub struct AlertSettings {
    /// Certificates expiring within this window are announced (default 7 days).
    pub window: Duration,
    pub webhook: Option<WebhookSettings>,
    pub email: Option<EmailSettings>,
    /// Deliveries after which an alert is given up (failed).
    pub max_attempts: i32,
    /// The first retry's delay; each further retry doubles it, up to 6 hours.
    pub retry_base: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            window: Duration::days(7),
            webhook: None,
            email: None,
            max_attempts: 8,
            retry_base: Duration::minutes(1),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertRunSummary {
    pub recorded: u64,
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl std::fmt::Display for AlertRunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} recorded, {} sent, {} to retry, {} failed, {} skipped",
            self.recorded, self.sent, self.retrying, self.failed, self.skipped
        )
    }
}

/// Sends expiry alerts. One per process; cheap to share.
#[derive(Debug)]
pub struct AlertService {
    settings: AlertSettings,
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

/// A delivery failure: what to record (never a secret).
#[derive(Debug)]
struct DeliveryError(String);

impl AlertService {
    /// Checks the settings (the SMTP URL parses, the webhook URL is http(s)).
    pub fn new(settings: AlertSettings) -> Result<Self, CoreError> {
        if let Some(webhook) = &settings.webhook
            && !matches!(webhook.url.scheme(), "http" | "https")
        {
            return Err(CoreError::invalid(
                ErrorCode::InvalidWebhookUrl,
                "the alert webhook URL must be http:// or https://",
            ));
        }
        let smtp = match &settings.email {
            Some(email) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&email.smtp_url)
                    .map_err(|_| {
                        // lettre's error may quote the URL, credentials included.
                        CoreError::invalid(
                            ErrorCode::InvalidSmtpUrl,
                            "the SMTP URL is not smtp://[user:password@]host[:port][?tls=...] or smtps://...",
                        )
                    })?
                    .timeout(Some(StdDuration::from_secs(20)))
                    .build(),
            ),
            None => None,
        };
        let timeout = settings
            .webhook
            .as_ref()
            .map_or(StdDuration::from_secs(10), |w| w.timeout);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("KeyInfra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CoreError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            settings,
            http,
            smtp,
        })
    }

    /// Records what newly expires within the window, then delivers every due alert.
    pub async fn run(
        &self,
        db: &Database,
        now: OffsetDateTime,
    ) -> Result<AlertRunSummary, CoreError> {
        let mut summary = AlertRunSummary::default();
        let mut tx = db.begin(&Actor::System).await?;
        summary.recorded = alerts::enqueue_expiring(
            &mut tx,
            self.settings.window,
            now,
            &Channels {
                webhook: self.settings.webhook.as_ref().map(|w| w.url.as_str()),
                email: self.smtp.is_some(),
            },
        )
        .await?;
        tx.commit().await?;

        loop {
            let mut tx = db.begin(&Actor::System).await?;
            let batch = alerts::claim_due(&mut tx, BATCH, CLAIM_LEASE).await?;
            tx.commit().await?;
            if batch.is_empty() {
                break;
            }
            for delivery in &batch {
                let (status, retry_at, error) = self.deliver(delivery, now).await;
                match status {
                    AlertStatus::Sent => summary.sent += 1,
                    AlertStatus::Pending => summary.retrying += 1,
                    AlertStatus::Failed => summary.failed += 1,
                    AlertStatus::Skipped => summary.skipped += 1,
                }
                metrics::counter!("keyinfra_alerts_total",
                    "channel" => delivery.channel.as_str(), "outcome" => status.as_str())
                .increment(1);
                let mut tx = db.begin(&Actor::System).await?;
                alerts::record_outcome(&mut tx, delivery.id, status, retry_at, error.as_deref())
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(summary)
    }

    /// Delivers one alert; returns the status to record, when to retry, and why it failed.
    async fn deliver(
        &self,
        delivery: &Delivery,
        now: OffsetDateTime,
    ) -> (AlertStatus, Option<OffsetDateTime>, Option<String>) {
        // Renewed or revoked since it was recorded: nothing to announce any more.
        if delivery.status != CertificateStatus::Active {
            return (AlertStatus::Skipped, None, None);
        }
        let result = match delivery.channel {
            AlertChannel::Log => {
                tracing::warn!(
                    certificate_id = %delivery.certificate_id,
                    serial = %delivery.serial_number,
                    subject = %delivery.subject_dn,
                    owner = delivery.owner_username.as_deref().unwrap_or("-"),
                    not_after = %rfc3339(delivery.not_after),
                    "certificate expires soon"
                );
                Ok(())
            }
            AlertChannel::Webhook => self.post_webhook(delivery, now).await,
            AlertChannel::Email => self.send_email(delivery, now).await,
        };
        match result {
            Ok(()) => (AlertStatus::Sent, None, None),
            Err(DeliveryError(why)) => {
                tracing::warn!(alert_id = %delivery.id, channel = delivery.channel.as_str(),
                    attempt = delivery.attempts, error = %why, "expiry alert not delivered");
                if delivery.attempts >= self.settings.max_attempts {
                    (AlertStatus::Failed, None, Some(why))
                } else {
                    let exponent = u32::try_from(delivery.attempts.saturating_sub(1)).unwrap_or(0);
                    let delay = (self.settings.retry_base * 2_i32.saturating_pow(exponent.min(20)))
                        .min(Duration::hours(6));
                    (AlertStatus::Pending, Some(now + delay), Some(why))
                }
            }
        }
    }

    async fn post_webhook(
        &self,
        delivery: &Delivery,
        now: OffsetDateTime,
    ) -> Result<(), DeliveryError> {
        let Some(webhook) = &self.settings.webhook else {
            return Err(DeliveryError("no webhook is configured any more".into()));
        };
        let body = json!({
            "event": "certificate.expiring",
            "alert_id": delivery.id,
            "certificate": {
                "id": delivery.certificate_id,
                "ca_id": delivery.ca_id,
                "serial_number": delivery.serial_number,
                "subject": delivery.subject_dn,
                "subject_alt_names": delivery.subject_alt_names,
                "not_after": rfc3339(delivery.not_after),
                "owner_id": delivery.owner_id,
                "owner": delivery.owner_username,
            },
            "days_left": (delivery.not_after - now).whole_days(),
        })
        .to_string();
        let timestamp = now.unix_timestamp().to_string();
        let signature = sign_webhook(&webhook.secret, &timestamp, &body);
        let mut last = String::new();
        for attempt in 0..QUICK_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(StdDuration::from_millis(250 << attempt)).await;
            }
            let sent = self
                .http
                .post(webhook.url.clone())
                .header("content-type", "application/json")
                .header("x-keyinfra-event", "certificate.expiring")
                .header("x-keyinfra-delivery", delivery.id.to_string())
                .header("x-keyinfra-timestamp", &timestamp)
                .header("x-keyinfra-signature", format!("sha256={signature}"))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("the webhook answered {}", response.status()),
                // reqwest's message names the URL, which the admin configured: not a secret.
                Err(e) => last = format!("the webhook could not be reached: {e}"),
            }
        }
        Err(DeliveryError(last))
    }

    async fn send_email(
        &self,
        delivery: &Delivery,
        now: OffsetDateTime,
    ) -> Result<(), DeliveryError> {
        let (Some(smtp), Some(email)) = (&self.smtp, &self.settings.email) else {
            return Err(DeliveryError(
                "no SMTP server is configured any more".into(),
            ));
        };
        let to: Mailbox = delivery
            .recipient
            .parse()
            .map_err(|_| DeliveryError("the recipient address is not valid".into()))?;
        let days = (delivery.not_after - now).whole_days();
        let sans = if delivery.subject_alt_names.is_empty() {
            "-".to_owned()
        } else {
            delivery.subject_alt_names.join(", ")
        };
        let text = format!(
            "A certificate issued by KeyInfra expires in {days} day(s).\n\n\
             Subject:       {subject}\n\
             SANs:          {sans}\n\
             Serial number: {serial}\n\
             Expires:       {not_after}\n\
             Owner:         {owner}\n\
             Certificate:   {id}\n\n\
             Renew it before then (keyinfra cert renew {id}, or the web UI).\n",
            subject = delivery.subject_dn,
            serial = delivery.serial_number,
            not_after = rfc3339(delivery.not_after),
            owner = delivery.owner_username.as_deref().unwrap_or("-"),
            id = delivery.certificate_id,
        );
        let message = Message::builder()
            .from(email.from.clone())
            .to(to)
            .subject(format!(
                "Certificate {} expires in {days} day(s)",
                delivery.subject_dn
            ))
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| DeliveryError(format!("cannot build the message: {e}")))?;
        smtp.send(message)
            .await
            .map(|_| ())
            .map_err(|e| DeliveryError(format!("the SMTP server refused or failed: {e}")))
    }
}

/// A page of the alert record, newest first (GET /api/v1/alerts, administrators).
pub async fn list_alerts(
    db: &Database,
    by: &crate::Principal,
    filter: &alerts::AlertFilter,
    before: Option<(OffsetDateTime, uuid::Uuid)>,
    limit: i64,
) -> Result<
    (
        Vec<alerts::AlertRecord>,
        Option<(OffsetDateTime, uuid::Uuid)>,
    ),
    CoreError,
> {
    by.require_admin()?;
    let mut tx = db.begin(&by.actor()).await?;
    let mut items = alerts::list(&mut tx, filter, before, limit + 1).await?;
    tx.commit().await?;
    let next = if items.len() as i64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(|a| (a.created_at, a.id))
    } else {
        None
    };
    Ok((items, next))
}

/// `hex(HMAC-SHA256(secret, timestamp + "." + body))`: what `X-KeyInfra-Signature` carries
/// after `sha256=`. Binding the timestamp lets receivers refuse replays.
pub fn sign_webhook(secret: &[u8], timestamp: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    hex::encode(context.sign().as_ref())
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2's key and data, split at the '.' we insert.
        let signature = sign_webhook(b"Jefe", "what do ya want ", "for nothing?");
        assert_ne!(
            signature,
            sign_webhook(b"Jefe", "what do ya want", "for nothing?")
        );
        assert_eq!(signature.len(), 64);
        let whole = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, b"Jefe"),
            b"what do ya want .for nothing?",
        );
        assert_eq!(signature, hex::encode(whole.as_ref()));
    }

    #[test]
    fn settings_debug_hides_secrets() {
        let webhook = WebhookSettings {
            url: "http://127.0.0.1:9/hook".parse().unwrap(),
            secret: Zeroizing::new(b"super-secret-value".to_vec()),
            timeout: StdDuration::from_secs(1),
        };
        let email = EmailSettings {
            smtp_url: Zeroizing::new("smtp://user:hunter2@127.0.0.1:25".into()),
            from: "keyinfra@example.net".parse().unwrap(),
        };
        let shown = format!("{webhook:?} {email:?}");
        assert!(
            !shown.contains("super-secret") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn a_bad_smtp_url_is_refused_without_echoing_it() {
        let settings = AlertSettings {
            email: Some(EmailSettings {
                smtp_url: Zeroizing::new("ftp://user:hunter2@host".into()),
                from: "keyinfra@example.net".parse().unwrap(),
            }),
            ..AlertSettings::default()
        };
        let error = AlertService::new(settings).unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
