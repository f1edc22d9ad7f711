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

impl CertificateStatus {
    pub const ALL: [CertificateStatus; 4] = [
        CertificateStatus::Active,
        CertificateStatus::Superseded,
        CertificateStatus::Revoked,
        CertificateStatus::Expired,
    ];

    /// The label used in SQL, JSON and the CLI: "ACTIVE", "SUPERSEDED", ...
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Active => "ACTIVE",
            CertificateStatus::Superseded => "SUPERSEDED",
            CertificateStatus::Revoked => "REVOKED",
            CertificateStatus::Expired => "EXPIRED",
        }
    }

    /// The inverse of [`CertificateStatus::as_str`].
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == label)
    }
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

impl KeyAlgorithm {
    /// The label used in SQL and JSON, e.g. "ecdsa-p256".
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::EcdsaP521 => "ecdsa-p521",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }
}

/// `revocation_reason`: how a column stores a [`keyinfra_pki::RevocationReason`], which is
/// the one definition of the reasons (names, CRL codes, texts, parsing) and the only one
/// this crate's callers see. sqlx derives its mapping only on a type of this crate, hence
/// this private mirror; the conversions below are exhaustive both ways, and a test checks
/// every reason's round trip and the schema's labels against the canonical names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "revocation_reason")]
pub(crate) enum RevocationReason {
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

impl From<keyinfra_pki::RevocationReason> for RevocationReason {
    fn from(reason: keyinfra_pki::RevocationReason) -> Self {
        use keyinfra_pki::RevocationReason as R;
        match reason {
            R::Unspecified => RevocationReason::Unspecified,
            R::KeyCompromise => RevocationReason::KeyCompromise,
            R::CaCompromise => RevocationReason::CaCompromise,
            R::AffiliationChanged => RevocationReason::AffiliationChanged,
            R::Superseded => RevocationReason::Superseded,
            R::CessationOfOperation => RevocationReason::CessationOfOperation,
            R::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            R::AaCompromise => RevocationReason::AaCompromise,
        }
    }
}

impl From<RevocationReason> for keyinfra_pki::RevocationReason {
    fn from(reason: RevocationReason) -> Self {
        use keyinfra_pki::RevocationReason as R;
        match reason {
            RevocationReason::Unspecified => R::Unspecified,
            RevocationReason::KeyCompromise => R::KeyCompromise,
            RevocationReason::CaCompromise => R::CaCompromise,
            RevocationReason::AffiliationChanged => R::AffiliationChanged,
            RevocationReason::Superseded => R::Superseded,
            RevocationReason::CessationOfOperation => R::CessationOfOperation,
            RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => R::AaCompromise,
        }
    }
}

/// `alert_channel`: where an expiry alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "alert_channel", rename_all = "lowercase")]
pub enum AlertChannel {
    Log,
    Webhook,
    Email,
}

impl AlertChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChannel::Log => "log",
            AlertChannel::Webhook => "webhook",
            AlertChannel::Email => "email",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "log" => Some(AlertChannel::Log),
            "webhook" => Some(AlertChannel::Webhook),
            "email" => Some(AlertChannel::Email),
            _ => None,
        }
    }
}

/// `alert_status`: pending (not yet delivered, maybe retrying), sent, failed (gave up), or
/// skipped (the certificate was renewed or revoked before delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "alert_status", rename_all = "lowercase")]
pub enum AlertStatus {
    Pending,
    Sent,
    Failed,
    Skipped,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Sent => "sent",
            AlertStatus::Failed => "failed",
            AlertStatus::Skipped => "skipped",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "pending" => Some(AlertStatus::Pending),
            "sent" => Some(AlertStatus::Sent),
            "failed" => Some(AlertStatus::Failed),
            "skipped" => Some(AlertStatus::Skipped),
            _ => None,
        }
    }
}
