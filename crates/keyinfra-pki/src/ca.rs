//! Certificate authorities: creating them, signing leaf certificates and CRLs.

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, SigningKey,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use crate::constraints::NameConstraints;
use crate::names::{DistinguishedName, SubjectAltName};
use crate::profile::{ExtendedKeyUsage, KeyUsage, Profile};
use crate::{KeyAlgorithm, PkiError, PrivateKey, RevocationReason, SerialNumber};

impl SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signing_pair()
            .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?
            .sign(msg)
    }
}

/// A CA that KeyInfra holds the key of: signs certificates and CRLs.
pub struct CaSigner {
    issuer: Issuer<'static, PrivateKey>,
    certificate_der: Vec<u8>,
    subject: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSigner")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A CA certificate's facts, read from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertificateInfo {
    pub subject: String,
    /// None for a serial that is not a positive integer of at most 20 octets (an old
    /// imported root may have serial 0); such a CA is still usable.
    pub serial: Option<SerialNumber>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub public_key_der: Vec<u8>,
    pub self_signed: bool,
    /// The DER of the subject and issuer names, to link a CA to the CA that signed it.
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// basicConstraints pathLenConstraint: how many CAs may stand below this one (None:
    /// no limit).
    pub path_len: Option<u32>,
    /// The nameConstraints extension, if the certificate has one.
    pub name_constraints: Option<NameConstraints>,
}

/// Reads and checks a CA certificate: it must be a CA (basicConstraints cA) that may sign
/// certificates and CRLs.
pub fn inspect_ca_certificate(der: &[u8]) -> Result<CaCertificateInfo, PkiError> {
    let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCertificate(
            "trailing bytes after the certificate".into(),
        ));
    }
    let basic = cert.basic_constraints().ok().flatten();
    let is_ca = basic.as_ref().is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(PkiError::InvalidCertificate(
            "the certificate is not a CA certificate (basicConstraints cA is not set)".into(),
        ));
    }
    if let Ok(Some(ku)) = cert.key_usage()
        && (!ku.value.key_cert_sign() || !ku.value.crl_sign())
    {
        return Err(PkiError::InvalidCertificate(
            "the CA certificate's keyUsage does not allow keyCertSign and cRLSign".into(),
        ));
    }
    let subject = subject_string(&cert.subject);
    let name_constraints = NameConstraints::from_x509(&cert)?;
    let raw_serial = cert.raw_serial();
    let negative = raw_serial.first().is_some_and(|b| b & 0x80 != 0);
    let serial = (!negative)
        .then(|| SerialNumber::from_bytes(raw_serial).ok())
        .flatten();
    Ok(CaCertificateInfo {
        serial,
        self_signed: cert.subject.as_raw() == cert.issuer.as_raw(),
        subject,
        not_before: cert.validity.not_before.to_datetime(),
        not_after: cert.validity.not_after.to_datetime(),
        public_key_der: cert.public_key().raw.to_vec(),
        subject_raw: cert.subject.as_raw().to_vec(),
        issuer_raw: cert.issuer.as_raw().to_vec(),
        path_len: basic.and_then(|bc| bc.value.path_len_constraint),
        name_constraints,
    })
}

/// Whether `issuer_der`'s key signed `certificate_der`: the certificate names the issuer's
/// subject as its issuer and its signature verifies under the issuer's public key. False
/// for anything that does not parse.
pub fn signed_by(certificate_der: &[u8], issuer_der: &[u8]) -> bool {
    let parse = x509_parser::certificate::X509Certificate::from_der;
    let (Ok((_, cert)), Ok((_, issuer))) = (parse(certificate_der), parse(issuer_der)) else {
        return false;
    };
    cert.issuer.as_raw() == issuer.subject.as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// The SubjectPublicKeyInfo DER of any certificate (renewal without re-keying reuses it).
pub fn public_key_of_certificate(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
    Ok(cert.public_key().raw.to_vec())
}

/// The serial number of any certificate (a TLS client certificate is found by it).
pub fn serial_of_certificate(der: &[u8]) -> Result<crate::SerialNumber, PkiError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
    crate::SerialNumber::from_bytes(cert.raw_serial())
}

