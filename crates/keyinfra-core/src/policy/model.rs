//! A policy as data: what the API and the CLI read and write, its validation, and its
//! compiled form that the issuer checks requests against.

use std::collections::BTreeSet;

use keyinfra_db::policies::{DEFAULT_POLICY_ID, PolicyRecord, PolicyRow};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::profile::Profile;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::names::{NameRules, NameRulesSpec, PatternError};
use super::subject::SubjectRules;
use crate::ErrorCode;
use crate::error::CoreError;

/// The name of the policy new users hold.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Entries in one list of a policy, at most (the database checks the same bound).
const MAX_LIST: usize = 1000;

/// An issuance policy, as the API shows it (issue 17's contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub allowed_dns: Vec<String>,
    pub denied_dns: Vec<String>,
    pub allowed_ips: Vec<String>,
    pub allowed_emails: Vec<String>,
    pub allowed_uris: Vec<String>,
    pub subject: SubjectRules,
    pub profiles: Vec<String>,
    pub key_algorithms: Vec<String>,
    pub min_rsa_bits: u32,
    pub max_validity_days: u32,
    /// Active certificates an owner may hold; `None`: the server's KEYINFRA_CERT_QUOTA.
    pub quota: Option<u32>,
    /// CAs that may sign under this policy; empty: any issuing CA.
    pub ca_ids: Vec<Uuid>,
    /// Whether a device renewing its own certificate (EST simplereenroll) may ask for other
    /// names than it has; the new names still pass the rules above. Default false: a
    /// certificate renews only its own names.
    #[serde(default)]
    pub renewal_name_changes: bool,
}

/// A create or an update: every field optional. On create, an omitted field takes the
/// `default` policy's value; on update, the policy's current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub allowed_dns: Option<Vec<String>>,
    pub denied_dns: Option<Vec<String>>,
    pub allowed_ips: Option<Vec<String>>,
    pub allowed_emails: Option<Vec<String>>,
    pub allowed_uris: Option<Vec<String>>,
    pub subject: Option<SubjectRules>,
    pub profiles: Option<Vec<String>>,
    pub key_algorithms: Option<Vec<String>>,
    pub min_rsa_bits: Option<u32>,
    pub max_validity_days: Option<u32>,
    /// Absent: unchanged; `null`: back to the server's quota; a number: this quota.
    #[serde(default, deserialize_with = "present_or_null")]
    pub quota: Option<Option<u32>>,
    pub ca_ids: Option<Vec<Uuid>>,
    pub renewal_name_changes: Option<bool>,
}

impl PolicyChanges {
    /// A policy file (`keyinfra policy create|update --file`): JSON when it looks like JSON
    /// (a YAML parser would take it too, but JSON's errors are clearer), else YAML. The
    /// YAML parser bounds aliases and nesting, so a small file cannot expand without end.
    pub fn from_text(text: &str) -> Result<PolicyChanges, CoreError> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| {
                CoreError::invalid(
                    ErrorCode::InvalidPolicy,
                    format!("not a policy in JSON: {e}"),
                )
            })
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                CoreError::invalid(
                    ErrorCode::InvalidPolicy,
                    format!("not a policy in YAML: {e}"),
                )
            })
        }
    }
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(deserializer).map(Some)
}

