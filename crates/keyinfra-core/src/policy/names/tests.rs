use super::*;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Rules with the given lists; `[]` for the others.
#[derive(Default)]
struct Lists<'a> {
    dns: &'a [&'a str],
    denied: &'a [&'a str],
    ips: &'a [&'a str],
    emails: &'a [&'a str],
    uris: &'a [&'a str],
}

impl Lists<'_> {
    fn compile(&self) -> Result<NameRules, PatternError> {
        NameRules::compile(&NameRulesSpec {
            allowed_dns: &strings(self.dns),
            denied_dns: &strings(self.denied),
            allowed_ips: &strings(self.ips),
            allowed_emails: &strings(self.emails),
            allowed_uris: &strings(self.uris),
        })
    }

    fn rules(&self) -> NameRules {
        self.compile().unwrap()
    }
}

fn dns_rules(allowed: &[&str], denied: &[&str]) -> NameRules {
    Lists {
        dns: allowed,
        denied,
        ..Lists::default()
    }
    .rules()
}

fn san(text: &str) -> SubjectAltName {
    SubjectAltName::parse(text).unwrap()
}

/// `None` when allowed, else the rule that refused it.
fn verdict(rules: &NameRules, text: &str) -> Option<String> {
    rules.check(&san(text)).err().map(|r| r.rule)
}

fn assert_allowed(rules: &NameRules, names: &[&str]) {
    for name in names {
        assert_eq!(verdict(rules, name), None, "{name} refused");
    }
}

fn assert_refused(rules: &NameRules, names: &[&str], rule: &str) {
    for name in names {
        assert_eq!(verdict(rules, name).as_deref(), Some(rule), "{name}");
    }
}

#[test]
fn exact_patterns_ignore_case_and_one_trailing_dot() {
    let rules = dns_rules(&["Router1.Site.Example.NET."], &[]);
    assert_allowed(
        &rules,
        &["router1.site.example.net", "ROUTER1.site.example.net."],
    );
    // Built by hand rather than parsed: normalised all the same.
    assert_eq!(
        rules.check(&SubjectAltName::Dns("Router1.SITE.example.net.".into())),
        Ok(())
    );
    assert_refused(
        &rules,
        &[
            "router2.site.example.net",
            "site.example.net",
            "a.router1.site.example.net",
            "*.site.example.net",
        ],
        RULE_NOT_ALLOWED,
    );
    let refusal = rules.check(&san("router2.site.example.net")).unwrap_err();
    assert_eq!(refusal.name, "router2.site.example.net");
    // A SAN built by hand with what the parser refuses is never allowed, even by `*`.
    let any = dns_rules(&["*"], &[]);
    for junk in ["a b.example", "a..example", "bücher.example", ""] {
        let refusal = any.check(&SubjectAltName::Dns(junk.into())).unwrap_err();
        assert_eq!(refusal.rule, RULE_NOT_ALLOWED, "{junk:?}");
    }
}

#[test]
fn a_wildcard_pattern_allows_one_label_and_that_wildcard_itself() {
    let rules = dns_rules(&["*.site.example.net"], &[]);
    assert_allowed(
        &rules,
        &[
            "a.site.example.net",
            "Router-7.SITE.example.net.",
            "*.site.example.net",
            "*.SITE.example.net.",
        ],
    );
    assert_refused(
        &rules,
        &[
            "a.b.site.example.net",
            "site.example.net",
            "*.b.site.example.net",
            "a.site.example.org",
            "*.example.net",
        ],
        RULE_NOT_ALLOWED,
    );
}

#[test]
fn a_dot_pattern_allows_any_depth_below_but_not_the_apex_nor_a_wildcard() {
    let rules = dns_rules(&[".site.example.net"], &[]);
    assert_allowed(
        &rules,
        &[
            "a.site.example.net",
            "a.b.c.site.example.net",
            "A.Site.Example.Net.",
        ],
    );
    assert_refused(
        &rules,
        &[
            "site.example.net",
            "xsite.example.net",
            "*.site.example.net",
            "*.a.site.example.net",
        ],
        RULE_NOT_ALLOWED,
    );
}