/// The issuer Name DER of any certificate, as encoded in it (a SCEP GetCert names a
/// certificate by it).
pub fn issuer_of_certificate(der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| PkiError::InvalidCertificate("not a valid X.509 certificate".into()))?;
    Ok(cert.issuer().as_raw().to_vec())
}

/// RFC 4514 form when KeyInfra knows every attribute, else x509-parser's rendering.
fn subject_string(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut attributes = Vec::new();
    for atv in name.iter_attributes() {
        match (
            crate::names::DnAttribute::from_oid(&atv.attr_type().to_id_string()),
            atv.as_str(),
        ) {
            (Some(a), Ok(v)) => attributes.push((a, v.to_owned())),
            _ => return name.to_string(),
        }
    }
    DistinguishedName::from_attributes(attributes)
        .map(|dn| dn.to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// What a new CA certificate says.
#[derive(Debug, Clone)]
pub struct CaSpec<'a> {
    pub subject: &'a DistinguishedName,
    pub serial: &'a SerialNumber,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// `Some(0)`: may sign only end-entity certificates (an issuing CA).
    pub path_len: Option<u8>,
    /// Written as a critical nameConstraints extension (omitted when None or empty).
    pub name_constraints: Option<&'a NameConstraints>,
}

fn ca_params(spec: &CaSpec<'_>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = spec.subject.to_rcgen();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(spec.serial.as_bytes()));
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.is_ca = IsCa::Ca(match spec.path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    params.name_constraints = spec
        .name_constraints
        .filter(|c| !c.is_empty())
        .map(NameConstraints::to_rcgen);
    params
}

impl CaSigner {
    /// A new self-signed root.
    pub fn create_root(key: PrivateKey, spec: &CaSpec<'_>) -> Result<Self, PkiError> {
        let params = ca_params(spec);
        let cert = params.self_signed(&key).map_err(signing)?;
        Self::from_parts(cert.der().to_vec(), key)
    }

    /// A new CA signed by this one (an issuing intermediate). Its certificate says where
    /// this CA publishes, so that a relying party can check the new CA's revocation.
    pub fn create_subordinate(
        &self,
        key: PrivateKey,
        spec: &CaSpec<'_>,
        urls: &ParentUrls,
    ) -> Result<Self, PkiError> {
        let mut params = ca_params(spec);
        params.use_authority_key_identifier_extension = true;
        add_issuer_urls(
            &mut params,
            &urls.crl_url,
            &urls.ca_issuers_url,
            urls.ocsp_url.as_deref(),
            urls.delta_crl_url.as_deref(),
        );
        let cert = params.signed_by(&key, &self.issuer).map_err(signing)?;
        Self::from_parts(cert.der().to_vec(), key)
    }

    /// A signer from a stored or imported CA certificate and its key, which must match.
    pub fn from_parts(certificate_der: Vec<u8>, key: PrivateKey) -> Result<Self, PkiError> {
        let info = inspect_ca_certificate(&certificate_der)?;
        if info.public_key_der != key.public_key_der() {
            return Err(PkiError::KeyMismatch);
        }
        let issuer = Issuer::from_ca_cert_der(&certificate_der.as_slice().into(), key)
            .map_err(|_| PkiError::InvalidCertificate("cannot use the CA certificate".into()))?;
        Ok(Self {
            issuer,
            certificate_der,
            subject: info.subject,
            not_before: info.not_before,
            not_after: info.not_after,
        })
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.issuer.key().algorithm()
    }

    /// The CA's own key, for sealing it when the CA is created or imported.
    pub fn key(&self) -> &PrivateKey {
        self.issuer.key()
    }

    /// rcgen's issuer, for the other certificates this CA signs (OCSP responders).
    pub(crate) fn issuer(&self) -> &Issuer<'static, PrivateKey> {
        &self.issuer
    }

    /// Signs an end-entity certificate.
    pub fn sign_leaf(&self, leaf: &LeafSpec<'_>) -> Result<Vec<u8>, PkiError> {
        if leaf.not_after > self.not_after {
            return Err(PkiError::BeyondCaValidity);
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = leaf.subject.to_rcgen();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(leaf.serial.as_bytes()));
        params.not_before = leaf.not_before;
        params.not_after = leaf.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.subject_alt_names = leaf
            .sans
            .iter()
            .map(SubjectAltName::to_rcgen)
            .collect::<Result<_, _>>()
            .map_err(|e| PkiError::InvalidName(e.0))?;
        params.key_usages = leaf
            .profile
            .key_usages_for(leaf.key_algorithm)
            .into_iter()
            .map(|u| match u {
                KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
                KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
                KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            })
            .collect();
        params.extended_key_usages = leaf
            .profile
            .extended_key_usages
            .iter()
            .map(|e| match e {
                ExtendedKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        add_issuer_urls(
            &mut params,
            leaf.crl_url,
            leaf.ca_issuers_url,
            leaf.ocsp_url,
            leaf.delta_crl_url,
        );
        let cert = match leaf.public_key {
            LeafKey::Generated(key) => params.signed_by(key, &self.issuer),
            LeafKey::Spki(der) => {
                let spki = rcgen::SubjectPublicKeyInfo::from_der(der)
                    .map_err(|_| PkiError::UnsupportedKeyAlgorithm)?;
                params.signed_by(&spki, &self.issuer)
            }
        }
        .map_err(signing)?;
        Ok(cert.der().to_vec())
    }
}

fn signing(e: rcgen::Error) -> PkiError {
    PkiError::Signing(e.to_string())
}

/// Where the issuer publishes, written into a certificate it signs: the CRL distribution
/// point, AIA (OCSP, caIssuers) and the Freshest CRL.
fn add_issuer_urls(
    params: &mut CertificateParams,
    crl_url: &str,
    ca_issuers_url: &str,
    ocsp_url: Option<&str>,
    delta_crl_url: Option<&str>,
) {
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![crl_url.to_owned()],
    }];
    params.custom_extensions = vec![authority_info_access(ca_issuers_url, ocsp_url)];
    if let Some(url) = delta_crl_url {
        // Freshest CRL (RFC 5280 4.2.1.15): where the delta CRLs are.
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 46],
                crate::crl::distribution_points(url),
            ));
    }
}

