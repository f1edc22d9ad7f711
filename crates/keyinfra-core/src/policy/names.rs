//! The name rules of an issuance policy: which DNS names, IP addresses, e-mail addresses and
//! URIs a certificate may carry. Pure: compiled once from the policy's lists, then asked
//! about one name at a time.
//!
//! Rules, in the order a name meets them:
//! 1. A wildcard directly under a public suffix (`*.com`, `*.co.uk`, `*.github.io`), a bare
//!    `*`, and `*.tld` of a TLD the list does not know are refused in every policy
//!    ("public-suffix wildcard"). The list is the `psl` crate's, compiled in, with its
//!    private section: `github.io` hands out names to strangers just as `co.uk` does, so a
//!    wildcard over it would cover other people's hosts.
//! 2. Denied DNS patterns win over allowed ones ("denied by <pattern>"). A wildcard SAN is
//!    denied when any name it covers is: a denied `a.example.com` refuses `*.example.com`
//!    too, because that certificate would serve `a.example.com`.
//! 3. The name must match an allowed entry of its kind ("not in allowed names"); an empty
//!    list allows nothing of that kind.
//!
//! The kinds:
//! - DNS: patterns as in `names/dns.rs` (`*`, `a.zone`, `*.zone`, `.zone`), case-insensitive, one
//!   trailing dot ignored, Unicode patterns turned into A-labels when compiled.
//! - IP: CIDR ranges (`192.0.2.0/24`, `2001:db8::/32`; a bare address is /32 or /128). A SAN
//!   matches ranges of its own family only, so an IPv4-mapped IPv6 address
//!   (`::ffff:192.0.2.1`) needs an IPv6 range (`::/0` allows it, `192.0.2.0/24` does not),
//!   the way verifiers compare address bytes.
//! - E-mail: `example.com` (any mailbox at exactly that domain), `.example.com` (at any
//!   domain below it) or `noc@example.com` (that address; the local part compares with its
//!   case, as RFC 5321 lets a mail system tell `noc` from `NOC`).
//! - URI: DNS patterns matched against the URI's host, as step-ca does: `.example.com`
//!   allows `https://a.example.com/x` and `spiffe://a.example.com/ns/y`. Denied DNS patterns
//!   apply to the host too. A URI without a host (`urn:...`) or with an address as its host
//!   is never allowed.
//!
//! Reserved names (KeyInfra's own TLS names) are a separate check, [`ReservedNames`], which
//! the caller skips for ADMIN and the operator.

mod dns;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use keyinfra_pki::names::{SubjectAltName, UriHost, parse_dns_name, uri_host};

use dns::{DnsPatterns, parse_domain, parse_pattern};

/// The rule a name that matches no allowed entry breaks.
pub const RULE_NOT_ALLOWED: &str = "not in allowed names";
/// The rule of a wildcard directly under a public suffix.
pub const RULE_PUBLIC_SUFFIX_WILDCARD: &str = "public-suffix wildcard";
/// The rule of KeyInfra's own names.
pub const RULE_RESERVED: &str = "reserved name";

/// At most this many entries in each list of a policy.
pub const MAX_PATTERNS: usize = 1000;

/// A policy's name lists, as stored.
#[derive(Debug, Clone, Copy)]
pub struct NameRulesSpec<'a> {
    pub allowed_dns: &'a [String],
    pub denied_dns: &'a [String],
    pub allowed_ips: &'a [String],
    pub allowed_emails: &'a [String],
    pub allowed_uris: &'a [String],
}

/// An invalid pattern in a policy being created/updated: which field, which entry, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub field: &'static str,
    pub entry: String,
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}: {}", self.field, self.entry, self.reason)
    }
}

impl std::error::Error for PatternError {}

/// A name refused by a policy: the name as the request gave it, and the rule it broke
/// (`not in allowed names`, `denied by <pattern>`, `public-suffix wildcard`, `reserved
/// name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRefusal {
    pub name: String,
    pub rule: String,
}

impl NameRefusal {
    fn new(name: impl fmt::Display, rule: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for NameRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.name, self.rule)
    }
}

impl std::error::Error for NameRefusal {}

