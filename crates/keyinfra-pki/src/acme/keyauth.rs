//! What a challenge proves and how to check it, without the network: key authorizations
//! (RFC 8555 8.1), the http-01 body (8.3), the dns-01 TXT value (8.4), the tls-alpn-01
//! certificate (RFC 8737 3, RFC 8738 6 for IP addresses), and the renewal information
//! certificate identifier (RFC 9773 4.1).
//!
//! The validator fetches the body, the TXT records or the certificate; the comparisons here
//! are constant time where they involve the expected value, so timing says nothing about
//! how much of a guess was right.

use std::net::IpAddr;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, Oid};
use x509_parser::prelude::FromDer;

use super::jws::Jwk;
use super::wire::{Identifier, ProblemType};
use crate::SerialNumber;

/// Random bytes in a challenge token: 256 bits, over RFC 8555 8.1's 128.
pub const TOKEN_BYTES: usize = 32;
/// Length of a token's text: base64url of [`TOKEN_BYTES`] without padding.
pub const TOKEN_LEN: usize = 43;

/// The ALPN protocol of tls-alpn-01 (RFC 8737 6.2).
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// Largest http-01 body worth reading: a key authorization is 87 characters; the validator
/// stops reading past this.
pub const MAX_HTTP01_BODY_BYTES: usize = 1024;

/// The text of a challenge token made of [`TOKEN_BYTES`] random bytes from the caller's RNG.
pub fn token_text(random: &[u8; TOKEN_BYTES]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// True if `token` has the shape of a token we hand out: [`TOKEN_LEN`] characters of
/// base64url, no padding, decoding to [`TOKEN_BYTES`]. A token goes into a URL path and a
/// DNS-safe string, so anything else in one (from a URL or the database) is refused early.
pub fn is_token(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES)
}

/// The key authorization of a challenge: `token "." thumbprint(account key)` (RFC 8555 8.1).
pub fn key_authorization(token: &str, account_key: &Jwk) -> String {
    format!("{token}.{}", account_key.thumbprint())
}

/// The path an http-01 validator fetches: `/.well-known/acme-challenge/{token}`.
pub fn http01_path(token: &str) -> String {
    format!("/.well-known/acme-challenge/{token}")
}

/// True if an http-01 response body is the key authorization. Trailing whitespace is
/// ignored (RFC 8555 8.3 says a server SHOULD, and `echo` adds a newline); leading is not.
pub fn http01_body_matches(body: &[u8], key_authorization: &str) -> bool {
    let body = body.trim_ascii_end();
    body.len() == key_authorization.len() && bool::from(body.ct_eq(key_authorization.as_bytes()))
}

/// The dns-01 TXT record's value: base64url of SHA-256 of the key authorization (RFC 8555
/// 8.4), 43 characters.
pub fn dns01_txt_value(key_authorization: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(key_authorization.as_bytes()))
}

/// The name whose TXT records dns-01 reads: `_acme-challenge.` and the domain, without a
/// wildcard's `*.` (RFC 8555 8.4). None for an IP identifier, which dns-01 cannot prove
/// (RFC 8738 7).
pub fn dns01_record_name(identifier: &Identifier) -> Option<String> {
    match identifier.authorization_identifier() {
        Identifier::Dns(name) => Some(format!("_acme-challenge.{name}")),
        Identifier::Ip(_) => None,
    }
}

