//! DNS patterns; the other kinds, CNs and reserved names are in `tests/kinds.rs`.

use super::*;

mod kinds;

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