/// AuthorityInfoAccess (RFC 5280 4.2.2.1): the OCSP responder's URI, if any, and the
/// caIssuers URI. rcgen has no builder for it, so it is written with the same DER writer
/// rcgen uses.
fn authority_info_access(ca_issuers_url: &str, ocsp_url: Option<&str>) -> CustomExtension {
    const AIA: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];
    const OCSP: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 48, 1];
    const CA_ISSUERS: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 48, 2];
    let access = |w: yasna::DERWriter<'_>, method: &[u64], uri: &str| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&yasna::models::ObjectIdentifier::from_slice(method));
            w.next()
                .write_tagged_implicit(yasna::Tag::context(6), |w| w.write_ia5_string(uri));
        });
    };
    let content = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if let Some(url) = ocsp_url {
                access(w.next(), &OCSP, url);
            }
            access(w.next(), &CA_ISSUERS, ca_issuers_url);
        });
    });
    CustomExtension::from_oid_content(&AIA, content)
}

/// The subject's public key: generated here, or from a CSR.
#[derive(Debug, Clone, Copy)]
pub enum LeafKey<'a> {
    Generated(&'a PrivateKey),
    Spki(&'a [u8]),
}

/// What an end-entity certificate says.
#[derive(Debug, Clone)]
pub struct LeafSpec<'a> {
    pub subject: &'a DistinguishedName,
    pub sans: &'a [SubjectAltName],
    pub profile: &'a Profile,
    pub key_algorithm: KeyAlgorithm,
    pub public_key: LeafKey<'a>,
    pub serial: &'a SerialNumber,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The CRL distribution point URL.
    pub crl_url: &'a str,
    /// The AIA caIssuers URL (the CA certificate, DER).
    pub ca_issuers_url: &'a str,
    /// The AIA OCSP URL; None leaves it out.
    pub ocsp_url: Option<&'a str>,
    /// The Freshest CRL URL (the CA's delta CRL); None leaves it out.
    pub delta_crl_url: Option<&'a str>,
}

