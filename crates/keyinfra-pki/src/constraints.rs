//! Name constraints of CA certificates (RFC 5280 4.2.1.10): parsing them from flags and
//! from a CA certificate, writing them (rcgen, marked critical), and checking a leaf's
//! names against them the way OpenSSL's `verify` does, so that what KeyInfra signs is what
//! a relying party accepts.
//!
//! Matching, as OpenSSL 3 does it (crypto/x509/v3_ncons.c):
//! * a DNS subtree `example.net` matches `example.net` itself and every name under it
//!   (`a.example.net`, `b.a.example.net`), never `badexample.net`;
//! * a subtree with a leading dot, `.example.net`, matches only names under it, not
//!   `example.net` itself;
//! * DNS names compare without regard to ASCII case;
//! * an IP subtree is an address and a mask; an IPv4 subtree never matches an IPv6 address
//!   (an IPv4-mapped one included) and the other way round;
//! * when a CA has permitted subtrees of a kind (DNS, IP), every name of that kind in the
//!   leaf must lie in one of them; a name in an excluded subtree is refused even if it is
//!   also permitted;
//! * when the leaf has no DNS SAN, a subject CN that looks like a host name (two or more
//!   labels of letters, digits, `_` and inner `-`) is checked as a DNS name.
//!
//! A wildcard SAN `*.x.example.net` is compared as the text OpenSSL compares, which makes it
//! permitted exactly when a permitted subtree covers every name it can stand for
//! (`x.example.net`, `.x.example.net` or above). It is excluded when an excluded subtree
//! matches it so, and also, more strictly than OpenSSL, when it could stand for an excluded
//! name (`*.example.net` under an excluded `bad.example.net`): a relying party that expands
//! the wildcard must not find an excluded name in it.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rcgen::{CidrSubnet, GeneralSubtree};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::PkiError;
use crate::names::{DistinguishedName, NameError, SubjectAltName};

/// The name constraints of one CA certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// DNS subtrees, lowercase, without a trailing dot; a leading dot means "only below".
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<IpNet>,
    pub excluded_ip: Vec<IpNet>,
    /// Subtrees of kinds KeyInfra does not check (directoryName, rfc822Name, URI, an IP
    /// mask that is not a prefix, ...), described (`permitted directoryName`). Only a CA
    /// certificate made elsewhere carries them; KeyInfra does not sign under such a CA.
    pub unsupported: Vec<String>,
}

/// A name a CA's constraints refuse, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameViolation {
    /// `DNS:www.example.org`, `IP:192.0.2.1` or `CN=www.example.org`.
    pub name: String,
    /// `permitted: DNS:example.net, DNS:.example.com` or `excluded: DNS:bad.example.net`.
    pub rule: String,
}

impl fmt::Display for NameViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is outside the name constraints ({})",
            self.name, self.rule
        )
    }
}

impl NameConstraints {
    /// From the operator's flags; every value is checked (see [`Self::parse_dns_subtree`]
    /// and [`Self::parse_ip_subtree`]).
    pub fn parse<S: AsRef<str>>(
        permitted_dns: &[S],
        excluded_dns: &[S],
        permitted_ip: &[S],
        excluded_ip: &[S],
    ) -> Result<Self, NameError> {
        let dns = |list: &[S]| {
            list.iter()
                .map(|s| Self::parse_dns_subtree(s.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        let ip = |list: &[S]| {
            list.iter()
                .map(|s| Self::parse_ip_subtree(s.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            permitted_dns: dns(permitted_dns)?,
            excluded_dns: dns(excluded_dns)?,
            permitted_ip: ip(permitted_ip)?,
            excluded_ip: ip(excluded_ip)?,
            unsupported: Vec::new(),
        })
    }

    /// A DNS subtree: `example.net` (it and every name below) or `.example.net` (only
    /// below). Lowercased, a trailing dot dropped; no wildcard (a subtree already covers
    /// everything below it), no empty value (OpenSSL reads it as "every name").
    pub fn parse_dns_subtree(text: &str) -> Result<String, NameError> {
        let text = text.trim();
        let (dot, rest) = match text.strip_prefix('.') {
            Some(rest) => (".", rest),
            None => ("", text),
        };
        if rest.is_empty() || rest.starts_with('.') {
            return Err(NameError(format!(
                "{text:?} is not a DNS name constraint; give a domain such as example.net (it and every name below) or .example.net (only names below)"
            )));
        }
        if rest.contains('*') {
            return Err(NameError(format!(
                "{text:?}: a DNS name constraint has no wildcard; example.net already covers every name below it"
            )));
        }
        match SubjectAltName::parse(&format!("DNS:{rest}")) {
            Ok(SubjectAltName::Dns(name)) => Ok(format!("{dot}{name}")),
            Ok(_) => Err(NameError(format!("{text:?} is not a DNS name"))),
            Err(e) => Err(NameError(format!("DNS name constraint: {e}"))),
        }
    }

    /// An IP subtree in CIDR form (`10.0.0.0/8`, `2001:db8::/32`). The address must be the
    /// network's first (`10.1.2.3/8` is refused rather than silently widened to
    /// `10.0.0.0/8`).
    pub fn parse_ip_subtree(text: &str) -> Result<IpNet, NameError> {
        let text = text.trim();
        let net: IpNet = text.parse().map_err(|_| {
            NameError(format!(
                "{text:?} is not a CIDR range such as 10.0.0.0/8 or 2001:db8::/32"
            ))
        })?;
        if net.trunc() != net {
            return Err(NameError(format!(
                "{text:?} has host bits set; did you mean {}?",
                net.trunc()
            )));
        }
        Ok(net)
    }

    /// Whether there is no subtree at all (then no extension is written).
    pub fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty()
            && self.excluded_dns.is_empty()
            && self.permitted_ip.is_empty()
            && self.excluded_ip.is_empty()
            && self.unsupported.is_empty()
    }

    /// The extension as rcgen writes it: critical, as RFC 5280 requires of conforming CAs.
    pub(crate) fn to_rcgen(&self) -> rcgen::NameConstraints {
        fn subtrees(dns: &[String], ip: &[IpNet]) -> Vec<GeneralSubtree> {
            dns.iter()
                .cloned()
                .map(GeneralSubtree::DnsName)
                .chain(ip.iter().map(|net| {
                    GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                        net.network(),
                        net.prefix_len(),
                    ))
                }))
                .collect()
        }
        rcgen::NameConstraints {
            permitted_subtrees: subtrees(&self.permitted_dns, &self.permitted_ip),
            excluded_subtrees: subtrees(&self.excluded_dns, &self.excluded_ip),
        }
    }

    /// The constraints of a certificate (None without the extension).
    pub fn from_certificate(der: &[u8]) -> Result<Option<Self>, PkiError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
        Self::from_x509(&cert)
    }

