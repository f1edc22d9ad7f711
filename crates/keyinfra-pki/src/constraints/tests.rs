//! permits_san and friends against the edge cases of RFC 5280 and OpenSSL; the extension
//! as written and read back.

use super::*;
use crate::ca::{CaSigner, CaSpec, inspect_ca_certificate};
use crate::{KeyAlgorithm, PrivateKey, SerialNumber};

fn nc(
    permitted_dns: &[&str],
    excluded_dns: &[&str],
    permitted_ip: &[&str],
    excluded_ip: &[&str],
) -> NameConstraints {
    NameConstraints::parse(permitted_dns, excluded_dns, permitted_ip, excluded_ip).unwrap()
}

fn dns(name: &str) -> SubjectAltName {
    SubjectAltName::Dns(name.into())
}

fn ip(addr: &str) -> SubjectAltName {
    SubjectAltName::Ip(addr.parse().unwrap())
}

#[test]
fn flags_parse_into_normal_form_and_bad_values_are_refused() {
    let c = nc(
        &[" Example.NET. ", ".Sub.example.org"],
        &[],
        &["10.0.0.0/8", "2001:DB8::/32"],
        &[],
    );
    assert_eq!(c.permitted_dns, ["example.net", ".sub.example.org"]);
    assert_eq!(c.permitted_ip[1].to_string(), "2001:db8::/32");
    for bad in [
        "",
        ".",
        "..example.net",
        "*.example.net",
        "exa mple.net",
        "-x.example.net",
        "ex\u{e4}mple.net",
    ] {
        assert!(NameConstraints::parse_dns_subtree(bad).is_err(), "{bad:?}");
    }
    let e = NameConstraints::parse_ip_subtree("10.1.2.3/8").unwrap_err();
    assert!(e.0.contains("did you mean 10.0.0.0/8"), "{e}");
    for bad in [
        "10.0.0.0",
        "10.0.0.0/33",
        "2001:db8::/129",
        "example.net/8",
        "",
    ] {
        let e = NameConstraints::parse_ip_subtree(bad).unwrap_err();
        assert!(e.0.contains("CIDR"), "{bad:?}: {e}");
    }
}

#[test]
fn a_dns_subtree_holds_its_apex_and_every_name_below_it() {
    let c = nc(&["example.net"], &[], &[], &[]);
    for ok in ["example.net", "a.example.net", "b.a.example.net"] {
        assert_eq!(c.permits_san(&dns(ok)), Ok(()), "{ok}");
    }
    for refused in [
        "badexample.net",
        "example.org",
        "net",
        "example.net.evil.org",
    ] {
        assert_eq!(
            c.permits_san(&dns(refused)),
            Err("permitted: DNS:example.net".into()),
            "{refused}"
        );
    }
}

#[test]
fn a_leading_dot_holds_only_the_names_below() {
    let c = nc(&[".example.net"], &[], &[], &[]);
    assert!(c.permits_san(&dns("example.net")).is_err());
    assert!(c.permits_san(&dns("a.example.net")).is_ok());
    assert!(c.permits_san(&dns("b.a.example.net")).is_ok());
    assert!(c.permits_san(&dns("aexample.net")).is_err());
}

#[test]
fn a_wildcard_is_permitted_only_where_every_name_it_stands_for_is() {
    for base in ["x.example.net", ".x.example.net", "example.net"] {
        let c = nc(&[base], &[], &[], &[]);
        assert!(c.permits_san(&dns("*.x.example.net")).is_ok(), "{base}");
    }
    // a.x.example.net is permitted, b.x.example.net is not: the wildcard covers both.
    let c = nc(&["a.x.example.net"], &[], &[], &[]);
    assert!(c.permits_san(&dns("*.x.example.net")).is_err());
}

#[test]
fn excluded_wins_over_permitted_and_reaches_into_wildcards() {
    let c = nc(&["example.net"], &["bad.example.net"], &[], &[]);
    assert_eq!(
        c.permits_san(&dns("x.bad.example.net")),
        Err("excluded: DNS:bad.example.net".into())
    );
    assert!(c.permits_san(&dns("bad.example.net")).is_err());
    assert!(c.permits_san(&dns("*.bad.example.net")).is_err());
    // The wildcard may stand for bad.example.net itself.
    assert_eq!(
        c.permits_san(&dns("*.example.net")),
        Err("excluded: DNS:bad.example.net".into())
    );
    assert!(c.permits_san(&dns("notbad.example.net")).is_ok());
    // .bad.example.net holds no name one label below example.net.
    let c = nc(&["example.net"], &[".bad.example.net"], &[], &[]);
    assert!(c.permits_san(&dns("*.example.net")).is_ok());
    assert!(c.permits_san(&dns("bad.example.net")).is_ok());
    assert!(c.permits_san(&dns("x.bad.example.net")).is_err());
    // Excluded alone, without any permitted subtree: everything else passes.
    let c = nc(&[], &["corp.example"], &[], &[]);
    assert!(c.permits_san(&dns("www.example.org")).is_ok());
    assert!(c.permits_san(&dns("db.corp.example")).is_err());
}