/// Where the parent CA of a new subordinate CA publishes: a relying party that follows
/// URLs (Windows, many appliances) checks the subordinate's revocation there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentUrls {
    /// The parent's CRL (CRL distribution point).
    pub crl_url: String,
    /// The parent's certificate, DER (AIA caIssuers).
    pub ca_issuers_url: String,
    /// The parent's OCSP responder (AIA OCSP); None leaves it out.
    pub ocsp_url: Option<String>,
    /// The parent's delta CRL (Freshest CRL); None leaves it out.
    pub delta_crl_url: Option<String>,
}

/// One CRL entry.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    pub serial: SerialNumber,
    pub revoked_at: OffsetDateTime,
    pub reason: RevocationReason,
    pub invalidity_date: Option<OffsetDateTime>,
}

/// One entry of a published CRL, as read back from its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntryInfo {
    pub serial: SerialNumber,
    pub revoked_at: OffsetDateTime,
    /// The entry's CRLReason code; None when the entry has none.
    pub reason_code: Option<u8>,
    pub invalidity_date: Option<OffsetDateTime>,
}

impl CrlEntryInfo {
    /// The entry's reason; None without a code or with one KeyInfra never writes (the hold
    /// codes).
    pub fn reason(&self) -> Option<RevocationReason> {
        self.reason_code.and_then(RevocationReason::from_code)
    }
}

/// What a CRL says, read from its DER: what a relying party that downloads it sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The cRLNumber extension; None when absent or wider than 64 bits.
    pub number: Option<u64>,
    /// The Delta CRL Indicator's base CRL number: Some for a delta CRL.
    pub delta_base: Option<u64>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub entries: Vec<CrlEntryInfo>,
}

