use super::*;

fn rules(allowed: &[&str], fixed: &[(&str, &str)]) -> SubjectRules {
    SubjectRules {
        allowed_attributes: allowed.iter().map(|s| (*s).to_owned()).collect(),
        fixed: fixed
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn dn(text: &str) -> DistinguishedName {
    DistinguishedName::parse(text).unwrap()
}

fn applied(rules: &SubjectRules, subject: &str) -> Result<String, SubjectRefusal> {
    rules.apply(&dn(subject)).map(|d| d.to_string())
}

#[test]
fn attributes_outside_the_allowed_list_are_refused() {
    let rules = rules(&["CN", "O"], &[]);
    assert_eq!(
        applied(&rules, "CN=edge-1,O=Example").unwrap(),
        "CN=edge-1,O=Example"
    );
    let refusal = applied(&rules, "CN=edge-1,OU=Lab,O=Example").unwrap_err();
    assert_eq!(refusal.attribute, "OU");
    assert_eq!(
        refusal.reason,
        "OU is not allowed in the subject by the policy"
    );
    let refusal = applied(&rules, "serialNumber=42,CN=x").unwrap_err();
    assert_eq!(refusal.attribute, "serialNumber");
}

#[test]
fn a_fixed_attribute_is_added_kept_or_refused() {
    let rules = rules(&["CN", "O", "OU", "C"], &[("O", "Example Corp")]);
    // Absent: added where convention puts it (before CN in ASN.1 order).
    assert_eq!(
        applied(&rules, "CN=edge-1").unwrap(),
        "CN=edge-1,O=Example Corp"
    );
    assert_eq!(
        applied(&rules, "CN=edge-1,OU=Lab,C=NL").unwrap(),
        "CN=edge-1,OU=Lab,O=Example Corp,C=NL"
    );
    // Equal: kept where it was.
    assert_eq!(
        applied(&rules, "O=Example Corp,CN=edge-1").unwrap(),
        "O=Example Corp,CN=edge-1"
    );
    // Different, even only in case: refused, saying what it must be.
    for subject in ["CN=edge-1,O=Other", "CN=edge-1,O=example corp"] {
        let refusal = applied(&rules, subject).unwrap_err();
        assert_eq!(refusal.attribute, "O");
        assert_eq!(refusal.reason, "O is fixed to \"Example Corp\"");
    }
}

#[test]
fn several_fixed_attributes_go_in_conventional_order() {
    let rules = rules(
        &["CN", "O", "OU", "C", "ST", "L", "DC"],
        &[
            ("C", "NL"),
            ("L", "Delft"),
            ("O", "Example Corp"),
            ("DC", "net"),
        ],
    );
    assert_eq!(
        applied(&rules, "CN=edge-1").unwrap(),
        "CN=edge-1,O=Example Corp,L=Delft,C=NL,DC=net"
    );
    assert_eq!(
        applied(&rules, "CN=edge-1,OU=Lab,ST=Zuid-Holland").unwrap(),
        "CN=edge-1,OU=Lab,O=Example Corp,L=Delft,ST=Zuid-Holland,C=NL,DC=net"
    );
}

#[test]
fn a_fixed_attribute_applies_to_every_occurrence() {
    let rules = rules(&["CN", "OU"], &[("OU", "Network")]);
    assert_eq!(
        applied(&rules, "CN=a,OU=Network,OU=Network").unwrap(),
        "CN=a,OU=Network,OU=Network"
    );
    let refusal = applied(&rules, "CN=a,OU=Lab,OU=Network").unwrap_err();
    assert_eq!(refusal.reason, "OU is fixed to \"Network\"");
}

#[test]
fn adding_past_the_attribute_limit_is_refused() {
    let rules = rules(&["CN", "OU", "O"], &[("O", "Example Corp")]);
    let full = format!(
        "CN=a,{}",
        vec!["OU=x"; keyinfra_pki::names::MAX_DN_ATTRIBUTES - 1].join(",")
    );
    let refusal = applied(&rules, &full).unwrap_err();
    assert!(refusal.reason.contains("more than 16"), "{refusal}");
}

#[test]
fn validation_names_the_bad_entry() {
    for (rules, field, entry, says) in [
        (
            rules(&[], &[]),
            "subject.allowed_attributes",
            "",
            "allow at least CN",
        ),
        (
            rules(&["CN", "Email"], &[]),
            "subject.allowed_attributes",
            "Email",
            "unknown attribute",
        ),
        // One spelling only: not another case, not an OID.
        (
            rules(&["cn"], &[]),
            "subject.allowed_attributes",
            "cn",
            "unknown attribute",
        ),
        (
            rules(&["2.5.4.3"], &[]),
            "subject.allowed_attributes",
            "2.5.4.3",
            "unknown attribute",
        ),
        (
            rules(&["CN", "O", "CN"], &[]),
            "subject.allowed_attributes",
            "CN",
            "listed twice",
        ),
        (
            rules(&["CN"], &[("X", "y")]),
            "subject.fixed",
            "X",
            "unknown attribute",
        ),
        (
            rules(&["CN"], &[("O", "Example Corp")]),
            "subject.fixed",
            "O",
            "not in allowed_attributes",
        ),
        (
            rules(&["CN", "C"], &[("C", "Netherlands")]),
            "subject.fixed",
            "C",
            "longer than 2",
        ),
        (
            rules(&["CN", "C"], &[("C", "nl")]),
            "subject.fixed",
            "C",
            "two-letter",
        ),
        (
            rules(&["CN", "O"], &[("O", "")]),
            "subject.fixed",
            "O",
            "empty",
        ),
        (
            rules(&["CN", "O"], &[("O", "Ex\u{202E}ample")]),
            "subject.fixed",
            "O",
            "U+202E",
        ),
    ] {
        let err = rules.validate().unwrap_err();
        assert_eq!((err.field, err.entry.as_str()), (field, entry), "{rules:?}");
        assert!(err.reason.contains(says), "{rules:?}: {}", err.reason);
    }
    assert_eq!(
        rules(&["CN", "O", "C"], &[("O", "Example Corp"), ("C", "NL")]).validate(),
        Ok(())
    );
    assert_eq!(SubjectRules::any().validate(), Ok(()));
}

#[test]
fn invalid_rules_fail_closed() {
    let broken = rules(&["CN"], &[("O", "Example Corp")]);
    let refusal = applied(&broken, "CN=a").unwrap_err();
    assert!(refusal.reason.contains("rules are invalid"), "{refusal}");
}

#[test]
fn any_allows_every_subject_unchanged() {
    let subject = "serialNumber=7,CN=a,OU=x,O=y,L=z,ST=w,C=NL,DC=example";
    assert_eq!(applied(&SubjectRules::any(), subject).unwrap(), subject);
}

#[test]
fn the_json_form_is_the_api_contract() {
    let json =
        r#"{"allowed_attributes":["CN","O","OU","C","ST","L"],"fixed":{"O":"Example Corp"}}"#;
    let rules: SubjectRules = serde_json::from_str(json).unwrap();
    assert_eq!(
        rules,
        self::rules(&["CN", "O", "OU", "C", "ST", "L"], &[("O", "Example Corp")])
    );
    assert_eq!(serde_json::to_string(&rules).unwrap(), json);
    let without_fixed: SubjectRules =
        serde_json::from_str(r#"{"allowed_attributes":["CN"]}"#).unwrap();
    assert!(without_fixed.fixed.is_empty());
    assert!(
        serde_json::from_str::<SubjectRules>(r#"{"allowed_attributes":["CN"],"extra":1}"#).is_err()
    );
}
