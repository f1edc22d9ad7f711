//! DNS name patterns and the sets a policy compiles them into.
//!
//! | pattern        | matches                                                        |
//! |----------------|----------------------------------------------------------------|
//! | `*`            | every DNS name, wildcard SANs included                         |
//! | `a.zone`       | exactly `a.zone`                                               |
//! | `*.zone`       | one label below `zone` (`x.zone`, not `x.y.zone` nor `zone`), and the wildcard SAN `*.zone` itself |
//! | `.zone`        | any name at any depth below `zone`, not `zone` itself, and no wildcard SAN |
//!
//! Names and patterns compare in lowercase A-label form without one trailing dot. A set
//! answers in time proportional to the name's labels, not to the number of patterns.

use std::collections::HashMap;

use keyinfra_pki::names::parse_dns_name;

/// One parsed pattern. The strings are lowercase A-labels without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DnsPattern {
    Any,
    Exact(String),
    /// `*.zone`: the zone.
    Wildcard(String),
    /// `.zone`: the zone.
    Subtree(String),
}

/// Parses one pattern; the error is the reason, for a [`super::PatternError`].
pub(super) fn parse_pattern(text: &str) -> Result<DnsPattern, String> {
    if text.is_empty() {
        return Err("a pattern is empty".into());
    }
    if text == "*" {
        return Ok(DnsPattern::Any);
    }
    let (kind, rest): (fn(String) -> DnsPattern, &str) = if let Some(zone) = text.strip_prefix("*.")
    {
        (DnsPattern::Wildcard, zone)
    } else if let Some(zone) = text.strip_prefix('.') {
        (DnsPattern::Subtree, zone)
    } else {
        (DnsPattern::Exact, text)
    };
    Ok(kind(parse_domain(rest, text)?))
}

/// A domain inside a pattern (no wildcard left): Unicode labels become A-labels (UTS 46),
/// then every label must be RFC 1123 letters, digits and inner hyphens.
pub(super) fn parse_domain(domain: &str, pattern: &str) -> Result<String, String> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Err(format!("{pattern:?} names no domain after its prefix"));
    }
    if domain.contains('*') {
        return Err(format!(
            "{pattern:?}: a wildcard is allowed only alone (`*`) or as the whole leftmost label (`*.zone`), not as `**`, `a*.zone` or `*.*.zone`"
        ));
    }
    // A second trailing dot would be an empty label, which parse_dns_name would strip.
    if domain.ends_with('.') {
        return Err(format!("{pattern:?} has an empty label"));
    }
    let ascii = if domain.is_ascii() {
        domain.to_owned()
    } else {
        idna::domain_to_ascii(domain)
            .map_err(|_| format!("{pattern:?} is not a valid internationalised domain name"))?
    };
    parse_dns_name(&ascii).map_err(|_| {
        format!(
            "{pattern:?} is not a valid DNS pattern (labels are 1-63 letters, digits or inner hyphens, and the last is not all digits)"
        )
    })
}

/// The part after the first label: `b.c` for `a.b.c`, `None` for a single label.
pub(super) fn parent(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, rest)| rest)
}

/// The proper ancestors of a name, nearest first: `b.c`, then `c` for `a.b.c`.
pub(super) fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('.').map(move |(i, _)| &name[i + 1..])
}

/// A list of patterns, indexed. Each map keeps the pattern as the admin wrote it, which a
/// refusal quotes.
#[derive(Debug, Clone, Default)]
pub(super) struct DnsPatterns {
    any: Option<String>,
    exact: HashMap<String, String>,
    wildcard: HashMap<String, String>,
    subtree: HashMap<String, String>,
    /// Exact names by their parent: a wildcard SAN `*.zone` covers every one of them.
    exact_by_parent: HashMap<String, String>,
}

impl DnsPatterns {
    pub(super) fn insert(&mut self, pattern: DnsPattern, original: &str) {
        let original = original.to_owned();
        match pattern {
            DnsPattern::Any => {
                self.any.get_or_insert(original);
            }
            DnsPattern::Exact(name) => {
                if let Some(parent) = parent(&name) {
                    self.exact_by_parent
                        .entry(parent.to_owned())
                        .or_insert_with(|| original.clone());
                }
                self.exact.entry(name).or_insert(original);
            }
            DnsPattern::Wildcard(zone) => {
                self.wildcard.entry(zone).or_insert(original);
            }
            DnsPattern::Subtree(zone) => {
                self.subtree.entry(zone).or_insert(original);
            }
        }
    }

    /// Whether an allowed-list admits `name` (normalised; `*.zone` for a wildcard SAN).
    pub(super) fn allows(&self, name: &str) -> bool {
        if self.any.is_some() {
            return true;
        }
        if let Some(zone) = name.strip_prefix("*.") {
            // Only `*` and the same `*.zone` allow a wildcard certificate: `.zone` is for
            // names, and an exact entry names one host.
            return self.wildcard.contains_key(zone);
        }
        self.exact.contains_key(name)
            || parent(name).is_some_and(|p| self.wildcard.contains_key(p))
            || ancestors(name).any(|a| self.subtree.contains_key(a))
    }

    /// The deny-list pattern that refuses `name`, if any. A wildcard SAN `*.zone` is
    /// refused when any name it would cover is denied: by `*.zone`, by an exact entry one
    /// label below `zone`, or by `.zone` or `.ancestor` of it. Otherwise a certificate for
    /// `*.example.com` would serve the denied `admin.example.com`.
    pub(super) fn denies(&self, name: &str) -> Option<&str> {
        if let Some(any) = &self.any {
            return Some(any);
        }
        let found = if let Some(zone) = name.strip_prefix("*.") {
            self.exact_by_parent
                .get(zone)
                .or_else(|| self.wildcard.get(zone))
                .or_else(|| {
                    std::iter::once(zone)
                        .chain(ancestors(zone))
                        .find_map(|a| self.subtree.get(a))
                })
        } else {
            self.exact
                .get(name)
                .or_else(|| parent(name).and_then(|p| self.wildcard.get(p)))
                .or_else(|| ancestors(name).find_map(|a| self.subtree.get(a)))
        };
        found.map(String::as_str)
    }
}
