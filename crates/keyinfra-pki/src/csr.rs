//! PKCS#10 certificate signing requests from devices.
//!
//! The signature is verified (proof that the requester holds the key). The subject, the
//! SANs (DNS names, IP addresses, e-mail addresses and URIs, checked like a request's own)
//! and the public key are taken; every other requested extension is ignored,
//! because the profile decides what a certificate says.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

use crate::names::{DistinguishedName, DnAttribute, NameError, SubjectAltName};
use crate::{KeyAlgorithm, PkiError, keys};

/// Largest CSR accepted, PEM or DER.
pub const MAX_CSR_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCsr {
    /// `None` when the CSR's subject is empty or uses attributes KeyInfra does not issue.
    pub subject: Result<DistinguishedName, NameError>,
    pub sans: Result<Vec<SubjectAltName>, NameError>,
    pub public_key_der: Vec<u8>,
    pub key_algorithm: KeyAlgorithm,
    /// OIDs of requested extensions other than SAN (informational: they are not copied).
    pub ignored_extensions: Vec<String>,
    /// The PKCS#9 challengePassword attribute (SCEP's proof of authorization), if any.
    /// A secret: never logged, wiped on drop.
    pub challenge_password: Option<Zeroizing<String>>,
}

/// Parses a PEM (`CERTIFICATE REQUEST`) or DER CSR and verifies its signature.
pub fn parse_csr(input: &[u8]) -> Result<ParsedCsr, PkiError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(PkiError::InvalidCsr(format!(
            "the CSR is larger than {MAX_CSR_BYTES} bytes"
        )));
    }
    let der = if input.trim_ascii_start().starts_with(b"-----") {
        let block = pem::parse(input)
            .map_err(|_| PkiError::InvalidCsr("the CSR is not valid PEM".into()))?;
        if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
            return Err(PkiError::InvalidCsr(format!(
                "expected a PEM CERTIFICATE REQUEST block, found {:?}",
                block.tag()
            )));
        }
        block.into_contents()
    } else {
        input.to_vec()
    };
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|_| PkiError::InvalidCsr("the CSR is not a valid PKCS#10 structure".into()))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCsr("the CSR has trailing bytes".into()));
    }
    csr.verify_signature()
        .map_err(|_| PkiError::CsrSignatureInvalid)?;
    let info = &csr.certification_request_info;
    let public_key_der = info.subject_pki.raw.to_vec();
    let key_algorithm = keys::algorithm_of_spki(&public_key_der)?;

    let subject = subject_of(&info.subject);
    let mut sans = Ok(Vec::new());
    let mut san_extensions = 0;
    let mut ignored = Vec::new();
    if let Some(extensions) = csr.requested_extensions() {
        for ext in extensions {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    san_extensions += 1;
                    sans = if san_extensions > 1 {
                        Err(NameError(
                            "the CSR requests the subjectAltName extension more than once".into(),
                        ))
                    } else {
                        sans_of(&san.general_names)
                    };
                }
                ParsedExtension::UnsupportedExtension { oid } => ignored.push(oid.to_id_string()),
                other => ignored.push(format!("{other:?}").chars().take(40).collect()),
            }
        }
    }
    let challenge_password = csr
        .certification_request_info
        .iter_attributes()
        .find_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ChallengePassword(p) => Some(Zeroizing::new(p.0.clone())),
            _ => None,
        });
    Ok(ParsedCsr {
        subject,
        sans,
        public_key_der,
        key_algorithm,
        ignored_extensions: ignored,
        challenge_password,
    })
}