#[test]
fn ip_subtrees_match_by_cidr_and_never_across_families() {
    let c = nc(&[], &[], &["10.0.0.0/8", "2001:db8::/32"], &["10.9.0.0/16"]);
    assert!(c.permits_san(&ip("10.1.2.3")).is_ok());
    assert!(c.permits_san(&ip("2001:db8:1::1")).is_ok());
    assert_eq!(
        c.permits_san(&ip("10.9.1.1")),
        Err("excluded: IP:10.9.0.0/16".into())
    );
    assert_eq!(
        c.permits_san(&ip("192.0.2.1")),
        Err("permitted: IP:10.0.0.0/8, IP:2001:db8::/32".into())
    );
    assert!(c.permits_san(&ip("2001:db9::1")).is_err());
    // An IPv4-mapped IPv6 address is an IPv6 name: a v4 subtree does not hold it.
    let v4_only = nc(&[], &[], &["10.0.0.0/8"], &[]);
    assert!(v4_only.permits_san(&ip("::ffff:10.0.0.1")).is_err());
    assert!(v4_only.permits_san(&ip("2001:db8::1")).is_err());
    // An excluded v6 range says nothing about v4 addresses.
    let v6_excluded = nc(&[], &[], &[], &["::/0"]);
    assert!(v6_excluded.permits_san(&ip("192.0.2.1")).is_ok());
    assert!(v6_excluded.permits_san(&ip("2001:db8::1")).is_err());
}

#[test]
fn each_kind_is_constrained_only_by_its_own_subtrees() {
    let dns_only = nc(&["example.net"], &[], &[], &[]);
    assert!(dns_only.permits_san(&ip("192.0.2.1")).is_ok());
    let ip_only = nc(&[], &[], &["10.0.0.0/8"], &[]);
    assert!(ip_only.permits_san(&dns("www.example.org")).is_ok());
}

#[test]
fn a_host_name_cn_is_checked_when_there_is_no_dns_san() {
    let c = nc(&["example.net"], &[], &["10.0.0.0/8"], &[]);
    let dn = |s: &str| DistinguishedName::parse(s).unwrap();
    let err = c.permits(&dn("CN=www.example.org,O=X"), &[]).unwrap_err();
    assert_eq!(err.name, "CN=www.example.org");
    assert_eq!(err.rule, "permitted: DNS:example.net");
    assert!(
        c.permits(&dn("CN=www.example.org"), &[ip("10.0.0.1")])
            .is_err()
    );
    assert!(c.permits(&dn("CN=WWW.Example.NET"), &[]).is_ok());
    assert!(c.permits(&dn("CN=my_host.example.org"), &[]).is_err());
    // Not host names to OpenSSL: one label, spaces, a wildcard, a leading hyphen.
    for cn in [
        "router1",
        "Edge Router 1",
        "*.example.org",
        "-a.example.org",
        "a..example.org",
    ] {
        assert!(c.permits(&dn(&format!("CN={cn}")), &[]).is_ok(), "{cn}");
    }
    // OpenSSL reads a dotted-quad CN as a DNS name too.
    assert!(c.permits(&dn("CN=10.0.0.1"), &[]).is_err());
    // With a DNS SAN, the CN is not a name OpenSSL checks.
    assert!(
        c.permits(&dn("CN=www.example.org"), &[dns("a.example.net")])
            .is_ok()
    );
    let err = c
        .permits(&dn("CN=x"), &[dns("a.example.net"), ip("192.0.2.1")])
        .unwrap_err();
    assert_eq!(err.name, "IP:192.0.2.1");
}

fn root(constraints: Option<&NameConstraints>) -> CaSigner {
    let subject = DistinguishedName::parse("CN=Constrained Root").unwrap();
    let start = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    CaSigner::create_root(
        PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &CaSpec {
            subject: &subject,
            serial: &SerialNumber::from_hex("01").unwrap(),
            not_before: start,
            not_after: start + time::Duration::days(30),
            path_len: None,
            name_constraints: constraints,
        },
    )
    .unwrap()
}

#[test]
fn the_extension_is_critical_and_reads_back_as_written() {
    let c = nc(
        &["example.net", ".example.org"],
        &["bad.example.net"],
        &["10.0.0.0/8", "2001:db8::/32"],
        &["10.9.0.0/16"],
    );
    let ca = root(Some(&c));
    let (_, cert) = X509Certificate::from_der(ca.certificate_der()).unwrap();
    assert!(cert.name_constraints().unwrap().unwrap().critical);
    assert_eq!(
        NameConstraints::from_certificate(ca.certificate_der()).unwrap(),
        Some(c.clone())
    );
    let info = inspect_ca_certificate(ca.certificate_der()).unwrap();
    assert_eq!(info.name_constraints, Some(c));
    // No constraints, or empty ones: no extension.
    assert_eq!(
        NameConstraints::from_certificate(root(None).certificate_der()).unwrap(),
        None
    );
    let empty = NameConstraints::default();
    assert_eq!(
        NameConstraints::from_certificate(root(Some(&empty)).certificate_der()).unwrap(),
        None
    );
}

#[test]
fn subtrees_of_other_kinds_are_kept_as_unsupported() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "Example");
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DirectoryName(dn),
            GeneralSubtree::DnsName("example.net".into()),
        ],
        excluded_subtrees: vec![GeneralSubtree::Rfc822Name("example.org".into())],
    });
    let cert = params.self_signed(&key).unwrap();
    let c = NameConstraints::from_certificate(cert.der())
        .unwrap()
        .unwrap();
    assert_eq!(c.permitted_dns, ["example.net"]);
    assert_eq!(
        c.unsupported,
        ["permitted directoryName", "excluded rfc822Name"]
    );
    assert!(!c.is_empty());
    assert_eq!(
        c.to_string(),
        "permitted: DNS:example.net; unchecked: permitted directoryName, excluded rfc822Name"
    );
}
