//! The small vocabulary every ACME resource shares: problem types (RFC 8555 6.7, RFC 9773
//! 7.4) and identifiers (RFC 8555 7.1.3, RFC 8738).
//!
//! The JSON resources themselves (directory, account, order, authorization, challenge) are
//! the server's: they carry URLs and database state. What is here is what the JWS layer and
//! the challenge checks need to agree on with the server, and what must be parsed the same
//! way everywhere: an identifier is read once, strictly, into an [`Identifier`], and every
//! later comparison (SANs at finalize, tls-alpn-01 certificates, CAA, policies) uses that.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An ACME problem type: the `type` of an `application/problem+json` answer. Each is the
/// last part of a `urn:ietf:params:acme:error:` URN ([`ProblemType::urn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    AccountDoesNotExist,
    /// RFC 9773 7.4: a `replaces` names a certificate that already has a replacement order.
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
}

/// The namespace of every ACME problem type (RFC 8555 6.7).
pub const PROBLEM_URN_PREFIX: &str = "urn:ietf:params:acme:error:";

impl ProblemType {
    /// Every problem type, in the order of the IANA registry.
    pub const ALL: [ProblemType; 25] = [
        ProblemType::AccountDoesNotExist,
        ProblemType::AlreadyReplaced,
        ProblemType::AlreadyRevoked,
        ProblemType::BadCsr,
        ProblemType::BadNonce,
        ProblemType::BadPublicKey,
        ProblemType::BadRevocationReason,
        ProblemType::BadSignatureAlgorithm,
        ProblemType::Caa,
        ProblemType::Compound,
        ProblemType::Connection,
        ProblemType::Dns,
        ProblemType::ExternalAccountRequired,
        ProblemType::IncorrectResponse,
        ProblemType::InvalidContact,
        ProblemType::Malformed,
        ProblemType::OrderNotReady,
        ProblemType::RateLimited,
        ProblemType::RejectedIdentifier,
        ProblemType::ServerInternal,
        ProblemType::Tls,
        ProblemType::Unauthorized,
        ProblemType::UnsupportedContact,
        ProblemType::UnsupportedIdentifier,
        ProblemType::UserActionRequired,
    ];

    /// The registered name, as it follows [`PROBLEM_URN_PREFIX`] (`badNonce`, `caa`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::AlreadyReplaced => "alreadyReplaced",
            ProblemType::AlreadyRevoked => "alreadyRevoked",
            ProblemType::BadCsr => "badCSR",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadRevocationReason => "badRevocationReason",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Caa => "caa",
            ProblemType::Compound => "compound",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::InvalidContact => "invalidContact",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedContact => "unsupportedContact",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
            ProblemType::UserActionRequired => "userActionRequired",
        }
    }

    /// The full URN, `urn:ietf:params:acme:error:<name>`, for the problem's `type` member.
    pub fn urn(self) -> String {
        format!("{PROBLEM_URN_PREFIX}{}", self.name())
    }

    /// The problem type a URN names, if it is one of ours (exact case: the names are
    /// camelCase as registered). Subproblems of a `compound` problem are read back with this
    /// in tests and clients.
    pub fn from_urn(urn: &str) -> Option<Self> {
        let name = urn.strip_prefix(PROBLEM_URN_PREFIX)?;
        Self::ALL.into_iter().find(|problem| problem.name() == name)
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PROBLEM_URN_PREFIX}{}", self.name())
    }
}

/// Longest `dns` identifier value, a wildcard's `*.` included: the 253 characters of a DNS
/// name in text form (RFC 1035 2.3.4).
pub const MAX_DNS_IDENTIFIER_LEN: usize = 253;

/// Why an identifier was refused. The problem type is `malformed` for [`NotAnObject`] and
/// [`BadValue`], `unsupportedIdentifier` for [`UnsupportedType`] (RFC 8555 7.1.3 and 7.4).
///
/// [`NotAnObject`]: IdentifierError::NotAnObject
/// [`BadValue`]: IdentifierError::BadValue
/// [`UnsupportedType`]: IdentifierError::UnsupportedType
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("an identifier is an object with exactly the members \"type\" and \"value\"")]
    NotAnObject,
    #[error("identifier type {0:?} is not supported (dns and ip are)")]
    UnsupportedType(String),
    #[error("{0}")]
    BadValue(String),
}

