//! SCEP's pkcsPKIEnvelope: a CMS EnvelopedData with one key-transport recipient (RFC 8894
//! 3.2.2). Requests are opened with the RA's RSA key; replies are sealed to the
//! requester's certificate with the cipher the request used.
//!
//! Key transport is RSA PKCS#1 v1.5 (every SCEP client uses it). A padding failure is not
//! reported as such: the content-encryption key is then a random one, the content fails to
//! decrypt, and both cases end in the same badMessageCheck (no Bleichenbacher oracle).

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::{CmsVersion, ContentInfo};
use der::asn1::{Any, ObjectIdentifier, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Encode};
use zeroize::Zeroizing;

use super::asn1::{EncryptedContent, EnvelopedData, IssuerAndSerial, KeyTransRecipient};
use super::{RSA_ENCRYPTION, content};
use crate::{PkiError, RandomSource};

/// The content-encryption algorithms SCEP clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// Single DES: still what scepclient sends. Read, never written (replies use 3DES).
    DesCbc,
    DesEde3Cbc,
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
}

impl ContentCipher {
    const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");
    const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
    const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
    const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
    const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");

    pub fn oid(self) -> ObjectIdentifier {
        match self {
            ContentCipher::DesCbc => Self::DES_CBC,
            ContentCipher::DesEde3Cbc => Self::DES_EDE3_CBC,
            ContentCipher::Aes128Cbc => Self::AES128_CBC,
            ContentCipher::Aes192Cbc => Self::AES192_CBC,
            ContentCipher::Aes256Cbc => Self::AES256_CBC,
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [
            ContentCipher::DesCbc,
            ContentCipher::DesEde3Cbc,
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes192Cbc,
            ContentCipher::Aes256Cbc,
        ]
        .into_iter()
        .find(|c| c.oid() == *oid)
    }

    pub fn key_len(self) -> usize {
        match self {
            ContentCipher::DesCbc => 8,
            ContentCipher::DesEde3Cbc => 24,
            ContentCipher::Aes128Cbc => 16,
            ContentCipher::Aes192Cbc => 24,
            ContentCipher::Aes256Cbc => 32,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            ContentCipher::DesCbc | ContentCipher::DesEde3Cbc => 8,
            _ => 16,
        }
    }

    /// What a reply to a request in this cipher uses: the same, except single DES, which
    /// is answered with 3DES (56-bit keys protect nothing; every DES client has 3DES).
    pub fn for_reply(self) -> Self {
        match self {
            ContentCipher::DesCbc => ContentCipher::DesEde3Cbc,
            other => other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ContentCipher::DesCbc => "DES-CBC",
            ContentCipher::DesEde3Cbc => "3DES-CBC",
            ContentCipher::Aes128Cbc => "AES-128-CBC",
            ContentCipher::Aes192Cbc => "AES-192-CBC",
            ContentCipher::Aes256Cbc => "AES-256-CBC",
        }
    }

    fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        fn run<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>>
        where
            cbc::Decryptor<C>: KeyIvInit + BlockModeDecrypt,
            C: cbc::cipher::BlockCipherDecrypt,
        {
            cbc::Decryptor::<C>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec::<Pkcs7>(data)
                .ok()
                .map(Zeroizing::new)
        }
        match self {
            ContentCipher::DesCbc => run::<des::Des>(key, iv, data),
            ContentCipher::DesEde3Cbc => run::<des::TdesEde3>(key, iv, data),
            ContentCipher::Aes128Cbc => run::<aes::Aes128>(key, iv, data),
            ContentCipher::Aes192Cbc => run::<aes::Aes192>(key, iv, data),
            ContentCipher::Aes256Cbc => run::<aes::Aes256>(key, iv, data),
        }
    }

