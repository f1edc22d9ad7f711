//! The policy form as data: its fields as posted ([`FormPairs`]), as typed ([`Draft`]),
//! and as the change the use case takes ([`PolicyChanges`]); and where a refusal shows
//! ([`FieldErrors`]), next to the field the use case's message names.

use std::collections::BTreeMap;

use keyinfra_core::policy::subject::SubjectRules;
use keyinfra_core::policy::{Policy, PolicyChanges};
use serde::Deserialize;
use uuid::Uuid;

use crate::ui::view;

/// A form's fields in order, repeated names included (checkbox groups).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct FormPairs(Vec<(String, String)>);

impl FormPairs {
    /// The first value of a field, or "".
    fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field, in order.
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A policy as its form holds it: lists as text (one entry per line), the checkbox groups
/// as the values ticked, numbers as typed.
#[derive(Debug, Default)]
pub(super) struct Draft {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) allowed_dns: String,
    pub(super) denied_dns: String,
    pub(super) allowed_ips: String,
    pub(super) allowed_emails: String,
    pub(super) allowed_uris: String,
    pub(super) subject_attributes: Vec<String>,
    /// `ATTR=value`, one per line.
    pub(super) subject_fixed: String,
    pub(super) profiles: Vec<String>,
    pub(super) key_algorithms: Vec<String>,
    pub(super) min_rsa_bits: String,
    pub(super) max_validity_days: String,
    /// Empty: the server's default quota.
    pub(super) quota: String,
    pub(super) ca_ids: Vec<String>,
    pub(super) renewal_name_changes: bool,
}

impl Draft {
    pub(super) fn of(policy: &Policy) -> Self {
        Self {
            name: policy.name.clone(),
            description: policy.description.clone(),
            allowed_dns: policy.allowed_dns.join("\n"),
            denied_dns: policy.denied_dns.join("\n"),
            allowed_ips: policy.allowed_ips.join("\n"),
            allowed_emails: policy.allowed_emails.join("\n"),
            allowed_uris: policy.allowed_uris.join("\n"),
            subject_attributes: policy.subject.allowed_attributes.clone(),
            subject_fixed: policy
                .subject
                .fixed
                .iter()
                .map(|(attr, value)| format!("{attr}={value}"))
                .collect::<Vec<_>>()
                .join("\n"),
            profiles: policy.profiles.clone(),
            key_algorithms: policy.key_algorithms.clone(),
            min_rsa_bits: policy.min_rsa_bits.to_string(),
            max_validity_days: policy.max_validity_days.to_string(),
            quota: policy.quota.map(|q| q.to_string()).unwrap_or_default(),
            ca_ids: policy.ca_ids.iter().map(Uuid::to_string).collect(),
            renewal_name_changes: policy.renewal_name_changes,
        }
    }

    pub(super) fn from_form(form: &FormPairs) -> Self {
        Self {
            name: form.one("name").to_owned(),
            description: form.one("description").to_owned(),
            allowed_dns: form.one("allowed_dns").to_owned(),
            denied_dns: form.one("denied_dns").to_owned(),
            allowed_ips: form.one("allowed_ips").to_owned(),
            allowed_emails: form.one("allowed_emails").to_owned(),
            allowed_uris: form.one("allowed_uris").to_owned(),
            subject_attributes: form.all("subject_attribute"),
            subject_fixed: form.one("subject_fixed").to_owned(),
            profiles: form.all("profile"),
            key_algorithms: form.all("key_algorithm"),
            min_rsa_bits: form.one("min_rsa_bits").to_owned(),
            max_validity_days: form.one("max_validity_days").to_owned(),
            quota: form.one("quota").to_owned(),
            ca_ids: form.all("ca_id"),
            // A checkbox: present when ticked.
            renewal_name_changes: form.one("renewal_name_changes") == "on",
        }
    }