impl IdentifierError {
    /// The ACME problem type to answer with.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            IdentifierError::UnsupportedType(_) => ProblemType::UnsupportedIdentifier,
            IdentifierError::NotAnObject | IdentifierError::BadValue(_) => ProblemType::Malformed,
        }
    }
}

/// An ACME identifier: `{"type": "dns", "value": ...}` or `{"type": "ip", "value": ...}`.
///
/// Built only through [`Identifier::parse`] (serde's `Deserialize` goes through it too), so a
/// `Dns` value is a lowercase ASCII DNS name, possibly with a leading `*.`, and an `Ip` is an
/// address; serialising gives the canonical text back (RFC 5952 for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "JsonObject<RawIdentifier>", into = "RawIdentifier")]
pub enum Identifier {
    /// A DNS name in lowercase, with a leading `*.` if the order asks for a wildcard.
    Dns(String),
    /// An IP address (RFC 8738).
    Ip(IpAddr),
}

/// The JSON form, before any check. Unknown and repeated members are refused: a client that
/// sends more than it should gets told rather than silently ignored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// A JSON object read into `T`, and nothing else: serde's derived `Deserialize` for a struct
/// also takes an array of its fields in order (`["dns", "example.net"]`), which no ACME
/// message is. Wrapping the struct in this keeps the derive's checks (missing, unknown and
/// repeated members) and refuses every non-object.
pub(crate) struct JsonObject<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(JsonObject)
    }
}

impl TryFrom<JsonObject<RawIdentifier>> for Identifier {
    type Error = IdentifierError;

    fn try_from(raw: JsonObject<RawIdentifier>) -> Result<Self, Self::Error> {
        Identifier::try_from(raw.0)
    }
}

impl TryFrom<RawIdentifier> for Identifier {
    type Error = IdentifierError;

    fn try_from(raw: RawIdentifier) -> Result<Self, Self::Error> {
        Identifier::parse(&raw.kind, &raw.value)
    }
}

impl From<Identifier> for RawIdentifier {
    fn from(identifier: Identifier) -> Self {
        RawIdentifier {
            kind: identifier.type_name().to_owned(),
            value: identifier.value(),
        }
    }
}

impl Identifier {
    /// Reads an identifier from its `type` and `value`.
    ///
    /// * `dns`: ASCII only (an internationalised name comes as its `xn--` A-labels, RFC 8555
    ///   7.1.4), lowercased, at most [`MAX_DNS_IDENTIFIER_LEN`] characters, labels of 1-63
    ///   letters, digits and inner hyphens; a leading `*.` is a wildcard (RFC 8555 7.1.3) and
    ///   `*` anywhere else is refused; no trailing dot; an IP address is refused (RFC 8738 3
    ///   gives those their own type).
    /// * `ip`: an IPv4 or IPv6 address in its canonical text (RFC 8738 3: RFC 791 dotted
    ///   decimal, RFC 5952 for IPv6): `2001:DB8::1`, `2001:db8:0::1` or `192.0.2.01` spellings of
    ///   an address are refused, so that two spellings never make two authorizations.
    ///
    /// Which names and addresses may be issued is the policy's business, not this.
    pub fn parse(kind: &str, value: &str) -> Result<Self, IdentifierError> {
        match kind {
            "dns" => parse_dns_value(value).map(Identifier::Dns),
            "ip" => parse_ip_value(value).map(Identifier::Ip),
            other => Err(IdentifierError::UnsupportedType(truncated(other))),
        }
    }

