//! Key material for the server's own TLS (`keyinfra serve --tls`): a CSR for a key made in
//! memory, and the rustls signing key for a certificate chain, from our own key or from
//! PEM files. rustls runs on aws-lc-rs, the crate's one crypto backend.
//!
//! Plaintext key bytes stay in this crate, as everywhere: callers get an opaque
//! [`CertifiedKey`]. Error texts never quote the files they come from.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use rustls::sign::CertifiedKey;
use zeroize::Zeroizing;

use crate::names::{DistinguishedName, SubjectAltName};
use crate::{PkiError, PrivateKey};

/// Why a certificate chain or key file cannot be served. The texts name what is wrong,
/// never what the file contains.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFileError {
    #[error("it is not PEM text")]
    NotPem,
    #[error("it holds no PEM CERTIFICATE block")]
    NoCertificate,
    #[error("its first certificate is not a valid X.509 certificate")]
    InvalidCertificate,
    #[error(
        "it holds no unencrypted PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    NoKey,
    #[error(
        "the private key is encrypted; decrypt it first (`openssl pkey -in KEY -out PLAIN.key`)"
    )]
    EncryptedKey,
    #[error("it holds more than one private key")]
    SeveralKeys,
    #[error("the private key is malformed or of an algorithm TLS cannot use")]
    UnusableKey,
    #[error("the private key does not belong to the first certificate of the chain")]
    KeyMismatch,
}

/// A PKCS#10 request for `key`, signed by it, with `subject` and `sans`: what a device
/// would send, so that the server's own certificate goes through the same issuance path.
pub fn csr_der(
    key: &PrivateKey,
    subject: &DistinguishedName,
    sans: &[SubjectAltName],
) -> Result<Vec<u8>, PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = subject.to_rcgen();
    params.subject_alt_names = sans
        .iter()
        .map(SubjectAltName::to_rcgen)
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::InvalidName(e.to_string()))?;
    let request = params
        .serialize_request(key.signing_pair()?)
        .map_err(|e| PkiError::Signing(e.to_string()))?;
    Ok(request.der().to_vec())
}

/// The rustls signing key for `chain` (leaf first, then its CAs) and our own `key`.
pub fn certified_key(chain: &[Vec<u8>], key: &PrivateKey) -> Result<Arc<CertifiedKey>, PkiError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let chain = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    CertifiedKey::from_der(chain, der, &aws_lc_rs::default_provider())
        .map(Arc::new)
        .map_err(|_| PkiError::KeyMismatch)
}

/// The rustls signing key from a PEM certificate chain (leaf first) and a PEM private key
/// (PKCS#8, PKCS#1 RSA or SEC1 EC), checked to belong together. The errors say which file
/// is wrong: `Err((true, _))` for the chain, `Err((false, _))` for the key.
pub fn certified_key_from_pem(
    chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<CertifiedKey>, (bool, TlsFileError)> {
    let chain = certificates_from_pem(chain_pem).map_err(|e| (true, e))?;
    let key = private_key_from_pem(key_pem).map_err(|e| (false, e))?;
    let signing_key = aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|_| (false, TlsFileError::UnusableKey))?;
    // rustls compares the key with the leaf's SubjectPublicKeyInfo (the leaf must parse).
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err((false, TlsFileError::KeyMismatch))
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(_) => Err((true, TlsFileError::InvalidCertificate)),
    }
}

fn certificates_from_pem(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let blocks = pem::parse_many(text).map_err(|_| TlsFileError::NotPem)?;
    let chain: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if chain.is_empty() {
        return Err(TlsFileError::NoCertificate);
    }
    Ok(chain)
}

fn private_key_from_pem(text: &[u8]) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let blocks = pem::parse_many(text).map_err(|_| TlsFileError::NotPem)?;
    let mut found = None;
    for block in blocks {
        let tag = block.tag().to_owned();
        let contents = Zeroizing::new(block.into_contents());
        let key = match tag.as_str() {
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(contents.to_vec())),
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(contents.to_vec())),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(contents.to_vec())),
            "ENCRYPTED PRIVATE KEY" => return Err(TlsFileError::EncryptedKey),
            _ => continue,
        };
        if found.replace(key).is_some() {
            return Err(TlsFileError::SeveralKeys);
        }
    }
    found.ok_or(TlsFileError::NoKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyAlgorithm;

    fn self_signed(key: &PrivateKey) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .self_signed(key.signing_pair().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn a_csr_carries_the_names_and_verifies() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let subject = DistinguishedName::parse("CN=localhost,O=KeyInfra").unwrap();
        let sans = SubjectAltName::parse_list(&["localhost", "127.0.0.1"]).unwrap();
        let csr = crate::csr::parse_csr(&csr_der(&key, &subject, &sans).unwrap()).unwrap();
        assert_eq!(csr.subject.unwrap(), subject);
        assert_eq!(csr.sans.unwrap(), sans);
        assert_eq!(csr.public_key_der, key.public_key_der());
    }

    #[test]
    fn our_key_and_its_certificate_make_a_certified_key() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let certified = certified_key(&[self_signed(&key)], &key).unwrap();
        assert!(certified.keys_match().is_ok());
        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert_eq!(
            certified_key(&[self_signed(&key)], &other).unwrap_err(),
            PkiError::KeyMismatch
        );
    }

    #[test]
    fn pem_files_are_checked_and_errors_never_quote_them() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert = crate::certificate_pem(&self_signed(&key));
        let key_pem = key.to_pkcs8_pem().unwrap();
        assert!(certified_key_from_pem(cert.as_bytes(), key_pem.as_bytes()).is_ok());

        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
            .unwrap()
            .to_pkcs8_pem()
            .unwrap();
        let e = certified_key_from_pem(cert.as_bytes(), other.as_bytes()).unwrap_err();
        assert_eq!(e, (false, TlsFileError::KeyMismatch));
        let e = certified_key_from_pem(key_pem.as_bytes(), key_pem.as_bytes()).unwrap_err();
        assert_eq!(e, (true, TlsFileError::NoCertificate));
        let e = certified_key_from_pem(cert.as_bytes(), cert.as_bytes()).unwrap_err();
        assert_eq!(e, (false, TlsFileError::NoKey));
        let e = certified_key_from_pem(cert.as_bytes(), b"not pem at all").unwrap_err();
        assert_eq!(e, (false, TlsFileError::NoKey));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = certified_key_from_pem(cert.as_bytes(), encrypted.as_bytes()).unwrap_err();
        assert_eq!(e, (false, TlsFileError::EncryptedKey));
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = certified_key_from_pem(cert.as_bytes(), garbage.as_bytes()).unwrap_err();
        assert_eq!(e, (false, TlsFileError::UnusableKey));
    }
}