#[test]
fn star_allows_any_name_and_wildcard_but_never_a_public_suffix_wildcard() {
    let rules = dns_rules(&["*"], &[]);
    assert_allowed(
        &rules,
        &[
            "a.example",
            "localhost",
            "*.example.net",
            "*.example.co.uk",
            "*.octocat.github.io",
        ],
    );
    assert_refused(
        &rules,
        &[
            "*.com",
            "*.CO.UK.",
            "*.github.io",
            "*.internal",
            "*.xn--55qx5d.cn",
        ],
        RULE_PUBLIC_SUFFIX_WILDCARD,
    );
    // Allowing the pattern by name does not help: the rule holds in every policy. The
    // pattern `*.com` still allows the names one label below `com`.
    let rules = dns_rules(&["*.com", "*.co.uk"], &[]);
    assert_refused(&rules, &["*.com", "*.co.uk"], RULE_PUBLIC_SUFFIX_WILDCARD);
    assert_allowed(&rules, &["example.com", "example.co.uk"]);
}

#[test]
fn public_suffix_wildcards_are_recognised() {
    for name in [
        "*",
        "*.",
        "*.com",
        "*.COM.",
        "*.co.uk",
        "*.github.io",
        // Unknown TLDs count: they may be delegated tomorrow.
        "*.internal",
        "*.lan",
        // 公司.cn, listed under its Unicode name: the A-label is found too.
        "*.xn--55qx5d.cn",
        // `*.ck` is a wildcard rule of the list: every name below ck is a suffix.
        "*.anything.ck",
    ] {
        assert!(is_public_suffix_wildcard(name), "{name}");
    }
    for name in [
        "*.example.com",
        "*.example.co.uk",
        "*.octocat.github.io",
        "*.router.lan",
        "example.com",
        "com",
        "a.*",
    ] {
        assert!(!is_public_suffix_wildcard(name), "{name}");
    }
}

#[test]
fn denied_patterns_win_over_allowed_ones() {
    let rules = dns_rules(&["*"], &[".bad.example", "admin.example.net"]);
    assert_refused(
        &rules,
        &["a.bad.example", "x.y.bad.example", "A.BAD.example."],
        "denied by .bad.example",
    );
    assert_refused(
        &rules,
        &["admin.example.net"],
        "denied by admin.example.net",
    );
    // `.zone` denies what it allows: the names below, not the apex.
    assert_allowed(&rules, &["bad.example", "a.example.net", "xbad.example"]);

    let rules = dns_rules(&[".example.net"], &["*.lab.example.net"]);
    assert_refused(
        &rules,
        &["a.lab.example.net", "*.lab.example.net"],
        "denied by *.lab.example.net",
    );
    assert_allowed(&rules, &["lab.example.net", "a.b.lab.example.net"]);

    // The refusal quotes the pattern as the admin wrote it.
    let rules = dns_rules(&["*"], &["Admin.Example.NET."]);
    assert_refused(
        &rules,
        &["admin.example.net"],
        "denied by Admin.Example.NET.",
    );
    // `*` denies every DNS name.
    assert_refused(&dns_rules(&["*"], &["*"]), &["a.example"], "denied by *");
}

#[test]
fn a_denied_name_also_denies_the_wildcards_that_would_cover_it() {
    let rules = dns_rules(&["*"], &[".example.com"]);
    assert_refused(
        &rules,
        &["*.x.example.com", "*.example.com", "*.a.b.example.com"],
        "denied by .example.com",
    );
    assert_allowed(&rules, &["*.example.org"]);

    // A certificate for *.example.com would serve the denied admin.example.com.
    let rules = dns_rules(&["*"], &["admin.example.com"]);
    assert_refused(&rules, &["*.example.com"], "denied by admin.example.com");
    // These cover names one label below another zone, never admin.example.com.
    assert_allowed(
        &rules,
        &["*.admin.example.com", "*.b.example.com", "*.com.example"],
    );

    let rules = dns_rules(&["*"], &["*.example.com"]);
    assert_refused(
        &rules,
        &["*.example.com", "a.example.com"],
        "denied by *.example.com",
    );
    assert_allowed(
        &rules,
        &["a.b.example.com", "*.a.example.com", "example.com"],
    );
}

