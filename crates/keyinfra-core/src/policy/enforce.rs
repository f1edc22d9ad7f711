//! Checking one request against a compiled policy. Pure: no database, no clock. The
//! issuer calls it before any key is generated or anything is signed; renewal and
//! reassignment call it with the certificate's current content.

use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use uuid::Uuid;

use super::model::CompiledPolicy;
use super::names::{NameRefusal, ReservedNames};
use crate::ErrorCode;
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
                ErrorCode::ProfileNotAllowed,
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
                ErrorCode::ValidityTooLong,
                format!(
                    "validity_days {} exceeds policy {:?}'s maximum of {}",
                    candidate.validity_days, policy.name, policy.max_validity_days
                ),
            ));
        }
        if !policy.ca_ids.is_empty() && !policy.ca_ids.contains(&candidate.ca_id) {
            return Err(CoreError::invalid(
                ErrorCode::CaNotAllowed,
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
                ErrorCode::SubjectNotAllowed,
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
                ErrorCode::KeyAlgorithmNotAllowed,
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
                ErrorCode::KeyAlgorithmNotAllowed,
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
            ErrorCode::NameNotAllowed,
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

#[cfg(test)]
mod tests {
    use keyinfra_pki::profile::builtin_profiles;

    use super::*;
    use crate::policy::{Policy, PolicyChanges};

    fn policy(yaml: &str) -> CompiledPolicy {
        let profiles = builtin_profiles(None);
        Policy::builtin_default(&profiles)
            .with(PolicyChanges::from_text(yaml).unwrap())
            .compile(&profiles)
            .unwrap()
    }

    struct Ask {
        subject: DistinguishedName,
        sans: Vec<SubjectAltName>,
        profile: &'static str,
        algorithm: KeyAlgorithm,
        days: u32,
        ca: Uuid,
    }

    fn ask(cn: &str, sans: &[&str]) -> Ask {
        Ask {
            subject: DistinguishedName::parse(&format!("CN={cn}")).unwrap(),
            sans: SubjectAltName::parse_list(sans).unwrap(),
            profile: "device",
            algorithm: KeyAlgorithm::EcdsaP256,
            days: 30,
            ca: Uuid::from_u128(1),
        }
    }

    fn check(
        p: &CompiledPolicy,
        a: &Ask,
        reserved: Option<&ReservedNames>,
    ) -> Result<String, (&'static str, String)> {
        p.check(
            &Candidate {
                subject: &a.subject,
                sans: &a.sans,
                profile: a.profile,
                algorithm: a.algorithm,
                validity_days: a.days,
                ca_id: a.ca,
            },
            reserved,
        )
        .map(|s| s.to_string())
        .map_err(|e| match e {
            CoreError::Invalid { code, detail } => (code.as_str(), detail),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn each_rule_refuses_with_its_own_code_and_says_why() {
        let p = policy(
            "profiles: [device]\nkey_algorithms: [ecdsa-p256, rsa-3072, rsa-4096]\nmin_rsa_bits: 4096\nmax_validity_days: 90\nca_ids: ['00000000-0000-0000-0000-000000000001']\n",
        );
        assert!(check(&p, &ask("a", &["a.example.net"]), None).is_ok());
        let cases: Vec<(Ask, &str, &str)> = vec![
            (
                Ask {
                    profile: "server",
                    ..ask("a", &[])
                },
                "profile_not_allowed",
                "server",
            ),
            (
                Ask {
                    algorithm: KeyAlgorithm::Ed25519,
                    ..ask("a", &[])
                },
                "key_algorithm_not_allowed",
                "ed25519",
            ),
            (
                Ask {
                    algorithm: KeyAlgorithm::Rsa3072,
                    ..ask("a", &[])
                },
                "key_algorithm_not_allowed",
                "at least 4096",
            ),
            (
                Ask {
                    days: 91,
                    ..ask("a", &[])
                },
                "validity_too_long",
                "90",
            ),
            (
                Ask {
                    ca: Uuid::from_u128(2),
                    ..ask("a", &[])
                },
                "ca_not_allowed",
                "00000000-0000-0000-0000-000000000002",
            ),
            (
                ask("a", &["*.com"]),
                "name_not_allowed",
                "public-suffix wildcard",
            ),
        ];
        for (a, code, mentions) in cases {
            let (got, detail) = check(&p, &a, None).unwrap_err();
            assert_eq!(got, code, "{detail}");
            assert!(
                detail.contains(mentions),
                "{detail:?} should mention {mentions:?}"
            );
        }
    }

    #[test]
    fn reserved_names_bind_only_those_who_are_given_them() {
        let p = policy("{}");
        let reserved = ReservedNames::new(["ca.example.net".to_owned()], []);
        for sans in [
            &["ca.example.net"][..],
            &["localhost"],
            &["127.0.0.1"],
            &["*.example.net"],
        ] {
            let (code, detail) = check(&p, &ask("x", sans), Some(&reserved)).unwrap_err();
            assert_eq!(code, "name_not_allowed", "{sans:?}");
            assert!(detail.contains("reserved name"), "{detail}");
        }
        // A CN naming the server is refused too; an ADMIN (no reserved list) gets it.
        assert!(check(&p, &ask("ca.example.net", &[]), Some(&reserved)).is_err());
        assert!(check(&p, &ask("ca.example.net", &["ca.example.net"]), None).is_ok());
    }

    #[test]
    fn fixed_subject_attributes_are_added_and_never_overridden() {
        let p = policy("subject: {allowed_attributes: [CN, O], fixed: {O: Example Corp}}\n");
        assert_eq!(
            check(&p, &ask("a", &[]), None).unwrap(),
            "CN=a,O=Example Corp"
        );
        let other = Ask {
            subject: DistinguishedName::parse("CN=a,O=Other").unwrap(),
            ..ask("a", &[])
        };
        assert_eq!(
            check(&p, &other, None).unwrap_err().0,
            "subject_not_allowed"
        );
        let ou = Ask {
            subject: DistinguishedName::parse("CN=a,OU=Ops").unwrap(),
            ..ask("a", &[])
        };
        assert_eq!(check(&p, &ou, None).unwrap_err().0, "subject_not_allowed");
    }
}
