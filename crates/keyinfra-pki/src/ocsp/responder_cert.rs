//! Delegated OCSP responder certificates (RFC 6960 4.2.2.2): the CA certifies a separate
//! key to sign its OCSP responses, so the CA key signs once per responder rotation instead
//! of once per response.

use rcgen::{
    CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose,
};
use time::OffsetDateTime;

use super::ID_PKIX_OCSP_NOCHECK;
use super::response::OcspResponder;
use crate::ca::{CaSigner, LeafKey};
use crate::names::{DistinguishedName, DnAttribute};
use crate::{PkiError, PrivateKey, RandomSource, SerialNumber};

/// What a responder certificate says beyond the fixed profile.
#[derive(Debug, Clone)]
pub struct ResponderCertSpec<'a> {
    /// The responder's key (usually generated for it).
    pub public_key: LeafKey<'a>,
    pub not_before: OffsetDateTime,
    /// Short-lived: with id-pkix-ocsp-nocheck, clients never check the responder
    /// certificate's revocation, so its expiry is the only limit on a stolen responder key.
    pub not_after: OffsetDateTime,
}

/// An issued responder certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderCertificate {
    pub serial: SerialNumber,
    pub der: Vec<u8>,
}

/// The CN suffix; the whole CN stays within X.520's 64 characters.
const CN_SUFFIX: &str = " OCSP Responder";
const CN_MAX: usize = 64;

impl CaSigner {
    /// Issues a delegated responder certificate: subject "CN=<CA CN> OCSP Responder" (with
    /// the CA's other attributes), extendedKeyUsage id-kp-OCSPSigning only, keyUsage
    /// digitalSignature (critical), id-pkix-ocsp-nocheck, basicConstraints CA:FALSE, and
    /// key identifiers; the serial is random.
    pub fn issue_ocsp_responder(
        &self,
        spec: &ResponderCertSpec<'_>,
        rng: &mut dyn RandomSource,
    ) -> Result<ResponderCertificate, PkiError> {
        if spec.not_after > self.not_after() {
            return Err(PkiError::BeyondCaValidity);
        }
        let serial = SerialNumber::random(rng)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = self.responder_subject()?.to_rcgen();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        // id-pkix-ocsp-nocheck: the extension value is NULL; non-critical.
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &ID_PKIX_OCSP_NOCHECK,
            vec![0x05, 0x00],
        )];
        let cert = match spec.public_key {
            LeafKey::Generated(key) => params.signed_by(key, self.issuer()),
            LeafKey::Spki(der) => {
                let spki = rcgen::SubjectPublicKeyInfo::from_der(der)
                    .map_err(|_| PkiError::UnsupportedKeyAlgorithm)?;
                params.signed_by(&spki, self.issuer())
            }
        }
        .map_err(|e| PkiError::Signing(e.to_string()))?;
        Ok(ResponderCertificate {
            serial,
            der: cert.der().to_vec(),
        })
    }

    /// The CA's subject with its CN (or a new one, for a CA without) naming the responder.
    fn responder_subject(&self) -> Result<DistinguishedName, PkiError> {
        self.delegate_subject(CN_SUFFIX)
    }

    /// The CA's subject with `suffix` after its CN (or a CN of `suffix` alone, for a CA
    /// without one): the name of a certificate a CA issues to itself for one job (the OCSP
    /// responder, the SCEP RA).
    pub(crate) fn delegate_subject(&self, suffix: &str) -> Result<DistinguishedName, PkiError> {
        let mut attributes = DistinguishedName::parse(self.subject())
            .map(|dn| dn.attributes().to_vec())
            .unwrap_or_default();
        let ca_cn = attributes
            .iter()
            .position(|(a, _)| *a == DnAttribute::CommonName)
            .map(|i| attributes.remove(i).1);
        let cn = match ca_cn {
            Some(cn) => {
                let room = CN_MAX - suffix.len();
                let cut: String = cn.chars().take(room).collect();
                format!("{}{suffix}", cut.trim_end())
            }
            None => suffix.trim_start().to_owned(),
        };
        attributes.push((DnAttribute::CommonName, cn));
        DistinguishedName::from_attributes(attributes).map_err(|e| PkiError::InvalidName(e.0))
    }

    /// This CA answering OCSP for itself, signing with its own key (RFC 6960 4.2.2.2 allows
    /// it; a delegated responder keeps the CA key out of the per-request path).
    pub fn ocsp_responder(&self) -> Result<OcspResponder, PkiError> {
        let key = PrivateKey::from_pkcs8(self.key().pkcs8_der())?;
        OcspResponder::new(self.certificate_der().to_vec(), key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::KeyAlgorithm;

    struct Counter(u8);
    impl RandomSource for Counter {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
            self.0 = self.0.wrapping_add(1);
            dest.fill(self.0);
            Ok(())
        }
    }

    fn ca(subject: &str) -> CaSigner {
        crate::ca::test_root(subject)
    }

    #[test]
    fn the_subject_keeps_the_cas_attributes_and_a_cn_within_64_characters() {
        let subject = |ca: &CaSigner| ca.responder_subject().unwrap().to_string();
        assert_eq!(
            subject(&ca("CN=Example Root,O=Example,C=NL")),
            "CN=Example Root OCSP Responder,O=Example,C=NL"
        );
        let long = "x".repeat(64);
        let cn = ca(&format!("CN={long},O=Example"))
            .responder_subject()
            .unwrap()
            .common_name()
            .unwrap()
            .to_owned();
        assert_eq!(cn.chars().count(), 64);
        assert!(cn.ends_with(" OCSP Responder"));
        assert_eq!(subject(&ca("O=Example")), "CN=OCSP Responder,O=Example");
    }

    #[test]
    fn a_responder_may_not_outlive_its_ca_and_gets_a_random_serial() {
        let ca = ca("CN=Root");
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let spec = |not_after| ResponderCertSpec {
            public_key: LeafKey::Generated(&key),
            not_before: ca.not_before(),
            not_after,
        };
        assert_eq!(
            ca.issue_ocsp_responder(
                &spec(ca.not_after() + time::Duration::seconds(1)),
                &mut Counter(0)
            ),
            Err(PkiError::BeyondCaValidity)
        );
        let issued = ca
            .issue_ocsp_responder(&spec(ca.not_after()), &mut Counter(0))
            .unwrap();
        assert_eq!(issued.serial.to_hex(), "01".repeat(16));
        let (_, cert) = x509_parser::parse_x509_certificate(&issued.der).unwrap();
        assert_eq!(cert.raw_serial(), issued.serial.as_bytes());
        assert!(OcspResponder::new(issued.der.clone(), key).is_ok());
    }
}