/// Reads a DER CRL (x509-parser; the signature is not checked here: this is for showing a
/// CRL this CA published, not for trusting one from elsewhere).
pub fn read_crl(der: &[u8]) -> Result<CrlInfo, PkiError> {
    let invalid = || PkiError::InvalidCertificate("not a valid DER CRL".into());
    let (rest, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|_| invalid())?;
    if !rest.is_empty() {
        return Err(invalid());
    }
    let number = crl.crl_number().and_then(|n| {
        let bytes = n.to_bytes_be();
        (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    });
    // x509-parser does not know the Delta CRL Indicator (2.5.29.27): read its INTEGER.
    let delta_base = crl
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.27")
        .and_then(|e| small_integer(e.value));
    let mut entries = Vec::with_capacity(crl.iter_revoked_certificates().count());
    for entry in crl.iter_revoked_certificates() {
        entries.push(CrlEntryInfo {
            serial: SerialNumber::from_bytes(&entry.serial().to_bytes_be())?,
            revoked_at: entry.revocation_date.to_datetime(),
            reason_code: entry.reason_code().map(|(_, code)| code.0),
            invalidity_date: entry.invalidity_date().map(|(_, at)| at.to_datetime()),
        });
    }
    Ok(CrlInfo {
        number,
        delta_base,
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        entries,
    })
}

/// A DER INTEGER of at most 64 bits, non-negative; None otherwise.
fn small_integer(der: &[u8]) -> Option<u64> {
    let (&tag, rest) = der.split_first()?;
    let (&len, content) = rest.split_first()?;
    if tag != 0x02 || usize::from(len) != content.len() || content.is_empty() {
        return None;
    }
    if content[0] & 0x80 != 0 {
        return None;
    }
    let content = if content.len() > 1 && content[0] == 0 {
        &content[1..]
    } else {
        content
    };
    (content.len() <= 8).then(|| {
        content
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    })
}

/// A throwaway P-256 root for unit tests: serial 01, a year from a fixed instant.
#[cfg(test)]
pub(crate) fn test_root(subject: &str) -> CaSigner {
    let subject = DistinguishedName::parse(subject).unwrap();
    let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    CaSigner::create_root(
        PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &CaSpec {
            subject: &subject,
            serial: &SerialNumber::from_hex("01").unwrap(),
            not_before: start,
            not_after: start + time::Duration::days(365),
            path_len: None,
            name_constraints: None,
        },
    )
    .unwrap()
}

#[cfg(test)]
mod crl_read_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signed_crl_reads_back_with_its_number_dates_and_entries() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = DistinguishedName::parse("CN=Test Root").unwrap();
        let serial = SerialNumber::from_hex("01").unwrap();
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ca = CaSigner::create_root(
            key,
            &CaSpec {
                subject: &subject,
                serial: &serial,
                not_before: start,
                not_after: start + time::Duration::days(365),
                path_len: None,
                name_constraints: None,
            },
        )
        .unwrap();
        // A serial with the top bit set checks that the DER sign byte is not part of it.
        let high = SerialNumber::from_hex("8F00AA").unwrap();
        let low = SerialNumber::from_hex("7E").unwrap();
        let der = ca
            .sign_crl(
                &crate::crl::CrlHeader {
                    number: 300,
                    this_update: start + time::Duration::days(1),
                    next_update: start + time::Duration::days(8),
                    kind: crate::crl::CrlKind::Full { delta_url: None },
                },
                &[
                    RevokedEntry {
                        serial: high.clone(),
                        revoked_at: start + time::Duration::hours(3),
                        reason: RevocationReason::KeyCompromise,
                        invalidity_date: Some(start + time::Duration::hours(1)),
                    },
                    RevokedEntry {
                        serial: low.clone(),
                        revoked_at: start + time::Duration::hours(4),
                        reason: RevocationReason::CessationOfOperation,
                        invalidity_date: None,
                    },
                ],
            )
            .unwrap();
        let info = read_crl(&der).unwrap();
        assert_eq!(info.number, Some(300));
        assert_eq!(info.delta_base, None);
        assert_eq!(info.this_update, start + time::Duration::days(1));
        assert_eq!(info.next_update, Some(start + time::Duration::days(8)));
        assert_eq!(info.entries.len(), 2);
        let first = &info.entries[0];
        assert_eq!(first.serial, high);
        assert_eq!(first.serial.to_hex(), "8F00AA");
        assert_eq!(first.reason(), Some(RevocationReason::KeyCompromise));
        assert_eq!(
            first.invalidity_date,
            Some(start + time::Duration::hours(1))
        );
        assert_eq!(info.entries[1].serial, low);
        assert_eq!(
            info.entries[1].reason(),
            Some(RevocationReason::CessationOfOperation)
        );
        assert_eq!(info.entries[1].invalidity_date, None);
        assert!(read_crl(&der[..der.len() - 1]).is_err());
    }
}

#[cfg(test)]
mod subordinate_tests {
    #![allow(clippy::unwrap_used)]
    use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

    use super::*;

    const START: i64 = 1_700_000_000;

    fn root(name: &str) -> CaSigner {
        test_root(name)
    }

    fn subordinate(parent: &CaSigner, ocsp_url: Option<&str>) -> CaSigner {
        let subject = DistinguishedName::parse("CN=Issuing").unwrap();
        let start = OffsetDateTime::from_unix_timestamp(START).unwrap();
        parent
            .create_subordinate(
                PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
                &CaSpec {
                    subject: &subject,
                    serial: &SerialNumber::from_hex("8A0B").unwrap(),
                    not_before: start,
                    not_after: start + time::Duration::days(30),
                    path_len: Some(0),
                    name_constraints: None,
                },
                &ParentUrls {
                    crl_url: "http://ca.example/crl/root.crl".into(),
                    ca_issuers_url: "http://ca.example/ca/root.crt".into(),
                    ocsp_url: ocsp_url.map(str::to_owned),
                    delta_crl_url: Some("http://ca.example/crl/root/delta.crl".into()),
                },
            )
            .unwrap()
    }

