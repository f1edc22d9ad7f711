//! The subject rules of an issuance policy: which RDN attributes a subject may hold, and
//! fixed values that every subject gets and none may change (`O=Example Corp`).
//!
//! Attribute names are RFC 4514 short names spelt exactly as KeyInfra writes them: `CN`,
//! `O`, `OU`, `C`, `ST`, `L`, `DC`, `serialNumber`. A fixed attribute applies to every
//! occurrence: with `OU` fixed to `Network`, the subject `OU=Network,OU=Lab` is refused.

use std::collections::BTreeMap;
use std::fmt;

use keyinfra_pki::names::{DistinguishedName, DnAttribute};

use super::names::PatternError;

/// A policy's subject rules, as stored and as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRules {
    /// RFC 4514 short names: CN, O, OU, C, ST, L, DC, serialNumber.
    pub allowed_attributes: Vec<String>,
    /// Attribute short name to its value.
    #[serde(default)]
    pub fixed: BTreeMap<String, String>,
}

/// A subject refused by a policy: the attribute and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRefusal {
    /// The short name (`O`); empty when the subject as a whole is refused (too many
    /// attributes once the fixed ones are added).
    pub attribute: String,
    pub reason: String,
}

impl fmt::Display for SubjectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for SubjectRefusal {}

/// The attribute of a short name, spelt exactly (no OIDs, no other case), so that stored
/// rules have one spelling.
fn attribute(name: &str) -> Option<DnAttribute> {
    DnAttribute::ALL
        .into_iter()
        .find(|a| a.short_name() == name)
}

/// Where an added attribute goes, most significant first: the conventional order of
/// RFC 5280's examples and LDAP (DC, then C, ST, L, O, OU, CN, serialNumber).
fn rank(attribute: DnAttribute) -> u8 {
    match attribute {
        DnAttribute::DomainComponent => 0,
        DnAttribute::Country => 1,
        DnAttribute::State => 2,
        DnAttribute::Locality => 3,
        DnAttribute::Organization => 4,
        DnAttribute::OrganizationalUnit => 5,
        DnAttribute::CommonName => 6,
        DnAttribute::SerialNumber => 7,
    }
}

impl SubjectRules {
    /// Every attribute KeyInfra issues, nothing fixed: what a subject may hold without a
    /// policy.
    pub fn any() -> Self {
        Self {
            allowed_attributes: DnAttribute::ALL
                .iter()
                .map(|a| a.short_name().to_owned())
                .collect(),
            fixed: BTreeMap::new(),
        }
    }

    /// Unknown attribute names, repeats, an empty list, fixed attributes that are not
    /// allowed, and fixed values a subject could not hold (C must be two capitals, ...).
    pub fn validate(&self) -> Result<(), PatternError> {
        const ALLOWED: &str = "subject.allowed_attributes";
        const FIXED: &str = "subject.fixed";
        let error = |field, entry: &str, reason: String| PatternError {
            field,
            entry: entry.to_owned(),
            reason,
        };
        if self.allowed_attributes.is_empty() {
            return Err(error(
                ALLOWED,
                "",
                "no attribute is allowed, so no subject could be issued; allow at least CN".into(),
            ));
        }
        for (i, name) in self.allowed_attributes.iter().enumerate() {
            if attribute(name).is_none() {
                return Err(error(ALLOWED, name, unknown(name)));
            }
            if self.allowed_attributes[..i].contains(name) {
                return Err(error(ALLOWED, name, format!("{name} is listed twice")));
            }
        }
        for (name, value) in &self.fixed {
            let Some(attr) = attribute(name) else {
                return Err(error(FIXED, name, unknown(name)));
            };
            if !self.allowed_attributes.contains(name) {
                return Err(error(
                    FIXED,
                    name,
                    format!("{name} is fixed but not in allowed_attributes"),
                ));
            }
            DistinguishedName::from_attributes(vec![(attr, value.clone())])
                .map_err(|e| error(FIXED, name, e.0))?;
        }
        Ok(())
    }

    /// Applies the rules: attributes outside allowed_attributes -> refusal; a fixed
    /// attribute absent is added, equal is kept, different is refused ("O is fixed to
    /// \"Example Corp\""). An added attribute goes where convention puts it (`CN=x` with O
    /// fixed becomes `CN=x,O=Example Corp`); the others keep their order.
    pub fn apply(&self, subject: &DistinguishedName) -> Result<DistinguishedName, SubjectRefusal> {
        // Stored rules were validated; rules that are not fail closed rather than leave a
        // fixed value unenforced.
        self.validate().map_err(|e| SubjectRefusal {
            attribute: e.entry,
            reason: format!("the policy's subject rules are invalid: {}", e.reason),
        })?;
        let fixed: Vec<(DnAttribute, &String)> = self
            .fixed
            .iter()
            .filter_map(|(name, value)| attribute(name).map(|a| (a, value)))
            .collect();
        let mut attributes = subject.attributes().to_vec();
        for (attr, value) in &attributes {
            let short = attr.short_name();
            if !self.allowed_attributes.iter().any(|a| a == short) {
                return Err(SubjectRefusal {
                    attribute: short.to_owned(),
                    reason: format!("{short} is not allowed in the subject by the policy"),
                });
            }
            if let Some((_, required)) = fixed.iter().find(|(a, _)| a == attr)
                && value != *required
            {
                return Err(SubjectRefusal {
                    attribute: short.to_owned(),
                    reason: format!("{short} is fixed to {required:?}"),
                });
            }
        }
        let mut missing: Vec<_> = fixed
            .into_iter()
            .filter(|(attr, _)| !attributes.iter().any(|(a, _)| a == attr))
            .collect();
        missing.sort_by_key(|(attr, _)| rank(*attr));
        for (attr, value) in missing {
            let at = attributes
                .iter()
                .position(|(a, _)| rank(*a) > rank(attr))
                .unwrap_or(attributes.len());
            attributes.insert(at, (attr, value.clone()));
        }
        DistinguishedName::from_attributes(attributes).map_err(|e| SubjectRefusal {
            attribute: String::new(),
            reason: e.0,
        })
    }
}

fn unknown(name: &str) -> String {
    format!("unknown attribute {name:?}; use CN, O, OU, C, ST, L, DC or serialNumber")
}

#[cfg(test)]
mod tests;