    pub(crate) fn from_x509(cert: &X509Certificate<'_>) -> Result<Option<Self>, PkiError> {
        let ext = cert.name_constraints().map_err(|_| {
            PkiError::InvalidCertificate("the nameConstraints extension does not parse".into())
        })?;
        let Some(ext) = ext else { return Ok(None) };
        let mut out = Self::default();
        for (subtrees, permitted) in [
            (&ext.value.permitted_subtrees, true),
            (&ext.value.excluded_subtrees, false),
        ] {
            for subtree in subtrees.iter().flatten() {
                out.add_parsed(&subtree.base, permitted);
            }
        }
        Ok(Some(out))
    }

    fn add_parsed(&mut self, base: &GeneralName<'_>, permitted: bool) {
        let side = if permitted { "permitted" } else { "excluded" };
        match base {
            GeneralName::DNSName(name) => {
                let name = name.to_ascii_lowercase();
                let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
                if permitted {
                    self.permitted_dns.push(name);
                } else {
                    self.excluded_dns.push(name);
                }
            }
            GeneralName::IPAddress(bytes) => match ip_subtree_from_der(bytes) {
                Some(net) if permitted => self.permitted_ip.push(net),
                Some(net) => self.excluded_ip.push(net),
                None => self
                    .unsupported
                    .push(format!("{side} iPAddress {}", hex::encode(bytes))),
            },
            other => {
                let kind = match other {
                    GeneralName::OtherName(..) => "otherName",
                    GeneralName::RFC822Name(_) => "rfc822Name",
                    GeneralName::X400Address(_) => "x400Address",
                    GeneralName::DirectoryName(_) => "directoryName",
                    GeneralName::EDIPartyName(_) => "ediPartyName",
                    GeneralName::URI(_) => "uniformResourceIdentifier",
                    GeneralName::RegisteredID(_) => "registeredID",
                    _ => "an unreadable name",
                };
                self.unsupported.push(format!("{side} {kind}"));
            }
        }
    }

    /// Checks one SAN. The error is the rule it broke.
    pub fn permits_san(&self, san: &SubjectAltName) -> Result<(), String> {
        // Only the kinds KeyInfra writes constraints of are matched here. A SAN of another
        // kind (e-mail, URI) meets no DNS or IP subtree, and a CA with subtrees of other
        // kinds is refused as a whole (`unsupported`), so such a SAN needs no arm of its own.
        match san {
            SubjectAltName::Dns(name) => self.permits_dns(name),
            SubjectAltName::Ip(ip) => self.permits_ip(ip),
            SubjectAltName::Email(_) | SubjectAltName::Uri(_) => Ok(()),
        }
    }

    fn permits_dns(&self, name: &str) -> Result<(), String> {
        if let Some(hit) = self
            .excluded_dns
            .iter()
            .find(|base| dns_in_subtree(name, base) || wildcard_reaches(name, base))
        {
            return Err(format!("excluded: DNS:{hit}"));
        }
        if !self.permitted_dns.is_empty()
            && !self
                .permitted_dns
                .iter()
                .any(|base| dns_in_subtree(name, base))
        {
            return Err(format!("permitted: {}", tagged("DNS", &self.permitted_dns)));
        }
        Ok(())
    }