    /// The change the form asks for: every field, as the form shows it. What the form
    /// alone shows to be wrong (a number that is not one, a fixed value without `=`) is
    /// refused here with the field it concerns; the use case checks everything else.
    pub(super) fn changes(&self) -> Result<PolicyChanges, (Field, String)> {
        let number = |field: Field, text: &str, what: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| (field, format!("Give {what} as a whole number.")))
        };
        let quota = match self.quota.trim() {
            "" => None,
            text => Some(number(Field::Quota, text, "the quota")?),
        };
        let ca_ids = self
            .ca_ids
            .iter()
            .map(|id| {
                id.parse::<Uuid>()
                    .map_err(|_| (Field::CaIds, "Choose CAs from the list.".to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyChanges {
            name: Some(self.name.trim().to_owned()),
            description: Some(self.description.trim().to_owned()),
            allowed_dns: Some(lines(&self.allowed_dns)),
            denied_dns: Some(lines(&self.denied_dns)),
            allowed_ips: Some(lines(&self.allowed_ips)),
            allowed_emails: Some(lines(&self.allowed_emails)),
            allowed_uris: Some(lines(&self.allowed_uris)),
            subject: Some(SubjectRules {
                allowed_attributes: self.subject_attributes.clone(),
                fixed: fixed_values(&self.subject_fixed)?,
            }),
            profiles: Some(self.profiles.clone()),
            key_algorithms: Some(self.key_algorithms.clone()),
            min_rsa_bits: Some(number(
                Field::MinRsaBits,
                &self.min_rsa_bits,
                "the minimum RSA size",
            )?),
            max_validity_days: Some(number(
                Field::MaxValidity,
                &self.max_validity_days,
                "the maximum validity in days",
            )?),
            quota: Some(quota),
            ca_ids: Some(ca_ids),
            renewal_name_changes: Some(self.renewal_name_changes),
        })
    }
}

/// A textarea's entries: one per line, blank lines and surrounding spaces dropped. (Not
/// split at commas: a URI may hold one.)
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `ATTR=value` lines as the subject's fixed values; the attribute names are the use
/// case's to check.
fn fixed_values(text: &str) -> Result<BTreeMap<String, String>, (Field, String)> {
    let mut fixed = BTreeMap::new();
    for line in lines(text) {
        let Some((attr, value)) = line.split_once('=') else {
            return Err((
                Field::SubjectFixed,
                format!(
                    "Write each fixed value as ATTR=value, e.g. O=Example Corp; {line:?} has no \"=\"."
                ),
            ));
        };
        let attr = attr.trim().to_owned();
        if fixed
            .insert(attr.clone(), value.trim().to_owned())
            .is_some()
        {
            return Err((
                Field::SubjectFixed,
                format!("{attr} is given two fixed values; keep one line for it."),
            ));
        }
    }
    Ok(fixed)
}

/// The fields of the policy form an error can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Name,
    Description,
    AllowedDns,
    DeniedDns,
    AllowedIps,
    AllowedEmails,
    AllowedUris,
    SubjectAttributes,
    SubjectFixed,
    Profiles,
    KeyAlgorithms,
    MinRsaBits,
    MaxValidity,
    Quota,
    CaIds,
}

impl Field {
    /// The contract's field names, as the use case's messages begin with them (longest
    /// first where one begins another).
    const NAMED: [(&'static str, Field); 15] = [
        ("subject.allowed_attributes", Field::SubjectAttributes),
        ("subject.fixed", Field::SubjectFixed),
        ("allowed_dns", Field::AllowedDns),
        ("denied_dns", Field::DeniedDns),
        ("allowed_ips", Field::AllowedIps),
        ("allowed_emails", Field::AllowedEmails),
        ("allowed_uris", Field::AllowedUris),
        ("profiles", Field::Profiles),
        ("key_algorithms", Field::KeyAlgorithms),
        ("min_rsa_bits", Field::MinRsaBits),
        ("max_validity_days", Field::MaxValidity),
        ("quota", Field::Quota),
        ("ca_ids", Field::CaIds),
        ("description", Field::Description),
        ("name", Field::Name),
    ];

    /// The field a use case's message is about, and the message without its field name
    /// ("allowed_dns: \"*.com\" ..." reads "\"*.com\" ..." next to the field).
    fn of_detail(detail: &str) -> Option<(Field, String)> {
        Field::NAMED.iter().find_map(|(name, field)| {
            let rest = detail.strip_prefix(name)?;
            if let Some(message) = rest.strip_prefix(": ") {
                Some((*field, view::sentence(message)))
            } else if rest.starts_with(' ') {
                Some((*field, view::sentence(detail)))
            } else {
                None
            }
        })
    }
}

/// Where the policy page shows a refusal: next to its field, or at the top.
#[derive(Debug, Default)]
pub(super) struct FieldErrors {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) allowed_dns: Option<String>,
    pub(super) denied_dns: Option<String>,
    pub(super) allowed_ips: Option<String>,
    pub(super) allowed_emails: Option<String>,
    pub(super) allowed_uris: Option<String>,
    pub(super) subject_attributes: Option<String>,
    pub(super) subject_fixed: Option<String>,
    pub(super) profiles: Option<String>,
    pub(super) key_algorithms: Option<String>,
    pub(super) min_rsa_bits: Option<String>,
    pub(super) max_validity_days: Option<String>,
    pub(super) quota: Option<String>,
    pub(super) ca_ids: Option<String>,
    /// At the top of the page: a message about no one field, or the pointer to the field.
    pub(super) general: Option<String>,
}

