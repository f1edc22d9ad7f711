//! Properties: a name the policy allows is never refused, a denied one never allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use super::*;

/// An RFC 1123 label, as a DNS name generator would write it.
fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
}

fn labels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(label(), 1..5)
}

/// The name as a client might send it: any case, maybe with a trailing dot.
fn sent(name: &str, upper: bool, dot: bool) -> SubjectAltName {
    let mut text = if upper {
        name.to_ascii_uppercase()
    } else {
        name.to_owned()
    };
    if dot {
        text.push('.');
    }
    SubjectAltName::parse(&format!("DNS:{text}")).unwrap()
}

fn rules(allowed: Vec<String>, denied: Vec<String>, ips: Vec<String>) -> NameRules {
    NameRules::compile(&NameRulesSpec {
        allowed_dns: &allowed,
        denied_dns: &denied,
        allowed_ips: &ips,
        allowed_emails: &[],
        allowed_uris: &[],
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Policy `.zone.example` with `.bad.zone.example` denied: a name below the zone and not
    /// below bad is allowed, one below bad (or a wildcard there) is always refused.
    #[test]
    fn a_zone_with_a_denied_subzone(
        mut under in labels(),
        into_bad in any::<bool>(),
        upper in any::<bool>(),
        dot in any::<bool>(),
    ) {
        // Random labels seldom spell "bad": half the cases put the name below it.
        if into_bad {
            under.push("bad".into());
        }
        let rules = rules(
            vec![".zone.example".into()],
            vec![".bad.zone.example".into()],
            vec![],
        );
        let denied = "denied by .bad.zone.example";

        let name = format!("{}.zone.example", under.join("."));
        let below_bad = under.len() >= 2 && under[under.len() - 1] == "bad";
        let verdict = rules.check(&sent(&name, upper, dot));
        if below_bad {
            prop_assert_eq!(verdict.unwrap_err().rule, denied);
        } else {
            prop_assert_eq!(verdict, Ok(()));
        }

        let bad_name = format!("{}.bad.zone.example", under.join("."));
        prop_assert_eq!(rules.check(&sent(&bad_name, upper, dot)).unwrap_err().rule, denied);
        let bad_wildcard = format!("*.{bad_name}");
        prop_assert_eq!(rules.check(&sent(&bad_wildcard, upper, dot)).unwrap_err().rule, denied);
        let cn_refusal = rules.check_common_name(&bad_name).unwrap_err();
        prop_assert_eq!(cn_refusal.rule, denied);
    }

    /// A name listed exactly is allowed unless the same name is denied.
    #[test]
    fn an_exact_entry_is_allowed_unless_denied(
        names in prop::collection::vec(labels(), 1..6),
        pick in any::<prop::sample::Index>(),
        deny in prop::collection::vec(any::<bool>(), 6),
        upper in any::<bool>(),
        dot in any::<bool>(),
    ) {
        let names: Vec<String> = names.iter().map(|l| format!("{}.example.net", l.join("."))).collect();
        let denied: Vec<String> = names
            .iter()
            .zip(&deny)
            .filter(|(_, d)| **d)
            .map(|(n, _)| n.clone())
            .collect();
        let rules = rules(names.clone(), denied.clone(), vec![]);
        let chosen = pick.get(&names);
        let verdict = rules.check(&sent(chosen, upper, dot));
        if denied.contains(chosen) {
            prop_assert_eq!(verdict.unwrap_err().rule, format!("denied by {chosen}"));
        } else {
            prop_assert_eq!(verdict, Ok(()));
        }
    }

    /// An IPv4 address inside an allowed range is allowed; outside every range, refused.
    #[test]
    fn ipv4_ranges(network in any::<u32>(), len in 0u8..=32, host in any::<u32>(), other in any::<u32>()) {
        let range = Ipv4Net::new(Ipv4Addr::from(network), len).unwrap().trunc();
        let rules = rules(vec![], vec![], vec![range.to_string()]);
        let inside = Ipv4Addr::from(u32::from(range.network()) | (host & u32::from(range.hostmask())));
        prop_assert_eq!(rules.check(&SubjectAltName::Ip(IpAddr::V4(inside))), Ok(()));
        let outside = Ipv4Addr::from(other);
        let verdict = rules.check(&SubjectAltName::Ip(IpAddr::V4(outside)));
        prop_assert_eq!(verdict.is_ok(), range.contains(&outside));
        if len > 0 {
            // Flip the first bit of the network part: outside for sure.
            let flipped = Ipv4Addr::from(u32::from(inside) ^ (1u32 << (32 - u32::from(len))));
            let refusal = rules.check(&SubjectAltName::Ip(IpAddr::V4(flipped))).unwrap_err();
            prop_assert_eq!(refusal.rule, RULE_NOT_ALLOWED);
        }
    }

    /// The same for IPv6, and an IPv4 address is never inside an IPv6 range.
    #[test]
    fn ipv6_ranges(network in any::<u128>(), len in 0u8..=128, host in any::<u128>(), v4 in any::<u32>()) {
        let range = Ipv6Net::new(Ipv6Addr::from(network), len).unwrap().trunc();
        let rules = rules(vec![], vec![], vec![range.to_string()]);
        let inside = Ipv6Addr::from(u128::from(range.network()) | (host & u128::from(range.hostmask())));
        prop_assert_eq!(rules.check(&SubjectAltName::Ip(IpAddr::V6(inside))), Ok(()));
        if len > 0 {
            let flipped = Ipv6Addr::from(u128::from(inside) ^ (1u128 << (128 - u32::from(len))));
            prop_assert!(rules.check(&SubjectAltName::Ip(IpAddr::V6(flipped))).is_err());
        }
        prop_assert!(rules.check(&SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::from(v4)))).is_err());
    }

    /// Compiling never panics, whatever an admin types.
    #[test]
    fn compiling_arbitrary_patterns_never_panics(
        entries in prop::collection::vec("\\PC{0,40}", 0..4),
    ) {
        let _ = NameRules::compile(&NameRulesSpec {
            allowed_dns: &entries,
            denied_dns: &entries,
            allowed_ips: &entries,
            allowed_emails: &entries,
            allowed_uris: &entries,
        });
    }
}
