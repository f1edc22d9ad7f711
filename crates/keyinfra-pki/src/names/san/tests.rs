use super::*;
use proptest::prelude::*;

#[test]
fn a_san_list_is_limited_and_has_no_repeats() {
    let hundred: Vec<String> = (0..MAX_SANS).map(|i| format!("h{i}.example")).collect();
    assert_eq!(
        SubjectAltName::parse_list(&hundred).unwrap().len(),
        MAX_SANS
    );
    let more: Vec<String> = (0..=MAX_SANS).map(|i| format!("h{i}.example")).collect();
    assert!(
        SubjectAltName::parse_list(&more)
            .unwrap_err()
            .0
            .contains("at most 100")
    );
    for repeated in [
        ["a.example", "b.example", "A.example."],
        ["2001:db8::1", "b.example", "2001:DB8:0::1"],
    ] {
        let err = SubjectAltName::parse_list(&repeated).unwrap_err();
        assert!(err.0.contains("more than once"), "{err}");
    }
}

#[test]
fn sans_parse_and_refuse() {
    assert_eq!(
        SubjectAltName::parse("Router1.Example.NET.").unwrap(),
        SubjectAltName::Dns("router1.example.net".into())
    );
    assert_eq!(
        SubjectAltName::parse("2001:db8::1").unwrap().to_tagged(),
        "IP:2001:db8::1"
    );
    assert_eq!(
        SubjectAltName::parse("IP:192.0.2.1").unwrap().to_string(),
        "192.0.2.1"
    );
    assert!(SubjectAltName::parse("*.example.net").is_ok());
    for bad in [
        "",
        "-a.example",
        "a..b",
        "a_b.example",
        "*",
        "a.*.b",
        "IP:300.1.1.1",
        "300.1.1.1",
        "bücher.de",
        "x y",
    ] {
        assert!(SubjectAltName::parse(bad).is_err(), "{bad:?} accepted");
    }
    assert!(SubjectAltName::parse_list(&["a.example", "A.example"]).is_err());
}

#[test]
fn email_sans_parse_with_the_domain_lowercased() {
    for (text, value) in [
        ("EMAIL:noc@Example.NET", "noc@example.net"),
        ("email:NOC@example.net", "NOC@example.net"),
        (
            "Email:first.last+tag@a-b.example",
            "first.last+tag@a-b.example",
        ),
        (
            "EMAIL:o'brien!#$%&*/=?^_`{|}~-@x.example",
            "o'brien!#$%&*/=?^_`{|}~-@x.example",
        ),
    ] {
        let san = SubjectAltName::parse(text).unwrap();
        assert_eq!(san, SubjectAltName::Email(value.into()), "{text}");
        assert_eq!(san.to_string(), value);
        assert_eq!(san.to_tagged(), format!("EMAIL:{value}"));
        assert_eq!(SubjectAltName::parse(&san.to_tagged()).unwrap(), san);
    }
}

#[test]
fn bad_email_sans_are_refused_with_a_reason() {
    let local_64 = format!("EMAIL:{}@x.example", "a".repeat(64));
    assert!(SubjectAltName::parse(&local_64).is_ok());
    let long_domain = format!("{}.example", vec!["a".repeat(60); 4].join("."));
    let too_long = format!("EMAIL:{}@{long_domain}", "a".repeat(10));
    for (bad, says) in [
        ("EMAIL:", "empty"),
        ("EMAIL:noc", "local@domain"),
        ("EMAIL:@example.net", "local part"),
        ("EMAIL:.noc@example.net", "local part"),
        ("EMAIL:noc.@example.net", "local part"),
        ("EMAIL:n..oc@example.net", "local part"),
        ("EMAIL:a@b@example.net", "local part"),
        ("EMAIL:\"a b\"@example.net", "local part"),
        ("EMAIL:a b@example.net", "local part"),
        ("EMAIL:a\u{7}@example.net", "local part"),
        ("EMAIL:jürgen@example.net", "not ASCII"),
        ("EMAIL:noc@bücher.example", "not ASCII"),
        ("EMAIL:noc@", "not a valid DNS name"),
        ("EMAIL:noc@-x.example", "not a valid DNS name"),
        ("EMAIL:noc@192.0.2.1", "not a valid DNS name"),
        ("EMAIL:noc@[192.0.2.1]", "not a valid DNS name"),
        ("EMAIL:noc@*.example.net", "not a host name"),
        ("EMAIL:noc@example.net.", "not a host name"),
        (too_long.as_str(), "longer than 254"),
    ] {
        let err = SubjectAltName::parse(bad).unwrap_err();
        assert!(err.0.contains(says), "{bad:?}: {err}");
    }
    let local_65 = format!("EMAIL:{}@x.example", "a".repeat(65));
    assert!(
        SubjectAltName::parse(&local_65)
            .unwrap_err()
            .0
            .contains("local part")
    );
    // Without its prefix an address is not taken for a DNS name, and the refusal says how
    // to write it.
    let err = SubjectAltName::parse("noc@example.net").unwrap_err();
    assert!(err.0.contains("EMAIL:noc@example.net"), "{err}");
}