impl FieldErrors {
    pub(super) fn at(field: Field, message: String) -> Self {
        let mut errors = FieldErrors {
            general: Some("The policy was not saved: correct the field marked below.".into()),
            ..FieldErrors::default()
        };
        let slot = match field {
            Field::Name => &mut errors.name,
            Field::Description => &mut errors.description,
            Field::AllowedDns => &mut errors.allowed_dns,
            Field::DeniedDns => &mut errors.denied_dns,
            Field::AllowedIps => &mut errors.allowed_ips,
            Field::AllowedEmails => &mut errors.allowed_emails,
            Field::AllowedUris => &mut errors.allowed_uris,
            Field::SubjectAttributes => &mut errors.subject_attributes,
            Field::SubjectFixed => &mut errors.subject_fixed,
            Field::Profiles => &mut errors.profiles,
            Field::KeyAlgorithms => &mut errors.key_algorithms,
            Field::MinRsaBits => &mut errors.min_rsa_bits,
            Field::MaxValidity => &mut errors.max_validity_days,
            Field::Quota => &mut errors.quota,
            Field::CaIds => &mut errors.ca_ids,
        };
        *slot = Some(message);
        errors
    }

    /// A use case's message: next to the field it names, else at the top.
    pub(super) fn of_detail(detail: &str) -> Self {
        match Field::of_detail(detail) {
            Some((field, message)) => FieldErrors::at(field, message),
            None => FieldErrors {
                general: Some(view::sentence(detail)),
                ..FieldErrors::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> FormPairs {
        FormPairs(
            list.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_form_becomes_every_field_of_the_contract() {
        let form = pairs(&[
            ("name", " site1 "),
            (
                "allowed_dns",
                "router1.site1.example.net\r\n\r\n *.site1.example.net \n",
            ),
            ("allowed_uris", "urn:x,y"),
            ("subject_attribute", "CN"),
            ("subject_attribute", "O"),
            ("subject_fixed", "O = Example Corp\n"),
            ("profile", "device"),
            ("key_algorithm", "ed25519"),
            ("min_rsa_bits", "3072"),
            ("max_validity_days", "90"),
            ("quota", ""),
        ]);
        let changes = Draft::from_form(&form).changes().unwrap();
        assert_eq!(changes.name.as_deref(), Some("site1"));
        assert_eq!(
            changes.allowed_dns.unwrap(),
            ["router1.site1.example.net", "*.site1.example.net"]
        );
        assert_eq!(
            changes.allowed_uris.unwrap(),
            ["urn:x,y"],
            "no split at commas"
        );
        let subject = changes.subject.unwrap();
        assert_eq!(subject.allowed_attributes, ["CN", "O"]);
        assert_eq!(subject.fixed["O"], "Example Corp");
        assert_eq!(changes.min_rsa_bits, Some(3072));
        assert_eq!(changes.max_validity_days, Some(90));
        assert_eq!(changes.quota, Some(None), "empty: the server's quota");
        assert_eq!(changes.ca_ids, Some(Vec::new()), "none ticked: any CA");
        assert_eq!(changes.renewal_name_changes, Some(false), "unticked");
        let mut ticked = form.0.clone();
        ticked.push(("renewal_name_changes".into(), "on".into()));
        let changes = Draft::from_form(&FormPairs(ticked)).changes().unwrap();
        assert_eq!(changes.renewal_name_changes, Some(true));
    }

    #[test]
    fn what_the_form_alone_shows_wrong_names_its_field() {
        let with = |name: &str, value: &str| {
            let mut draft = Draft::from_form(&pairs(&[
                ("min_rsa_bits", "2048"),
                ("max_validity_days", "90"),
            ]));
            match name {
                "subject_fixed" => draft.subject_fixed = value.into(),
                "quota" => draft.quota = value.into(),
                "max_validity_days" => draft.max_validity_days = value.into(),
                _ => draft.ca_ids = vec![value.into()],
            }
            draft.changes().unwrap_err().0
        };
        assert_eq!(with("subject_fixed", "O Example"), Field::SubjectFixed);
        assert_eq!(with("subject_fixed", "O=a\nO=b"), Field::SubjectFixed);
        assert_eq!(with("quota", "ten"), Field::Quota);
        assert_eq!(with("max_validity_days", "-1"), Field::MaxValidity);
        assert_eq!(with("ca_ids", "not-a-uuid"), Field::CaIds);
    }

    #[test]
    fn use_case_messages_go_next_to_their_field() {
        let (field, message) =
            Field::of_detail("allowed_dns: \"*.com\" is a public-suffix wildcard").unwrap();
        assert_eq!(field, Field::AllowedDns);
        assert_eq!(message, "\"*.com\" is a public-suffix wildcard.");
        let (field, _) = Field::of_detail("subject.fixed: \"X\" unknown").unwrap();
        assert_eq!(field, Field::SubjectFixed);
        let (field, message) = Field::of_detail("name \"A\" must be lowercase").unwrap();
        assert_eq!(field, Field::Name);
        assert_eq!(message, "Name \"A\" must be lowercase.");
        assert_eq!(Field::of_detail("names clash").map(|f| f.0), None);
        let errors = FieldErrors::of_detail("the default policy keeps its name");
        assert!(errors.general.unwrap().starts_with("The default policy"));
    }
}
