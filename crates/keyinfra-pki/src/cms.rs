//! CMS (RFC 5652) pieces shared by the enrollment protocols: the degenerate SignedData that
//! carries certificates or a CRL and nothing signed ("certs-only"), which SCEP (RFC 8894
//! 3.4) and EST (RFC 7030 4.1.3) both send.

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::EncapsulatedContentInfo;
use der::asn1::{Any, SetOfVec};
use der::{Decode, Encode, Sequence};

use crate::PkiError;
use cms::cert::x509::spki::AlgorithmIdentifierOwned;

/// CMS content types (RFC 5652).
pub(crate) mod content {
    use der::asn1::ObjectIdentifier;

    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    pub const ENVELOPED_DATA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
}

/// SignedData (RFC 5652 5.1) with certificates, CRLs and SignerInfos as bytes (`Any`).
///
/// `cms`'s own type decodes each certificate with `x509-cert`, which refuses some that
/// clients really send (SCEP's certmonger writes 33-byte serials), and would re-encode a
/// CRL from its entries; here they travel as the bytes they are.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SignedData {
    pub(crate) version: CmsVersion,
    pub(crate) digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    pub(crate) encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) certificates: Option<SetOfVec<Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) crls: Option<SetOfVec<Any>>,
    /// Each a SignerInfo.
    pub(crate) signer_infos: SetOfVec<Any>,
}

fn encoding(e: der::Error) -> PkiError {
    PkiError::Encoding(e.to_string())
}

fn degenerate(certificates: &[&[u8]], crls: &[&[u8]]) -> Result<Vec<u8>, PkiError> {
    let set = |items: &[&[u8]]| -> Result<Option<SetOfVec<Any>>, PkiError> {
        if items.is_empty() {
            return Ok(None);
        }
        let anys = items
            .iter()
            .map(|der| Any::from_der(der).map_err(encoding))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SetOfVec::try_from(anys).map_err(encoding)?))
    };
    // A degenerate SignedData (RFC 8894 3.4): nothing signed. A CRL travels as the bytes
    // it is, never decoded into its entries and encoded again.
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content::DATA,
            econtent: None,
        },
        certificates: set(certificates)?,
        crls: set(crls)?,
        signer_infos: SetOfVec::new(),
    };
    ContentInfo {
        content_type: content::SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

/// A certificates-only SignedData: SCEP's GetCACert and a successful CertRep's content,
/// EST's /cacerts and enrollment answers. DER puts a SET OF in byte order, so the order of
/// `certificates` is not kept.
pub fn certs_only(certificates: &[&[u8]]) -> Result<Vec<u8>, PkiError> {
    degenerate(certificates, &[])
}

/// A CRL in a degenerate SignedData (SCEP's GetCRL).
pub fn crl_only(crl: &[u8]) -> Result<Vec<u8>, PkiError> {
    degenerate(&[], &[crl])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use cms::cert::CertificateChoices;
    use cms::revocation::RevocationInfoChoice;

    use super::*;

    /// Reads the result with `cms`'s strict types, not the [`SignedData`] that wrote it.
    fn strict(der: &[u8]) -> cms::signed_data::SignedData {
        let info = ContentInfo::from_der(der).unwrap();
        assert_eq!(info.content_type, content::SIGNED_DATA);
        info.content
            .decode_as::<cms::signed_data::SignedData>()
            .unwrap()
    }

    #[test]
    fn certs_only_carries_every_certificate_and_nothing_signed() {
        let root = crate::ca::test_root("CN=Root A");
        let other = crate::ca::test_root("CN=Root B");
        let der = certs_only(&[root.certificate_der(), other.certificate_der()]).unwrap();
        let signed = strict(&der);
        assert_eq!(signed.version, CmsVersion::V1);
        assert!(signed.digest_algorithms.is_empty());
        assert!(signed.signer_infos.0.is_empty());
        assert_eq!(signed.encap_content_info.econtent_type, content::DATA);
        assert!(signed.encap_content_info.econtent.is_none());
        assert!(signed.crls.is_none());
        let mut carried: Vec<Vec<u8>> = signed
            .certificates
            .unwrap()
            .0
            .iter()
            .map(|choice| match choice {
                CertificateChoices::Certificate(c) => c.to_der().unwrap(),
                CertificateChoices::Other(_) => panic!("not a certificate"),
            })
            .collect();
        carried.sort();
        let mut expected = vec![
            root.certificate_der().to_vec(),
            other.certificate_der().to_vec(),
        ];
        expected.sort();
        assert_eq!(carried, expected);
    }

    #[test]
    fn crl_only_carries_the_crl_bytes_as_they_are() {
        let root = crate::ca::test_root("CN=Root A");
        let start = root.not_before();
        let crl = root
            .sign_crl(
                &crate::crl::CrlHeader {
                    number: 7,
                    this_update: start,
                    next_update: start + time::Duration::days(7),
                    kind: crate::crl::CrlKind::Full { delta_url: None },
                },
                &[],
            )
            .unwrap();
        let signed = strict(&crl_only(&crl).unwrap());
        assert!(signed.certificates.is_none());
        let crls = signed.crls.unwrap().0;
        assert_eq!(crls.len(), 1);
        match crls.get(0).unwrap() {
            RevocationInfoChoice::Crl(list) => assert_eq!(list.to_der().unwrap(), crl),
            RevocationInfoChoice::Other(_) => panic!("not a CRL"),
        }
    }

    #[test]
    fn bytes_that_are_not_der_are_refused() {
        assert!(matches!(
            certs_only(&[b"not der".as_slice()]),
            Err(PkiError::Encoding(_))
        ));
    }
}