/// The same rules as a request's `san` list: at most [`crate::names::MAX_SANS`], none twice.
fn sans_of(names: &[GeneralName<'_>]) -> Result<Vec<SubjectAltName>, NameError> {
    crate::names::check_san_count(names.len())
        .map_err(|e| NameError(format!("the CSR requests {e}")))?;
    let sans = names
        .iter()
        .map(general_name)
        .collect::<Result<Vec<_>, _>>()?;
    crate::names::refuse_repeated_sans(&sans)
        .map_err(|e| NameError(format!("in the CSR's subject alternative names, {e}")))?;
    Ok(sans)
}

/// The same rules as a request's `subject`: single-valued RDNs only, one CN, and the
/// values' checks of [`DistinguishedName::from_attributes`].
fn subject_of(name: &x509_parser::x509::X509Name<'_>) -> Result<DistinguishedName, NameError> {
    let mut attributes = Vec::new();
    for rdn in name.iter_rdn() {
        if rdn.iter().nth(1).is_some() {
            return Err(NameError(
                "the CSR's subject has a multi-valued RDN ('+'), which KeyInfra does not issue; give `subject` in the request".into(),
            ));
        }
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let Some(attribute) = DnAttribute::from_oid(&oid) else {
                return Err(NameError(format!(
                    "the CSR's subject uses attribute {oid}, which KeyInfra does not issue; give `subject` in the request"
                )));
            };
            let value = atv.as_str().map_err(|_| {
                NameError("the CSR's subject has a value that is not a string".into())
            })?;
            attributes.push((attribute, value.to_owned()));
        }
    }
    DistinguishedName::from_attributes(attributes)
}

fn general_name(name: &GeneralName<'_>) -> Result<SubjectAltName, NameError> {
    match name {
        GeneralName::DNSName(dns) => SubjectAltName::parse(&format!("DNS:{dns}")),
        GeneralName::RFC822Name(address) => SubjectAltName::parse(&format!("EMAIL:{address}")),
        GeneralName::URI(uri) => SubjectAltName::parse(&format!("URI:{uri}")),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => {
                    let b: [u8; 4] = (*bytes).try_into().map_err(|_| bad_ip())?;
                    std::net::IpAddr::from(b)
                }
                16 => {
                    let b: [u8; 16] = (*bytes).try_into().map_err(|_| bad_ip())?;
                    std::net::IpAddr::from(b)
                }
                _ => return Err(bad_ip()),
            };
            Ok(SubjectAltName::Ip(ip))
        }
        other => Err(NameError(format!(
            "the CSR requests a SAN of a kind KeyInfra does not issue ({}); only DNS names, IP addresses, e-mail addresses and URIs: give `san` in the request",
            kind(other)
        ))),
    }
}

fn bad_ip() -> NameError {
    NameError("the CSR has a malformed IP address SAN".into())
}

