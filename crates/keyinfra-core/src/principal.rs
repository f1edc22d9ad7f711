//! Who asks for a use case, and through which channel. One type for every channel, mapped
//! in one place to the database identity ([`Actor`]) and to the audit log's actor.

use keyinfra_db::{Actor, UserRole};
use uuid::Uuid;

use crate::ErrorCode;
use crate::error::CoreError;
use crate::users::Caller;

/// The enrollment protocols, each of which authenticates its clients its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentChannel {
    /// SCEP (RFC 8894): a device proving a challenge password.
    Scep,
    /// EST (RFC 7030): a client with a TLS client certificate or HTTP credentials.
    Est,
    /// ACME (RFC 8555): an account bound to a user by external account binding.
    Acme,
}

impl EnrollmentChannel {
    /// The audit log's actor name of a request made through this channel.
    pub fn label(self) -> &'static str {
        match self {
            EnrollmentChannel::Scep => "scep",
            EnrollmentChannel::Est => "est",
            EnrollmentChannel::Acme => "acme",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in user, through the API or the UI.
    User(Caller),
    /// The `keyinfra` CLI on the server: the same powers as an ADMIN, audited as "operator".
    /// (The database calls this identity SYSTEM; the audit log has always said "operator".)
    Operator,
    /// The server itself: `serve --tls auto` issuing and renewing its own certificate.
    /// Audited as "server"; may get the reserved names of KeyInfra's own TLS certificate.
    Server,
    /// A device enrolling through a protocol on behalf of the user `owner` whose
    /// credential (challenge, client certificate, account) it presented: that user's
    /// policy and quota apply, and the audit log names the channel.
    Enrollment {
        channel: EnrollmentChannel,
        owner: Uuid,
        /// The one-time enrollment challenge the device used up, if that was its
        /// credential: a first issue records which certificate it produced in the same
        /// statement (migration 0027).
        challenge_id: Option<Uuid>,
    },
}

impl Principal {
    /// The identity the database's row-level security sees.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::User(c) => c.actor(),
            // The operator and the server act on the database directly.
            Principal::Operator | Principal::Server => Actor::System,
            // A device has no token of its own: it writes as its owner with a USER's
            // powers, so row-level security confines it to that owner's rows whatever the
            // owner's own role.
            Principal::Enrollment { owner, .. } => Actor::User {
                id: *owner,
                role: UserRole::User,
            },
        }
    }

    /// ADMIN powers: a user with the ADMIN role, the operator, and the server.
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::User(c) => c.role == UserRole::Admin,
            Principal::Operator | Principal::Server => true,
            Principal::Enrollment { .. } => false,
        }
    }

    pub fn require_admin(&self) -> Result<(), CoreError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(CoreError::Forbidden)
        }
    }

    /// The user id, for `created_by`, `renewed_by` and the audit log.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Principal::User(c) => Some(c.id),
            Principal::Operator | Principal::Server | Principal::Enrollment { .. } => None,
        }
    }

    /// The user a certificate is for when the request names no owner.
    pub fn default_owner(&self) -> Option<Uuid> {
        match self {
            Principal::User(c) => Some(c.id),
            Principal::Enrollment { owner, .. } => Some(*owner),
            Principal::Operator | Principal::Server => None,
        }
    }

    /// The channel a certificate records (`certificates.channel`, migration 0023): `api`
    /// for a user (the REST API and the UI call the same use cases), `cli` for the
    /// operator, `server` for its own TLS certificate, else the enrollment protocol.
    pub fn issuance_channel(&self) -> &'static str {
        match self {
            Principal::User(_) => "api",
            Principal::Operator => "cli",
            Principal::Server => "server",
            Principal::Enrollment { channel, .. } => channel.label(),
        }
    }

    /// The enrollment challenge a first issue uses up (see [`Principal::Enrollment`]).
    pub fn challenge_id(&self) -> Option<Uuid> {
        match self {
            Principal::Enrollment { challenge_id, .. } => *challenge_id,
            Principal::User(_) | Principal::Operator | Principal::Server => None,
        }
    }

    /// The audit log's actor name when there is no user id.
    pub fn audit_name(&self) -> Option<&'static str> {
        match self {
            Principal::User(_) => None,
            Principal::Operator => Some("operator"),
            Principal::Server => Some("server"),
            Principal::Enrollment { channel, .. } => Some(channel.label()),
        }
    }
}

impl From<Caller> for Principal {
    fn from(c: Caller) -> Self {
        Principal::User(c)
    }
}