impl Policy {
    /// A fresh install's `default` policy: any DNS name and address, no e-mail or URI, any
    /// subject attribute, every profile and key algorithm, the server's quota, any CA. The
    /// refusals every policy makes (public-suffix wildcards, the server's own names) come
    /// on top.
    pub fn builtin_default(profiles: &[Profile]) -> Policy {
        Policy {
            id: DEFAULT_POLICY_ID,
            name: DEFAULT_POLICY_NAME.to_owned(),
            description: "Any name and address except public-suffix wildcards and KeyInfra's own names; tighten it with PATCH /api/v1/policies/{id}".to_owned(),
            allowed_dns: vec!["*".to_owned()],
            denied_dns: Vec::new(),
            allowed_ips: vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()],
            allowed_emails: Vec::new(),
            allowed_uris: Vec::new(),
            subject: SubjectRules::any(),
            profiles: profiles.iter().map(|p| p.name.clone()).collect(),
            key_algorithms: KeyAlgorithm::ALL
                .iter()
                .map(|a| a.label().to_owned())
                .collect(),
            min_rsa_bits: 2048,
            max_validity_days: profiles
                .iter()
                .map(|p| p.max_validity_days)
                .max()
                .unwrap_or(825),
            quota: None,
            ca_ids: Vec::new(),
            renewal_name_changes: false,
        }
    }

    /// This policy with the changes applied (omitted fields keep their value).
    pub fn with(&self, changes: PolicyChanges) -> Policy {
        let PolicyChanges {
            name,
            description,
            allowed_dns,
            denied_dns,
            allowed_ips,
            allowed_emails,
            allowed_uris,
            subject,
            profiles,
            key_algorithms,
            min_rsa_bits,
            max_validity_days,
            quota,
            ca_ids,
            renewal_name_changes,
        } = changes;
        Policy {
            id: self.id,
            name: name.unwrap_or_else(|| self.name.clone()),
            description: description.unwrap_or_else(|| self.description.clone()),
            allowed_dns: allowed_dns.unwrap_or_else(|| self.allowed_dns.clone()),
            denied_dns: denied_dns.unwrap_or_else(|| self.denied_dns.clone()),
            allowed_ips: allowed_ips.unwrap_or_else(|| self.allowed_ips.clone()),
            allowed_emails: allowed_emails.unwrap_or_else(|| self.allowed_emails.clone()),
            allowed_uris: allowed_uris.unwrap_or_else(|| self.allowed_uris.clone()),
            subject: subject.unwrap_or_else(|| self.subject.clone()),
            profiles: profiles.unwrap_or_else(|| self.profiles.clone()),
            key_algorithms: key_algorithms.unwrap_or_else(|| self.key_algorithms.clone()),
            min_rsa_bits: min_rsa_bits.unwrap_or(self.min_rsa_bits),
            max_validity_days: max_validity_days.unwrap_or(self.max_validity_days),
            quota: quota.unwrap_or(self.quota),
            ca_ids: ca_ids.unwrap_or_else(|| self.ca_ids.clone()),
            renewal_name_changes: renewal_name_changes.unwrap_or(self.renewal_name_changes),
        }
    }

    /// Checks every field and compiles the rules, or answers 422 `invalid_policy` naming
    /// the field and the entry at fault. `profiles` are the server's.
    pub fn compile(&self, profiles: &[Profile]) -> Result<CompiledPolicy, CoreError> {
        let invalid = |detail: String| CoreError::invalid(ErrorCode::InvalidPolicy, detail);
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self.name.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'-' || b == b'_'))
            });
        if !name_ok {
            return Err(invalid(format!(
                "name {:?} must be 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
                self.name
            )));
        }
        if self.description.chars().count() > 1000 {
            return Err(invalid("description is longer than 1000 characters".into()));
        }
        for (field, list) in [
            ("allowed_dns", &self.allowed_dns),
            ("denied_dns", &self.denied_dns),
            ("allowed_ips", &self.allowed_ips),
            ("allowed_emails", &self.allowed_emails),
            ("allowed_uris", &self.allowed_uris),
        ] {
            if list.len() > MAX_LIST {
                return Err(invalid(format!(
                    "{field} has {} entries; at most {MAX_LIST}",
                    list.len()
                )));
            }
        }
        let names = NameRules::compile(&NameRulesSpec {
            allowed_dns: &self.allowed_dns,
            denied_dns: &self.denied_dns,
            allowed_ips: &self.allowed_ips,
            allowed_emails: &self.allowed_emails,
            allowed_uris: &self.allowed_uris,
        })
        .map_err(pattern_error)?;
        self.subject.validate().map_err(pattern_error)?;
        let mut seen = BTreeSet::new();
        for profile in &self.profiles {
            if !profiles.iter().any(|p| &p.name == profile) {
                return Err(invalid(format!(
                    "profiles: {profile:?} is not one of this server's profiles ({})",
                    profiles
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if !seen.insert(profile.as_str()) {
                return Err(invalid(format!("profiles: {profile:?} is named twice")));
            }
        }
        let mut algorithms = Vec::new();
        for label in &self.key_algorithms {
            let algorithm = KeyAlgorithm::from_label(label).ok_or_else(|| {
                invalid(format!(
                    "key_algorithms: {label:?} is not one of {}",
                    KeyAlgorithm::labels()
                ))
            })?;
            if algorithms.contains(&algorithm) {
                return Err(invalid(format!("key_algorithms: {label:?} is named twice")));
            }
            algorithms.push(algorithm);
        }
        if ![2048, 3072, 4096].contains(&self.min_rsa_bits) {
            return Err(invalid(format!(
                "min_rsa_bits {} must be 2048, 3072 or 4096",
                self.min_rsa_bits
            )));
        }
        if !(1..=36500).contains(&self.max_validity_days) {
            return Err(invalid(format!(
                "max_validity_days {} must be between 1 and 36500",
                self.max_validity_days
            )));
        }
        if self.quota.is_some_and(|q| q > 1_000_000) {
            return Err(invalid("quota must be at most 1000000".into()));
        }
        if self.ca_ids.len() > 100 {
            return Err(invalid("ca_ids names more than 100 CAs".into()));
        }
        Ok(CompiledPolicy {
            policy: self.clone(),
            names,
            algorithms,
        })
    }

    pub(crate) fn from_record(record: PolicyRecord) -> Result<Policy, CoreError> {
        let broken = |what: &str| {
            CoreError::Internal(format!("policy {} has a malformed {what}", record.id))
        };
        let subject: SubjectRules = serde_json::from_value(record.subject_rules.clone())
            .map_err(|_| broken("subject_rules"))?;
        Ok(Policy {
            id: record.id,
            name: record.name,
            description: record.description,
            allowed_dns: record.allowed_dns,
            denied_dns: record.denied_dns,
            allowed_ips: record.allowed_ips,
            allowed_emails: record.allowed_emails,
            allowed_uris: record.allowed_uris,
            subject,
            profiles: record.profiles,
            key_algorithms: record.key_algorithms,
            min_rsa_bits: u32::try_from(record.min_rsa_bits).map_err(|_| broken("min_rsa_bits"))?,
            max_validity_days: u32::try_from(record.max_validity_days)
                .map_err(|_| broken("max_validity_days"))?,
            quota: record
                .quota
                .map(u32::try_from)
                .transpose()
                .map_err(|_| broken("quota"))?,
            ca_ids: record.ca_ids,
            renewal_name_changes: record.renewal_name_changes,
        })
    }

    /// The row to write, with the subject rules serialised once.
    pub(crate) fn to_row<'a>(&'a self, subject_rules: &'a serde_json::Value) -> PolicyRow<'a> {
        PolicyRow {
            id: self.id,
            name: &self.name,
            description: &self.description,
            allowed_dns: &self.allowed_dns,
            denied_dns: &self.denied_dns,
            allowed_ips: &self.allowed_ips,
            allowed_emails: &self.allowed_emails,
            allowed_uris: &self.allowed_uris,
            subject_rules,
            profiles: &self.profiles,
            key_algorithms: &self.key_algorithms,
            // Validated: at most 4096 and 36500 and 1000000.
            min_rsa_bits: i32::try_from(self.min_rsa_bits).unwrap_or(i32::MAX),
            max_validity_days: i32::try_from(self.max_validity_days).unwrap_or(i32::MAX),
            quota: self.quota.map(|q| i32::try_from(q).unwrap_or(i32::MAX)),
            ca_ids: &self.ca_ids,
            renewal_name_changes: self.renewal_name_changes,
        }
    }
}

/// `field: "entry": reason`, as the name rules word it.
fn pattern_error(e: PatternError) -> CoreError {
    CoreError::invalid(ErrorCode::InvalidPolicy, e.to_string())
}

/// A policy checked and compiled: what the issuer tests requests against.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub policy: Policy,
    pub(crate) names: NameRules,
    pub(crate) algorithms: Vec<KeyAlgorithm>,
}
