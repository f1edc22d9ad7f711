//! The append-only `audit_events` table, and the one list of the actions it records.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

/// What an audit event records. The one definition of the `action` column's values: every
/// writer names a variant, and the API's and the UI's filters parse through it. It lives in
/// this crate because [`NewAuditEvent`] carries it into the table. The labels are stored
/// and shown as they are (dotted lowercase, the CHECK constraint of migration 0006), so
/// they never change: an old row must still match its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    AcmeAccountCreated,
    AcmeAccountDeactivated,
    AcmeAccountKeyChanged,
    AcmeEabKeyCreated,
    CertificateIssued,
    CertificateRenewed,
    CertificateRevoked,
    CertificateExported,
    CertificateReassigned,
    CaCreated,
    EnrollmentChallengeCreated,
    EnrollmentChallengeWithdrawn,
    EnrollmentApproved,
    EnrollmentPending,
    EnrollmentRefused,
    EnrollmentRejected,
    KeysResealed,
    PolicyCreated,
    PolicyUpdated,
    PolicyDeleted,
    UserLogin,
    UserLoginFailed,
    UserLogout,
    UserCreated,
    UserRoleChanged,
    UserDisabled,
    UserEnabled,
    UserEmailChanged,
    UserPasswordChanged,
    UserPolicyChanged,
    UserDeleted,
}

impl AuditAction {
    /// Every action, in the order the UI's filter lists them.
    pub const ALL: [AuditAction; 31] = [
        AuditAction::AcmeAccountCreated,
        AuditAction::AcmeAccountDeactivated,
        AuditAction::AcmeAccountKeyChanged,
        AuditAction::AcmeEabKeyCreated,
        AuditAction::CertificateIssued,
        AuditAction::CertificateRenewed,
        AuditAction::CertificateRevoked,
        AuditAction::CertificateExported,
        AuditAction::CertificateReassigned,
        AuditAction::CaCreated,
        AuditAction::EnrollmentChallengeCreated,
        AuditAction::EnrollmentChallengeWithdrawn,
        AuditAction::EnrollmentApproved,
        AuditAction::EnrollmentPending,
        AuditAction::EnrollmentRefused,
        AuditAction::EnrollmentRejected,
        AuditAction::KeysResealed,
        AuditAction::PolicyCreated,
        AuditAction::PolicyUpdated,
        AuditAction::PolicyDeleted,
        AuditAction::UserLogin,
        AuditAction::UserLoginFailed,
        AuditAction::UserLogout,
        AuditAction::UserCreated,
        AuditAction::UserRoleChanged,
        AuditAction::UserDisabled,
        AuditAction::UserEnabled,
        AuditAction::UserEmailChanged,
        AuditAction::UserPasswordChanged,
        AuditAction::UserPolicyChanged,
        AuditAction::UserDeleted,
    ];