/// True if one TXT record (its character-strings joined) is the expected value for the key
/// authorization. Surrounding whitespace is not trimmed: DNS servers deliver the record as
/// it was set.
pub fn dns01_record_matches(record: &[u8], key_authorization: &str) -> bool {
    let expected = dns01_txt_value(key_authorization);
    record.len() == expected.len() && bool::from(record.ct_eq(expected.as_bytes()))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// The reverse DNS name of an address, without a trailing dot: `4.3.2.1.in-addr.arpa`, or
/// the 32 nibbles of an IPv6 address, lowest first, then `ip6.arpa` (RFC 1035 3.5,
/// RFC 3596 2.5). tls-alpn-01 for an IP identifier sends this as SNI (RFC 8738 6).
pub fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push(char::from(HEX[usize::from(byte & 0x0f)]));
                name.push('.');
                name.push(char::from(HEX[usize::from(byte >> 4)]));
                name.push('.');
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The SNI a tls-alpn-01 validator sends: the name itself, or an address's reverse name.
pub fn tls_alpn01_server_name(identifier: &Identifier) -> String {
    match identifier.authorization_identifier() {
        Identifier::Dns(name) => name,
        Identifier::Ip(ip) => reverse_dns_name(ip),
    }
}

/// Why a tls-alpn-01 certificate does not prove the identifier. The texts name what is
/// wrong, never the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsAlpnError {
    #[error("tls-alpn-01 cannot prove a wildcard name (RFC 8737 3)")]
    Wildcard,
    #[error("the certificate presented is not a valid X.509 certificate")]
    NotACertificate,
    #[error("the certificate must have exactly one subjectAltName, the identifier")]
    NotOneSubjectAltName,
    #[error("the certificate's subjectAltName is not the identifier being validated")]
    WrongSubjectAltName,
    #[error("the certificate has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)")]
    NoAcmeIdentifier,
    #[error("the acmeIdentifier extension must be critical")]
    AcmeIdentifierNotCritical,
    #[error("the acmeIdentifier extension must be an OCTET STRING of 32 bytes")]
    AcmeIdentifierMalformed,
    #[error("the acmeIdentifier extension does not hold this challenge's key authorization")]
    WrongKeyAuthorization,
}

impl TlsAlpnError {
    /// `tls` for a certificate that does not parse, `incorrectResponse` for one that parses
    /// but proves something else, `rejectedIdentifier` for a wildcard.
    pub fn problem_type(self) -> ProblemType {
        match self {
            TlsAlpnError::Wildcard => ProblemType::RejectedIdentifier,
            TlsAlpnError::NotACertificate => ProblemType::Tls,
            _ => ProblemType::IncorrectResponse,
        }
    }
}

/// id-pe-acmeIdentifier (RFC 8737 6.1).
const ACME_IDENTIFIER_OID: Oid<'static> = x509_parser::der_parser::oid!(1.3.6.1.5.5.7.1.31);

/// Checks the certificate a tls-alpn-01 responder presented (DER, the first of the chain)
/// for `identifier` (the authorization's: no wildcard) and `key_authorization`:
///
/// * exactly one subjectAltName entry, a dNSName equal to the name (ASCII case-insensitive,
///   as DNS is) or an iPAddress equal to the address;
/// * exactly one id-pe-acmeIdentifier extension, critical, whose value is the DER OCTET
///   STRING of the 32-byte SHA-256 of the key authorization, compared in constant time.
///
/// The certificate's signature, issuer and dates do not matter (RFC 8737 3: it is
/// self-signed as often as not). ALPN agreement is the caller's to check.
pub fn check_tls_alpn01_certificate(
    der: &[u8],
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<(), TlsAlpnError> {
    if identifier.is_wildcard() {
        return Err(TlsAlpnError::Wildcard);
    }
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|_| TlsAlpnError::NotACertificate)?;
    if !rest.is_empty() {
        return Err(TlsAlpnError::NotACertificate);
    }

    let san = certificate
        .subject_alternative_name()
        .map_err(|_| TlsAlpnError::NotOneSubjectAltName)?
        .ok_or(TlsAlpnError::NotOneSubjectAltName)?;
    let [name] = san.value.general_names.as_slice() else {
        return Err(TlsAlpnError::NotOneSubjectAltName);
    };
    let matches = match (name, identifier) {
        (GeneralName::DNSName(presented), Identifier::Dns(expected)) => {
            presented.eq_ignore_ascii_case(expected)
        }
        (GeneralName::IPAddress(presented), Identifier::Ip(IpAddr::V4(expected))) => {
            *presented == expected.octets()
        }
        (GeneralName::IPAddress(presented), Identifier::Ip(IpAddr::V6(expected))) => {
            *presented == expected.octets()
        }
        _ => false,
    };
    if !matches {
        return Err(TlsAlpnError::WrongSubjectAltName);
    }

    let extension = certificate
        .get_extension_unique(&ACME_IDENTIFIER_OID)
        .map_err(|_| TlsAlpnError::AcmeIdentifierMalformed)?
        .ok_or(TlsAlpnError::NoAcmeIdentifier)?;
    if !extension.critical {
        return Err(TlsAlpnError::AcmeIdentifierNotCritical);
    }
    // The extnValue holds `04 20` and the digest: DER allows no other encoding of it.
    let digest = match extension.value {
        [0x04, 0x20, digest @ ..] if digest.len() == 32 => digest,
        _ => return Err(TlsAlpnError::AcmeIdentifierMalformed),
    };
    if bool::from(digest.ct_eq(&sha256(key_authorization.as_bytes()))) {
        Ok(())
    } else {
        Err(TlsAlpnError::WrongKeyAuthorization)
    }
}

