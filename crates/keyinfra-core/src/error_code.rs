//! The stable `code` of every problem answer: one enum, so that a code is written once,
//! the UI matches variants instead of strings, and a test can check them all. Each
//! variant's string is the API's contract: it never changes (clients branch on it).

use std::fmt;

/// Defines [`ErrorCode`] with its one table of strings.
macro_rules! error_codes {
    ($($variant:ident => $code:literal,)+) => {
        /// A problem answer's stable `code` (see the module's comment).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            /// Every code, in alphabetical order of the strings.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as the API sends it, e.g. `name_not_allowed`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }
        }
    };
}

error_codes! {
    AlreadyInitialized => "already_initialized",
    AlreadyRevoked => "already_revoked",
    BadNonce => "bad_nonce",
    BadRequest => "bad_request",
    BeyondCaValidity => "beyond_ca_validity",
    BodyTimeout => "body_timeout",
    BodyTooLarge => "body_too_large",
    CaConstraintsUnsupported => "ca_constraints_unsupported",
    CaExists => "ca_exists",
    CaExpired => "ca_expired",
    CaKeyNotHeld => "ca_key_not_held",
    CaNameTaken => "ca_name_taken",
    CaNotAllowed => "ca_not_allowed",
    CaPathLength => "ca_path_length",
    CertificateExpired => "certificate_expired",
    CertificateRevoked => "certificate_revoked",
    ChallengeUsed => "challenge_used",
    ChannelBindingMismatch => "channel_binding_mismatch",
    ChannelBindingRequired => "channel_binding_required",
    ClientCertificateRequired => "client_certificate_required",
    ClientCertificateUnknown => "client_certificate_unknown",
    Conflict => "conflict",
    ConflictingKeySource => "conflicting_key_source",
    ConstraintViolation => "constraint_violation",
    CsrSignatureInvalid => "csr_signature_invalid",
    CsrfFailed => "csrf_failed",
    DatabaseUnavailable => "database_unavailable",
    EnrollmentRequestDecided => "enrollment_request_decided",
    EnrollmentRequestExpired => "enrollment_request_expired",
    Forbidden => "forbidden",
    HttpsRequired => "https_required",
    InternalError => "internal_error",
    InvalidBody => "invalid_body",
    InvalidCaName => "invalid_ca_name",
    InvalidChannel => "invalid_channel",
    InvalidCompat => "invalid_compat",
    InvalidCredentials => "invalid_credentials",
    InvalidCsr => "invalid_csr",
    InvalidCursor => "invalid_cursor",
    InvalidDays => "invalid_days",
    InvalidDryRun => "invalid_dry_run",
    InvalidEmail => "invalid_email",
    InvalidExpiry => "invalid_expiry",
    InvalidInvalidityDate => "invalid_invalidity_date",
    InvalidLimit => "invalid_limit",
    InvalidNameConstraints => "invalid_name_constraints",
    InvalidOwner => "invalid_owner",
    InvalidOwnerId => "invalid_owner_id",
    InvalidPin => "invalid_pin",
    InvalidPolicy => "invalid_policy",
    InvalidQuery => "invalid_query",
    InvalidReason => "invalid_reason",
    InvalidRole => "invalid_role",
    InvalidSan => "invalid_san",
    InvalidSmtpUrl => "invalid_smtp_url",
    InvalidStatus => "invalid_status",
    InvalidSubject => "invalid_subject",
    InvalidTime => "invalid_time",
    InvalidUsername => "invalid_username",
    InvalidValidity => "invalid_validity",
    InvalidWebhookUrl => "invalid_webhook_url",
    JobRunning => "job_running",
    KeyAlgorithmNotAllowed => "key_algorithm_not_allowed",
    MalformedJson => "malformed_json",
    MethodNotAllowed => "method_not_allowed",
    NameNotAllowed => "name_not_allowed",
    NamesChanged => "names_changed",
    NoIssuingCa => "no_issuing_ca",
    NoPrivateKey => "no_private_key",
    NotFound => "not_found",
    NotRenewable => "not_renewable",
    OwnerDisabled => "owner_disabled",
    PolicyInUse => "policy_in_use",
    PolicyNameTaken => "policy_name_taken",
    ProfileNotAllowed => "profile_not_allowed",
    QuotaExceeded => "quota_exceeded",
    RateLimited => "rate_limited",
    ReferenceConflict => "reference_conflict",
    RootCaCannotIssue => "root_ca_cannot_issue",
    ScepMalformedMessage => "scep_malformed_message",
    ScepUnknownOperation => "scep_unknown_operation",
    SchemaNotCurrent => "schema_not_current",
    SelfLockout => "self_lockout",
    ServerBusy => "server_busy",
    SubjectNotAllowed => "subject_not_allowed",
    TooManyAttempts => "too_many_attempts",
    TooManyChallenges => "too_many_challenges",
    TooManyConnections => "too_many_connections",
    TooManyEabKeys => "too_many_eab_keys",
    TransactionConflict => "transaction_conflict",
    Unauthenticated => "unauthenticated",
    UnknownAlgorithm => "unknown_algorithm",
    UnknownCa => "unknown_ca",
    UnknownJob => "unknown_job",
    UnknownOwner => "unknown_owner",
    UnknownPolicy => "unknown_policy",
    UnknownProfile => "unknown_profile",
    UnreadableBody => "unreadable_body",
    UnsupportedKey => "unsupported_key",
    UnsupportedMediaType => "unsupported_media_type",
    UsernameTaken => "username_taken",
    ValidityTooLong => "validity_too_long",
    ValidityTooShort => "validity_too_short",
    WeakPassword => "weak_password",
    WrongCurrentPassword => "wrong_current_password",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serialized as its string: the `code` member of problem+json.
impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_snake_case_and_in_order() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.starts_with(|c: char| c.is_ascii_lowercase())
                    && !s.ends_with('_')
                    && !s.contains("__")
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{s} is not snake_case"
            );
            assert_eq!(code.to_string(), s);
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(s));
        }
        // Sorted, so that a new code finds its place and a duplicate stands out in review.
        assert!(
            ErrorCode::ALL
                .windows(2)
                .all(|w| w[0].as_str() < w[1].as_str())
        );
    }

    #[test]
    fn the_codes_the_documentation_names_exist() {
        // docs/ and the README name codes in backquotes next to the word "code" or a status;
        // each one they name must be a real code.
        let known: std::collections::HashSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        for (name, text) in [
            ("README.md", include_str!("../../../README.md")),
            (
                "docs/security.md",
                include_str!("../../../docs/security.md"),
            ),
            (
                "docs/operations.md",
                include_str!("../../../docs/operations.md"),
            ),
        ] {
            let named = documented_codes(text);
            // The heuristic must keep finding what the README names, or it checks nothing.
            if name == "README.md" {
                for expected in ["name_not_allowed", "too_many_connections", "rate_limited"] {
                    assert!(
                        named.contains(&expected),
                        "{expected} not found in the README"
                    );
                }
            }
            for named in named {
                assert!(
                    known.contains(named),
                    "{name} names the code {named:?}, which does not exist"
                );
            }
        }
    }

    /// Backquoted snake_case words that a sentence presents as a code: "code `x`", "`x`
    /// (422)", "422 `x`", "`503` (`x`)".
    fn documented_codes(text: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let parts: Vec<&str> = text.split('`').collect();
        for (i, part) in parts.iter().enumerate() {
            if i % 2 == 0
                || !part.contains('_')
                || !part.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                continue;
            }
            let before = parts[i - 1].trim_end();
            let after = parts.get(i + 1).map_or("", |s| s.trim_start());
            // "`503` (`x`)": a status in code quotes, then the code in parentheses.
            let status_before = i >= 2 && before.ends_with('(') && is_status(parts[i - 2]);
            let says_code = before.ends_with("code")
                || before.ends_with("codes")
                || ends_with_status(before)
                || status_before
                || after.strip_prefix('(').is_some_and(starts_with_status);
            if says_code {
                found.push(*part);
            }
        }
        found
    }

    /// An HTTP status: three digits from 100 to 599, standing alone. "(5 min by default)"
    /// after a PostgreSQL setting's name is not one, so the setting is not taken for a code.
    fn is_status(digits: &str) -> bool {
        digits.len() == 3 && digits.parse::<u16>().is_ok_and(|n| (100..600).contains(&n))
    }

    fn starts_with_status(text: &str) -> bool {
        let end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        is_status(&text[..end])
    }

    fn ends_with_status(text: &str) -> bool {
        let start = text
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        is_status(&text[start..])
    }

    #[test]
    fn only_a_status_or_the_word_code_makes_a_word_a_code() {
        let text = "refused with code `name_not_allowed`; `rate_limited` (429); 503 \
                    `too_many_connections`; `422` (`bad_request_body`); every \
                    `checkpoint_timeout` (5 min by default); about 2 `max_wal_size`; \
                    `shared_buffers` (1024 pages)";
        assert_eq!(
            documented_codes(text),
            [
                "name_not_allowed",
                "rate_limited",
                "too_many_connections",
                "bad_request_body"
            ]
        );
    }
}