    fn permits_ip(&self, ip: &IpAddr) -> Result<(), String> {
        if let Some(hit) = self.excluded_ip.iter().find(|net| net.contains(ip)) {
            return Err(format!("excluded: IP:{hit}"));
        }
        if !self.permitted_ip.is_empty() && !self.permitted_ip.iter().any(|net| net.contains(ip)) {
            return Err(format!("permitted: {}", tagged("IP", &self.permitted_ip)));
        }
        Ok(())
    }

    /// Checks a leaf's subject and SANs: every SAN, then (when there is no DNS SAN) a CN
    /// that OpenSSL would read as a host name.
    pub fn permits(
        &self,
        subject: &DistinguishedName,
        sans: &[SubjectAltName],
    ) -> Result<(), NameViolation> {
        for san in sans {
            self.permits_san(san).map_err(|rule| NameViolation {
                name: san.to_tagged(),
                rule,
            })?;
        }
        let has_dns_san = sans.iter().any(|s| matches!(s, SubjectAltName::Dns(_)));
        if !has_dns_san
            && let Some(cn) = subject.common_name()
            && looks_like_host_name(cn)
        {
            self.permits_dns(cn).map_err(|rule| NameViolation {
                name: format!("CN={cn}"),
                rule,
            })?;
        }
        Ok(())
    }
}

/// `permitted: DNS:example.net, IP:10.0.0.0/8; excluded: DNS:bad.example.net`.
impl fmt::Display for NameConstraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |dns: &[String], ip: &[IpNet]| {
            let mut items: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
            items.extend(ip.iter().map(|n| format!("IP:{n}")));
            items.join(", ")
        };
        let mut parts = Vec::new();
        let permitted = side(&self.permitted_dns, &self.permitted_ip);
        if !permitted.is_empty() {
            parts.push(format!("permitted: {permitted}"));
        }
        let excluded = side(&self.excluded_dns, &self.excluded_ip);
        if !excluded.is_empty() {
            parts.push(format!("excluded: {excluded}"));
        }
        if !self.unsupported.is_empty() {
            parts.push(format!("unchecked: {}", self.unsupported.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

fn tagged<T: fmt::Display>(tag: &str, items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("{tag}:{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// OpenSSL's `nc_dns`: the subtree is a suffix of the name at a label boundary; a leading
/// dot in the subtree requires at least one more label; an empty subtree matches all.
fn dns_in_subtree(name: &str, base: &str) -> bool {
    let (n, b) = (name.as_bytes(), base.as_bytes());
    if b.is_empty() {
        return true;
    }
    if n.len() < b.len() {
        return false;
    }
    let start = n.len() - b.len();
    if start > 0 && b[0] != b'.' && n[start - 1] != b'.' {
        return false;
    }
    n[start..].eq_ignore_ascii_case(b)
}

/// Whether a wildcard name (`*.example.net`) can stand for a name in an excluded subtree
/// that the textual match misses: the subtree `bad.example.net` is one label below the
/// wildcard's base, so `*` may be `bad`. (`.bad.example.net` holds only names two labels
/// down, which one `*` label never reaches.)
fn wildcard_reaches(name: &str, base: &str) -> bool {
    let Some(parent) = name.strip_prefix("*.") else {
        return false;
    };
    if base.starts_with('.') {
        return false;
    }
    base.split_once('.')
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(parent))
}

/// OpenSSL's `cn2dnsid`: a CN counts as a host name when it has letters, digits, `_`,
/// inner `-` and `.`, and at least one dot between two labels (so `router1` is not one).
fn looks_like_host_name(cn: &str) -> bool {
    let b = cn.as_bytes();
    let mut dotted = false;
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == b'_' {
            continue;
        }
        let inner = i > 0 && i + 1 < b.len();
        if inner && c == b'-' {
            continue;
        }
        if inner && c == b'.' && b[i + 1] != b'.' && b[i - 1] != b'-' && b[i + 1] != b'-' {
            dotted = true;
            continue;
        }
        return false;
    }
    dotted
}

/// An iPAddress subtree: address then mask, 4 + 4 or 16 + 16 bytes, the mask a prefix.
fn ip_subtree_from_der(bytes: &[u8]) -> Option<IpNet> {
    let (addr, mask): (IpAddr, IpAddr) = match bytes.len() {
        8 => {
            let a: [u8; 4] = bytes[..4].try_into().ok()?;
            let m: [u8; 4] = bytes[4..].try_into().ok()?;
            (a.into(), m.into())
        }
        32 => {
            let a: [u8; 16] = bytes[..16].try_into().ok()?;
            let m: [u8; 16] = bytes[16..].try_into().ok()?;
            (a.into(), m.into())
        }
        _ => return None,
    };
    IpNet::with_netmask(addr, mask).ok().map(|n| n.trunc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