/// Longest certID text accepted: a 64-byte key identifier and a 21-byte serial, base64url'd,
/// with the dot, fit in 116.
pub const MAX_CERT_ID_LEN: usize = 128;
/// Longest authority key identifier taken (RFC 5280 4.2.1.2's methods give 20 or 8 bytes;
/// SHA-512 would be 64).
pub const MAX_KEY_IDENTIFIER_BYTES: usize = 64;

/// Why a certID (RFC 9773 4.1) was refused: the server answers `malformed` (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertIdError {
    #[error("the certificate ID is longer than {MAX_CERT_ID_LEN} characters")]
    TooLong,
    #[error("the certificate ID must be two base64url parts without padding, joined by a dot")]
    NotTwoParts,
    #[error("the certificate ID's key identifier must have 1 to {MAX_KEY_IDENTIFIER_BYTES} bytes")]
    BadKeyIdentifier,
    #[error("the certificate ID's serial is not a positive DER INTEGER of at most 20 octets")]
    BadSerial,
    #[error("the certificate does not parse")]
    NotACertificate,
    #[error("the certificate has no authority key identifier with a keyIdentifier")]
    NoAuthorityKeyIdentifier,
}

/// A certificate's renewal information identifier (RFC 9773 4.1): its issuer's key
/// identifier, as the certificate's authority key identifier gives it, and its serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    pub key_identifier: Vec<u8>,
    pub serial: SerialNumber,
}

impl CertId {
    /// The certID of a certificate (DER): the keyIdentifier of its authority key identifier
    /// and its serial.
    pub fn from_certificate(der: &[u8]) -> Result<Self, CertIdError> {
        let (_, certificate) =
            X509Certificate::from_der(der).map_err(|_| CertIdError::NotACertificate)?;
        let key_identifier = certificate
            .get_extension_unique(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
            .ok()
            .flatten()
            .and_then(|extension| match extension.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
                _ => None,
            })
            .ok_or(CertIdError::NoAuthorityKeyIdentifier)?;
        let key_identifier = key_identifier.0.to_vec();
        if key_identifier.is_empty() || key_identifier.len() > MAX_KEY_IDENTIFIER_BYTES {
            return Err(CertIdError::BadKeyIdentifier);
        }
        let serial = serial_from_der_content(certificate.raw_serial())?;
        Ok(CertId {
            key_identifier,
            serial,
        })
    }

