//! Subject alternative names: DNS names, IP addresses, e-mail addresses (rfc822Name) and
//! URIs (uniformResourceIdentifier), parsed into the one form the database stores and the
//! policies match.
//!
//! URIs are read with a small RFC 3986 parser rather than the `url` crate (which is in the
//! build): `url` follows the WHATWG URL standard, which reads `\` as `/`, decodes
//! percent-escapes in hosts and accepts IPv4 addresses such as `0x7f.1`, while the relying
//! parties that check a certificate's URI read RFC 3986. A policy that matched the host the
//! way `url` sees it could allow a URI that a verifier reads with another host, so only the
//! unambiguous subset is accepted: no user information, no escapes in the authority, and a
//! host that is a DNS name, a dotted-quad IPv4 address or a bracketed IPv6 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{NameError, refuse};

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// Lowercase, without a trailing dot; a wildcard only as the whole leftmost label.
    Dns(String),
    Ip(IpAddr),
    /// An rfc822Name, `local@domain`: ASCII, the domain lowercased (the local part is the
    /// mail system's, which may tell case apart: RFC 5321 2.4).
    Email(String),
    /// A uniformResourceIdentifier: ASCII, scheme and host lowercased (RFC 3986 6.2.2.1),
    /// the rest as given.
    Uri(String),
}

/// At most this many SANs in a certificate.
pub const MAX_SANS: usize = 100;

/// The longest e-mail SAN: RFC 5321's path limit (256) less its angle brackets.
pub const MAX_EMAIL_LEN: usize = 254;

/// The longest URI SAN.
pub const MAX_URI_LEN: usize = 1024;

/// The host of a URI SAN, as a policy matches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UriHost {
    /// Lowercase, without a trailing dot, never a wildcard.
    Dns(String),
    Ip(IpAddr),
}