    /// The stored label, e.g. `certificate.issued`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AcmeAccountCreated => "acme_account.created",
            AuditAction::AcmeAccountDeactivated => "acme_account.deactivated",
            AuditAction::AcmeAccountKeyChanged => "acme_account.key_changed",
            AuditAction::AcmeEabKeyCreated => "acme_eab_key.created",
            AuditAction::CertificateIssued => "certificate.issued",
            AuditAction::CertificateRenewed => "certificate.renewed",
            AuditAction::CertificateRevoked => "certificate.revoked",
            AuditAction::CertificateExported => "certificate.exported",
            AuditAction::CertificateReassigned => "certificate.reassigned",
            AuditAction::CaCreated => "ca.created",
            AuditAction::EnrollmentChallengeCreated => "enrollment_challenge.created",
            AuditAction::EnrollmentChallengeWithdrawn => "enrollment_challenge.withdrawn",
            AuditAction::EnrollmentApproved => "enrollment.approved",
            AuditAction::EnrollmentPending => "enrollment.pending",
            AuditAction::EnrollmentRefused => "enrollment.refused",
            AuditAction::EnrollmentRejected => "enrollment.rejected",
            AuditAction::KeysResealed => "keys.resealed",
            AuditAction::PolicyCreated => "policy.created",
            AuditAction::PolicyUpdated => "policy.updated",
            AuditAction::PolicyDeleted => "policy.deleted",
            AuditAction::UserLogin => "user.login",
            AuditAction::UserLoginFailed => "user.login_failed",
            AuditAction::UserLogout => "user.logout",
            AuditAction::UserCreated => "user.created",
            AuditAction::UserRoleChanged => "user.role_changed",
            AuditAction::UserDisabled => "user.disabled",
            AuditAction::UserEnabled => "user.enabled",
            AuditAction::UserEmailChanged => "user.email_changed",
            AuditAction::UserPasswordChanged => "user.password_changed",
            AuditAction::UserPolicyChanged => "user.policy_changed",
            AuditAction::UserDeleted => "user.deleted",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label that is not one of [`AuditAction::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit action KeyInfra records")]
pub struct UnknownAuditAction;

impl FromStr for AuditAction {
    type Err = UnknownAuditAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(UnknownAuditAction)
    }
}

#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<&'a str>,
    pub action: AuditAction,
    pub target_type: Option<&'a str>,
    pub target_id: Option<Uuid>,
    /// A JSON object. Never a secret: no password, PIN, token or key material.
    pub details: serde_json::Value,
}

/// Appends an event. No RETURNING: an INSERT ... RETURNING must also pass the SELECT policy,
/// and a user may append an anonymous event that they cannot read back.
///
/// The id is made here, not by the column's default. Events of one transaction share their
/// `occurred_at` (the transaction's `now()`), so [`list`] orders them by id alone. The
/// database's `keyinfra_uuid_v7()` is random after the millisecond, so a batch of events
/// written within one millisecond came back shuffled (58, 59, 55, 54, ...); `Uuid::now_v7`
/// counts within the millisecond, so this process's events list in the order they were
/// appended. Like the certificate ids the core makes, it reads the system clock: an id is
/// an order, not a time anyone relies on (`occurred_at` is).
pub async fn append(tx: &mut Tx, event: &NewAuditEvent<'_>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO audit_events (id, actor_id, actor_name, action, target_type, target_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Uuid::now_v7(),
        event.actor_id,
        event.actor_name,
        event.action.as_str(),
        event.target_type,
        event.target_id,
        event.details,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub occurred_at: time::OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub details: serde_json::Value,
}

/// What an audit filter asks of the action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActionFilter {
    /// Any action.
    #[default]
    Any,
    Is(AuditAction),
    /// A label that is no action KeyInfra records (a hand-made query): no event matches,
    /// as no row holds it.
    Unknown,
}

impl ActionFilter {
    /// The filter a query's label asks for.
    pub fn parse(label: &str) -> Self {
        label
            .parse()
            .map_or(ActionFilter::Unknown, ActionFilter::Is)
    }
}

/// Filters of the audit page; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: ActionFilter,
    pub since: Option<time::OffsetDateTime>,
    pub until: Option<time::OffsetDateTime>,
    /// Only events about this object (a user or certificate id); audit_events_target_idx.
    pub target_id: Option<Uuid>,
    /// Keyset: events strictly older than this (occurred_at, id).
    pub before: Option<(time::OffsetDateTime, Uuid)>,
}

/// Newest first: by `occurred_at`, then by the time-ordered id, so that events of one
/// transaction (one timestamp) keep a stable order; the keyset in `filter.before` is the
/// same pair, so pages continue exactly where the previous one stopped.
pub async fn list(
    tx: &mut Tx,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRecord>, DbError> {
    let action = match filter.action {
        ActionFilter::Any => None,
        ActionFilter::Is(action) => Some(action.as_str()),
        ActionFilter::Unknown => return Ok(Vec::new()),
    };
    let (before_at, before_id) = match filter.before {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let rows = sqlx::query_as!(
        AuditRecord,
        r#"SELECT id, occurred_at, actor_id, actor_name, action, target_type, target_id, details
           FROM audit_events
           WHERE ($1::uuid IS NULL OR actor_id = $1)
             AND ($2::text IS NULL OR action = $2)
             AND ($3::timestamptz IS NULL OR occurred_at >= $3)
             AND ($4::timestamptz IS NULL OR occurred_at < $4)
             AND ($5::timestamptz IS NULL OR (occurred_at, id) < ($5, $6::uuid))
             AND ($8::uuid IS NULL OR target_id = $8)
           ORDER BY occurred_at DESC, id DESC
           LIMIT $7"#,
        filter.actor_id,
        action,
        filter.since,
        filter.until,
        before_at,
        before_id,
        limit,
        filter.target_id
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_dotted_lowercase_label_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for action in AuditAction::ALL {
            let label = action.as_str();
            assert!(seen.insert(label), "{label} twice");
            // The CHECK constraint of migration 0006.
            let mut parts = label.split('.');
            assert!(parts.clone().count() >= 2, "{label}");
            assert!(
                parts.all(|p| p.starts_with(|c: char| c.is_ascii_lowercase())
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')),
                "{label}"
            );
            assert_eq!(label.parse(), Ok(action));
            assert_eq!(ActionFilter::parse(label), ActionFilter::Is(action));
        }
        // Stored labels never change: old rows must still match their filters.
        assert_eq!(
            AuditAction::ALL.map(AuditAction::as_str),
            [
                "acme_account.created",
                "acme_account.deactivated",
                "acme_account.key_changed",
                "acme_eab_key.created",
                "certificate.issued",
                "certificate.renewed",
                "certificate.revoked",
                "certificate.exported",
                "certificate.reassigned",
                "ca.created",
                "enrollment_challenge.created",
                "enrollment_challenge.withdrawn",
                "enrollment.approved",
                "enrollment.pending",
                "enrollment.refused",
                "enrollment.rejected",
                "keys.resealed",
                "policy.created",
                "policy.updated",
                "policy.deleted",
                "user.login",
                "user.login_failed",
                "user.logout",
                "user.created",
                "user.role_changed",
                "user.disabled",
                "user.enabled",
                "user.email_changed",
                "user.password_changed",
                "user.policy_changed",
                "user.deleted",
            ]
        );
        assert_eq!(ActionFilter::parse(""), ActionFilter::Unknown);
        assert_eq!(
            ActionFilter::parse("Certificate.issued"),
            ActionFilter::Unknown
        );
        assert_eq!(
            "x' OR '1'='1".parse::<AuditAction>(),
            Err(UnknownAuditAction)
        );
    }
}