    /// Reads a certID from a renewalInfo URL path segment or a newOrder `replaces`: two
    /// non-empty parts of canonical base64url without padding joined by one dot, the second
    /// the DER content of a positive serial in minimal form (so each certificate has exactly
    /// one certID).
    pub fn parse(text: &str) -> Result<Self, CertIdError> {
        if text.len() > MAX_CERT_ID_LEN {
            return Err(CertIdError::TooLong);
        }
        let (key_identifier, serial) = text.split_once('.').ok_or(CertIdError::NotTwoParts)?;
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .filter(|bytes| !bytes.is_empty())
                .ok_or(CertIdError::NotTwoParts)
        };
        let key_identifier = decode(key_identifier)?;
        let serial = decode(serial)?;
        if key_identifier.len() > MAX_KEY_IDENTIFIER_BYTES {
            return Err(CertIdError::BadKeyIdentifier);
        }
        Ok(CertId {
            key_identifier,
            serial: serial_from_der_content(&serial)?,
        })
    }
}

/// The serial from the content octets of its DER INTEGER: minimal, positive, and what
/// [`SerialNumber`] takes (not zero, at most 20 octets).
fn serial_from_der_content(content: &[u8]) -> Result<SerialNumber, CertIdError> {
    let minimal = match content {
        [] => false,
        [0x00, next, ..] => *next >= 0x80,
        [first, ..] => *first < 0x80,
    };
    if !minimal {
        return Err(CertIdError::BadSerial);
    }
    SerialNumber::from_bytes(content).map_err(|_| CertIdError::BadSerial)
}

