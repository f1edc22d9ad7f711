//! Revocation reasons: the one definition of the vocabulary (RFC 5280 5.3.1 CRLReason).
//!
//! It lives here, in the X.509 crate, because the numeric code is what a CRL carries and
//! what [`crate::ca::read_crl`] reads back; the database stores the same names
//! (`keyinfra_db::RevocationReason` is only the column's mapping, converted to and from
//! this type), and the API, the UI, the CLI and the audit log all read names, codes and
//! texts from here.

use std::fmt;
use std::str::FromStr;

/// Why a certificate was revoked. The hold-related codes (certificateHold, removeFromCRL)
/// are absent: a revocation here is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
    AaCompromise,
}

/// One row of the vocabulary: the variant, its RFC 5280 name, its CRLReason code and the
/// text a person reads.
struct Entry {
    reason: RevocationReason,
    name: &'static str,
    code: u8,
    text: &'static str,
}

/// The table every lookup reads, in code order.
const TABLE: [Entry; 8] = [
    Entry {
        reason: RevocationReason::Unspecified,
        name: "unspecified",
        code: 0,
        text: "Unspecified",
    },
    Entry {
        reason: RevocationReason::KeyCompromise,
        name: "keyCompromise",
        code: 1,
        text: "Key compromise",
    },
    Entry {
        reason: RevocationReason::CaCompromise,
        name: "cACompromise",
        code: 2,
        text: "CA compromise",
    },
    Entry {
        reason: RevocationReason::AffiliationChanged,
        name: "affiliationChanged",
        code: 3,
        text: "Affiliation changed",
    },
    Entry {
        reason: RevocationReason::Superseded,
        name: "superseded",
        code: 4,
        text: "Superseded",
    },
    Entry {
        reason: RevocationReason::CessationOfOperation,
        name: "cessationOfOperation",
        code: 5,
        text: "Cessation of operation (device retired)",
    },
    // Code 6 is certificateHold, 7 is unused and 8 is removeFromCRL.
    Entry {
        reason: RevocationReason::PrivilegeWithdrawn,
        name: "privilegeWithdrawn",
        code: 9,
        text: "Privilege withdrawn",
    },
    Entry {
        reason: RevocationReason::AaCompromise,
        name: "aACompromise",
        code: 10,
        text: "AA compromise",
    },
];

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The reasons that fit an end-entity certificate, which is all KeyInfra revokes: what
    /// the UI offers and a refused request lists. (cACompromise and aACompromise are about
    /// authorities.)
    pub const END_ENTITY: [RevocationReason; 6] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];

    fn entry(self) -> &'static Entry {
        // TABLE is in the order of ALL and the variants; the test below checks it, so the
        // index is always in range and names this reason.
        &TABLE[self as usize]
    }

    /// The RFC 5280 name (`keyCompromise`, ...): the API's, the database's and the audit
    /// log's label.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// The CRLReason code a CRL entry carries.
    pub fn code(self) -> u8 {
        self.entry().code
    }

    /// The reason as a person reads it (the web UI).
    pub fn text(self) -> &'static str {
        self.entry().text
    }

    /// The inverse of [`RevocationReason::name`] (exact, case-sensitive as RFC 5280 spells
    /// it).
    pub fn from_name(name: &str) -> Option<Self> {
        TABLE.iter().find(|e| e.name == name).map(|e| e.reason)
    }

    /// The inverse of [`RevocationReason::code`]; None for the hold codes and unused ones.
    pub fn from_code(code: u8) -> Option<Self> {
        TABLE.iter().find(|e| e.code == code).map(|e| e.reason)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`RevocationReason::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRevocationReason;

impl fmt::Display for UnknownRevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an RFC 5280 revocation reason")
    }
}

impl std::error::Error for UnknownRevocationReason {}

impl FromStr for RevocationReason {
    type Err = UnknownRevocationReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownRevocationReason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_variants_and_rfc_5280() {
        for (i, reason) in RevocationReason::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].reason, reason);
            assert_eq!(reason as usize, i);
            assert_eq!(RevocationReason::from_name(reason.name()), Some(reason));
            assert_eq!(reason.name().parse::<RevocationReason>(), Ok(reason));
            assert_eq!(RevocationReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(RevocationReason::KeyCompromise.code(), 1);
        assert_eq!(RevocationReason::PrivilegeWithdrawn.code(), 9);
        assert_eq!(RevocationReason::AaCompromise.name(), "aACompromise");
    }

    #[test]
    fn hold_codes_and_other_spellings_are_not_reasons() {
        for code in [6, 7, 8, 11, 255] {
            assert_eq!(RevocationReason::from_code(code), None, "{code}");
        }
        for name in [
            "certificateHold",
            "removeFromCRL",
            "KeyCompromise",
            "",
            " superseded",
        ] {
            assert_eq!(
                name.parse::<RevocationReason>(),
                Err(UnknownRevocationReason),
                "{name}"
            );
        }
    }
}