/// A policy's name rules, compiled.
#[derive(Debug, Clone)]
pub struct NameRules {
    allowed_dns: DnsPatterns,
    denied_dns: DnsPatterns,
    allowed_ips: Vec<IpNet>,
    allowed_emails: EmailPatterns,
    allowed_uris: DnsPatterns,
}

impl NameRules {
    /// Compiles the lists, refusing the first invalid entry.
    pub fn compile(spec: &NameRulesSpec<'_>) -> Result<NameRules, PatternError> {
        Ok(NameRules {
            allowed_dns: dns_patterns("allowed_dns", spec.allowed_dns)?,
            denied_dns: dns_patterns("denied_dns", spec.denied_dns)?,
            allowed_ips: ip_ranges(spec.allowed_ips)?,
            allowed_emails: email_patterns(spec.allowed_emails)?,
            allowed_uris: dns_patterns("allowed_uris", spec.allowed_uris)?,
        })
    }

    /// For a policy's create and update: the first invalid entry (422 `invalid_policy`).
    pub fn validate_patterns(spec: &NameRulesSpec<'_>) -> Result<(), PatternError> {
        Self::compile(spec).map(drop)
    }

    /// Ok, or the refusal naming the offending name and the rule it broke.
    pub fn check(&self, san: &SubjectAltName) -> Result<(), NameRefusal> {
        match san {
            SubjectAltName::Dns(name) => self.check_dns(name, san),
            SubjectAltName::Ip(ip) => {
                if self.allowed_ips.iter().any(|range| range.contains(ip)) {
                    Ok(())
                } else {
                    Err(NameRefusal::new(san, RULE_NOT_ALLOWED))
                }
            }
            SubjectAltName::Email(address) => {
                if self.allowed_emails.allows(address) {
                    Ok(())
                } else {
                    Err(NameRefusal::new(san, RULE_NOT_ALLOWED))
                }
            }
            SubjectAltName::Uri(uri) => match uri_host(uri) {
                Ok(Some(UriHost::Dns(host))) => {
                    if let Some(pattern) = self.denied_dns.denies(&host) {
                        return Err(NameRefusal::new(san, format!("denied by {pattern}")));
                    }
                    if self.allowed_uris.allows(&host) {
                        Ok(())
                    } else {
                        Err(NameRefusal::new(san, RULE_NOT_ALLOWED))
                    }
                }
                _ => Err(NameRefusal::new(san, RULE_NOT_ALLOWED)),
            },
        }
    }

    /// A subject CN that parses as an IP address or a DNS name of two or more labels is
    /// checked exactly like a SAN (verifiers may fall back to it when a certificate has no
    /// SAN); a CN of `*` is the broadest wildcard of all. Any other CN passes: free text
    /// ("edge router 1"), and a single label ("edge-router-1"), which is how devices name
    /// themselves and which no public name or name constraint (OpenSSL checks a CN only
    /// with a dot in it) reads as a host. [`ReservedNames`] still refuses `localhost`.
    pub fn check_common_name(&self, cn: &str) -> Result<(), NameRefusal> {
        match common_name_as_san(cn) {
            Some(Ok(SubjectAltName::Dns(name))) if !name.contains('.') => Ok(()),
            Some(Ok(san)) => self.check(&san).map_err(|r| NameRefusal::new(cn, r.rule)),
            Some(Err(refusal)) => Err(refusal),
            None => Ok(()),
        }
    }

    fn check_dns(&self, raw: &str, san: &SubjectAltName) -> Result<(), NameRefusal> {
        // A SAN built by hand rather than parsed gets the parser's checks here.
        let Ok(name) = parse_dns_name(raw) else {
            return Err(NameRefusal::new(san, RULE_NOT_ALLOWED));
        };
        if is_public_suffix_wildcard(&name) {
            return Err(NameRefusal::new(san, RULE_PUBLIC_SUFFIX_WILDCARD));
        }
        if let Some(pattern) = self.denied_dns.denies(&name) {
            return Err(NameRefusal::new(san, format!("denied by {pattern}")));
        }
        if self.allowed_dns.allows(&name) {
            Ok(())
        } else {
            Err(NameRefusal::new(san, RULE_NOT_ALLOWED))
        }
    }
}