    fn encrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        fn run<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>>
        where
            cbc::Encryptor<C>: KeyIvInit + BlockModeEncrypt,
            C: cbc::cipher::BlockCipherEncrypt,
        {
            Some(
                cbc::Encryptor::<C>::new_from_slices(key, iv)
                    .ok()?
                    .encrypt_padded_vec::<Pkcs7>(data),
            )
        }
        match self {
            ContentCipher::DesCbc => run::<des::Des>(key, iv, data),
            ContentCipher::DesEde3Cbc => run::<des::TdesEde3>(key, iv, data),
            ContentCipher::Aes128Cbc => run::<aes::Aes128>(key, iv, data),
            ContentCipher::Aes192Cbc => run::<aes::Aes192>(key, iv, data),
            ContentCipher::Aes256Cbc => run::<aes::Aes256>(key, iv, data),
        }
    }
}

/// The RA's certificate and RSA key: opens requests, signs replies. (Any RSA certificate
/// and its key: the test client opens its replies with its own.)
pub struct RaKey {
    certificate_der: Vec<u8>,
    issuer_and_serial: IssuerAndSerial,
    decrypting: aws_lc_rs::rsa::Pkcs1PrivateDecryptingKey,
    signing: aws_lc_rs::rsa::KeyPair,
}

impl std::fmt::Debug for RaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaKey").finish_non_exhaustive()
    }
}

impl RaKey {
    /// From the RA certificate and its RSA key (PKCS#8). The key must be the certificate's.
    pub fn new(certificate_der: Vec<u8>, key: &crate::PrivateKey) -> Result<Self, PkiError> {
        if !key.algorithm().is_rsa() {
            return Err(PkiError::UnsupportedKeyAlgorithm);
        }
        let invalid = || PkiError::InvalidCertificate("not a DER X.509 certificate".into());
        let (_, certificate) =
            x509_parser::parse_x509_certificate(&certificate_der).map_err(|_| invalid())?;
        let pkcs8 = key.pkcs8_der();
        let signing =
            aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(|_| PkiError::InvalidPrivateKey)?;
        use aws_lc_rs::signature::KeyPair as _;
        if signing.public_key().as_ref() != &certificate.public_key().subject_public_key.data[..] {
            return Err(PkiError::KeyMismatch);
        }
        let decrypting = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(pkcs8)
            .ok()
            .and_then(|k| aws_lc_rs::rsa::Pkcs1PrivateDecryptingKey::new(k).ok())
            .ok_or(PkiError::InvalidPrivateKey)?;
        let issuer_and_serial =
            IssuerAndSerial::of_certificate(&certificate_der).ok_or_else(invalid)?;
        Ok(Self {
            certificate_der,
            issuer_and_serial,
            decrypting,
            signing,
        })
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    pub(crate) fn issuer_and_serial(&self) -> &IssuerAndSerial {
        &self.issuer_and_serial
    }

    pub(crate) fn signing(&self) -> &aws_lc_rs::rsa::KeyPair {
        &self.signing
    }
}

/// Why an envelope does not open. The reply says badMessageCheck for all but
/// [`EnvelopeError::UnsupportedCipher`] (badAlg); the text is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the envelope is not a DER EnvelopedData")]
    Malformed,
    #[error("the envelope is not addressed to this RA")]
    WrongRecipient,
    #[error("unsupported key transport or content encryption")]
    UnsupportedCipher,
    #[error("the envelope does not decrypt")]
    DoesNotDecrypt,
}

/// A request's decrypted content and the cipher that protected it.
#[derive(Debug)]
pub struct Opened {
    pub content: Zeroizing<Vec<u8>>,
    pub cipher: ContentCipher,
}

