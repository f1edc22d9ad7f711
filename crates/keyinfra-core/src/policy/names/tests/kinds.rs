//! IP ranges, e-mail and URI entries, common names and reserved names.

use super::*;

#[test]
fn ip_ranges_of_both_families() {
    let rules = Lists {
        ips: &[
            "192.0.2.0/24",
            "2001:db8::/32",
            "198.51.100.7",
            "2001:db8:ffff::1/128",
        ],
        ..Lists::default()
    }
    .rules();
    assert_allowed(
        &rules,
        &[
            "192.0.2.0",
            "192.0.2.255",
            "198.51.100.7",
            "2001:db8::1",
            "2001:DB8:FFFF:FFFF::",
            "2001:db8:ffff::1",
        ],
    );
    assert_refused(
        &rules,
        &[
            "192.0.3.0",
            "198.51.100.8",
            "2001:db9::",
            "::1",
            // IPv4-mapped: matched against IPv6 ranges only.
            "::ffff:192.0.2.1",
        ],
        RULE_NOT_ALLOWED,
    );
    let any = Lists {
        ips: &["0.0.0.0/0", "::/0"],
        ..Lists::default()
    }
    .rules();
    assert_allowed(
        &any,
        &["10.1.2.3", "255.255.255.255", "::", "::ffff:192.0.2.1"],
    );
    let v4_only = Lists {
        ips: &["0.0.0.0/0"],
        ..Lists::default()
    }
    .rules();
    assert_refused(
        &v4_only,
        &["::ffff:192.0.2.1", "2001:db8::1"],
        RULE_NOT_ALLOWED,
    );
    // IP rules say nothing about DNS names, and DNS rules nothing about addresses.
    assert_refused(&any, &["a.example"], RULE_NOT_ALLOWED);
    assert_refused(&dns_rules(&["*"], &[]), &["192.0.2.1"], RULE_NOT_ALLOWED);
}

#[test]
fn invalid_ip_ranges_are_refused() {
    for (bad, says) in [
        ("fe80::1%eth0", "zone id"),
        ("fe80::%1/64", "zone id"),
        ("192.0.2.1/24", "host bits set; write 192.0.2.0/24"),
        ("2001:db8::1/32", "host bits set; write 2001:db8::/32"),
        ("192.0.2.0/33", "not an IP address or CIDR"),
        ("192.0.2.0/", "not an IP address or CIDR"),
        ("192.0.2", "not an IP address or CIDR"),
        ("example.net", "not an IP address or CIDR"),
        ("", "not an IP address or CIDR"),
    ] {
        let err = Lists {
            ips: &[bad],
            ..Lists::default()
        }
        .compile()
        .unwrap_err();
        assert_eq!(err.field, "allowed_ips");
        assert_eq!(err.entry, bad);
        assert!(err.reason.contains(says), "{bad:?}: {}", err.reason);
    }
}

#[test]
fn e_mail_entries_are_domains_subtrees_or_addresses() {
    let rules = Lists {
        emails: &[
            "Example.COM",
            ".corp.example.net",
            "noc@example.org",
            "ops@bücher.example",
        ],
        ..Lists::default()
    }
    .rules();
    assert_allowed(
        &rules,
        &[
            "EMAIL:anyone@example.com",
            "EMAIL:x@EXAMPLE.com",
            "EMAIL:a@b.corp.example.net",
            "EMAIL:a@x.y.corp.example.net",
            "EMAIL:noc@example.org",
            "EMAIL:noc@Example.ORG",
            "EMAIL:ops@xn--bcher-kva.example",
        ],
    );
    assert_refused(
        &rules,
        &[
            // Exactly that domain: not below it.
            "EMAIL:a@sub.example.com",
            // Below it: not the apex.
            "EMAIL:a@corp.example.net",
            // Exactly that address; the local part keeps its case.
            "EMAIL:NOC@example.org",
            "EMAIL:abuse@example.org",
            "EMAIL:a@example.net",
        ],
        RULE_NOT_ALLOWED,
    );
    // E-mail rules are not DNS rules, and the reverse.
    assert_refused(&rules, &["example.com"], RULE_NOT_ALLOWED);
    let dns_only = dns_rules(&["*"], &[]);
    assert_refused(&dns_only, &["EMAIL:a@example.com"], RULE_NOT_ALLOWED);
    // A SAN built by hand is checked as if parsed.
    assert!(
        rules
            .check(&SubjectAltName::Email("a@Example.com".into()))
            .is_ok()
    );
    assert!(
        rules
            .check(&SubjectAltName::Email("a b@example.com".into()))
            .is_err()
    );
}

#[test]
fn invalid_e_mail_entries_are_refused() {
    for (bad, says) in [
        ("*.example.com", "no wildcard"),
        ("*@example.com", "no wildcard"),
        ("a@", "no domain"),
        ("@example.com", "local part"),
        ("a b@example.com", "local part"),
        ("example..com", "not a valid DNS pattern"),
        (".", "no domain"),
        ("", "no domain"),
        ("a@192.0.2.1", "not a valid DNS pattern"),
    ] {
        let err = Lists {
            emails: &[bad],
            ..Lists::default()
        }
        .compile()
        .unwrap_err();
        assert_eq!(err.field, "allowed_emails");
        assert!(err.reason.contains(says), "{bad:?}: {}", err.reason);
    }
}