    /// (CRL distribution point URIs, Freshest CRL URIs, AIA (method OID, URI) pairs).
    type Urls = (Vec<String>, Vec<String>, Vec<(String, String)>);

    fn urls_in(der: &[u8]) -> Urls {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
        let uris = |points: &x509_parser::extensions::CRLDistributionPoints<'_>| {
            points
                .iter()
                .flat_map(|p| match &p.distribution_point {
                    Some(DistributionPointName::FullName(names)) => names.clone(),
                    _ => vec![],
                })
                .filter_map(|n| match n {
                    GeneralName::URI(uri) => Some(uri.to_owned()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let (mut crl, mut freshest, mut aia) = (vec![], vec![], vec![]);
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => crl = uris(points),
                ParsedExtension::AuthorityInfoAccess(access) => {
                    for d in &access.accessdescs {
                        if let GeneralName::URI(uri) = d.access_location {
                            aia.push((d.access_method.to_id_string(), uri.to_owned()));
                        }
                    }
                }
                _ if ext.oid.to_id_string() == "2.5.29.46" => {
                    let (_, points) =
                        x509_parser::extensions::CRLDistributionPoints::from_der(ext.value)
                            .unwrap();
                    freshest = uris(&points);
                }
                _ => {}
            }
        }
        (crl, freshest, aia)
    }

    #[test]
    fn a_subordinate_ca_certificate_names_where_its_parent_publishes() {
        let parent = root("CN=Root");
        let child = subordinate(&parent, Some("http://ca.example/ocsp"));
        let (crl, freshest, aia) = urls_in(child.certificate_der());
        assert_eq!(crl, ["http://ca.example/crl/root.crl"]);
        assert_eq!(freshest, ["http://ca.example/crl/root/delta.crl"]);
        assert_eq!(
            aia,
            [
                (
                    "1.3.6.1.5.5.7.48.1".to_owned(),
                    "http://ca.example/ocsp".to_owned()
                ),
                (
                    "1.3.6.1.5.5.7.48.2".to_owned(),
                    "http://ca.example/ca/root.crt".to_owned()
                ),
            ]
        );

        // With OCSP turned off, AIA keeps only caIssuers.
        let quiet = subordinate(&parent, None);
        let (_, _, aia) = urls_in(quiet.certificate_der());
        assert_eq!(
            aia,
            [(
                "1.3.6.1.5.5.7.48.2".to_owned(),
                "http://ca.example/ca/root.crt".to_owned()
            )]
        );

        // A root carries none of them: nothing stands above it.
        assert_eq!(urls_in(parent.certificate_der()), (vec![], vec![], vec![]));
    }

    #[test]
    fn signed_by_checks_the_signature_not_only_the_names() {
        let parent = root("CN=Root");
        let child = subordinate(&parent, None);
        let info = inspect_ca_certificate(child.certificate_der()).unwrap();
        assert_eq!(info.serial, Some(SerialNumber::from_hex("8A0B").unwrap()));
        assert!(signed_by(child.certificate_der(), parent.certificate_der()));
        // Same subject, another key: the names match, the signature does not.
        let impostor = root("CN=Root");
        assert!(!signed_by(
            child.certificate_der(),
            impostor.certificate_der()
        ));
        // Another name entirely.
        assert!(!signed_by(
            child.certificate_der(),
            root("CN=Other").certificate_der()
        ));
        assert!(!signed_by(
            parent.certificate_der(),
            child.certificate_der()
        ));
        assert!(!signed_by(b"not a certificate", parent.certificate_der()));
    }
}