#[test]
fn uri_sans_parse_with_scheme_and_host_lowercased() {
    for (text, value, host) in [
        (
            "URI:HTTPS://Router1.Example.NET/Path?Q=A#F",
            "https://router1.example.net/Path?Q=A#F",
            Some(UriHost::Dns("router1.example.net".into())),
        ),
        (
            "uri:spiffe://example.org/ns/prod/sa/Web",
            "spiffe://example.org/ns/prod/sa/Web",
            Some(UriHost::Dns("example.org".into())),
        ),
        (
            "URI:https://a.example.:8443",
            "https://a.example.:8443",
            Some(UriHost::Dns("a.example".into())),
        ),
        (
            "URI:https://192.0.2.1/x",
            "https://192.0.2.1/x",
            Some(UriHost::Ip("192.0.2.1".parse().unwrap())),
        ),
        (
            "URI:https://[2001:DB8::1]:443/",
            "https://[2001:db8::1]:443/",
            Some(UriHost::Ip("2001:db8::1".parse().unwrap())),
        ),
        (
            "URI:urn:uuid:6E8BC430-9C3A-11D9-9669-0800200C9A66",
            "urn:uuid:6E8BC430-9C3A-11D9-9669-0800200C9A66",
            None,
        ),
        ("URI:file:///etc/x%20y", "file:///etc/x%20y", None),
    ] {
        let san = SubjectAltName::parse(text).unwrap();
        assert_eq!(san, SubjectAltName::Uri(value.into()), "{text}");
        assert_eq!(san.to_string(), value);
        assert_eq!(san.to_tagged(), format!("URI:{value}"));
        assert_eq!(SubjectAltName::parse(&san.to_tagged()).unwrap(), san);
        assert_eq!(uri_host(value).unwrap(), host, "{text}");
    }
}

#[test]
fn uris_another_parser_could_read_with_another_host_are_refused() {
    let long = format!("URI:https://a.example/{}", "x".repeat(MAX_URI_LEN));
    for (bad, says) in [
        ("URI:", "empty"),
        ("URI:example.net", "no scheme"),
        ("URI:1http://a.example", "not a scheme"),
        ("URI:https:", "nothing after"),
        // WHATWG reads `\` as `/` (host evil.example); RFC 3986 does not allow it at all.
        (
            "URI:https://evil.example\\@good.example/",
            "contains '\\\\'",
        ),
        ("URI:https://good.example@evil.example/", "user information"),
        ("URI:https://%65vil.example/", "percent-encoded host"),
        ("URI:https://0x7f.1/", "no valid host"),
        ("URI:https://1.2.3/", "no valid host"),
        ("URI:https://*.example.net/", "no valid host"),
        ("URI:https://[fe80::1%25eth0]/", "percent-encoded host"),
        ("URI:https://[v1.x]/", "no valid host"),
        ("URI:https://[2001:db8::1]x/", "no valid host"),
        ("URI:https://:443/", "no valid host"),
        ("URI:https://a.example:99999/", "invalid port"),
        ("URI:https://a.example:/", "invalid port"),
        ("URI:https://a.example:8x/", "invalid port"),
        ("URI:https://a.example/a b", "contains ' '"),
        ("URI:https://a.example/\u{7}", "contains '\\u{7}'"),
        ("URI:https://bücher.example/", "contains 'ü'"),
        ("URI:https://a.example/%zz", "two hex digits"),
        ("URI:https://a.example/%4", "two hex digits"),
        ("URI:https://a.example/[x]", "outside its host"),
        ("URI:https://a.example/#a#b", "outside its host"),
        (long.as_str(), "longer than 1024"),
    ] {
        let err = SubjectAltName::parse(bad).unwrap_err();
        assert!(err.0.contains(says), "{bad:?}: {err}");
    }
    let err = SubjectAltName::parse("https://a.example/").unwrap_err();
    assert!(err.0.contains("URI:https://a.example/"), "{err}");
    assert!(uri_host("https://good.example@evil.example/").is_err());
}

#[test]
fn new_kinds_count_as_repeats_after_normalising() {
    for repeated in [
        ["EMAIL:noc@Example.net", "EMAIL:noc@example.NET"],
        ["URI:HTTPS://A.example/x", "URI:https://a.EXAMPLE/x"],
    ] {
        let err = SubjectAltName::parse_list(&repeated).unwrap_err();
        assert!(err.0.contains("more than once"), "{err}");
    }
    // The local part and the path keep their case: these are different names.
    assert!(
        SubjectAltName::parse_list(&["EMAIL:noc@example.net", "EMAIL:NOC@example.net"]).is_ok()
    );
    assert!(
        SubjectAltName::parse_list(&["URI:https://a.example/x", "URI:https://a.example/X"]).is_ok()
    );
}

proptest! {
    #[test]
    fn san_parser_never_panics_and_accepts_only_ldh_or_ips(s in "\\PC{0,80}") {
        if let Ok(SubjectAltName::Dns(name)) = SubjectAltName::parse(&s) {
            prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*'));
            prop_assert!(name.len() <= 253);
        }
    }

    /// Whatever parses, its tagged form parses back to the same name: the database stores
    /// the tagged form and a renewal reads it again.
    #[test]
    fn every_parsed_san_round_trips_through_its_tagged_form(
        kind in prop::sample::select(vec!["", "DNS:", "IP:", "EMAIL:", "URI:", "uri:", "email:"]),
        s in "[a-zA-Z0-9.:/@%\\[\\]_~?#*!$&'()+,;=-]{0,60}",
    ) {
        let text = format!("{kind}{s}");
        if let Ok(san) = SubjectAltName::parse(&text) {
            prop_assert_eq!(SubjectAltName::parse(&san.to_tagged()).unwrap(), san.clone());
            prop_assert!(san.to_tagged().bytes().all(|b| b.is_ascii_graphic()));
            if let SubjectAltName::Uri(uri) = &san {
                prop_assert!(uri_host(uri).is_ok());
            }
        }
    }
}