#[test]
fn uri_entries_match_the_uri_host() {
    let rules = Lists {
        uris: &[".example.com", "spiffe.example.org"],
        denied: &[".bad.example.com"],
        ..Lists::default()
    }
    .rules();
    assert_allowed(
        &rules,
        &[
            "URI:https://a.example.com/x",
            "URI:https://A.Example.COM:8443/path?q#f",
            "URI:spiffe://spiffe.example.org/ns/prod/sa/web",
            "URI:https://a.b.example.com.",
        ],
    );
    assert_refused(
        &rules,
        &[
            "URI:https://example.com/",
            "URI:https://example.org/",
            "URI:https://192.0.2.1/",
            "URI:https://[2001:db8::1]/",
            "URI:urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "URI:file:///etc/x",
        ],
        RULE_NOT_ALLOWED,
    );
    assert_refused(
        &rules,
        &["URI:https://x.bad.example.com/"],
        "denied by .bad.example.com",
    );
    // URI rules are not DNS rules: the host alone is not allowed as a DNS name.
    assert_refused(&rules, &["a.example.com"], RULE_NOT_ALLOWED);
    // A URI built by hand that another parser could read differently is refused.
    let refusal = rules
        .check(&SubjectAltName::Uri(
            "https://evil.example@a.example.com/".into(),
        ))
        .unwrap_err();
    assert_eq!(refusal.rule, RULE_NOT_ALLOWED);
}

#[test]
fn empty_lists_allow_nothing() {
    let rules = Lists::default().rules();
    assert_refused(
        &rules,
        &[
            "a.example",
            "192.0.2.1",
            "::1",
            "EMAIL:a@example.com",
            "URI:https://a.example/",
        ],
        RULE_NOT_ALLOWED,
    );
}

#[test]
fn a_common_name_that_looks_like_a_name_is_checked_like_one() {
    let rules = Lists {
        dns: &[".example.net"],
        denied: &["bad.example.net"],
        ips: &["192.0.2.0/24"],
        ..Lists::default()
    }
    .rules();
    // Free text, and a single label (a device's own name, which no verifier reads as a
    // host name), pass.
    for free_text in [
        "edge router 1",
        "Jürgen Müller",
        "noc@example.org",
        "a_b",
        "edge-router-1",
    ] {
        assert_eq!(rules.check_common_name(free_text), Ok(()), "{free_text}");
    }
    assert_eq!(rules.check_common_name("Router1.Example.NET."), Ok(()));
    assert_eq!(rules.check_common_name("192.0.2.9"), Ok(()));
    for (cn, rule) in [
        ("router1.example.org", RULE_NOT_ALLOWED),
        ("198.51.100.1", RULE_NOT_ALLOWED),
        ("2001:db8::1", RULE_NOT_ALLOWED),
        ("bad.example.net", "denied by bad.example.net"),
        ("*", RULE_PUBLIC_SUFFIX_WILDCARD),
        ("*.com", RULE_PUBLIC_SUFFIX_WILDCARD),
        // A wildcard CN is a wildcard SAN: `.zone` does not allow it, and here it would
        // also cover the denied name.
        ("*.example.net", "denied by bad.example.net"),
        ("*.a.example.net", RULE_NOT_ALLOWED),
    ] {
        let refusal = rules.check_common_name(cn).unwrap_err();
        assert_eq!(refusal.rule, rule, "{cn}");
        assert_eq!(refusal.name, cn);
    }
    let any = dns_rules(&["*"], &[]);
    assert_eq!(
        any.check_common_name("*").unwrap_err().rule,
        RULE_PUBLIC_SUFFIX_WILDCARD
    );
    assert_eq!(any.check_common_name("*.example.net"), Ok(()));
}

#[test]
fn reserved_names_and_the_wildcards_over_them_are_refused() {
    let reserved = ReservedNames::new(
        [
            "KeyInfra.Example.NET.".to_owned(),
            "*.ops.example.net".to_owned(),
        ],
        ["192.0.2.7".parse().unwrap()],
    );
    for name in [
        "keyinfra.example.net",
        "KEYINFRA.example.net.",
        "localhost",
        "127.0.0.1",
        "::1",
        "192.0.2.7",
        "::ffff:192.0.2.7",
        "::ffff:127.0.0.1",
        // It would serve keyinfra.example.net.
        "*.example.net",
        "*.ops.example.net",
    ] {
        let refusal = reserved.check(&san(name)).unwrap_err();
        assert_eq!(refusal.rule, RULE_RESERVED, "{name}");
    }
    for name in [
        "a.example.net",
        "*.keyinfra.example.net",
        "a.ops.example.net",
        "localhost.example.net",
        "127.0.0.2",
        "192.0.2.8",
        "EMAIL:root@localhost",
        "URI:https://keyinfra.example.net/",
    ] {
        assert_eq!(reserved.check(&san(name)), Ok(()), "{name}");
    }
    assert_eq!(
        reserved.check_common_name("KeyInfra.example.net"),
        Err(NameRefusal {
            name: "KeyInfra.example.net".into(),
            rule: RULE_RESERVED.into()
        })
    );
    assert_eq!(
        reserved.check_common_name("127.0.0.1").unwrap_err().rule,
        RULE_RESERVED
    );
    assert_eq!(reserved.check_common_name("KeyInfra server"), Ok(()));
    // Default reserves nothing; new always reserves the loopback names.
    assert_eq!(ReservedNames::default().check(&san("localhost")), Ok(()));
    let minimal = ReservedNames::new([], []);
    for name in ["localhost", "127.0.0.1", "::1"] {
        assert!(minimal.check(&san(name)).is_err(), "{name}");
    }
}