/// A CN read as a SAN: an address, a DNS name, or (for `*`) already a refusal.
fn common_name_as_san(cn: &str) -> Option<Result<SubjectAltName, NameRefusal>> {
    if let Ok(ip) = cn.parse::<IpAddr>() {
        return Some(Ok(SubjectAltName::Ip(ip)));
    }
    if cn.strip_suffix('.').unwrap_or(cn) == "*" {
        return Some(Err(NameRefusal::new(cn, RULE_PUBLIC_SUFFIX_WILDCARD)));
    }
    parse_dns_name(cn)
        .ok()
        .map(|name| Ok(SubjectAltName::Dns(name)))
}

fn check_count(field: &'static str, entries: &[String]) -> Result<(), PatternError> {
    match entries.get(MAX_PATTERNS) {
        Some(entry) => Err(PatternError {
            field,
            entry: entry.clone(),
            reason: format!("a list holds at most {MAX_PATTERNS} entries"),
        }),
        None => Ok(()),
    }
}

fn dns_patterns(field: &'static str, entries: &[String]) -> Result<DnsPatterns, PatternError> {
    check_count(field, entries)?;
    let mut patterns = DnsPatterns::default();
    for entry in entries {
        let pattern = parse_pattern(entry).map_err(|reason| PatternError {
            field,
            entry: entry.clone(),
            reason,
        })?;
        patterns.insert(pattern, entry);
    }
    Ok(patterns)
}

fn ip_ranges(entries: &[String]) -> Result<Vec<IpNet>, PatternError> {
    check_count("allowed_ips", entries)?;
    let error = |entry: &String, reason: String| PatternError {
        field: "allowed_ips",
        entry: entry.clone(),
        reason,
    };
    let mut ranges = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.contains('%') {
            return Err(error(
                entry,
                format!(
                    "{entry:?} has a zone id (%...); a certificate's address has none, so give the range without it"
                ),
            ));
        }
        let range = if entry.contains('/') {
            entry.parse::<IpNet>().ok()
        } else {
            entry.parse::<IpAddr>().ok().map(IpNet::from)
        };
        let Some(range) = range else {
            return Err(error(
                entry,
                format!(
                    "{entry:?} is not an IP address or CIDR range (e.g. 192.0.2.0/24, 2001:db8::/32)"
                ),
            ));
        };
        if range.addr() != range.network() {
            return Err(error(
                entry,
                format!("{entry:?} has host bits set; write {}", range.trunc()),
            ));
        }
        ranges.push(range);
    }
    Ok(ranges)
}

/// E-mail entries: domains, subtrees and full addresses (see the module's documentation).
#[derive(Debug, Clone, Default)]
struct EmailPatterns {
    domains: HashSet<String>,
    subtrees: HashSet<String>,
    addresses: HashSet<String>,
}

impl EmailPatterns {
    fn allows(&self, address: &str) -> bool {
        // Parsed again: a SAN built by hand gets the parser's checks and normal form.
        let Ok(SubjectAltName::Email(address)) = SubjectAltName::parse(&format!("EMAIL:{address}"))
        else {
            return false;
        };
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        self.addresses.contains(&address)
            || self.domains.contains(domain)
            || dns::ancestors(domain).any(|a| self.subtrees.contains(a))
    }
}

fn email_patterns(entries: &[String]) -> Result<EmailPatterns, PatternError> {
    const FIELD: &str = "allowed_emails";
    check_count(FIELD, entries)?;
    let error = |entry: &String, reason: String| PatternError {
        field: FIELD,
        entry: entry.clone(),
        reason,
    };
    let mut patterns = EmailPatterns::default();
    for entry in entries {
        if entry.contains('*') {
            return Err(error(
                entry,
                format!(
                    "{entry:?}: e-mail entries take no wildcard; `example.com` allows its mailboxes, `.example.com` those of every domain below it"
                ),
            ));
        }
        if let Some((local, domain)) = entry.rsplit_once('@') {
            let domain = parse_domain(domain, entry).map_err(|reason| error(entry, reason))?;
            match SubjectAltName::parse(&format!("EMAIL:{local}@{domain}")) {
                Ok(SubjectAltName::Email(address)) => patterns.addresses.insert(address),
                Ok(_) => return Err(error(entry, format!("{entry:?} is not an e-mail address"))),
                Err(e) => return Err(error(entry, e.0)),
            };
        } else if let Some(zone) = entry.strip_prefix('.') {
            let zone = parse_domain(zone, entry).map_err(|reason| error(entry, reason))?;
            patterns.subtrees.insert(zone);
        } else {
            let domain = parse_domain(entry, entry).map_err(|reason| error(entry, reason))?;
            patterns.domains.insert(domain);
        }
    }
    Ok(patterns)
}