impl SubjectAltName {
    /// Parses `router1.example.net`, `192.0.2.1`, `2001:db8::1`, or the same with a `DNS:` /
    /// `IP:` prefix, and `EMAIL:noc@example.net` or `URI:spiffe://example.net/x` (prefixes
    /// in any case). DNS names are lowercased; a wildcard is allowed as the whole leftmost
    /// label only. E-mail addresses and URIs need their prefix: a bare `a@b` or `https://..`
    /// is refused with a hint, not guessed.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let (kind, value) = match text.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("DNS") => (Some("DNS"), v),
            Some((k, v)) if k.eq_ignore_ascii_case("IP") => (Some("IP"), v),
            Some((k, v)) if k.eq_ignore_ascii_case("EMAIL") => {
                return parse_email(v).map(SubjectAltName::Email);
            }
            Some((k, v)) if k.eq_ignore_ascii_case("URI") => {
                return parse_uri(v).map(SubjectAltName::Uri);
            }
            _ => (None, text),
        };
        if kind != Some("DNS") {
            if let Ok(ip) = value.parse::<IpAddr>() {
                return Ok(SubjectAltName::Ip(ip));
            }
            if kind == Some("IP") {
                return refuse(format!("{value:?} is not an IPv4 or IPv6 address"));
            }
        }
        match parse_dns_name(value) {
            Ok(name) => Ok(SubjectAltName::Dns(name)),
            Err(_) if kind.is_none() && value.contains('@') => refuse(format!(
                "{value:?} is not a DNS name or IP address; write an e-mail address as {:?}",
                format!("EMAIL:{value}")
            )),
            Err(_) if kind.is_none() && value.contains("://") => refuse(format!(
                "{value:?} is not a DNS name or IP address; write a URI as {:?}",
                format!("URI:{value}")
            )),
            Err(e) => Err(e),
        }
    }

    /// Parses a list, refusing duplicates and oversized lists.
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<Self>, NameError> {
        check_san_count(items.len())?;
        let sans = items
            .iter()
            .map(|item| Self::parse(item.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        refuse_repeated_sans(&sans)?;
        Ok(sans)
    }

    /// The database's typed form: `DNS:name`, `IP:address`, `EMAIL:address` or `URI:uri`,
    /// which [`SubjectAltName::parse`] reads back to the same value.
    pub fn to_tagged(&self) -> String {
        match self {
            SubjectAltName::Dns(name) => format!("DNS:{name}"),
            SubjectAltName::Ip(ip) => format!("IP:{ip}"),
            SubjectAltName::Email(address) => format!("EMAIL:{address}"),
            SubjectAltName::Uri(uri) => format!("URI:{uri}"),
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<rcgen::SanType, NameError> {
        Ok(match self {
            SubjectAltName::Dns(name) => rcgen::SanType::DnsName(ia5(name)?),
            SubjectAltName::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            SubjectAltName::Email(address) => rcgen::SanType::Rfc822Name(ia5(address)?),
            SubjectAltName::Uri(uri) => rcgen::SanType::URI(ia5(uri)?),
        })
    }
}

fn ia5(text: &str) -> Result<rcgen::string::Ia5String, NameError> {
    rcgen::string::Ia5String::try_from(text)
        .map_err(|_| NameError(format!("{text:?} is not ASCII")))
}

/// The limit on the number of SANs, for a request's list and a CSR's alike.
pub(crate) fn check_san_count(count: usize) -> Result<(), NameError> {
    if count > MAX_SANS {
        return refuse(format!(
            "{count} subject alternative names; at most {MAX_SANS} are allowed"
        ));
    }
    Ok(())
}

/// A name given twice is refused, wherever the list comes from (DNS names compare after
/// lowercasing, addresses by value: `2001:db8::1` and `2001:DB8:0::1` are the same).
pub(crate) fn refuse_repeated_sans(sans: &[SubjectAltName]) -> Result<(), NameError> {
    let mut seen = std::collections::HashSet::with_capacity(sans.len());
    for san in sans {
        if !seen.insert(san) {
            return refuse(format!("{san} is named more than once"));
        }
    }
    Ok(())
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectAltName::Dns(name) => f.write_str(name),
            SubjectAltName::Ip(ip) => write!(f, "{ip}"),
            SubjectAltName::Email(address) => f.write_str(address),
            SubjectAltName::Uri(uri) => f.write_str(uri),
        }
    }
}

/// Parses a DNS name (RFC 1123 labels of letters, digits and inner hyphens, ASCII only),
/// lowercased and without its one trailing dot. A wildcard is accepted as the whole
/// leftmost label of a name with at least two labels (`*.example.net`).
pub fn parse_dns_name(text: &str) -> Result<String, NameError> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.is_empty() {
        return refuse("a SAN is empty");
    }
    if !name.is_ascii() {
        return refuse(format!(
            "{text:?} is not ASCII; give internationalised names in their xn-- (punycode) form"
        ));
    }
    if name.len() > 253 {
        return refuse(format!("{text:?} is longer than 253 characters"));
    }
    // RFC 1123 2.1: a top-level label is never all-numeric, so "300.1.2.3" is a mistyped
    // address, not a host name.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return refuse(format!(
            "{text:?} is neither a valid IP address nor a DNS name"
        ));
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" && name.contains('.') {
            continue;
        }
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return refuse(format!(
                "{text:?} is not a valid DNS name or IP address (labels are 1-63 letters, digits or inner hyphens)"
            ));
        }
    }
    Ok(name)
}

/// `local@domain` with a dot-atom local part (RFC 5322 3.4.1; quoted local parts are not
/// issued) and a DNS domain, neither a wildcard nor an address literal.
fn parse_email(text: &str) -> Result<String, NameError> {
    if text.is_empty() {
        return refuse("an e-mail SAN is empty");
    }
    if !text.is_ascii() {
        return refuse(format!(
            "{text:?} is not ASCII; internationalised mailboxes are not issued, and a domain goes in its xn-- form"
        ));
    }
    if text.len() > MAX_EMAIL_LEN {
        return refuse(format!(
            "the e-mail address {text:?} is longer than {MAX_EMAIL_LEN} characters"
        ));
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return refuse(format!("{text:?} is not an e-mail address (local@domain)"));
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| !atom.is_empty())
        && local.bytes().all(|b| atext(b) || b == b'.');
    if !local_ok {
        return refuse(format!(
            "{text:?} is not an e-mail address: its local part must be 1-64 letters, digits or !#$%&'*+-/=?^_`{{|}}~, with single inner dots"
        ));
    }
    if domain.ends_with('.') || domain.contains('*') {
        return refuse(format!(
            "the domain of the e-mail address {text:?} is not a host name"
        ));
    }
    let domain = parse_dns_name(domain).map_err(|_| {
        NameError(format!(
            "the domain of the e-mail address {text:?} is not a valid DNS name"
        ))
    })?;
    Ok(format!("{local}@{domain}"))
}

