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

/// `key_algorithm`: the values a key or certificate row may hold. The algorithms
/// themselves, with their labels, are [`keyinfra_pki::KeyAlgorithm`], the one definition;
/// this type is the column's mapping (sqlx derives it only on a type of this crate), which
/// rows read back as. Rows are written from a `keyinfra_pki::KeyAlgorithm`, so a new row
/// always holds one of those; a test checks each label against the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Type)]
#[sqlx(type_name = "key_algorithm")]
pub enum KeyAlgorithm {
    #[sqlx(rename = "ecdsa-p256")]
    EcdsaP256,
    #[sqlx(rename = "ecdsa-p384")]
    EcdsaP384,
    /// In the schema since migration 0003, but nothing issues or accepts P-521 keys (the
    /// crypto library's signing support decided that); kept so that such a row, if one was
    /// ever written by hand, still reads.
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

/// The label of the one value [`keyinfra_pki::KeyAlgorithm`] does not have.
const ECDSA_P521: &str = "ecdsa-p521";

impl KeyAlgorithm {
    /// The algorithm KeyInfra knows by this value; None for [`KeyAlgorithm::EcdsaP521`].
    pub fn algorithm(self) -> Option<keyinfra_pki::KeyAlgorithm> {
        use keyinfra_pki::KeyAlgorithm as A;
        match self {
            KeyAlgorithm::EcdsaP256 => Some(A::EcdsaP256),
            KeyAlgorithm::EcdsaP384 => Some(A::EcdsaP384),
            KeyAlgorithm::EcdsaP521 => None,
            KeyAlgorithm::Ed25519 => Some(A::Ed25519),
            KeyAlgorithm::Rsa2048 => Some(A::Rsa2048),
            KeyAlgorithm::Rsa3072 => Some(A::Rsa3072),
            KeyAlgorithm::Rsa4096 => Some(A::Rsa4096),
        }
    }

    /// The label used in SQL and JSON, e.g. "ecdsa-p256": the algorithm's own label.
    pub fn as_str(self) -> &'static str {
        self.algorithm()
            .map_or(ECDSA_P521, keyinfra_pki::KeyAlgorithm::label)
    }
}

impl From<keyinfra_pki::KeyAlgorithm> for KeyAlgorithm {
    fn from(algorithm: keyinfra_pki::KeyAlgorithm) -> Self {
        use keyinfra_pki::KeyAlgorithm as A;
        match algorithm {
            A::EcdsaP256 => KeyAlgorithm::EcdsaP256,
            A::EcdsaP384 => KeyAlgorithm::EcdsaP384,
            A::Ed25519 => KeyAlgorithm::Ed25519,
            A::Rsa2048 => KeyAlgorithm::Rsa2048,
            A::Rsa3072 => KeyAlgorithm::Rsa3072,
            A::Rsa4096 => KeyAlgorithm::Rsa4096,
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
