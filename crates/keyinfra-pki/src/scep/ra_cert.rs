//! The SCEP RA certificate: an RSA key the CA certifies to decrypt SCEP requests and sign
//! SCEP replies on its behalf (see the module's "Why an RA").

use rcgen::{CertificateParams, IsCa, KeyIdMethod, KeyUsagePurpose};
use time::OffsetDateTime;

use crate::ca::{CaSigner, LeafKey};
use crate::{PkiError, RandomSource, SerialNumber};

/// What an RA certificate says beyond the fixed profile.
#[derive(Debug, Clone)]
pub struct RaCertSpec<'a> {
    /// The RA's key: RSA, 2048 bits or more (clients encrypt to it).
    pub public_key: LeafKey<'a>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The CN suffix, as NDES and OpenXPKI name theirs.
const CN_SUFFIX: &str = " SCEP RA";

impl CaSigner {
    /// Issues the RA certificate: subject "CN=<CA CN> SCEP RA" (with the CA's other
    /// attributes), keyUsage digitalSignature and keyEncipherment (critical; it signs
    /// replies and receives transported keys), basicConstraints CA:FALSE, key identifiers,
    /// a random serial; no extendedKeyUsage (none is defined for an RA, and clients check
    /// none).
    pub fn issue_scep_ra(
        &self,
        spec: &RaCertSpec<'_>,
        rng: &mut dyn RandomSource,
    ) -> Result<Vec<u8>, PkiError> {
        if spec.not_after > self.not_after() {
            return Err(PkiError::BeyondCaValidity);
        }
        if let LeafKey::Generated(key) = spec.public_key
            && !key.algorithm().is_rsa()
        {
            return Err(PkiError::UnsupportedKeyAlgorithm);
        }
        let serial = SerialNumber::random(rng)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = self.delegate_subject(CN_SUFFIX)?.to_rcgen();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = match spec.public_key {
            LeafKey::Generated(key) => params.signed_by(key, self.issuer()),
            LeafKey::Spki(der) => {
                let spki = rcgen::SubjectPublicKeyInfo::from_der(der)
                    .map_err(|_| PkiError::UnsupportedKeyAlgorithm)?;
                params.signed_by(&spki, self.issuer())
            }
        }
        .map_err(|e| PkiError::Signing(e.to_string()))?;
        Ok(cert.der().to_vec())
    }
}