/// The characters RFC 3986 allows in a URI: unreserved, reserved and `%`.
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// A URI split as RFC 3986 reads it: the scheme, the authority (when it has `//`) and its
/// host, and the rest (path, query, fragment).
struct UriParts<'a> {
    scheme: &'a str,
    authority: Option<&'a str>,
    host: Option<UriHost>,
    rest: &'a str,
}

fn split_uri(text: &str) -> Result<UriParts<'_>, NameError> {
    if text.is_empty() {
        return refuse("a URI SAN is empty");
    }
    if text.len() > MAX_URI_LEN {
        return refuse(format!("a URI SAN is longer than {MAX_URI_LEN} characters"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii() || !is_uri_byte(*c as u8))
    {
        return refuse(format!(
            "the URI {text:?} contains {c:?}, which RFC 3986 does not allow unescaped; percent-encode it (and give a host in its xn-- form)"
        ));
    }
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        let hex = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_hexdigit);
        if !(hex(i + 1) && hex(i + 2)) {
            return refuse(format!(
                "the URI {text:?} has a '%' not followed by two hex digits"
            ));
        }
    }
    let Some((scheme, after_scheme)) = text.split_once(':') else {
        return refuse(format!(
            "{text:?} is not a URI: it has no scheme (scheme:...)"
        ));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return refuse(format!("{text:?} is not a URI: {scheme:?} is not a scheme"));
    }
    if after_scheme.is_empty() {
        return refuse(format!("the URI {text:?} has nothing after its scheme"));
    }
    let (authority, host, rest) = match after_scheme.strip_prefix("//") {
        Some(hier) => {
            let end = hier.find(['/', '?', '#']).unwrap_or(hier.len());
            let authority = &hier[..end];
            (
                Some(authority),
                parse_authority(text, authority)?,
                &hier[end..],
            )
        }
        None => (None, None, after_scheme),
    };
    if rest.contains(['[', ']']) || rest.matches('#').count() > 1 {
        return refuse(format!(
            "the URI {text:?} has '[', ']' or a second '#' outside its host; percent-encode them"
        ));
    }
    Ok(UriParts {
        scheme,
        authority,
        host,
        rest,
    })
}

/// `host[:port]`; no user information and no escapes, so that every reader finds the same
/// host. An empty authority (`file:///x`) has no host.
fn parse_authority(text: &str, authority: &str) -> Result<Option<UriHost>, NameError> {
    if authority.is_empty() {
        return Ok(None);
    }
    if authority.contains('@') {
        return refuse(format!(
            "the URI {text:?} has user information (user@host), which KeyInfra does not issue"
        ));
    }
    if authority.contains('%') {
        return refuse(format!(
            "the URI {text:?} has a percent-encoded host; give it plainly"
        ));
    }
    let bad_host = || NameError(format!("the URI {text:?} has no valid host"));
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (literal, after) = inner.split_once(']').ok_or_else(bad_host)?;
        let ip: Ipv6Addr = literal.parse().map_err(|_| bad_host())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(bad_host)?),
        };
        (UriHost::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() || host.contains(['[', ']', '*']) {
            return Err(bad_host());
        }
        let host = match host.parse::<Ipv4Addr>() {
            Ok(ip) => UriHost::Ip(IpAddr::V4(ip)),
            Err(_) => UriHost::Dns(parse_dns_name(host).map_err(|_| bad_host())?),
        };
        (host, port)
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p <= 65_535);
        if !valid {
            return refuse(format!("the URI {text:?} has an invalid port"));
        }
    }
    Ok(Some(host))
}

fn parse_uri(text: &str) -> Result<String, NameError> {
    let parts = split_uri(text)?;
    let scheme = parts.scheme.to_ascii_lowercase();
    Ok(match parts.authority {
        // The authority is host[:port] only, so lowercasing it lowercases the host.
        Some(authority) => format!(
            "{scheme}://{}{}",
            authority.to_ascii_lowercase(),
            parts.rest
        ),
        None => format!("{scheme}:{}", parts.rest),
    })
}

/// The host of a URI, for matching against a policy: `None` for a URI without one
/// (`urn:...`, `file:///x`). Refuses what [`SubjectAltName::parse`] would refuse, so a
/// `SubjectAltName::Uri` built by hand is never matched unchecked.
pub fn uri_host(uri: &str) -> Result<Option<UriHost>, NameError> {
    split_uri(uri).map(|parts| parts.host)
}

#[cfg(test)]
mod tests;