impl std::fmt::Display for CertId {
    /// `base64url(keyIdentifier) "." base64url(serial INTEGER content)`, unpadded.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let magnitude = self.serial.as_bytes();
        let mut content = Vec::with_capacity(magnitude.len() + 1);
        if magnitude.first().is_some_and(|first| first & 0x80 != 0) {
            content.push(0x00);
        }
        content.extend_from_slice(magnitude);
        write!(
            f,
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.key_identifier),
            URL_SAFE_NO_PAD.encode(content)
        )
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use rcgen::{CertificateParams, CustomExtension, IsCa, Issuer, KeyIdMethod, KeyPair};
    use sha2::{Digest, Sha256};

    use super::*;

    /// The RFC 7638 3.1 key, whose thumbprint is known.
    fn rfc7638_key() -> Jwk {
        Jwk::from_json_bytes(br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}"#).unwrap()
    }

    const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";

    fn ka() -> String {
        key_authorization(TOKEN, &rfc7638_key())
    }

    #[test]
    fn tokens_are_43_characters_of_canonical_base64url() {
        let token = token_text(&[0xfb; TOKEN_BYTES]);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(is_token(&token) && is_token(TOKEN));
        assert!(!token.contains(['+', '/', '=']));
        let a42 = "A".repeat(42);
        for bad in [
            String::new(),
            a42.clone(),
            format!("{a42}AA"),
            format!("{a42}="),
            format!("{a42}+"),
            format!("{a42}/"),
            // 43 characters carry 258 bits: the last two must be zero.
            format!("{a42}B"),
            format!("{}.", &TOKEN[..42]),
        ] {
            assert!(!is_token(&bad), "{bad:?}");
        }
    }

    #[test]
    fn key_authorization_is_token_dot_thumbprint() {
        assert_eq!(
            ka(),
            format!("{TOKEN}.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(
            http01_path(TOKEN),
            format!("/.well-known/acme-challenge/{TOKEN}")
        );
    }

    #[test]
    fn http01_ignores_trailing_whitespace_only() {
        let ka = ka();
        for body in [
            ka.clone(),
            format!("{ka}\n"),
            format!("{ka}\r\n"),
            format!("{ka} \t\n\n"),
        ] {
            assert!(http01_body_matches(body.as_bytes(), &ka), "{body:?}");
        }
        for body in [
            format!(" {ka}"),
            format!("\n{ka}"),
            ka[..ka.len() - 1].to_owned(),
            format!("{ka}x"),
            format!("{ka}\nx"),
            ka.to_uppercase(),
            TOKEN.to_owned(),
            String::new(),
        ] {
            assert!(!http01_body_matches(body.as_bytes(), &ka), "{body:?}");
        }
    }

    #[test]
    fn dns01_value_is_base64url_of_the_sha256_of_the_key_authorization() {
        let ka = ka();
        // Independently: sha2's SHA-256, standard base64 turned url-safe by hand.
        let expected = STANDARD
            .encode(Sha256::digest(ka.as_bytes()))
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        let value = dns01_txt_value(&ka);
        assert_eq!(value, expected);
        assert_eq!(value.len(), 43);
        assert!(dns01_record_matches(value.as_bytes(), &ka));
        assert!(!dns01_record_matches(format!("{value} ").as_bytes(), &ka));
        assert!(!dns01_record_matches(
            dns01_txt_value(TOKEN).as_bytes(),
            &ka
        ));
        assert!(!dns01_record_matches(b"", &ka));
    }

    #[test]
    fn dns01_record_names_drop_the_wildcard_and_skip_addresses() {
        let name = |kind, value| dns01_record_name(&Identifier::parse(kind, value).unwrap());
        assert_eq!(
            name("dns", "www.example.net").as_deref(),
            Some("_acme-challenge.www.example.net")
        );
        assert_eq!(
            name("dns", "*.Example.net").as_deref(),
            Some("_acme-challenge.example.net")
        );
        assert_eq!(name("ip", "192.0.2.1"), None);
    }

    #[test]
    fn reverse_names_follow_rfc_1035_and_rfc_3596() {
        assert_eq!(
            reverse_dns_name("192.0.2.1".parse().unwrap()),
            "1.2.0.192.in-addr.arpa"
        );
        // RFC 3596 2.5's example, lowercased and without the root dot.
        assert_eq!(
            reverse_dns_name("4321:0:1:2:3:4:567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa"
        );
        let ip = Identifier::parse("ip", "2001:db8::1").unwrap();
        let sni = tls_alpn01_server_name(&ip);
        assert!(sni.starts_with("1.0.0.0.") && sni.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"));
        assert_eq!(sni.split('.').count(), 34);
        let dns = Identifier::parse("dns", "www.example.net").unwrap();
        assert_eq!(tls_alpn01_server_name(&dns), "www.example.net");
    }

    /// A tls-alpn-01 certificate as a responder makes one: self-signed, with `sans` and
    /// the acmeIdentifier extension (rcgen's, critical, unless replaced).
    fn alpn_certificate(sans: &[&str], extensions: Vec<CustomExtension>) -> Vec<u8> {
        let mut params =
            CertificateParams::new(sans.iter().map(|san| san.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.custom_extensions = extensions;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn acme_extension(key_authorization: &str) -> CustomExtension {
        CustomExtension::new_acme_identifier(&sha256(key_authorization.as_bytes()))
    }

    fn identifier(kind: &str, value: &str) -> Identifier {
        Identifier::parse(kind, value).unwrap()
    }

    #[test]
    fn a_responder_certificate_for_the_name_or_address_passes() {
        let ka = ka();
        for (kind, value, san) in [
            ("dns", "www.example.net", "www.example.net"),
            ("dns", "www.example.net", "WWW.Example.NET"),
            ("ip", "192.0.2.1", "192.0.2.1"),
            ("ip", "2001:db8::1", "2001:db8::1"),
        ] {
            let der = alpn_certificate(&[san], vec![acme_extension(&ka)]);
            check_tls_alpn01_certificate(&der, &identifier(kind, value), &ka).unwrap();
        }
    }

    #[test]
    fn the_san_must_be_exactly_the_identifier() {
        let ka = ka();
        let www = identifier("dns", "www.example.net");
        let cases = [
            (
                vec!["www.example.net", "other.example.net"],
                TlsAlpnError::NotOneSubjectAltName,
            ),
            (vec![], TlsAlpnError::NotOneSubjectAltName),
            (vec!["other.example.net"], TlsAlpnError::WrongSubjectAltName),
            (
                vec!["www.example.net.evil"],
                TlsAlpnError::WrongSubjectAltName,
            ),
            (vec!["192.0.2.1"], TlsAlpnError::WrongSubjectAltName),
        ];
        for (sans, expected) in cases {
            let der = alpn_certificate(&sans, vec![acme_extension(&ka)]);
            let error = check_tls_alpn01_certificate(&der, &www, &ka).unwrap_err();
            assert_eq!(error, expected, "{sans:?}");
            assert_eq!(error.problem_type(), ProblemType::IncorrectResponse);
        }
        let der = alpn_certificate(&["192.0.2.1"], vec![acme_extension(&ka)]);
        for other in [
            identifier("ip", "192.0.2.2"),
            identifier("dns", "example.net"),
        ] {
            assert_eq!(
                check_tls_alpn01_certificate(&der, &other, &ka),
                Err(TlsAlpnError::WrongSubjectAltName)
            );
        }
        let v6 = alpn_certificate(&["::ffff:192.0.2.1"], vec![acme_extension(&ka)]);
        assert_eq!(
            check_tls_alpn01_certificate(&v6, &identifier("ip", "192.0.2.1"), &ka),
            Err(TlsAlpnError::WrongSubjectAltName)
        );
    }

    #[test]
    fn the_acme_identifier_must_be_critical_well_formed_and_right() {
        let ka = ka();
        let www = identifier("dns", "www.example.net");
        let check = |extensions| {
            check_tls_alpn01_certificate(
                &alpn_certificate(&["www.example.net"], extensions),
                &www,
                &ka,
            )
        };
        assert_eq!(check(vec![]), Err(TlsAlpnError::NoAcmeIdentifier));
        let other_ka = format!("{TOKEN}.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xt");
        assert_eq!(
            check(vec![acme_extension(&other_ka)]),
            Err(TlsAlpnError::WrongKeyAuthorization)
        );
        let mut not_critical = acme_extension(&ka);
        not_critical.set_criticality(false);
        assert_eq!(
            check(vec![not_critical]),
            Err(TlsAlpnError::AcmeIdentifierNotCritical)
        );

        let oid = [1, 3, 6, 1, 5, 5, 7, 1, 31];
        let digest = sha256(ka.as_bytes());
        let raw = |content: Vec<u8>| {
            let mut extension = CustomExtension::from_oid_content(&oid, content);
            extension.set_criticality(true);
            extension
        };
        for content in [
            digest.to_vec(),
            [&[0x04, 0x1f][..], &digest[..31]].concat(),
            [&[0x04, 0x21][..], &digest, &[0]].concat(),
            [&[0x04, 0x81, 0x20][..], &digest].concat(),
            [&[0x0c, 0x20][..], &digest].concat(),
            [&[0x04, 0x20][..], &digest, &[0x05, 0x00]].concat(),
        ] {
            assert_eq!(
                check(vec![raw(content)]),
                Err(TlsAlpnError::AcmeIdentifierMalformed)
            );
        }
        // The same, right, content written by hand passes: the checks above are about form.
        assert_eq!(
            check(vec![raw([&[0x04, 0x20][..], &digest].concat())]),
            Ok(())
        );
        assert!(check(vec![acme_extension(&ka), acme_extension(&ka)]).is_err());
    }

    #[test]
    fn wildcards_and_non_certificates_are_refused() {
        let ka = ka();
        let der = alpn_certificate(&["*.example.net"], vec![acme_extension(&ka)]);
        let error = check_tls_alpn01_certificate(&der, &identifier("dns", "*.example.net"), &ka)
            .unwrap_err();
        assert_eq!(error, TlsAlpnError::Wildcard);
        let www = identifier("dns", "www.example.net");
        let good = alpn_certificate(&["www.example.net"], vec![acme_extension(&ka)]);
        let mut trailing = good.clone();
        trailing.push(0);
        for der in [
            &b""[..],
            b"\x30\x03\x02\x01\x01",
            &good[..good.len() - 1],
            &trailing,
        ] {
            let error = check_tls_alpn01_certificate(der, &www, &ka).unwrap_err();
            assert_eq!(error, TlsAlpnError::NotACertificate);
            assert_eq!(error.problem_type(), ProblemType::Tls);
        }
    }

    /// A leaf issued by a CA whose key identifier is `ca_key_id`, with `serial`.
    fn issued(ca_key_id: Option<&[u8]>, serial: &[u8]) -> Vec<u8> {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        if let Some(id) = ca_key_id {
            ca.key_identifier_method = KeyIdMethod::PreSpecified(id.to_vec());
        }
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec!["www.example.net".to_string()]).unwrap();
        leaf.use_authority_key_identifier_extension = ca_key_id.is_some();
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        let key = KeyPair::generate().unwrap();
        leaf.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    #[test]
    fn rfc_9773_example_cert_id() {
        // RFC 9773 4.1: keyIdentifier 69:88:5B:..., serial 0x87654321 (DER 00 87 65 43 21).
        let key_id = hex::decode("69885B6B87464041E1B37B847BA0AE2CDE01C8D4").unwrap();
        let der = issued(Some(&key_id), &[0x87, 0x65, 0x43, 0x21]);
        let id = CertId::from_certificate(&der).unwrap();
        assert_eq!(id.key_identifier, key_id);
        assert_eq!(id.serial.to_hex(), "87654321");
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert_eq!(
            CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap(),
            id
        );

        let low = CertId::from_certificate(&issued(Some(&key_id), &[0x12, 0x34])).unwrap();
        assert_eq!(low.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.EjQ");
        assert_eq!(CertId::parse(&low.to_string()).unwrap(), low);
    }

    #[test]
    fn a_certificate_without_a_key_identifier_has_no_cert_id() {
        assert_eq!(
            CertId::from_certificate(&issued(None, &[1])),
            Err(CertIdError::NoAuthorityKeyIdentifier)
        );
        assert_eq!(
            CertId::from_certificate(b"\x30\x00"),
            Err(CertIdError::NotACertificate)
        );
    }

    #[test]
    fn cert_ids_are_read_strictly() {
        let key_id = "aYhba4dGQEHhs3uEe6CuLN4ByNQ";
        let cases = [
            (format!("{key_id}.AIdlQyE="), CertIdError::NotTwoParts),
            (format!("{key_id}=.AIdlQyE"), CertIdError::NotTwoParts),
            (key_id.to_string(), CertIdError::NotTwoParts),
            (format!("{key_id}."), CertIdError::NotTwoParts),
            (".AIdlQyE".to_string(), CertIdError::NotTwoParts),
            (format!("{key_id}.AIdl.QyE"), CertIdError::NotTwoParts),
            (format!("{key_id}.AIdl+yE"), CertIdError::NotTwoParts),
            (format!("{key_id}.AIdlQyF"), CertIdError::NotTwoParts),
            // 0x87 with no sign byte: a negative INTEGER.
            (format!("{key_id}.h2VDIQ"), CertIdError::BadSerial),
            // 00 12 34: a sign byte that is not needed.
            (format!("{key_id}.ABI0"), CertIdError::BadSerial),
            // Zero, then 21 octets of magnitude.
            (format!("{key_id}.AA"), CertIdError::BadSerial),
            (
                format!("{key_id}.{}", URL_SAFE_NO_PAD.encode([0x11; 21])),
                CertIdError::BadSerial,
            ),
            (
                format!("{}.AIdlQyE", URL_SAFE_NO_PAD.encode([7; 65])),
                CertIdError::BadKeyIdentifier,
            ),
            (
                format!("{}.AIdlQyE", "A".repeat(MAX_CERT_ID_LEN)),
                CertIdError::TooLong,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(CertId::parse(&text), Err(expected), "{text}");
        }
        // The longest a certificate of ours can have, 20 octets with a sign byte, reads.
        let longest = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode([7; MAX_KEY_IDENTIFIER_BYTES]),
            URL_SAFE_NO_PAD.encode([&[0][..], &[0x80; 19]].concat())
        );
        assert!(longest.len() <= MAX_CERT_ID_LEN);
        assert_eq!(CertId::parse(&longest).unwrap().to_string(), longest);
    }
}