#[test]
fn unicode_patterns_match_their_a_labels() {
    let rules = dns_rules(
        &["*.bücher.example", ".ÉCOLE.example"],
        &["nein.École.example"],
    );
    assert_allowed(
        &rules,
        &[
            "*.xn--bcher-kva.example",
            "a.xn--bcher-kva.example",
            "a.b.xn--cole-9oa.example",
        ],
    );
    assert_refused(
        &rules,
        &["nein.xn--cole-9oa.example"],
        "denied by nein.École.example",
    );
    assert_refused(
        &rules,
        &["a.b.xn--bcher-kva.example", "xn--cole-9oa.example"],
        RULE_NOT_ALLOWED,
    );
    // A pattern given as A-labels matches the same names.
    let rules = dns_rules(&["*.XN--BCHER-KVA.example"], &[]);
    assert_allowed(&rules, &["a.xn--bcher-kva.example"]);
}

#[test]
fn invalid_dns_patterns_are_refused_with_field_and_entry() {
    for (bad, says) in [
        ("", "empty"),
        ("**", "wildcard"),
        ("a*.example", "wildcard"),
        ("*a.example", "wildcard"),
        ("x.*.example", "wildcard"),
        ("*.*.example", "wildcard"),
        ("example.*", "wildcard"),
        ("*.", "no domain"),
        (".", "no domain"),
        ("..", "no domain"),
        ("a.example..", "empty label"),
        ("a..example", "not a valid DNS pattern"),
        ("-a.example", "not a valid DNS pattern"),
        ("a-.example", "not a valid DNS pattern"),
        ("a_b.example", "not a valid DNS pattern"),
        ("a b.example", "not a valid DNS pattern"),
        (" a.example", "not a valid DNS pattern"),
        ("192.0.2.1", "not a valid DNS pattern"),
        ("*.bü cher.example", "not a valid DNS pattern"),
        ("*.bü\u{200D}cher.example", "internationalised"),
        ("bü.xn--a.example", "internationalised"),
    ] {
        for field in ["allowed_dns", "denied_dns", "allowed_uris"] {
            let lists = match field {
                "allowed_dns" => Lists {
                    dns: &["ok.example", bad],
                    ..Lists::default()
                },
                "denied_dns" => Lists {
                    denied: &[bad],
                    ..Lists::default()
                },
                _ => Lists {
                    uris: &[bad],
                    ..Lists::default()
                },
            };
            let err = lists.compile().unwrap_err();
            assert_eq!(err.field, field, "{bad:?}");
            assert_eq!(err.entry, bad);
            assert!(err.reason.contains(says), "{bad:?}: {}", err.reason);
        }
    }
    let long = format!("{}.example", "a".repeat(64));
    assert!(
        Lists {
            dns: &[&long],
            ..Lists::default()
        }
        .compile()
        .is_err()
    );
    let spec_ok = Lists {
        dns: &["*", ".a.example", "*.b.example", "c.example."],
        ..Lists::default()
    };
    assert!(spec_ok.compile().is_ok());
}

#[test]
fn a_list_is_limited_in_length() {
    let many: Vec<String> = (0..=MAX_PATTERNS)
        .map(|i| format!("h{i}.example"))
        .collect();
    let spec = NameRulesSpec {
        allowed_dns: &[],
        denied_dns: &many,
        allowed_ips: &[],
        allowed_emails: &[],
        allowed_uris: &[],
    };
    let err = NameRules::validate_patterns(&spec).unwrap_err();
    assert_eq!(err.field, "denied_dns");
    assert!(err.reason.contains("at most 1000"), "{err}");
    assert!(
        NameRules::validate_patterns(&NameRulesSpec {
            denied_dns: &many[..MAX_PATTERNS],
            ..spec
        })
        .is_ok()
    );
}

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
    for free_text in ["edge router 1", "Jürgen Müller", "noc@example.org", "a_b"] {
        assert_eq!(rules.check_common_name(free_text), Ok(()), "{free_text}");
    }
    assert_eq!(rules.check_common_name("Router1.Example.NET."), Ok(()));
    assert_eq!(rules.check_common_name("192.0.2.9"), Ok(()));
    for (cn, rule) in [
        ("router1.example.org", RULE_NOT_ALLOWED),
        // A single label is a DNS name too.
        ("edge-router-1", RULE_NOT_ALLOWED),
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
