//! Rust mirrors of the schema's ENUM types.

use sqlx::Type;

/// `user_role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "user_role", rename_all = "UPPERCASE")]
pub enum UserRole {
    Admin,
    User,
}

impl UserRole {
    /// The label used in SQL, JSON and tokens: "ADMIN" or "USER".
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "ADMIN",
            UserRole::User => "USER",
        }
    }

    /// The inverse of [`UserRole::as_str`].
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "ADMIN" => Some(UserRole::Admin),
            "USER" => Some(UserRole::User),
            _ => None,
        }
    }
}

/// `certificate_status`; the meaning of each value is documented in migration 0004.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "certificate_status", rename_all = "UPPERCASE")]
pub enum CertificateStatus {
    Active,
    Superseded,
    Revoked,
    Expired,
}

/// `key_algorithm`; the labels are the REST API's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "key_algorithm")]
pub enum KeyAlgorithm {
    #[sqlx(rename = "ecdsa-p256")]
    EcdsaP256,
    #[sqlx(rename = "ecdsa-p384")]
    EcdsaP384,
    #[sqlx(rename = "ecdsa-p521")]
    EcdsaP521,
    #[sqlx(rename = "ed25519")]
    Ed25519,
    #[sqlx(rename = "rsa-2048")]
    Rsa2048,
    #[sqlx(rename = "rsa-3072")]
    Rsa3072,
    #[sqlx(rename = "rsa-4096")]
    Rsa4096,
}

/// `revocation_reason`: RFC 5280 CRLReason names, without the hold-related values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "revocation_reason")]
pub enum RevocationReason {
    #[sqlx(rename = "unspecified")]
    Unspecified,
    #[sqlx(rename = "keyCompromise")]
    KeyCompromise,
    #[sqlx(rename = "cACompromise")]
    CaCompromise,
    #[sqlx(rename = "affiliationChanged")]
    AffiliationChanged,
    #[sqlx(rename = "superseded")]
    Superseded,
    #[sqlx(rename = "cessationOfOperation")]
    CessationOfOperation,
    #[sqlx(rename = "privilegeWithdrawn")]
    PrivilegeWithdrawn,
    #[sqlx(rename = "aACompromise")]
    AaCompromise,
}