/// Opens a pkcsPKIEnvelope (a ContentInfo of type envelopedData) addressed to the RA.
pub fn open(envelope: &[u8], ra: &RaKey) -> Result<Opened, EnvelopeError> {
    use EnvelopeError::*;
    let info = ContentInfo::from_der(envelope).map_err(|_| Malformed)?;
    if info.content_type != content::ENVELOPED_DATA {
        return Err(Malformed);
    }
    let enveloped: EnvelopedData = info.content.decode_as().map_err(|_| Malformed)?;
    // scepclient encrypts to every certificate GetCACert returned: pick ours. (Other
    // recipient kinds do not decode as key transport and are skipped.)
    let recipient = enveloped
        .recip_infos
        .iter()
        .filter_map(|r| r.decode_as::<KeyTransRecipient>().ok())
        .find(|k| k.rid == ra.issuer_and_serial)
        .ok_or(WrongRecipient)?;
    if recipient.key_enc_alg.oid != RSA_ENCRYPTION {
        return Err(UnsupportedCipher);
    }
    let encrypted = &enveloped.encrypted_content;
    let cipher =
        ContentCipher::from_oid(&encrypted.content_enc_alg.oid).ok_or(UnsupportedCipher)?;
    let iv = encrypted
        .content_enc_alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<&OctetStringRef>().ok())
        .map(|iv| iv.as_bytes())
        .filter(|iv| iv.len() == cipher.iv_len())
        .ok_or(Malformed)?;
    let data = encrypted.ciphertext().ok_or(Malformed)?;
    let mut key = Zeroizing::new(vec![0u8; ra.decrypting.min_output_size()]);
    let transported = ra
        .decrypting
        .decrypt(recipient.enc_key.as_bytes(), &mut key)
        .ok()
        .map(|k| k.len());
    // Implicit rejection: a key that did not decrypt, or of the wrong length, becomes a
    // random one, so the only observable outcome is the content's failure below.
    let key: Zeroizing<Vec<u8>> = match transported {
        Some(len) if len == cipher.key_len() => Zeroizing::new(key[..len].to_vec()),
        _ => {
            let mut random = Zeroizing::new(vec![0u8; cipher.key_len()]);
            aws_lc_rs::rand::fill(&mut random).map_err(|_| DoesNotDecrypt)?;
            random
        }
    };
    let content = cipher.decrypt(&key, iv, &data).ok_or(DoesNotDecrypt)?;
    Ok(Opened { content, cipher })
}

/// Seals `content` into a pkcsPKIEnvelope for the holder of `recipient` (a certificate
/// with an RSA key), under a fresh key of `cipher`.
pub fn seal(
    content: &[u8],
    recipient: &[u8],
    cipher: ContentCipher,
    rng: &mut dyn RandomSource,
) -> Result<Vec<u8>, PkiError> {
    let encoding = |e: der::Error| PkiError::Encoding(e.to_string());
    let invalid = || PkiError::InvalidCertificate("not a DER X.509 certificate".into());
    let (_, certificate) = x509_parser::parse_x509_certificate(recipient).map_err(|_| invalid())?;
    let rid = IssuerAndSerial::of_certificate(recipient).ok_or_else(invalid)?;
    let public = aws_lc_rs::rsa::PublicEncryptingKey::from_der(certificate.public_key().raw)
        .ok()
        .and_then(|k| aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(k).ok())
        .ok_or(PkiError::UnsupportedKeyAlgorithm)?;
    let mut key = Zeroizing::new(vec![0u8; cipher.key_len()]);
    rng.fill(&mut key)?;
    let mut iv = vec![0u8; cipher.iv_len()];
    rng.fill(&mut iv)?;
    let encrypted = cipher
        .encrypt(&key, &iv, content)
        .ok_or_else(|| PkiError::Encoding("content encryption failed".into()))?;
    let mut transported = vec![0u8; public.ciphertext_size()];
    let transported_len = public
        .encrypt(&key, &mut transported)
        .map_err(|_| PkiError::Encoding("key transport failed".into()))?
        .len();
    transported.truncate(transported_len);
    let recipient_info = KeyTransRecipient {
        version: CmsVersion::V0,
        rid,
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        enc_key: OctetString::new(transported).map_err(encoding)?,
    };
    let iv = Any::encode_from(&OctetString::new(iv).map_err(encoding)?).map_err(encoding)?;
    let enveloped = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: SetOfVec::try_from(vec![Any::encode_from(&recipient_info).map_err(encoding)?])
            .map_err(encoding)?,
        encrypted_content: EncryptedContent::new(
            content::DATA,
            AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(iv),
            },
            encrypted,
        )
        .map_err(encoding)?,
    };
    ContentInfo {
        content_type: content::ENVELOPED_DATA,
        content: Any::encode_from(&enveloped).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}