/// Whether a DNS name is a wildcard directly under a public suffix: `*.com`, `*.co.uk`,
/// `*.github.io` (the list's private section counts), `*.tld` of a TLD the list does not
/// know (it may be delegated tomorrow), and a bare `*`. Case and one trailing dot are
/// ignored; A-labels (`*.xn--55qx5d.cn`) are looked up as such.
pub fn is_public_suffix_wildcard(dns_name: &str) -> bool {
    let name = dns_name
        .strip_suffix('.')
        .unwrap_or(dns_name)
        .to_ascii_lowercase();
    if name == "*" {
        return true;
    }
    let Some(zone) = name.strip_prefix("*.") else {
        return false;
    };
    // The list answers for the zone's last labels; the zone is public when that answer is
    // all of it. A zone the list cannot read at all (empty) counts as public.
    psl::suffix(zone.as_bytes()).is_none_or(|suffix| suffix.as_bytes() == zone.as_bytes())
}

/// The names of KeyInfra's own TLS certificate, which only ADMIN and the operator may get.
/// `Default` reserves nothing; [`ReservedNames::new`] always adds `localhost`, `127.0.0.1`
/// and `::1`.
#[derive(Debug, Clone, Default)]
pub struct ReservedNames {
    /// Lowercase, without a trailing dot.
    dns: BTreeSet<String>,
    /// Canonical: an IPv4-mapped IPv6 address is held as its IPv4 address.
    ips: BTreeSet<IpAddr>,
}

impl ReservedNames {
    /// A wildcard among `dns` (a server certificate for `*.example.net`) reserves that
    /// wildcard SAN, not every name below it: which of them reaches KeyInfra is not known.
    pub fn new(
        dns: impl IntoIterator<Item = String>,
        ips: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        let dns = dns
            .into_iter()
            .chain(["localhost".to_owned()])
            .map(|name| normal_dns(&name))
            .collect();
        let ips = ips
            .into_iter()
            .chain([
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ])
            .map(|ip| ip.to_canonical())
            .collect();
        Self { dns, ips }
    }

    /// Refuses ("reserved name") a reserved name, and a wildcard SAN that covers one
    /// (`*.example.net` covers `keyinfra.example.net`). Addresses compare canonically, so
    /// `::ffff:127.0.0.1` is refused like `127.0.0.1` (a verifier would not take one for
    /// the other, but nobody needs either). E-mail addresses and URIs are not TLS names.
    pub fn check(&self, san: &SubjectAltName) -> Result<(), NameRefusal> {
        let reserved = match san {
            SubjectAltName::Dns(name) => {
                let name = normal_dns(name);
                self.dns.contains(&name)
                    || name
                        .strip_prefix("*.")
                        .is_some_and(|zone| self.dns.iter().any(|r| dns::parent(r) == Some(zone)))
            }
            SubjectAltName::Ip(ip) => self.ips.contains(&ip.to_canonical()),
            SubjectAltName::Email(_) | SubjectAltName::Uri(_) => false,
        };
        if reserved {
            Err(NameRefusal::new(san, RULE_RESERVED))
        } else {
            Ok(())
        }
    }

    /// The CN, read as [`NameRules::check_common_name`] reads it.
    pub fn check_common_name(&self, cn: &str) -> Result<(), NameRefusal> {
        match common_name_as_san(cn) {
            Some(Ok(san)) => self.check(&san).map_err(|r| NameRefusal::new(cn, r.rule)),
            Some(Err(_)) | None => Ok(()),
        }
    }
}

fn normal_dns(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
