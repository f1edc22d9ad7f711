//! Checking one request against a compiled policy. Pure: no database, no clock. The
//! issuer calls it before any key is generated or anything is signed; renewal and
//! reassignment call it with the certificate's current content.

use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use uuid::Uuid;

use super::model::CompiledPolicy;
use super::names::{NameRefusal, ReservedNames};
use crate::error::CoreError;

/// What a request would put in a certificate, as far as a policy cares.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub subject: &'a DistinguishedName,
    pub sans: &'a [SubjectAltName],
    pub profile: &'a str,
    pub algorithm: KeyAlgorithm,
    pub validity_days: u32,
    pub ca_id: Uuid,
}

impl CompiledPolicy {
    /// Checks a candidate; answers the subject to sign (with the policy's fixed attributes
    /// set) or the refusal, 422 with a code per rule. `reserved` is `None` for those who
    /// may get the server's own names (ADMIN, the operator, the server).
    pub fn check(
        &self,
        candidate: &Candidate<'_>,
        reserved: Option<&ReservedNames>,
    ) -> Result<DistinguishedName, CoreError> {
        let policy = &self.policy;
        if !policy.profiles.iter().any(|p| p == candidate.profile) {
            return Err(CoreError::invalid(
                "profile_not_allowed",
                format!(
                    "policy {:?} does not allow the {:?} profile (it allows: {})",
                    policy.name,
                    candidate.profile,
                    list_or_none(&policy.profiles)
                ),
            ));
        }
        self.check_key_algorithm(candidate.algorithm)?;
        if candidate.validity_days > policy.max_validity_days {
            return Err(CoreError::invalid(
                "validity_too_long",
                format!(
                    "validity_days {} exceeds policy {:?}'s maximum of {}",
                    candidate.validity_days, policy.name, policy.max_validity_days
                ),
            ));
        }
        if !policy.ca_ids.is_empty() && !policy.ca_ids.contains(&candidate.ca_id) {
            return Err(CoreError::invalid(
                "ca_not_allowed",
                format!(
                    "policy {:?} does not allow CA {} to sign (it allows: {})",
                    policy.name,
                    candidate.ca_id,
                    policy
                        .ca_ids
                        .iter()
                        .map(Uuid::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let subject = policy.subject.apply(candidate.subject).map_err(|r| {
            CoreError::invalid(
                "subject_not_allowed",
                format!(
                    "subject attribute {}: {} (policy {:?})",
                    r.attribute, r.reason, policy.name
                ),
            )
        })?;
        if let Some(cn) = subject.common_name() {
            self.names
                .check_common_name(cn)
                .map_err(|r| self.refused(r))?;
        }
        for san in candidate.sans {
            self.names.check(san).map_err(|r| self.refused(r))?;
            if let Some(reserved) = reserved {
                reserved.check(san).map_err(|r| self.refused(r))?;
            }
        }
        if let (Some(reserved), Some(cn)) = (reserved, subject.common_name())
            && let Ok(san) = SubjectAltName::parse(cn)
        {
            reserved.check(&san).map_err(|r| self.refused(r))?;
        }
        Ok(subject)
    }

    /// The key algorithm alone: a CSR's key, or the one to generate.
    pub fn check_key_algorithm(&self, algorithm: KeyAlgorithm) -> Result<(), CoreError> {
        let policy = &self.policy;
        if !self.algorithms.contains(&algorithm) {
            return Err(CoreError::invalid(
                "key_algorithm_not_allowed",
                format!(
                    "policy {:?} does not allow {} keys (it allows: {})",
                    policy.name,
                    algorithm.label(),
                    list_or_none(&policy.key_algorithms)
                ),
            ));
        }
        if let Some(bits) = rsa_bits(algorithm)
            && bits < policy.min_rsa_bits
        {
            return Err(CoreError::invalid(
                "key_algorithm_not_allowed",
                format!(
                    "policy {:?} requires RSA keys of at least {} bits; this one has {bits}",
                    policy.name, policy.min_rsa_bits
                ),
            ));
        }
        Ok(())
    }

    fn refused(&self, refusal: NameRefusal) -> CoreError {
        CoreError::invalid(
            "name_not_allowed",
            format!(
                "{:?} is not allowed: {} (policy {:?})",
                refusal.name, refusal.rule, self.policy.name
            ),
        )
    }
}

fn rsa_bits(algorithm: KeyAlgorithm) -> Option<u32> {
    match algorithm {
        KeyAlgorithm::Rsa2048 => Some(2048),
        KeyAlgorithm::Rsa3072 => Some(3072),
        KeyAlgorithm::Rsa4096 => Some(4096),
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 | KeyAlgorithm::Ed25519 => None,
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