fn kind(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::DirectoryName(_) => "directory name",
        GeneralName::OtherName(..) => "other name",
        GeneralName::RegisteredID(_) => "registered ID",
        GeneralName::X400Address(_) => "X.400 address",
        GeneralName::EDIPartyName(_) => "EDI party name",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_csr() -> Vec<u8> {
        let key = crate::PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["dev.example.net".to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::parse("CN=dev,O=Example")
            .unwrap()
            .to_rcgen();
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_valid_csr_parses_with_its_names_and_key() {
        let csr = parse_csr(&sample_csr()).unwrap();
        assert_eq!(csr.subject.unwrap().to_string(), "CN=dev,O=Example");
        assert_eq!(
            csr.sans.unwrap(),
            vec![SubjectAltName::Dns("dev.example.net".into())]
        );
        assert_eq!(csr.key_algorithm, KeyAlgorithm::EcdsaP256);
    }

    fn csr_with(sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = crate::PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = DistinguishedName::parse("CN=dev").unwrap().to_rcgen();
        params.subject_alt_names = sans;
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    fn ia5(text: &str) -> rcgen::string::Ia5String {
        rcgen::string::Ia5String::try_from(text).unwrap()
    }

    #[test]
    fn e_mail_and_uri_sans_are_taken_like_a_requests_own() {
        let csr = parse_csr(&csr_with(vec![
            rcgen::SanType::DnsName(ia5("dev.example.net")),
            rcgen::SanType::Rfc822Name(ia5("NOC@Example.NET")),
            rcgen::SanType::URI(ia5("SPIFFE://Example.NET/ns/Prod")),
            rcgen::SanType::IpAddress("2001:db8::7".parse().unwrap()),
        ]))
        .unwrap();
        assert_eq!(
            csr.sans.unwrap(),
            vec![
                SubjectAltName::Dns("dev.example.net".into()),
                SubjectAltName::Email("NOC@example.net".into()),
                SubjectAltName::Uri("spiffe://example.net/ns/Prod".into()),
                SubjectAltName::Ip("2001:db8::7".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn other_san_kinds_and_bad_new_ones_are_still_refused() {
        let other_name = rcgen::SanType::OtherName((
            vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
            rcgen::OtherNameValue::Utf8String("upn@example.net".into()),
        ));
        for (sans, says) in [
            (vec![other_name], "other name"),
            (
                vec![rcgen::SanType::Rfc822Name(ia5("not-an-address"))],
                "local@domain",
            ),
            (
                vec![rcgen::SanType::URI(ia5("https://a@evil.example/"))],
                "user information",
            ),
            (
                vec![
                    rcgen::SanType::URI(ia5("https://A.example/x")),
                    rcgen::SanType::URI(ia5("https://a.example/x")),
                ],
                "more than once",
            ),
            (
                vec![
                    rcgen::SanType::Rfc822Name(ia5("a@x.example")),
                    rcgen::SanType::Rfc822Name(ia5("a@X.example")),
                ],
                "more than once",
            ),
        ] {
            let err = parse_csr(&csr_with(sans)).unwrap().sans.unwrap_err();
            assert!(err.0.contains(says), "{err}");
        }
    }

    /// The new kinds reach the signed certificate as rfc822Name and uniformResourceIdentifier.
    #[test]
    fn signed_certificates_carry_e_mail_and_uri_sans() {
        use crate::SerialNumber;
        use crate::ca::{CaSigner, CaSpec, LeafKey, LeafSpec};
        use time::{Duration, OffsetDateTime};
        use x509_parser::prelude::X509Certificate;

        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ca = CaSigner::create_root(
            crate::PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
            &CaSpec {
                subject: &DistinguishedName::parse("CN=Test Root").unwrap(),
                serial: &SerialNumber::from_hex("01").unwrap(),
                not_before: start,
                not_after: start + Duration::days(365),
                path_len: None,
                name_constraints: None,
            },
        )
        .unwrap();
        let csr = parse_csr(&csr_with(vec![
            rcgen::SanType::Rfc822Name(ia5("noc@example.net")),
            rcgen::SanType::URI(ia5("spiffe://example.net/ns/prod")),
        ]))
        .unwrap();
        let sans = csr.sans.unwrap();
        let profile = crate::profile::builtin_profiles(None).remove(0);
        let der = ca
            .sign_leaf(&LeafSpec {
                subject: &csr.subject.unwrap(),
                sans: &sans,
                profile: &profile,
                key_algorithm: csr.key_algorithm,
                public_key: LeafKey::Spki(&csr.public_key_der),
                serial: &SerialNumber::from_hex("0A").unwrap(),
                not_before: start,
                not_after: start + Duration::days(30),
                crl_url: "http://ca.example.net/crl",
                ca_issuers_url: "http://ca.example.net/ca",
                ocsp_url: Some("http://ca.example.net/ocsp"),
                delta_crl_url: None,
            })
            .unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let names = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            names.value.general_names,
            vec![
                GeneralName::RFC822Name("noc@example.net"),
                GeneralName::URI("spiffe://example.net/ns/prod"),
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any one changed byte is refused, or (where DER leaves room, e.g. in a length the
        /// parser reads the same way) yields exactly the original request. Never a panic,
        /// never a different key or name.
        #[test]
        fn a_changed_byte_never_yields_another_request(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let original = sample_csr();
            let parsed = parse_csr(&original).unwrap();
            let mut changed = original.clone();
            let i = at.index(changed.len());
            changed[i] ^= flip;
            if let Ok(other) = parse_csr(&changed) {
                prop_assert_eq!(other.public_key_der, parsed.public_key_der);
                prop_assert_eq!(other.subject, parsed.subject);
                prop_assert_eq!(other.sans, parsed.sans);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_csr(&bytes);
            let mut pem = b"-----BEGIN CERTIFICATE REQUEST-----\n".to_vec();
            pem.extend_from_slice(&bytes);
            let _ = parse_csr(&pem);
        }
    }
}
