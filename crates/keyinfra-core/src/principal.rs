//! Who asks for a use case: a logged-in user (through the API) or the operator (the CLI,
//! acting directly on the database).

use keyinfra_db::{Actor, UserRole};
use uuid::Uuid;

use crate::error::CoreError;
use crate::users::Caller;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    User(Caller),
    /// The `keyinfra` CLI on the server: the same powers as an ADMIN, audited as "operator".
    Operator,
}

impl Requester {
    pub fn actor(&self) -> Actor {
        match self {
            Requester::User(c) => c.actor(),
            Requester::Operator => Actor::System,
        }
    }

    pub fn is_admin(&self) -> bool {
        match self {
            Requester::User(c) => c.role == UserRole::Admin,
            Requester::Operator => true,
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
            Requester::User(c) => Some(c.id),
            Requester::Operator => None,
        }
    }

    /// The audit log's actor name when there is no user id.
    pub fn audit_name(&self) -> Option<&'static str> {
        match self {
            Requester::User(_) => None,
            Requester::Operator => Some("operator"),
        }
    }
}

impl From<Caller> for Requester {
    fn from(c: Caller) -> Self {
        Requester::User(c)
    }
}