/// Audits a change to a certificate on behalf of a requester, in the change's transaction.
pub(crate) async fn audit_certificate(
    tx: &mut keyinfra_db::Tx,
    by: &Principal,
    action: keyinfra_db::audit::AuditAction,
    target: Uuid,
    details: serde_json::Value,
) -> Result<(), CoreError> {
    keyinfra_db::audit::append(
        tx,
        &keyinfra_db::audit::NewAuditEvent {
            actor_id: by.user_id(),
            actor_name: by.audit_name(),
            action,
            target_type: Some("certificate"),
            target_id: Some(target),
            details,
        },
    )
    .await?;
    Ok(())
}

/// Whose credential a create makes (an enrollment challenge, an ACME binding key): the
/// caller's by default; another user's needs ADMIN; a device or an ACME account never makes
/// credentials. The operator, who owns nothing, must name an owner.
pub(crate) fn credential_owner(by: &Principal, requested: Option<Uuid>) -> Result<Uuid, CoreError> {
    match (requested, by) {
        (_, Principal::Enrollment { .. }) => Err(CoreError::Forbidden),
        (Some(owner), _) if Some(owner) != by.user_id() => {
            by.require_admin()?;
            Ok(owner)
        }
        (Some(owner), _) => Ok(owner),
        (None, _) => by.user_id().ok_or_else(|| {
            CoreError::invalid(
                ErrorCode::InvalidOwner,
                "owner_id is required: the operator owns no certificates",
            )
        }),
    }
}

/// Whose rows a list shows: an ADMIN's `requested` owner (or everyone's with none); a
/// USER's own, whatever they asked for. The operator, with no user, is refused.
pub(crate) fn listed_owner(
    by: &Principal,
    requested: Option<Uuid>,
) -> Result<Option<Uuid>, CoreError> {
    if by.is_admin() {
        Ok(requested)
    } else {
        by.user_id().map(Some).ok_or(CoreError::Forbidden)
    }
}

/// Inside a create's transaction: an owner other than the caller exists and is enabled
/// (422 `unknown_owner` / `owner_disabled`).
pub(crate) async fn check_credential_owner(
    tx: &mut keyinfra_db::Tx,
    by: &Principal,
    owner_id: Uuid,
) -> Result<(), CoreError> {
    if Some(owner_id) == by.user_id() {
        return Ok(());
    }
    let owner = keyinfra_db::users::find(tx, owner_id)
        .await?
        .ok_or_else(|| {
            CoreError::invalid(
                ErrorCode::UnknownOwner,
                format!("no user has id {owner_id}"),
            )
        })?;
    if owner.disabled {
        return Err(CoreError::invalid(
            ErrorCode::OwnerDisabled,
            "the owner's account is disabled",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: UserRole) -> Principal {
        Principal::User(Caller {
            id: Uuid::from_u128(7),
            role,
            session_epoch: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn each_principal_maps_to_one_actor_and_one_audit_name() {
        let owner = Uuid::from_u128(9);
        let enrollment = Principal::Enrollment {
            channel: EnrollmentChannel::Scep,
            owner,
            challenge_id: Some(Uuid::from_u128(3)),
        };
        assert!(matches!(user(UserRole::User).actor(), Actor::Token { .. }));
        for p in [Principal::Operator, Principal::Server] {
            assert_eq!(p.actor(), Actor::System);
            assert_eq!(p.user_id(), None);
        }
        assert_eq!(
            enrollment.actor(),
            Actor::User {
                id: owner,
                role: UserRole::User
            }
        );
        assert_eq!(enrollment.user_id(), None);
        assert_eq!(user(UserRole::User).audit_name(), None);
        assert_eq!(Principal::Operator.audit_name(), Some("operator"));
        assert_eq!(Principal::Server.audit_name(), Some("server"));
        assert_eq!(enrollment.audit_name(), Some("scep"));
        assert_eq!(enrollment.default_owner(), Some(owner));
        assert_eq!(Principal::Operator.default_owner(), None);
        assert_eq!(enrollment.challenge_id(), Some(Uuid::from_u128(3)));
        assert_eq!(user(UserRole::Admin).challenge_id(), None);
    }

    #[test]
    fn only_admins_the_operator_and_the_server_have_admin_powers() {
        assert!(user(UserRole::Admin).is_admin());
        assert!(!user(UserRole::User).is_admin());
        assert!(Principal::Operator.is_admin());
        assert!(Principal::Server.is_admin());
        let device = Principal::Enrollment {
            channel: EnrollmentChannel::Est,
            owner: Uuid::from_u128(1),
            challenge_id: None,
        };
        assert!(!device.is_admin());
        assert!(matches!(device.require_admin(), Err(CoreError::Forbidden)));
    }
}