    /// Reads a `{"type", "value"}` JSON object (already parsed).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, IdentifierError> {
        let JsonObject(raw) = JsonObject::<RawIdentifier>::deserialize(value)
            .map_err(|_| IdentifierError::NotAnObject)?;
        Identifier::try_from(raw)
    }

    /// `dns` or `ip`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Identifier::Dns(_) => "dns",
            Identifier::Ip(_) => "ip",
        }
    }

    /// The `value` member: the name (with its `*.` if any) or the address's canonical text.
    pub fn value(&self) -> String {
        match self {
            Identifier::Dns(name) => name.clone(),
            Identifier::Ip(ip) => ip.to_string(),
        }
    }

    /// True for a `*.` DNS name: its authorization is for the name without the prefix,
    /// flagged `wildcard: true`, and only dns-01 may prove it (RFC 8555 7.1.3, 8.4).
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Identifier::Dns(name) if name.starts_with("*."))
    }

    /// The identifier an authorization is for: the same, without a wildcard's `*.`.
    pub fn authorization_identifier(&self) -> Identifier {
        match self {
            Identifier::Dns(name) => Identifier::Dns(
                name.strip_prefix("*.")
                    .map_or_else(|| name.clone(), str::to_owned),
            ),
            Identifier::Ip(ip) => Identifier::Ip(*ip),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Dns(name) => write!(f, "dns:{name}"),
            Identifier::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}

/// At most 64 characters of client text, for an error message.
fn truncated(text: &str) -> String {
    text.chars().take(64).collect()
}

fn bad_value(text: impl Into<String>) -> IdentifierError {
    IdentifierError::BadValue(text.into())
}

fn parse_dns_value(value: &str) -> Result<String, IdentifierError> {
    if value.is_empty() {
        return Err(bad_value("a dns identifier is empty"));
    }
    if value.len() > MAX_DNS_IDENTIFIER_LEN {
        return Err(bad_value(format!(
            "a dns identifier is longer than {MAX_DNS_IDENTIFIER_LEN} characters"
        )));
    }
    if value.ends_with('.') {
        return Err(bad_value(format!(
            "dns identifier {:?} ends with a dot; send the name without it",
            truncated(value)
        )));
    }
    if value.parse::<IpAddr>().is_ok() {
        return Err(bad_value(format!(
            "{value:?} is an IP address: its identifier type is \"ip\" (RFC 8738)"
        )));
    }
    let (wildcard, base) = match value.strip_prefix("*.") {
        Some(base) => (true, base),
        None => (false, value),
    };
    if base.contains('*') {
        return Err(bad_value(format!(
            "dns identifier {:?}: a wildcard is only a leading \"*.\"",
            truncated(value)
        )));
    }
    // The SAN parser's rules for a DNS name (ASCII, LDH labels of 1-63, no numeric TLD),
    // which also lowercases. Its trailing-dot leniency does not apply: refused above.
    let name = crate::names::parse_dns_name(base)
        .map_err(|error| bad_value(format!("dns identifier: {}", error.0)))?;
    Ok(if wildcard { format!("*.{name}") } else { name })
}

fn parse_ip_value(value: &str) -> Result<IpAddr, IdentifierError> {
    // Longest canonical text: an IPv6 address with an embedded IPv4 is at most 45 characters.
    if value.len() > 45 {
        return Err(bad_value("an ip identifier is longer than any address"));
    }
    let ip: IpAddr = value
        .parse()
        .map_err(|_| bad_value(format!("{value:?} is not an IP address")))?;
    if ip.to_string() != value {
        return Err(bad_value(format!(
            "ip identifier {value:?} is not in canonical form (RFC 8738 3); send {ip}"
        )));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn every_problem_type_has_its_registered_urn_and_reads_back() {
        assert_eq!(
            ProblemType::BadCsr.urn(),
            "urn:ietf:params:acme:error:badCSR"
        );
        assert_eq!(
            ProblemType::BadSignatureAlgorithm.to_string(),
            "urn:ietf:params:acme:error:badSignatureAlgorithm"
        );
        let mut names = std::collections::HashSet::new();
        for problem in ProblemType::ALL {
            assert!(names.insert(problem.name()), "{problem:?} repeats a name");
            assert_eq!(ProblemType::from_urn(&problem.urn()), Some(problem));
        }
        assert_eq!(
            ProblemType::from_urn("urn:ietf:params:acme:error:badcsr"),
            None
        );
        assert_eq!(ProblemType::from_urn("badNonce"), None);
        assert_eq!(
            ProblemType::from_urn("urn:ietf:params:acme:error:alreadyReplaced"),
            Some(ProblemType::AlreadyReplaced)
        );
    }

    fn json(text: &str) -> Result<Identifier, IdentifierError> {
        Identifier::from_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn dns_identifiers_are_lowercased_and_wildcards_flagged() {
        let plain = json(r#"{"type":"dns","value":"WWW.Example.NET"}"#).unwrap();
        assert_eq!(plain, Identifier::Dns("www.example.net".into()));
        assert!(!plain.is_wildcard());
        assert_eq!(plain.authorization_identifier(), plain);

        let wildcard = json(r#"{"type":"dns","value":"*.Example.net"}"#).unwrap();
        assert_eq!(wildcard, Identifier::Dns("*.example.net".into()));
        assert!(wildcard.is_wildcard());
        assert_eq!(
            wildcard.authorization_identifier(),
            Identifier::Dns("example.net".into())
        );
        assert_eq!(
            Identifier::parse("dns", "xn--bcher-kva.example").unwrap(),
            Identifier::Dns("xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn bad_dns_values_are_refused() {
        let long = format!("{}.example", "a.".repeat(130));
        for value in [
            "",
            "example.net.",
            "a..example",
            "-a.example",
            "a-.example",
            "a_b.example",
            "bücher.example",
            "*",
            "*.",
            "**.example",
            "a.*.example",
            "*a.example",
            "*.*.example",
            "192.0.2.1",
            "2001:db8::1",
            "300.1.2.3",
            long.as_str(),
            &format!("{}.net", "a".repeat(64)),
        ] {
            let error = Identifier::parse("dns", value).unwrap_err();
            assert!(
                matches!(error, IdentifierError::BadValue(_)),
                "{value:?}: {error:?}"
            );
            assert_eq!(error.problem_type(), ProblemType::Malformed);
        }
    }

    #[test]
    fn ip_identifiers_must_be_canonical() {
        assert_eq!(
            Identifier::parse("ip", "192.0.2.1").unwrap(),
            Identifier::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        let v6 = Identifier::parse("ip", "2001:db8::1").unwrap();
        assert_eq!(
            v6,
            Identifier::Ip(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
        );
        assert_eq!(v6.value(), "2001:db8::1");
        assert!(!v6.is_wildcard());
        for value in [
            "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1",
            "2001:0db8::1",
            "192.000.2.1",
            "192.0.2.01",
            "::ffff:c000:201",
            "fe80::1%eth0",
            "[2001:db8::1]",
            " 192.0.2.1",
            "192.0.2",
            "example.net",
            "",
        ] {
            let error = Identifier::parse("ip", value).unwrap_err();
            assert!(
                matches!(error, IdentifierError::BadValue(_)),
                "{value:?}: {error:?}"
            );
        }
    }

    #[test]
    fn unknown_types_and_shapes_are_refused_with_their_problem() {
        let error = json(r#"{"type":"email","value":"a@example.net"}"#).unwrap_err();
        assert_eq!(error, IdentifierError::UnsupportedType("email".into()));
        assert_eq!(error.problem_type(), ProblemType::UnsupportedIdentifier);
        assert_eq!(
            Identifier::parse("DNS", "example.net").unwrap_err(),
            IdentifierError::UnsupportedType("DNS".into())
        );
        for text in [
            r#"{"type":"dns","value":"example.net","extra":1}"#,
            r#"{"type":"dns"}"#,
            r#"{"value":"example.net"}"#,
            r#"{"type":"dns","value":7}"#,
            r#"["dns","example.net"]"#,
            r#""example.net""#,
        ] {
            assert_eq!(
                json(text).unwrap_err(),
                IdentifierError::NotAnObject,
                "{text}"
            );
        }
    }

    #[test]
    fn serde_round_trips_through_the_strict_parser() {
        let identifiers: Vec<Identifier> = serde_json::from_str(
            r#"[{"type":"dns","value":"*.Example.net"},{"type":"ip","value":"2001:db8::17"}]"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&identifiers).unwrap(),
            r#"[{"type":"dns","value":"*.example.net"},{"type":"ip","value":"2001:db8::17"}]"#
        );
        assert!(
            serde_json::from_str::<Identifier>(r#"{"type":"ip","value":"2001:DB8::17"}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Identifier>(
                r#"{"type":"dns","value":"a.example","value":"b.example"}"#
            )
            .is_err()
        );
        assert_eq!(
            Identifier::Ip("192.0.2.1".parse().unwrap()).to_string(),
            "ip:192.0.2.1"
        );
    }
}
